//! The scheduler core: a synchronous state machine with no I/O, no clock and no runtime inside.
//!
//! Events come in as method calls (`submit`, `worker_joined`, `results`, `worker_left`,
//! `cancel`, `tick`), each with `now` as an argument; side effects go out through the
//! [`Outbox`] trait. One task in the master owns the core; tests drive it directly with a
//! recording outbox and simulated workers.

mod job;
#[cfg(test)]
mod tests;

use job::Job;
pub use job::JobState;

use farm_proto::{JobSpec, Output, Params};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// A job's id, unique for the master's lifetime.
pub type JobId = u64;
/// A worker session's id; a worker that reconnects gets a new one.
pub type WorkerId = u64;

/// Limits and tuning of the core.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Shards handed to a worker beyond its thread count, per thread, to hide the round trip.
    pub prefetch_per_thread: u32,
    /// A job with more shards is refused with ResourceExhausted.
    pub max_shards_per_job: u64,
    /// A worker silent for longer is declared lost.
    pub heartbeat_timeout: Duration,
    /// Finished jobs kept for `Get`/`List`; older ones are forgotten.
    pub keep_finished: usize,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            prefetch_per_thread: 1,
            max_shards_per_job: 100_000_000,
            heartbeat_timeout: Duration::from_secs(3),
            keep_finished: 10_000,
        }
    }
}

/// Why the core refused an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// The job has more shards than the limit.
    #[error("job has {shards} shards, over the limit of {limit}")]
    TooManyShards {
        /// Shards the job would have.
        shards: u64,
        /// The configured limit.
        limit: u64,
    },
    /// No such job (never submitted, or forgotten).
    #[error("no job {0}")]
    NoSuchJob(JobId),
    /// No such worker session.
    #[error("no worker {0}")]
    NoSuchWorker(WorkerId),
    /// The job is over and cannot be changed.
    #[error("job {0} has already ended")]
    JobEnded(JobId),
}

/// The outcome of one shard as a worker reported it.
#[derive(Debug, Clone, PartialEq)]
pub enum ShardOutcome {
    /// The kernel returned an output.
    Done(Output),
    /// The kernel failed or panicked.
    Failed(String),
    /// The worker stopped the shard because of a cancel.
    Cancelled,
}

/// What a worker states when it joins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerSpec {
    /// Shards it runs at once.
    pub threads: u32,
    /// Kernels it can run.
    pub kinds: Vec<String>,
    /// Display name.
    pub name: String,
    /// Host it runs on.
    pub hostname: String,
    /// Its process id on that host.
    pub pid: u32,
    /// The peer address the master sees.
    pub address: String,
}

/// A shard to run, as sent to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOut {
    /// Its job.
    pub job: JobId,
    /// Its index within the job.
    pub shard: u64,
    /// First index.
    pub lo: u64,
    /// One past the last index.
    pub hi: u64,
    /// Its input line, for an input job.
    pub input: Option<String>,
}

/// A job's definition, sent once to each worker that runs its shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDefOut {
    /// The job.
    pub job: JobId,
    /// Its kernel.
    pub kind: String,
    /// Its parameters.
    pub params: Params,
}

/// A job's status as clients see it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView {
    /// The job.
    pub id: JobId,
    /// Its kernel.
    pub kind: String,
    /// Where it is.
    pub state: JobState,
    /// Shards in all.
    pub total: u64,
    /// Shards completed.
    pub done: u64,
    /// Shards in flight.
    pub running: u64,
    /// The reduced result, once succeeded.
    pub result_json: Option<String>,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
    /// Since submission, until it ended.
    pub elapsed_ms: u64,
    /// Its priority.
    pub priority: i32,
}

/// A worker as clients see it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerView {
    /// The session id.
    pub id: WorkerId,
    /// What it stated when it joined.
    pub spec: WorkerSpec,
    /// Shards in flight.
    pub running: u64,
    /// Shards it completed.
    pub done: u64,
    /// Seconds since it joined.
    pub connected_secs: u64,
}

/// Side effects the core asks for. The master's implementation sends messages to worker
/// sessions and watchers; tests record them.
pub trait Outbox {
    /// Send new job definitions (first) and shards to a worker.
    fn assign(&mut self, worker: WorkerId, defs: Vec<JobDefOut>, tasks: Vec<TaskOut>);
    /// Tell a worker to stop every shard of a job and forget it.
    fn cancel_job(&mut self, worker: WorkerId, job: JobId);
    /// Tell a worker that a job is over and its definition can go.
    fn forget_job(&mut self, worker: WorkerId, job: JobId);
    /// A shard's result, accepted exactly once.
    fn shard_output(&mut self, job: JobId, shard: u64, output: &Output);
    /// A job's progress changed, or it ended (then `view.state.is_final()`).
    fn job_changed(&mut self, view: &JobView);
    /// The core declared a worker lost (heartbeat timeout): end its session.
    fn drop_worker(&mut self, worker: WorkerId, reason: &str);
}

#[derive(Debug)]
struct Worker {
    spec: WorkerSpec,
    kinds: HashSet<String>,
    /// Shards it holds: (job, shard).
    holding: HashSet<(JobId, u64)>,
    last_seen: Instant,
    joined: Instant,
    done: u64,
}

impl Worker {
    fn capacity(&self, prefetch_per_thread: u32) -> usize {
        self.spec.threads as usize * (1 + prefetch_per_thread as usize)
    }
}

/// The scheduler state machine.
#[derive(Debug)]
pub struct Core {
    config: CoreConfig,
    jobs: BTreeMap<JobId, Job>,
    /// Jobs with shards waiting, in dispatch order: higher priority first, then older first.
    pending: BTreeSet<(Reverse<i32>, JobId)>,
    /// Ended jobs, oldest first, for retention.
    ended: VecDeque<JobId>,
    workers: BTreeMap<WorkerId, Worker>,
    next_job: JobId,
    next_worker: WorkerId,
}

impl Core {
    /// An empty core.
    pub fn new(config: CoreConfig) -> Self {
        Core {
            config,
            jobs: BTreeMap::new(),
            pending: BTreeSet::new(),
            ended: Default::default(),
            workers: BTreeMap::new(),
            next_job: 1,
            next_worker: 1,
        }
    }

    /// The core's limits.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// Queues a job and hands its shards to workers with free slots.
    pub fn submit(
        &mut self,
        spec: JobSpec,
        now: Instant,
        out: &mut impl Outbox,
    ) -> Result<JobId, CoreError> {
        let shards = spec.source.shard_count();
        if shards > self.config.max_shards_per_job {
            return Err(CoreError::TooManyShards { shards, limit: self.config.max_shards_per_job });
        }
        let id = self.next_job;
        self.next_job += 1;
        let job = Job::new(id, spec, now);
        self.pending.insert((Reverse(job.spec.priority), id));
        self.jobs.insert(id, job);
        self.dispatch_all(out);
        Ok(id)
    }

    /// Registers a worker session and fills it with shards.
    pub fn worker_joined(
        &mut self,
        spec: WorkerSpec,
        now: Instant,
        out: &mut impl Outbox,
    ) -> WorkerId {
        let id = self.next_worker;
        self.next_worker += 1;
        let kinds = spec.kinds.iter().cloned().collect();
        let worker =
            Worker { spec, kinds, holding: HashSet::new(), last_seen: now, joined: now, done: 0 };
        self.workers.insert(id, worker);
        self.dispatch(id, out);
        id
    }

    /// The id the next worker to join will get.
    pub fn next_worker_id(&self) -> WorkerId {
        self.next_worker
    }

    /// Whether some connected worker can run `kind`.
    pub fn kind_offered(&self, kind: &str) -> bool {
        self.workers.values().any(|w| w.kinds.contains(kind))
    }

    /// Notes that a worker is alive.
    pub fn heartbeat(&mut self, worker: WorkerId, now: Instant) {
        if let Some(w) = self.workers.get_mut(&worker) {
            w.last_seen = now;
        }
    }

    /// A worker session ended: its shards go back to the front of their jobs' queues and run
    /// elsewhere.
    pub fn worker_left(&mut self, worker: WorkerId, out: &mut impl Outbox) {
        let Some(w) = self.workers.remove(&worker) else { return };
        let mut held: Vec<(JobId, u64)> = w.holding.into_iter().collect();
        held.sort_unstable();
        for (job_id, shard) in held {
            if let Some(job) = self.jobs.get_mut(&job_id) {
                job.running.remove(&shard);
                job.requeued.push_back(shard);
                self.pending.insert((Reverse(job.spec.priority), job_id));
            }
        }
        for job in self.jobs.values_mut() {
            job.known_by.remove(&worker);
        }
        self.dispatch_all(out);
    }

    /// A batch of shard outcomes from one worker. Outcomes for shards the worker does not hold
    /// (a late reply for a shard already done elsewhere, a cancelled job) are dropped; their count
    /// is returned so the caller can log it.
    pub fn results(
        &mut self,
        worker: WorkerId,
        outcomes: impl IntoIterator<Item = (JobId, u64, ShardOutcome)>,
        now: Instant,
        out: &mut impl Outbox,
    ) -> Result<usize, CoreError> {
        let w = self.workers.get_mut(&worker).ok_or(CoreError::NoSuchWorker(worker))?;
        w.last_seen = now;
        let mut dropped = 0;
        let mut touched = BTreeSet::new();
        for (job_id, shard, outcome) in outcomes {
            let held =
                self.workers.get_mut(&worker).is_some_and(|w| w.holding.remove(&(job_id, shard)));
            let Some(job) = self.jobs.get_mut(&job_id).filter(|_| held) else {
                dropped += 1;
                continue;
            };
            job.running.remove(&shard);
            match outcome {
                ShardOutcome::Done(output) => {
                    if let Some(w) = self.workers.get_mut(&worker) {
                        w.done += 1;
                    }
                    job.done += 1;
                    out.shard_output(job_id, shard, &output);
                    let added = job.acc.add(shard, output);
                    let complete = job.done == job.total;
                    if let Err(e) = added {
                        self.end_job(job_id, JobState::Failed, Some(e), now, out);
                    } else if complete {
                        self.end_job(job_id, JobState::Succeeded, None, now, out);
                    } else {
                        touched.insert(job_id);
                    }
                }
                ShardOutcome::Failed(error) => {
                    let (lo, hi, _) = job.spec.source.shard(shard);
                    let msg = format!(
                        "shard {shard} (indices {lo}..{hi}) failed on worker {worker}: {error}"
                    );
                    self.end_job(job_id, JobState::Failed, Some(msg), now, out);
                }
                // Not a result: the worker handed the shard back unfinished; it runs again.
                ShardOutcome::Cancelled => {
                    job.requeued.push_back(shard);
                    self.pending.insert((Reverse(job.spec.priority), job_id));
                }
            }
        }
        for job_id in touched {
            if let Some(job) = self.jobs.get(&job_id).filter(|j| !j.state.is_final()) {
                out.job_changed(&view(job, now));
            }
        }
        self.dispatch(worker, out);
        Ok(dropped)
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
        self.dispatch_all(out);
        self.status(job, now).ok_or(CoreError::NoSuchJob(job))
    }

    /// Declares lost every worker silent for longer than the heartbeat timeout.
    pub fn tick(&mut self, now: Instant, out: &mut impl Outbox) {
        let timeout = self.config.heartbeat_timeout;
        let lost: Vec<WorkerId> = self
            .workers
            .iter()
            .filter(|(_, w)| now.saturating_duration_since(w.last_seen) > timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            out.drop_worker(id, "heartbeat timeout");
            self.worker_left(id, out);
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
        self.workers
            .iter()
            .map(|(id, w)| WorkerView {
                id: *id,
                spec: w.spec.clone(),
                running: w.holding.len() as u64,
                done: w.done,
                connected_secs: now.saturating_duration_since(w.joined).as_secs(),
            })
            .collect()
    }

    fn end_job(
        &mut self,
        job_id: JobId,
        state: JobState,
        error: Option<String>,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let Some(job) = self.jobs.get_mut(&job_id) else { return };
        self.pending.remove(&(Reverse(job.spec.priority), job_id));
        job.state = state;
        job.error = error;
        job.finished = Some(now);
        job.requeued.clear();
        job.next = job.total;
        if state == JobState::Succeeded {
            job.result_json = Some(std::mem::take(&mut job.acc).finish());
        }
        job.acc = Default::default();
        let running = std::mem::take(&mut job.running);
        let mut cancel_on = HashSet::new();
        for (shard, worker) in running {
            if let Some(w) = self.workers.get_mut(&worker) {
                w.holding.remove(&(job_id, shard));
                cancel_on.insert(worker);
            }
        }
        for worker in std::mem::take(&mut job.known_by) {
            if cancel_on.contains(&worker) {
                out.cancel_job(worker, job_id);
            } else {
                out.forget_job(worker, job_id);
            }
        }
        out.job_changed(&view(job, now));
        self.ended.push_back(job_id);
        while self.ended.len() > self.config.keep_finished {
            if let Some(old) = self.ended.pop_front() {
                self.jobs.remove(&old);
            }
        }
    }

    fn dispatch_all(&mut self, out: &mut impl Outbox) {
        let ids: Vec<WorkerId> = self.workers.keys().copied().collect();
        for id in ids {
            self.dispatch(id, out);
        }
    }

    /// Fills one worker up to its capacity from the pending jobs, in priority order.
    fn dispatch(&mut self, worker: WorkerId, out: &mut impl Outbox) {
        let Some(w) = self.workers.get_mut(&worker) else { return };
        let mut free = w.capacity(self.config.prefetch_per_thread).saturating_sub(w.holding.len());
        if free == 0 || self.pending.is_empty() {
            return;
        }
        let mut defs = Vec::new();
        let mut tasks = Vec::new();
        let mut emptied = Vec::new();
        for &(prio, job_id) in &self.pending {
            if free == 0 {
                break;
            }
            let Some(job) = self.jobs.get_mut(&job_id) else { continue };
            if !w.kinds.contains(&job.spec.kind) {
                continue;
            }
            if job.known_by.insert(worker) {
                defs.push(JobDefOut {
                    job: job_id,
                    kind: job.spec.kind.clone(),
                    params: job.spec.params.clone(),
                });
            }
            while free > 0 {
                let Some(shard) = job.take_shard() else { break };
                let (lo, hi, input) = job.spec.source.shard(shard);
                tasks.push(TaskOut { job: job_id, shard, lo, hi, input: input.map(str::to_owned) });
                job.running.insert(shard, worker);
                w.holding.insert((job_id, shard));
                free -= 1;
            }
            if job.state == JobState::Queued {
                job.state = JobState::Running;
            }
            if job.pending() == 0 {
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
}

fn view(job: &Job, now: Instant) -> JobView {
    JobView {
        id: job.id,
        kind: job.spec.kind.clone(),
        state: job.state,
        total: job.total,
        done: job.done,
        running: job.running.len() as u64,
        result_json: job.result_json.clone(),
        error: job.error.clone(),
        elapsed_ms: job.elapsed_ms(now),
        priority: job.spec.priority,
    }
}

/// Used by the property tests to check the shard map without reaching into private fields.
#[cfg(test)]
impl Core {
    pub(crate) fn holding_total(&self) -> usize {
        self.workers.values().map(|w| w.holding.len()).sum()
    }
}
