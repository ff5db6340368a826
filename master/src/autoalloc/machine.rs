//! The allocator as a pure state machine, the scheduler core's pattern: no I/O, no clock, no
//! runtime (a queue and its allocations are in `queue.rs`). Its owner (`task.rs`) feeds it the
//! core's numbers on a tick and the outcomes of the scheduler commands it asked for; it answers
//! with [`Effect`]s: submit an allocation, poll the scheduler, cancel an allocation. Tests
//! drive it with a fake scheduler (`machine_tests.rs`).

use super::queue::{Alloc, Queue};
use super::AllocError;
use crate::core::Demand;
use farm_proto::{AllocQueueInfo, AllocQueueSpec, AllocQueueState, AllocationState};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// The allocator's tuning.
#[derive(Debug, Clone)]
pub struct AllocatorConfig {
    /// Most allocations of one queue waiting at the scheduler (submitted, not started): more
    /// would only queue behind them, and each may start workers nobody needs any more.
    pub max_queued: usize,
    /// How often live allocations are polled at the scheduler.
    pub poll_every: Duration,
    /// Submission failures in a row that pause a queue.
    pub pause_after: u32,
    /// The wait after the first submission failure; it doubles with each further one.
    pub backoff_base: Duration,
    /// The longest wait between submission attempts.
    pub backoff_cap: Duration,
    /// Ended allocations each queue keeps for `farm alloc list`.
    pub keep_ended: usize,
}

impl Default for AllocatorConfig {
    fn default() -> Self {
        AllocatorConfig {
            max_queued: 1,
            poll_every: Duration::from_secs(2),
            pause_after: 3,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
            keep_ended: 20,
        }
    }
}

/// A scheduler command the allocator asks for; its outcome comes back as an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Submit one allocation for `queue`; answer with [`Allocator::submitted`] and `seq`.
    Submit {
        /// The queue.
        queue: String,
        /// Matches the answer to this request.
        seq: u64,
        /// The queue's settings, for the submit script.
        spec: AllocQueueSpec,
    },
    /// Ask the scheduler where these allocations are; answer with [`Allocator::polled`].
    Poll {
        /// Scheduler job ids.
        ids: Vec<String>,
    },
    /// Cancel an allocation at the scheduler.
    Cancel {
        /// Its scheduler job id.
        id: String,
    },
}

/// Where the scheduler says an allocation is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchedState {
    /// Waiting to start.
    Queued,
    /// Started.
    Running,
    /// Over; `detail` is the scheduler's word (COMPLETED, TIMEOUT, FAILED …).
    Ended {
        /// How it ended.
        detail: String,
    },
}

/// Every allocation queue and its allocations.
#[derive(Debug)]
pub struct Allocator {
    /// Tuning.
    config: AllocatorConfig,
    /// The queues, by name.
    queues: BTreeMap<String, Queue>,
    /// The number in the next default queue name.
    next_name: u32,
    /// The next submission's `seq`.
    next_seq: u64,
    /// A poll is in flight: no second one.
    polling: bool,
    /// When the last poll was asked for.
    last_poll: Option<Instant>,
}

impl Allocator {
    /// No queues yet.
    pub fn new(config: AllocatorConfig) -> Self {
        Allocator {
            config,
            queues: BTreeMap::new(),
            next_name: 1,
            next_seq: 1,
            polling: false,
            last_poll: None,
        }
    }

    /// Registers a queue (named `slurm-N` if the spec has no name).
    pub fn add(
        &mut self,
        mut spec: AllocQueueSpec,
        now: Instant,
    ) -> Result<AllocQueueInfo, AllocError> {
        spec.check().map_err(|e| AllocError::Invalid(e.to_string()))?;
        if spec.name.is_empty() {
            while self.queues.contains_key(&format!(
                "{}-{}",
                spec.scheduler.as_str(),
                self.next_name
            )) {
                self.next_name += 1;
            }
            spec.name = format!("{}-{}", spec.scheduler.as_str(), self.next_name);
        }
        if self.queues.contains_key(&spec.name) {
            return Err(AllocError::Exists(spec.name));
        }
        let queue = Queue {
            spec,
            state: AllocQueueState::Active,
            error: None,
            failures: 0,
            retry_at: None,
            submitting: None,
            allocs: Vec::new(),
        };
        let info = queue.info(now);
        info!(queue = %info.spec.name, max_workers = info.spec.max_workers, "allocation queue added");
        self.queues.insert(info.spec.name.clone(), queue);
        Ok(info)
    }

    /// Stops a queue submitting. Allocations still waiting at the scheduler are cancelled (they
    /// would start workers for nothing); running ones drain, or are cancelled too if `now_too`.
    /// The queue goes once none of its allocations is alive.
    pub fn remove(
        &mut self,
        name: &str,
        now_too: bool,
        now: Instant,
    ) -> Result<(AllocQueueInfo, Vec<Effect>), AllocError> {
        let q = self.queues.get_mut(name).ok_or_else(|| AllocError::NoSuchQueue(name.into()))?;
        q.state = AllocQueueState::Removing;
        let mut effects = Vec::new();
        for a in q.allocs.iter_mut().filter(|a| !a.state.is_final() && !a.cancelled) {
            if a.state == AllocationState::Queued || now_too {
                a.cancelled = true;
                effects.push(Effect::Cancel { id: a.id.clone() });
            }
        }
        info!(queue = name, cancel_running = now_too, "allocation queue removed");
        let info = q.info(now);
        self.drop_finished_queues();
        Ok((info, effects))
    }

    /// Every queue, by name.
    pub fn list(&self, now: Instant) -> Vec<AllocQueueInfo> {
        self.queues.values().map(|q| q.info(now)).collect()
    }

    /// The ids of every live allocation (to cancel them all at shutdown).
    pub fn live_ids(&self) -> Vec<String> {
        self.queues.values().flat_map(|q| q.live().map(|a| a.id.clone())).collect()
    }

    /// Brings in which workers are connected, then submits where shards wait that connected
    /// and pending workers cannot absorb, and polls live allocations when due.
    pub fn tick(&mut self, now: Instant, demand: &Demand) -> Vec<Effect> {
        self.map_workers(demand);
        self.drop_finished_queues();
        let mut effects = Vec::new();
        let pending: u64 = self.queues.values().map(Queue::pending_slots).sum();
        let mut need =
            demand.queued_shards.saturating_sub(demand.free_slots).saturating_sub(pending);
        let max_queued = self.config.max_queued;
        for (name, q) in &mut self.queues {
            if need == 0 || !q.may_submit(max_queued, now) {
                continue;
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            q.submitting = Some(seq);
            need = need.saturating_sub(q.k() * q.t());
            effects.push(Effect::Submit { queue: name.clone(), seq, spec: q.spec.clone() });
        }
        if demand.queued_shards == 0 {
            effects.extend(self.cancel_waiting());
        }
        let due = self.last_poll.is_none_or(|at| now >= at + self.config.poll_every);
        let ids = self.live_ids();
        if !self.polling && due && !ids.is_empty() {
            self.polling = true;
            self.last_poll = Some(now);
            effects.push(Effect::Poll { ids });
        }
        effects
    }

    /// No shard waits: allocations still waiting at the scheduler would only start workers
    /// that idle out, so they are cancelled (their end is then no failure).
    fn cancel_waiting(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        for (name, q) in &mut self.queues {
            let waiting = q.allocs.iter_mut().filter(|a| a.state == AllocationState::Queued);
            for a in waiting.filter(|a| !a.cancelled && a.seen.is_empty()) {
                info!(queue = %name, allocation = %a.id, "no shard waits: cancelling a queued allocation");
                a.cancelled = true;
                effects.push(Effect::Cancel { id: a.id.clone() });
            }
        }
        effects
    }

    /// Maps connected workers to their allocations; one that has workers has started.
    fn map_workers(&mut self, demand: &Demand) {
        for q in self.queues.values_mut() {
            for a in q.allocs.iter_mut() {
                a.workers.clear();
            }
        }
        for (alloc, worker) in &demand.allocated {
            let Some(a) = self.queues.values_mut().find_map(|q| q.find(alloc)) else { continue };
            a.workers.insert(*worker);
            a.seen.insert(*worker);
            if a.state == AllocationState::Queued {
                a.state = AllocationState::Running;
            }
        }
    }

    /// The outcome of [`Effect::Submit`] number `seq`: the scheduler's job id, or its error.
    /// Returns a cancel if the queue was removed meanwhile.
    pub fn submitted(
        &mut self,
        queue: &str,
        seq: u64,
        result: Result<String, String>,
        now: Instant,
    ) -> Vec<Effect> {
        let q = self.queues.get_mut(queue).filter(|q| q.submitting == Some(seq));
        let Some(q) = q else {
            return result.map(|id| vec![Effect::Cancel { id }]).unwrap_or_default();
        };
        q.submitting = None;
        let mut effects = Vec::new();
        match result {
            Ok(id) => {
                info!(queue, allocation = %id, "allocation submitted");
                if q.state == AllocQueueState::Removing {
                    effects.push(Effect::Cancel { id: id.clone() });
                }
                q.failures = 0;
                q.retry_at = None;
                q.error = None;
                q.allocs.push(Alloc {
                    id,
                    state: AllocationState::Queued,
                    submitted: now,
                    workers: BTreeSet::new(),
                    seen: BTreeSet::new(),
                    detail: String::new(),
                    cancelled: false,
                });
            }
            Err(error) => self.failed(queue, error, now),
        }
        effects
    }

    /// Counts a failure against a queue: it waits out a backoff, and pauses after
    /// `pause_after` in a row, keeping the scheduler's message.
    fn failed(&mut self, queue: &str, error: String, now: Instant) {
        let Some(q) = self.queues.get_mut(queue) else { return };
        q.failures += 1;
        let shift = q.failures.saturating_sub(1).min(16);
        let wait = self.config.backoff_base.saturating_mul(1 << shift).min(self.config.backoff_cap);
        q.retry_at = Some(now + wait);
        if q.failures >= self.config.pause_after && q.state == AllocQueueState::Active {
            q.state = AllocQueueState::Paused;
            warn!(queue, failures = q.failures, %error, "allocation queue paused");
        } else {
            warn!(queue, failures = q.failures, retry_ms = wait.as_millis() as u64, %error, "allocation failed");
        }
        q.error = Some(error);
    }

    /// The outcome of [`Effect::Poll`]: where the scheduler says each allocation is. An
    /// allocation that ended before any of its workers connected failed (and counts against
    /// its queue like a refused submission).
    pub fn polled(&mut self, states: Vec<(String, SchedState)>, now: Instant) {
        self.polling = false;
        let mut failures = Vec::new();
        for (id, state) in states {
            let Some((name, q)) = self.queues.iter_mut().find(|(_, q)| q.find_ref(&id)) else {
                continue;
            };
            let Some(a) = q.find(&id) else { continue };
            match state {
                SchedState::Queued => {}
                SchedState::Running if a.state == AllocationState::Queued => {
                    info!(queue = %name, allocation = %id, "allocation started");
                    a.state = AllocationState::Running;
                }
                SchedState::Running => {}
                SchedState::Ended { detail } if a.seen.is_empty() && !a.cancelled => {
                    a.state = AllocationState::Failed;
                    a.detail = format!("ended ({detail}) before any of its workers connected");
                    failures.push((name.clone(), format!("allocation {id}: {}", a.detail)));
                }
                SchedState::Ended { detail } => {
                    info!(queue = %name, allocation = %id, %detail, "allocation ended");
                    a.state = AllocationState::Ended;
                    a.detail = detail;
                }
            }
        }
        for (queue, error) in failures {
            self.failed(&queue, error, now);
        }
        let keep = self.config.keep_ended;
        for q in self.queues.values_mut() {
            let ended = q.allocs.iter().filter(|a| a.state.is_final()).count();
            let mut drop = ended.saturating_sub(keep);
            q.allocs.retain(|a| {
                let gone = drop > 0 && a.state.is_final();
                drop -= usize::from(gone);
                !gone
            });
        }
        self.drop_finished_queues();
    }

    /// A poll failed (the scheduler's tools timed out or erred): the next tick tries again.
    pub fn poll_failed(&mut self, error: &str) {
        self.polling = false;
        warn!(%error, "polling the scheduler failed");
    }

    /// Drops removed queues with nothing alive.
    fn drop_finished_queues(&mut self) {
        self.queues.retain(|name, q| {
            let done = q.state == AllocQueueState::Removing
                && q.submitting.is_none()
                && q.live().next().is_none();
            if done {
                info!(queue = %name, "allocation queue gone");
            }
            !done
        });
    }
}
