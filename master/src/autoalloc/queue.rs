//! One allocation queue as the allocator keeps it: its settings, its allocations and the
//! numbers the allocator decides by (slots pending, workers alive, allocations waiting).

use crate::core::WorkerId;
use farm_proto::{
    AllocQueueInfo, AllocQueueSpec, AllocQueueState, AllocationInfo, AllocationState,
};
use std::collections::BTreeSet;
use std::time::Instant;

/// One allocation of a queue.
#[derive(Debug)]
pub(super) struct Alloc {
    /// The scheduler's job id.
    pub(super) id: String,
    /// Where it is.
    pub(super) state: AllocationState,
    /// When it was submitted.
    pub(super) submitted: Instant,
    /// Its workers connected now.
    pub(super) workers: BTreeSet<WorkerId>,
    /// Its workers that ever connected.
    pub(super) seen: BTreeSet<WorkerId>,
    /// How it ended, or why it failed.
    pub(super) detail: String,
    /// The allocator cancelled it: ending without workers is then no failure.
    pub(super) cancelled: bool,
}

/// One allocation queue.
#[derive(Debug)]
pub(super) struct Queue {
    /// Its settings.
    pub(super) spec: AllocQueueSpec,
    /// Where it is.
    pub(super) state: AllocQueueState,
    /// The last failure (the scheduler's message); why it is paused.
    pub(super) error: Option<String>,
    /// Failures in a row (refused submissions, allocations that died before a worker came).
    pub(super) failures: u32,
    /// No submission before this, after a failure.
    pub(super) retry_at: Option<Instant>,
    /// A submission in flight, by its `seq`.
    pub(super) submitting: Option<u64>,
    /// Its allocations, oldest first.
    pub(super) allocs: Vec<Alloc>,
}

impl Queue {
    /// Workers per allocation.
    pub(super) fn k(&self) -> u64 {
        u64::from(self.spec.workers_per_alloc)
    }

    /// Slots one worker brings: its threads, or 1 when the worker picks (a lower bound).
    pub(super) fn t(&self) -> u64 {
        u64::from(self.spec.threads.unwrap_or(1))
    }

    pub(super) fn live(&self) -> impl Iterator<Item = &Alloc> {
        self.allocs.iter().filter(|a| !a.state.is_final())
    }

    /// Slots its submitted allocations will bring once all their workers connect.
    pub(super) fn pending_slots(&self) -> u64 {
        let missing: u64 = self.live().map(|a| self.k().saturating_sub(a.seen.len() as u64)).sum();
        let submitting = if self.submitting.is_some() { self.k() } else { 0 };
        (missing + submitting) * self.t()
    }

    /// Workers its live allocations (and a submission in flight) run or will run.
    pub(super) fn alive_workers(&self) -> u64 {
        (self.live().count() as u64 + u64::from(self.submitting.is_some())) * self.k()
    }

    /// Allocations waiting at the scheduler, and a submission in flight.
    pub(super) fn waiting(&self) -> usize {
        let queued = self.allocs.iter().filter(|a| a.state == AllocationState::Queued).count();
        queued + usize::from(self.submitting.is_some())
    }

    /// Whether it may submit at `now`.
    pub(super) fn may_submit(&self, max_queued: usize, now: Instant) -> bool {
        self.state == AllocQueueState::Active
            && self.retry_at.is_none_or(|at| now >= at)
            && self.waiting() < max_queued
            && self.alive_workers() + self.k() <= u64::from(self.spec.max_workers)
    }

    pub(super) fn info(&self, now: Instant) -> AllocQueueInfo {
        let allocations = self
            .allocs
            .iter()
            .map(|a| AllocationInfo {
                id: a.id.clone(),
                state: a.state,
                workers: a.workers.len() as u32,
                workers_seen: a.seen.len() as u32,
                age_secs: now.saturating_duration_since(a.submitted).as_secs(),
                detail: a.detail.clone(),
            })
            .collect();
        AllocQueueInfo {
            spec: self.spec.clone(),
            state: self.state,
            error: self.error.clone(),
            failures: self.failures,
            allocations,
        }
    }
}

impl Queue {
    pub(super) fn find(&mut self, id: &str) -> Option<&mut Alloc> {
        self.allocs.iter_mut().find(|a| a.id == id)
    }

    pub(super) fn find_ref(&self, id: &str) -> bool {
        self.allocs.iter().any(|a| a.id == id)
    }
}
