//! Dispatch: handing pending shards to workers with free slots. Events only mark which workers
//! may have room ([`Dirty`]); [`Core::dispatch`] runs once per batch of events and fills them,
//! so a burst of results costs one pass over the pending jobs, not one per event.
//!
//! **The priority policy.** Jobs are served highest priority first, then in submission
//! order, and a job's window (`window.rs`) counts only the shards the worker holds of jobs at
//! its priority or above. Lower-priority work queued on a worker thus never keeps a
//! higher-priority job out: the job gets its full window at once, beside what is queued, and
//! the worker starts its shards first (they carry the job's priority in `JobDef`), on the next
//! thread that frees. A lower-priority job, in turn, counts everything the worker holds and
//! gets only what is left. Queued shards a higher priority overtook count their hold deadline
//! from the last time they were overtaken (`worker.rs`): they waited, they did not hang.
//!
//! **The fair share policy.** Within a priority where pending jobs belong to more than one
//! principal (`fair.rs`), the worker's room at that priority is shared between those
//! principals in proportion to their weights, shard by shard: the room is the largest window
//! of their jobs there, and a principal's share of it counts only its own shards the worker
//! holds at that priority (plus everything above). So a principal who queued 10,000 shards
//! first holds its share and no more, and one who submits 10 later gets the rest at once: its
//! shards start behind at most the first one's queued shards on each worker (`queue_target`
//! of work per thread), not behind its whole job. Priorities keep their meaning inside a
//! principal and between principals; a priority with one principal is served as before.
//! A principal's `shards_in_flight` quota caps, in the same place, what it may hold in all.

use super::fair::share;
use super::job::Job;
use super::owner::Accounts;
use super::window::{window, Sizing};
use super::worker::Worker;
use super::{Core, CoreConfig, JobDef, JobId, JobState, Outbox, ShardTask, WorkerId};
use farm_proto::labels::satisfies;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Workers that may have room for shards since the last dispatch.
#[derive(Debug, Default)]
pub(crate) struct Dirty {
    /// Every worker: shards became pending (a submit, a re-queue) or many slots freed.
    all: bool,
    /// Just these workers: they completed shards or joined.
    workers: BTreeSet<WorkerId>,
}

impl Dirty {
    /// Marks every worker.
    pub fn all(&mut self) {
        self.all = true;
    }

    /// Marks one worker.
    pub fn worker(&mut self, worker: WorkerId) {
        if !self.all {
            self.workers.insert(worker);
        }
    }
}

impl Core {
    /// Fills every worker marked since the last call up to its window, from the pending jobs
    /// in priority order. Call it once after a batch of events: they only mark what needs it.
    /// `now` starts the hold of each shard handed out.
    pub fn dispatch(&mut self, now: Instant, out: &mut impl Outbox) {
        let dirty = std::mem::take(&mut self.dirty);
        if !self.pending.is_empty() {
            self.fill_dirty(dirty, now, out);
        }
        self.note_verify_blocked(now, out);
    }

    /// Fills the workers `dirty` marks.
    fn fill_dirty(&mut self, dirty: Dirty, now: Instant, out: &mut impl Outbox) {
        if dirty.all {
            let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
            ids.into_iter().for_each(|id| self.fill(id, now, out));
        } else {
            dirty.workers.into_iter().for_each(|id| self.fill(id, now, out));
        }
    }

    /// Fills one worker up to its window, from the jobs of kinds it offers whose required
    /// labels it holds; at most one `assign` for it. `--verify` copies go first (only those whose first run was elsewhere), then re-queued shards, then new ones.
    fn fill(&mut self, worker: WorkerId, now: Instant, out: &mut impl Outbox) {
        let Some(w) = self.workers.get_mut(&worker) else { return };
        if w.draining || w.suspect.is_some() {
            return;
        }
        let mut defs = Vec::new();
        let mut tasks = Vec::new();
        let mut emptied = Vec::new();
        // The fair share's room at the priority being served, if it is contended.
        let mut level: Option<(i32, Option<Level>)> = None;
        for &(prio, job_id) in &self.pending {
            let Some(job) = self.jobs.get(&job_id) else { continue };
            if !w.kinds.contains(&job.spec.kind) || !satisfies(&w.spec.labels, &job.spec.requires) {
                continue;
            }
            let priority = job.spec.priority;
            let sized = sizing(w, job, self.cluster_threads);
            let contended = self.config.fair_share && self.contention.contended(priority);
            if contended && level.as_ref().is_none_or(|(p, _)| *p != priority) {
                let room = Level::of(w, priority, &self.pending, &self.jobs, &self.accounts)
                    .map(|room| room.sized(&self.config, self.cluster_threads));
                level = Some((priority, room));
            }
            // Contended on this worker: more than one principal here can take a shard now.
            let shared = match &level {
                Some((p, Some(room))) if contended && *p == priority && room.principals > 1 => {
                    Some(room)
                }
                _ => None,
            };
            let mut free = if let Some(room) = shared {
                let weight = self.accounts.get(job.principal).owner.weight();
                let mine = share(room.capacity, weight, room.weights);
                let above = w.held_above(priority);
                // Its share bounds it, not the tail's: that assumes the job has every thread.
                let win = window(Sizing { pending: u64::MAX, ..sized }, &self.config);
                win.saturating_sub(above)
                    .min(mine)
                    .saturating_sub(w.held_of(priority, job.principal))
            } else {
                window(sized, &self.config).saturating_sub(w.held_at_or_above(priority))
            };
            free = free.min(self.accounts.room(job.principal));
            if free == 0 {
                continue;
            }
            let Some(job) = self.jobs.get_mut(&job_id) else { continue };
            if job.known_by.insert(worker) {
                defs.push(JobDef {
                    job_id,
                    kind: job.spec.kind.clone(),
                    params: job.spec.params.clone(),
                    shard_timeout: job.spec.limits.shard_timeout_ms.map(Duration::from_millis),
                    record_runs: job.spec.limits.record_runs,
                    priority: job.spec.priority,
                });
            }
            let mut verify = self.verifying.get_mut(&job_id);
            while free > 0 {
                let copy = verify.as_mut().and_then(|v| v.take_for(worker));
                let Some(shard) = copy.or_else(|| job.take_shard()) else { break };
                let (lo, hi, input) = job.shard(shard);
                tasks.push(ShardTask { job_id, shard, lo, hi, input: input.map(str::to_owned) });
                job.assigned.insert(shard, worker);
                w.assign(job_id, (job.spec.priority, job.principal), shard, now);
                self.accounts.get_mut(job.principal).in_flight += 1;
                free -= 1;
            }
            if job.state == JobState::Queued {
                job.state = JobState::Running;
            }
            // Copies that only another worker may run keep the job pending.
            if job.pending() == 0 && verify.is_none_or(|v| v.waiting() == 0) {
                emptied.push((prio, job_id));
            }
        }
        for key in emptied {
            if self.pending.remove(&key) {
                let principal = self.jobs.get(&key.1).map_or(0, |j| j.principal);
                self.contention.remove(key.0 .0, principal);
            }
        }
        if !tasks.is_empty() || !defs.is_empty() {
            out.assign(worker, defs, tasks);
        }
    }

    /// Puts a job with shards waiting back in the dispatch order.
    pub(super) fn mark_pending(&mut self, job: JobId, priority: i32) {
        if self.pending.insert((Reverse(priority), job)) {
            let principal = self.jobs.get(&job).map_or(0, |j| j.principal);
            self.contention.add(priority, principal);
        }
        self.dirty.all();
    }
}

/// What a job's window on a worker is computed from.
fn sizing(w: &Worker, job: &Job, cluster_threads: u64) -> Sizing {
    Sizing {
        threads: w.spec.threads,
        done: w.done,
        cost: job.cost.per_shard(),
        pending: job.pending(),
        cluster_threads,
    }
}

/// A worker's room at a contended priority, to share between the principals with shards
/// waiting there for it.
#[derive(Debug, Clone, Copy)]
struct Level {
    /// The largest window of their jobs on this worker: what one principal alone could hold.
    capacity: usize,
    /// The sum of their weights.
    weights: u64,
    /// How many principals share it.
    principals: usize,
}

/// The jobs at a contended priority that a worker offers the kind of.
struct Contenders<'a> {
    w: &'a Worker,
    jobs: Vec<&'a Job>,
    weights: u64,
    principals: usize,
}

impl Level {
    /// The pending jobs at `priority` that `w` may run (kind and labels) of principals that may
    /// take a shard now (below their `shards_in_flight` quota), and their principals' weights;
    /// `None` if there are none. A principal at its quota reserves no share it cannot use.
    fn of<'a>(
        w: &'a Worker,
        priority: i32,
        pending: &BTreeSet<(Reverse<i32>, JobId)>,
        jobs: &'a BTreeMap<JobId, Job>,
        accounts: &Accounts,
    ) -> Option<Contenders<'a>> {
        let mut seen = Vec::new();
        let mut weights = 0;
        let at = (Reverse(priority), 0)..=(Reverse(priority), JobId::MAX);
        let offered: Vec<&Job> = pending
            .range(at)
            .filter_map(|(_, id)| jobs.get(id))
            .filter(|job| {
                w.kinds.contains(&job.spec.kind)
                    && satisfies(&w.spec.labels, &job.spec.requires)
                    && accounts.room(job.principal) > 0
            })
            .collect();
        for job in &offered {
            if !seen.contains(&job.principal) {
                seen.push(job.principal);
                weights += u64::from(accounts.get(job.principal).owner.weight());
            }
        }
        let principals = seen.len();
        (!offered.is_empty()).then_some(Contenders { w, jobs: offered, weights, principals })
    }
}

impl Contenders<'_> {
    /// The room they share: the largest of their windows.
    fn sized(self, config: &CoreConfig, cluster_threads: u64) -> Level {
        let windows = self.jobs.iter().map(|job| {
            let sized = sizing(self.w, job, cluster_threads);
            window(Sizing { pending: u64::MAX, ..sized }, config)
        });
        Level {
            capacity: windows.max().unwrap_or(0),
            weights: self.weights,
            principals: self.principals,
        }
    }
}
