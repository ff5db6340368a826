//! A worker session as the core tracks it: what it holds and since when, what it said it
//! started, and whether it is suspect. How many shards it may hold is `window.rs`.

use super::owner::PrincipalId;
use super::{JobId, WorkerId, WorkerSpec, WorkerView};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// One connected worker session.
#[derive(Debug)]
pub(crate) struct Worker {
    /// What it stated when it joined: its threads size its window.
    pub spec: WorkerSpec,
    /// The kernels it offers, for fast lookup during dispatch.
    pub kinds: HashSet<String>,
    /// Shards assigned to it, (job, shard), with the order they were assigned in. A worker runs
    /// its shards highest priority first, then first come first served, on T threads.
    pub assigned: HashMap<(JobId, u64), Hold>,
    /// How many of `assigned` each job priority holds: a job's window counts only the shards
    /// at its priority or above (`dispatch.rs`).
    pub held_by_priority: BTreeMap<i32, usize>,
    /// How many of `assigned` each (priority, principal) holds, for fair share: a short list,
    /// as a worker holds shards of few principals at once.
    pub held_by_principal: Vec<(i32, PrincipalId, usize)>,
    /// Per priority it holds shards of, when shards of a higher priority last went to it:
    /// those overtook its queued shards, whose hold deadlines count from then.
    pub overtaken: BTreeMap<i32, Instant>,
    /// Per job, its holds in assignment order (so oldest, i.e. earliest deadline, first), as
    /// (seq, shard): the tick finds expired holds at the fronts without scanning every shard.
    /// Entries of released shards are dropped lazily (at the front, or by a compaction).
    pub holds: HashMap<JobId, VecDeque<(u64, u64)>>,
    /// The sequence number of its next assignment, to order `assigned`.
    pub next_seq: u64,
    /// Assigned shards it reported as started: the ones to blame if it dies.
    pub started: HashSet<(JobId, u64)>,
    /// When it was last heard from, to declare it lost after the heartbeat timeout.
    pub last_seen: Instant,
    /// When it joined, for display.
    pub joined: Instant,
    /// Shards it completed (accepted), for display.
    pub done: u64,
    /// Takes no new shards.
    pub draining: bool,
    /// Why it takes no new shards: it held a shard past its deadline (hoarding, or hung).
    pub suspect: Option<String>,
}

/// One shard a worker holds: when, and in which order, it got it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hold {
    /// Its place in the worker's assignments, to order them.
    pub seq: u64,
    /// When it was assigned, to reclaim it after the hold limit.
    pub since: Instant,
    /// Its job's priority, to count it in `held_by_priority`.
    pub priority: i32,
    /// Its job's principal, to count it in `held_by_principal`.
    pub principal: PrincipalId,
}

impl Worker {
    /// A worker that just joined, holding nothing.
    pub fn new(spec: WorkerSpec, now: Instant) -> Self {
        let kinds = spec.kinds.iter().cloned().collect();
        Worker {
            spec,
            kinds,
            assigned: HashMap::new(),
            held_by_priority: BTreeMap::new(),
            held_by_principal: Vec::new(),
            overtaken: BTreeMap::new(),
            holds: HashMap::new(),
            next_seq: 0,
            started: HashSet::new(),
            last_seen: now,
            joined: now,
            done: 0,
            draining: false,
            suspect: None,
        }
    }

    /// Shards it holds of jobs at `priority` or above: what a job of that priority finds in
    /// its window.
    pub fn held_at_or_above(&self, priority: i32) -> usize {
        self.held_by_priority.range(priority..).map(|(_, n)| n).sum()
    }

    /// Shards it holds of jobs above `priority`.
    pub fn held_above(&self, priority: i32) -> usize {
        use std::ops::Bound::{Excluded, Unbounded};
        self.held_by_priority.range((Excluded(priority), Unbounded)).map(|(_, n)| n).sum()
    }

    /// Shards it holds of `principal`'s jobs at `priority`.
    pub fn held_of(&self, priority: i32, principal: PrincipalId) -> usize {
        let mut held = self.held_by_principal.iter();
        held.find(|(p, who, _)| (*p, *who) == (priority, principal)).map_or(0, |h| h.2)
    }

    /// Records that it now holds `shard` of `job` (of `priority`, `principal`'s), since `now`.
    /// Its queued shards of lower priorities wait behind it: their holds count from now.
    pub fn assign(
        &mut self,
        job: JobId,
        (priority, principal): (i32, PrincipalId),
        shard: u64,
        now: Instant,
    ) {
        let seq = self.next_seq;
        let hold = Hold { seq, since: now, priority, principal };
        if let Some(old) = self.assigned.insert((job, shard), hold) {
            self.uncount(old);
        }
        *self.held_by_priority.entry(priority).or_default() += 1;
        let mut held = self.held_by_principal.iter_mut();
        match held.find(|(p, who, _)| (*p, *who) == (priority, principal)) {
            Some(entry) => entry.2 += 1,
            None => self.held_by_principal.push((priority, principal, 1)),
        }
        for lower in self.held_by_priority.range(..priority).map(|(&p, _)| p) {
            self.overtaken.insert(lower, now);
        }
        self.next_seq += 1;
        let holds = self.holds.entry(job).or_default();
        holds.push_back((seq, shard));
        // Released shards behind a held one stay queued; keep them from piling up.
        if holds.len() > 2 * self.assigned.len() + 64 {
            let assigned = &self.assigned;
            holds.retain(|&(seq, shard)| live(assigned, job, seq, shard));
        }
    }

    /// Ends its hold on a shard; whether it held it.
    pub fn release(&mut self, job: JobId, shard: u64) -> bool {
        self.started.remove(&(job, shard));
        let Some(hold) = self.assigned.remove(&(job, shard)) else { return false };
        self.uncount(hold);
        self.trim(job);
        true
    }

    /// Counts one hold less.
    fn uncount(&mut self, hold: Hold) {
        let (priority, principal) = (hold.priority, hold.principal);
        let held = &mut self.held_by_principal;
        if let Some(i) = held.iter().position(|(p, who, _)| (*p, *who) == (priority, principal)) {
            held[i].2 -= 1;
            if held[i].2 == 0 {
                held.swap_remove(i);
            }
        }
        if let Some(n) = self.held_by_priority.get_mut(&priority) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.held_by_priority.remove(&priority);
                self.overtaken.remove(&priority);
            }
        }
    }

    /// Drops the released holds at the front of a job's queue. Workers mostly answer in the
    /// order they were given shards, so this keeps the queues as short as what they hold.
    fn trim(&mut self, job: JobId) {
        let Some(holds) = self.holds.get_mut(&job) else { return };
        while holds.front().is_some_and(|&(seq, shard)| !live(&self.assigned, job, seq, shard)) {
            holds.pop_front();
        }
        if holds.is_empty() {
            self.holds.remove(&job);
        }
    }

    /// Shards of `job` it has held longer than `limit` at `now`, oldest first. They stay held:
    /// the caller reclaims them.
    pub fn expired(&mut self, job: JobId, limit: Duration, now: Instant) -> Vec<u64> {
        self.trim(job);
        let Some(holds) = self.holds.get(&job) else { return Vec::new() };
        let mut expired = Vec::new();
        for &(seq, shard) in holds {
            match self.assigned.get(&(job, shard)) {
                Some(h) if h.seq == seq => {
                    // A shard overtaken by higher-priority ones waited for them, not hung.
                    let since =
                        self.overtaken.get(&h.priority).map_or(h.since, |&o| o.max(h.since));
                    if now.saturating_duration_since(since) < limit {
                        break;
                    }
                    expired.push(shard);
                }
                _ => {}
            }
        }
        expired
    }

    /// The shards it holds, oldest assignment first.
    pub fn assigned_in_order(&self) -> Vec<(JobId, u64)> {
        let mut held: Vec<_> = self.assigned.iter().map(|(k, h)| (h.seq, *k)).collect();
        held.sort_unstable();
        held.into_iter().map(|(_, k)| k).collect()
    }

    /// The shards it had started, to blame if it died: the ones it reported started; if it
    /// reported none, the oldest `threads` it held (it runs them first come first served
    /// within a priority).
    pub fn suspects(&self) -> HashSet<(JobId, u64)> {
        // A draining worker leaves on purpose; only what it said it started can be to blame
        // (shards assigned while its drain notice was on the way never started).
        if !self.started.is_empty() || self.draining {
            return self.started.clone();
        }
        self.assigned_in_order().into_iter().take(self.spec.threads as usize).collect()
    }
}

/// Whether the hold `seq` of `shard` of `job` is still the current one.
fn live(assigned: &HashMap<(JobId, u64), Hold>, job: JobId, seq: u64, shard: u64) -> bool {
    assigned.get(&(job, shard)).is_some_and(|h| h.seq == seq)
}

/// A worker as the master's handlers and the dashboard see it.
pub(super) fn worker_view(id: WorkerId, w: &Worker, now: Instant) -> WorkerView {
    WorkerView {
        id,
        spec: w.spec.clone(),
        in_flight: w.assigned.len() as u64,
        done: w.done,
        connected_secs: now.saturating_duration_since(w.joined).as_secs(),
        draining: w.draining,
        suspect: w.suspect.clone(),
    }
}
