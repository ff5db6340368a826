//! The scheduler core: a synchronous state machine with no I/O, no clock and no runtime inside.
//!
//! Events come in as method calls (`submit`, `worker_joined`, `results`, `worker_left`,
//! `cancel`, `tick`), each with `now` as an argument; side effects go out through the
//! [`Outbox`] trait. One task in the master owns the core; tests drive it directly with a
//! recording outbox and simulated workers.

mod job;
#[cfg(test)]
mod tests;
mod types;

use job::Job;
pub use job::JobState;
pub use types::*;

use farm_proto::JobSpec;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// Completions are counted over spans at least this long before they update a worker's rate,
/// so two batches arriving back to back do not look like a very fast worker.
const RATE_SPAN: Duration = Duration::from_millis(20);

/// A job's id, unique for the master's lifetime.
pub type JobId = u64;
/// A worker session's id; a worker that reconnects gets a new one.
pub type WorkerId = u64;

#[derive(Debug)]
struct Worker {
    spec: WorkerSpec,
    kinds: HashSet<String>,
    /// Shards it holds, (job, shard), with the order they were assigned in. A worker runs its
    /// shards first come first served on T threads, so the T oldest it holds are the running ones.
    holding: HashMap<(JobId, u64), u64>,
    next_seq: u64,
    /// Held shards it reported as started: the ones to blame if it dies.
    running: HashSet<(JobId, u64)>,
    last_seen: Instant,
    joined: Instant,
    done: u64,
    /// Takes no new shards.
    draining: bool,
    /// Per job: how fast it completes that job's shards, which sizes its window for the job.
    rates: HashMap<JobId, Rate>,
}

/// Shards of one job a worker completes per second: a moving average over spans of at least
/// `RATE_SPAN`, so two batches arriving back to back do not look like a very fast worker.
#[derive(Debug, Default)]
struct Rate {
    per_sec: f64,
    /// The span being counted: when it started and the outcomes seen since.
    span: Option<(Instant, usize)>,
}

impl Rate {
    /// Counts `n` outcomes that arrived at `now`.
    fn observe(&mut self, n: usize, now: Instant) {
        let Some((start, count)) = self.span else {
            self.span = Some((now, n));
            return;
        };
        let count = count + n;
        let elapsed = now.saturating_duration_since(start);
        if elapsed < RATE_SPAN {
            self.span = Some((start, count));
            return;
        }
        let sample = count as f64 / elapsed.as_secs_f64();
        self.per_sec = if self.per_sec == 0.0 { sample } else { 0.7 * self.per_sec + 0.3 * sample };
        self.span = Some((now, 0));
    }
}

impl Worker {
    /// Shards it may hold while taking shards of `job`: its threads plus prefetch, or more if
    /// it completes that job's shards so fast that a bigger window is needed to keep
    /// `queue_target` of work queued on it. Measured per job, so a fast job's window does not
    /// carry over to a slow one.
    fn capacity(&self, job: JobId, config: &CoreConfig) -> usize {
        let fixed = self.spec.threads as usize * (1 + config.prefetch_per_thread as usize);
        let rate = self.rates.get(&job).map_or(0.0, |r| r.per_sec);
        let adaptive = (rate * config.queue_target.as_secs_f64()) as usize;
        fixed.max(adaptive.min(config.max_window))
    }

    /// The shards it holds, oldest assignment first.
    fn held_in_order(&self) -> Vec<(JobId, u64)> {
        let mut held: Vec<_> = self.holding.iter().map(|(k, seq)| (*seq, *k)).collect();
        held.sort_unstable();
        held.into_iter().map(|(_, k)| k).collect()
    }

    /// The shards it was running, to blame if it died: the ones it reported started; if it
    /// reported none, the oldest `threads` it held (it runs them first come first served).
    fn suspects(&self) -> HashSet<(JobId, u64)> {
        // A draining worker leaves on purpose; only what it said it was running can be to blame
        // (shards assigned while its drain notice was on the way never started).
        if !self.running.is_empty() || self.draining {
            return self.running.clone();
        }
        self.held_in_order().into_iter().take(self.spec.threads as usize).collect()
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
    /// Jobs not yet ended.
    active: usize,
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
            active: 0,
            workers: BTreeMap::new(),
            next_job: 1,
            next_worker: 1,
        }
    }

    /// Queues a job and hands its shards to workers with free slots.
    pub fn submit(
        &mut self,
        spec: JobSpec,
        now: Instant,
        out: &mut impl Outbox,
    ) -> Result<JobId, CoreError> {
        let shards = spec.source.shard_count();
        if self.active >= self.config.max_active_jobs {
            return Err(CoreError::TooManyJobs {
                active: self.active,
                limit: self.config.max_active_jobs,
            });
        }
        if shards > self.config.max_shards_per_job {
            return Err(CoreError::TooManyShards { shards, limit: self.config.max_shards_per_job });
        }
        let id = self.next_job;
        self.next_job += 1;
        let job = Job::new(id, spec, now);
        self.active += 1;
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
        let worker = Worker {
            spec,
            kinds,
            holding: HashMap::new(),
            next_seq: 0,
            running: HashSet::new(),
            rates: HashMap::new(),
            last_seen: now,
            joined: now,
            done: 0,
            draining: false,
        };
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
    /// elsewhere. The ones it was running count a crash against themselves; a shard that has
    /// now been running on `max_crashes` workers that died fails its job.
    pub fn worker_left(
        &mut self,
        worker: WorkerId,
        reason: &str,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let Some(w) = self.workers.remove(&worker) else { return };
        let suspects = w.suspects();
        for (job_id, shard) in w.held_in_order() {
            let Some(job) = self.jobs.get_mut(&job_id) else { continue };
            job.running.remove(&shard);
            // A job that ended while we went through this worker's shards (one of them failed
            // it just above) must not get shards back.
            if job.state.is_final() {
                continue;
            }
            if suspects.contains(&(job_id, shard)) {
                let crashes = job.crashes.entry(shard).or_insert(0);
                *crashes += 1;
                if *crashes >= job.spec.limits.max_crashes {
                    let (lo, hi, _) = job.spec.source.shard(shard);
                    let msg = format!(
                        "shard {shard} (indices {lo}..{hi}) was running on {crashes} workers that \
                         were lost; the last, worker {worker}: {reason}"
                    );
                    self.end_job(job_id, JobState::Failed, Some(msg), now, out);
                    continue;
                }
            }
            job.requeue(shard);
            self.pending.insert((Reverse(job.spec.priority), job_id));
        }
        for job in self.jobs.values_mut() {
            job.known_by.remove(&worker);
        }
        self.dispatch_all(out);
    }

    /// A worker reports shards it started running (held ones only count).
    pub fn shards_started(
        &mut self,
        worker: WorkerId,
        started: impl IntoIterator<Item = (JobId, u64)>,
    ) {
        let Some(w) = self.workers.get_mut(&worker) else { return };
        for key in started {
            if w.holding.contains_key(&key) {
                w.running.insert(key);
            }
        }
    }

    /// A worker asked to drain (or was asked to): it gets no more shards.
    pub fn drain(
        &mut self,
        worker: WorkerId,
        tell_worker: bool,
        now: Instant,
        out: &mut impl Outbox,
    ) -> Result<WorkerView, CoreError> {
        let w = self.workers.get_mut(&worker).ok_or(CoreError::NoSuchWorker(worker))?;
        w.draining = true;
        if tell_worker {
            out.drain_worker(worker);
        }
        self.workers(now)
            .into_iter()
            .find(|v| v.id == worker)
            .ok_or(CoreError::NoSuchWorker(worker))
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
        let outcomes: Vec<_> = outcomes.into_iter().collect();
        let w = self.workers.get_mut(&worker).ok_or(CoreError::NoSuchWorker(worker))?;
        w.last_seen = now;
        let mut per_job: HashMap<JobId, usize> = HashMap::new();
        for (job, _, _) in &outcomes {
            *per_job.entry(*job).or_default() += 1;
        }
        for (job, n) in per_job {
            if self.jobs.get(&job).is_some_and(|j| !j.state.is_final()) {
                w.rates.entry(job).or_default().observe(n, now);
            }
        }
        let mut dropped = 0;
        let mut requeued = false;
        let mut touched = BTreeSet::new();
        for (job_id, shard, outcome) in outcomes {
            let held = self.workers.get_mut(&worker).is_some_and(|w| {
                w.running.remove(&(job_id, shard));
                w.holding.remove(&(job_id, shard)).is_some()
            });
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
                    let failures = job.failures.entry(shard).or_insert(0);
                    *failures += 1;
                    if *failures > job.spec.limits.retries {
                        let (lo, hi, _) = job.spec.source.shard(shard);
                        let runs = if *failures > 1 {
                            format!(" (run {failures})")
                        } else {
                            String::new()
                        };
                        let msg = format!(
                            "shard {shard} (indices {lo}..{hi}) failed on worker {worker}{runs}: {error}"
                        );
                        self.end_job(job_id, JobState::Failed, Some(msg), now, out);
                    } else {
                        job.requeue(shard);
                        requeued = true;
                        self.pending.insert((Reverse(job.spec.priority), job_id));
                    }
                }
                // Not a result: the worker handed the shard back unfinished; it runs again.
                ShardOutcome::Cancelled => {
                    job.requeue(shard);
                    requeued = true;
                    self.pending.insert((Reverse(job.spec.priority), job_id));
                }
            }
        }
        for job_id in touched {
            if let Some(job) = self.jobs.get(&job_id).filter(|j| !j.state.is_final()) {
                out.job_changed(&view(job, now));
            }
        }
        if requeued {
            // Handed-back or retried shards may go to any worker with room, not only this one
            // (which may be draining).
            self.dispatch_all(out);
        } else {
            self.dispatch(worker, out);
        }
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
        self.workers
            .iter()
            .map(|(id, w)| WorkerView {
                id: *id,
                spec: w.spec.clone(),
                running: w.holding.len() as u64,
                done: w.done,
                connected_secs: now.saturating_duration_since(w.joined).as_secs(),
                draining: w.draining,
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
        let Some(job) = self.jobs.get_mut(&job_id).filter(|j| !j.state.is_final()) else { return };
        self.pending.remove(&(Reverse(job.spec.priority), job_id));
        self.active -= 1;
        for w in self.workers.values_mut() {
            w.rates.remove(&job_id);
        }
        job.state = state;
        job.error = error;
        job.finished = Some(now);
        job.requeued.clear();
        job.next = job.total;
        if state == JobState::Succeeded {
            job.result_json = Some(std::mem::take(&mut job.acc).finish());
        }
        job.acc = Default::default();
        job.crashes = Default::default();
        job.failures = Default::default();
        let running = std::mem::take(&mut job.running);
        let mut cancel_on = HashSet::new();
        for (shard, worker) in running {
            if let Some(w) = self.workers.get_mut(&worker) {
                w.holding.remove(&(job_id, shard));
                w.running.remove(&(job_id, shard));
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
        if w.draining || self.pending.is_empty() {
            return;
        }
        let mut defs = Vec::new();
        let mut tasks = Vec::new();
        let mut emptied = Vec::new();
        for &(prio, job_id) in &self.pending {
            let mut free = w.capacity(job_id, &self.config).saturating_sub(w.holding.len());
            if free == 0 {
                continue;
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
                    shard_timeout_ms: job.spec.limits.shard_timeout_ms,
                });
            }
            while free > 0 {
                let Some(shard) = job.take_shard() else { break };
                let (lo, hi, input) = job.spec.source.shard(shard);
                tasks.push(TaskOut { job: job_id, shard, lo, hi, input: input.map(str::to_owned) });
                job.running.insert(shard, worker);
                w.holding.insert((job_id, shard), w.next_seq);
                w.next_seq += 1;
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
        reruns: job.reruns,
    }
}

/// Used by the property tests to check the shard map without reaching into private fields.
#[cfg(test)]
impl Core {
    pub(crate) fn holding_total(&self) -> usize {
        self.workers.values().map(|w| w.holding.len()).sum()
    }
}
