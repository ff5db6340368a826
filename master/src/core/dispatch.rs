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

use super::window::{window, Sizing};
use super::{Core, JobDef, JobId, JobState, Outbox, ShardTask, WorkerId};
use farm_proto::labels::satisfies;
use std::collections::BTreeSet;
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
        for &(prio, job_id) in &self.pending {
            let Some(job) = self.jobs.get_mut(&job_id) else { continue };
            if !w.kinds.contains(&job.spec.kind) || !satisfies(&w.spec.labels, &job.spec.requires) {
                continue;
            }
            let sizing = Sizing {
                threads: w.spec.threads,
                done: w.done,
                cost: job.cost.per_shard(),
                pending: job.pending(),
                cluster_threads: self.cluster_threads,
            };
            let held = w.held_at_or_above(job.spec.priority);
            let mut free = window(sizing, &self.config).saturating_sub(held);
            if free == 0 {
                continue;
            }
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
                w.assign(job_id, job.spec.priority, shard, now);
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
            self.pending.remove(&key);
        }
        if !tasks.is_empty() || !defs.is_empty() {
            out.assign(worker, defs, tasks);
        }
    }

    /// Puts a job with shards waiting back in the dispatch order.
    pub(super) fn mark_pending(&mut self, job: JobId, priority: i32) {
        self.pending.insert((std::cmp::Reverse(priority), job));
        self.dirty.all();
    }
}
