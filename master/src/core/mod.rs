//! The scheduler core: a synchronous state machine with no I/O, no clock and no runtime inside.
//!
//! Events come in as method calls (`submit`, `worker_joined`, `results`, `worker_left`,
//! `cancel`, `drain`, `heartbeat`, `tick`), each with `now` as an argument; side effects go out
//! through the [`Outbox`] trait. Events only mark which workers may have room; the owner calls
//! [`Core::dispatch`] once after a batch of events to hand out shards. One task in the master
//! owns the core; tests drive it directly with a recording outbox and simulated workers.
//!
//! The files: `demand.rs` (the allocator's numbers), `worker.rs` (a worker session),
//! `window.rs` (how many shards a worker may hold), `dispatch.rs` (handing out shards),
//! `fair.rs` (fair share between principals within a priority),
//! `results.rs` (accepting outcomes), `limits.rs` (submit validation), `job.rs` (a job, its lazy shards and its accumulator), `memory.rs`
//! (packed inputs and the byte meter), `types.rs` (the vocabulary shared with the master),
//! `overview.rs` (what clients, the dashboard and metrics read), `owner.rs` (a job's
//! principal: its fair-share weight and quotas), `timers.rs` (hold deadlines and retry
//! backoff, run by the tick), `verify.rs` (`--verify`), `restore.rs` and `ranges.rs`
//! (rebuilding the core from the journal at start), `retention.rs` (how long ended jobs are
//! kept), `served.rs` (jobs no connected worker can run), `logs.rs` (per-shard log records),
//! `recording.rs` (the tests' recording outbox), `membership.rs` (workers joining, draining,
//! leaving, and the shards a lost worker held).

mod accumulator;
mod demand;
mod dispatch;
mod fair;
mod job;
mod limits;
mod logs;
mod membership;
mod memory;
#[cfg(test)]
mod memory_tests;
mod overview;
mod owner;
mod ranges;
#[cfg(test)]
pub(crate) mod recording;
#[cfg(test)]
mod requires_tests;
mod restore;
mod results;
mod retention;
mod served;
pub(crate) use served::how_to_offer;
#[cfg(test)]
mod served_tests;
#[cfg(test)]
mod tests;
mod timers;
mod types;
mod verify;
mod window;
mod worker;

use accumulator::ByteLimits;
pub use demand::Demand;
use dispatch::Dirty;
use fair::Contention;
use job::Job;
pub use job::JobState;
use memory::Meter;
pub use memory::{Inputs, Submission, SubmittedJob};
use overview::view;
pub use overview::{state_index, JobDetail, JobRow, Overview, ShardTrouble, WorkerRow};
use owner::Accounts;
pub use owner::{Owner, Quota, ANONYMOUS};
pub use types::*;
use verify::Verify;
use worker::{worker_view, Worker};

/// The tests build jobs from specs, through `use super::*`.
#[cfg(test)]
use farm_proto::JobSpec;
use farm_proto::OutputShape;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Instant;

/// A job's id, unique for the master's lifetime.
pub type JobId = u64;
/// A worker session's id; a worker that reconnects gets a new one.
pub type WorkerId = u64;

/// The scheduler state machine.
#[derive(Debug)]
pub struct Core {
    /// Limits and tuning.
    config: CoreConfig,
    /// Every job not yet forgotten, by id.
    jobs: BTreeMap<JobId, Job>,
    /// Jobs with shards waiting, in dispatch order: higher priority first, then older first.
    pending: BTreeSet<(Reverse<i32>, JobId)>,
    /// Per priority, whose jobs are in `pending`: fair share applies where several are.
    contention: Contention,
    /// Per principal, what it holds against its quotas.
    accounts: Accounts,
    /// Ended jobs, oldest first, for retention.
    ended: VecDeque<JobId>,
    /// Bytes the ended jobs in `ended` keep, for retention by bytes.
    ended_bytes: usize,
    /// Bytes held by jobs not yet ended, for the memory budget.
    meter: Meter,
    /// Jobs not yet ended, for the active-job limit.
    active: usize,
    /// Connected worker sessions, by id.
    workers: BTreeMap<WorkerId, Worker>,
    /// Workers that may have room since the last dispatch.
    dirty: Dirty,
    /// The id of the next job submitted.
    next_job: JobId,
    /// The id of the next worker to join.
    next_worker: WorkerId,
    /// Per job with `--verify`: held outputs and the copies waiting to run elsewhere.
    verifying: HashMap<JobId, Verify>,
    /// Failed shards waiting out their backoff, by the time they may run again.
    backoff: BTreeSet<(Instant, JobId, u64)>,
    /// Per kind, the connected workers that offer it (kinds none offers are absent).
    offered: HashMap<String, usize>,
    /// Jobs not yet ended that no connected worker can run (none offers the kind, or none of
    /// those holds the labels the job requires): they wait (`served.rs`).
    unserved: BTreeSet<JobId>,
    /// Pool threads of every connected worker, for the tail's share (`window.rs`).
    cluster_threads: u64,
    /// Until when, after the master started, workers are still connecting: no job is
    /// reported waiting for one before (`served.rs`). None once it has passed.
    quiet_until: Option<Instant>,
}

impl Core {
    /// An empty core.
    pub fn new(config: CoreConfig) -> Self {
        Core {
            config,
            jobs: BTreeMap::new(),
            pending: BTreeSet::new(),
            contention: Contention::default(),
            accounts: Accounts::default(),
            ended: Default::default(),
            ended_bytes: 0,
            meter: Meter::default(),
            active: 0,
            workers: BTreeMap::new(),
            dirty: Dirty::default(),
            next_job: 1,
            next_worker: 1,
            verifying: HashMap::new(),
            backoff: BTreeSet::new(),
            offered: HashMap::new(),
            cluster_threads: 0,
            unserved: BTreeSet::new(),
            quiet_until: None,
        }
    }

    /// Queues a job whose kernel declares `output` (how its outputs are reduced); the next
    /// dispatch hands its shards to workers with free slots. A `JobSpec` converts into a
    /// [`Submission`] (its inputs packed); the master packs it before, off the core's task.
    /// The journal's `Submit` goes out first (the client's reply waits for its commit).
    pub fn submit(
        &mut self,
        sub: impl Into<Submission>,
        owner: Owner,
        output: OutputShape,
        now: Instant,
        out: &mut impl Outbox,
    ) -> Result<JobId, CoreError> {
        let mut sub = sub.into();
        limits::check_submit(&self.config, self.active, self.meter.get(), &sub)?;
        self.accounts.check_submit(&owner, sub.bytes())?;
        let id = self.next_job;
        if let Some(spec) = sub.take_journal() {
            let owner = owner.name.clone();
            out.journal(JournalOp::Submit { job: id, spec, output, owner });
        }
        self.accounts.id(&owner, true);
        self.insert_job(id, sub, owner, output, now);
        Ok(id)
    }

    /// Queues job `id` (a new one, or one restored from the journal).
    fn insert_job(
        &mut self,
        id: JobId,
        sub: Submission,
        owner: Owner,
        output: OutputShape,
        now: Instant,
    ) {
        self.next_job = self.next_job.max(id + 1);
        let limits = ByteLimits {
            meter: self.meter.clone(),
            budget: self.config.memory_budget,
            max_result: self.config.inline_result_bytes,
        };
        let mut job = Job::new(id, sub, owner, output, limits, now);
        job.principal = self.accounts.id(&job.owner, false);
        let account = self.accounts.get_mut(job.principal);
        account.jobs += 1;
        account.input_bytes += job.spec_bytes as u64;
        self.active += 1;
        let priority = job.spec.priority;
        self.jobs.insert(id, job);
        self.note_if_unserved(id, now);
        self.mark_pending(id, priority);
    }

    /// Cancels a job: its shards stop on every worker, its pending shards are dropped.
    pub fn cancel(
        &mut self,
        job: JobId,
        now: Instant,
        out: &mut impl Outbox,
    ) -> Result<JobView, CoreError> {
        let state = self.jobs.get(&job).ok_or(CoreError::NoSuchJob(job))?.state;
        if state.is_final() {
            return Err(CoreError::JobEnded(job));
        }
        self.end_job(job, JobState::Cancelled, Some("cancelled by a client".into()), now, out);
        self.status(job, now).ok_or(CoreError::NoSuchJob(job))
    }

    /// A worker refused a job (its kernel's `prepare` rejected the params, a check the
    /// descriptors could not express): the job fails once with the worker's reason, instead of
    /// every shard failing on it. Ignored from a worker that never got the job.
    pub fn job_refused(
        &mut self,
        worker: WorkerId,
        job: JobId,
        reason: &str,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let Some(j) = self.jobs.get(&job).filter(|j| j.known_by.contains(&worker)) else { return };
        if j.state.is_final() {
            return;
        }
        let name = self.workers.get(&worker).map_or("", |w| w.spec.name.as_str());
        let error = format!("worker {worker} ({name}) refused the job: {reason}");
        self.end_job(job, JobState::Failed, Some(error), now, out);
    }

    /// Declares lost every worker silent for longer than the heartbeat timeout, reclaims shards
    /// held past their deadline (their workers become suspect), lets failed shards whose
    /// backoff is over run again, and fails jobs that waited for a worker past their
    /// `--no-worker-timeout`.
    pub fn tick(&mut self, now: Instant, out: &mut impl Outbox) {
        self.forget_old(now, out);
        self.end_quiet(now, out);
        self.fail_unserved(now, out);
        self.reclaim_expired(now, out);
        self.end_backoff(now, out);
        let timeout = self.config.heartbeat_timeout;
        let lost: Vec<WorkerId> = self
            .workers
            .iter()
            .filter(|(_, w)| now.saturating_duration_since(w.last_seen) > timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            out.drop_worker(id, "heartbeat timeout");
            self.worker_left(id, "heartbeat timeout", now, out);
        }
    }

    /// One job's status.
    pub fn status(&self, job: JobId, now: Instant) -> Option<JobView> {
        self.jobs.get(&job).map(|j| view(j, now))
    }

    /// Every job's status, oldest first.
    pub fn jobs(&self, now: Instant) -> Vec<JobView> {
        self.jobs.values().map(|j| view(j, now)).collect()
    }

    /// Every connected worker.
    pub fn workers(&self, now: Instant) -> Vec<WorkerView> {
        self.workers.iter().map(|(id, w)| worker_view(*id, w, now)).collect()
    }

    /// Ends a job once: its assigned shards are released (and cancelled on their workers,
    /// which are marked for dispatch), other workers forget it, watchers see the final status.
    fn end_job(
        &mut self,
        job_id: JobId,
        state: JobState,
        error: Option<String>,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let Some(job) = self.jobs.get_mut(&job_id).filter(|j| !j.state.is_final()) else { return };
        if self.pending.remove(&(Reverse(job.spec.priority), job_id)) {
            self.contention.remove(job.spec.priority, job.principal);
        }
        self.unserved.remove(&job_id);
        job.waiting_since = None;
        job.waiting_why = None;
        self.active -= 1;
        let account = self.accounts.get_mut(job.principal);
        account.jobs = account.jobs.saturating_sub(1);
        account.input_bytes = account.input_bytes.saturating_sub(job.spec_bytes as u64);
        account.in_flight = account.in_flight.saturating_sub(job.assigned.len() as u64);
        // Its backoff entries are skipped when they come due.
        self.verifying.remove(&job_id);
        job.end(state, error, now);
        let mut cancel_on = HashSet::new();
        for (shard, worker) in std::mem::take(&mut job.assigned) {
            if let Some(w) = self.workers.get_mut(&worker) {
                w.release(job_id, shard);
                cancel_on.insert(worker);
            }
        }
        for worker in std::mem::take(&mut job.known_by) {
            if cancel_on.contains(&worker) {
                out.cancel_job(worker, job_id);
                self.dirty.worker(worker);
            } else {
                out.forget_job(worker, job_id);
            }
        }
        let view = view(job, now);
        out.job_changed(&view);
        out.journal(JournalOp::End(view));
        self.ended_bytes += job.kept_bytes();
        self.ended.push_back(job_id);
        self.retain_ended(out);
    }
}

/// Used by the property tests to check the shard map without reaching into private fields.
#[cfg(test)]
impl Core {
    pub(crate) fn assigned_total(&self) -> usize {
        self.workers.values().map(|w| w.assigned.len()).sum()
    }
}
