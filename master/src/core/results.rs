//! Shard outcomes from workers: each is accepted only from the worker that holds the shard, so
//! at most one outcome per shard ever counts. Accepted completions feed the job's accumulator,
//! its watchers and the worker's earned window; failures are retried or fail the job.

use super::timers::backoff;
use super::verify::{sampled, Verdict};
use super::{
    view, Core, CoreError, Counted, JobId, JobState, JournalOp, Outbox, ShardOutcome, WorkerId,
};
use farm_proto::session::{JobCost, Results, ShardRun};
use farm_proto::Output;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

/// Most bytes of a worker's error message kept in a job's error.
const MAX_ERROR_BYTES: usize = 1024;

/// What became of one batch, beyond the outcomes themselves.
#[derive(Default)]
struct Batch {
    /// Outcomes for shards the worker did not hold.
    dropped: usize,
    /// Per job: completions accepted, which earn the worker its window, and whose jobs' costs
    /// count.
    completed: BTreeMap<JobId, usize>,
    /// Jobs whose progress changed and that are still going.
    touched: BTreeSet<JobId>,
    /// What the worker says each job's shards cost it.
    costs: Vec<JobCost>,
}

impl Core {
    /// A batch of shard outcomes from one worker. Outcomes for shards the worker does not hold
    /// (a late reply for a shard already done elsewhere, a cancelled job, a duplicate) are
    /// dropped; their count is returned so the caller can log it. [`Core::batch`] without
    /// the rest of a batch, for the tests and the core's benchmark.
    pub fn results(
        &mut self,
        worker: WorkerId,
        outcomes: impl IntoIterator<Item = (JobId, u64, ShardOutcome)>,
        now: Instant,
        out: &mut impl Outbox,
    ) -> Result<usize, CoreError> {
        self.accept(worker, outcomes, Vec::new(), Vec::new(), now, out)
    }

    /// A worker's whole batch ([`Results`]): the shards it started, its outcomes (each dropped unless
    /// the worker holds its shard), how some of them ran (each accepted outcome with a run, and each
    /// accepted failure, keeps a log record, `logs.rs`) and what they cost (which sizes
    /// windows, counted only for jobs with accepted completions in the batch).
    pub fn batch(
        &mut self,
        worker: WorkerId,
        results: Results,
        now: Instant,
        out: &mut impl Outbox,
    ) -> Result<usize, CoreError> {
        let Results { done, started, runs, costs } = results;
        self.shards_started(worker, started);
        self.accept(worker, done, runs, costs, now, out)
    }

    /// Accepts a batch's outcomes; see [`Core::batch`].
    fn accept(
        &mut self,
        worker: WorkerId,
        outcomes: impl IntoIterator<Item = (JobId, u64, ShardOutcome)>,
        runs: Vec<ShardRun>,
        costs: Vec<JobCost>,
        now: Instant,
        out: &mut impl Outbox,
    ) -> Result<usize, CoreError> {
        let w = self.workers.get_mut(&worker).ok_or(CoreError::NoSuchWorker(worker))?;
        let mut runs: HashMap<(JobId, u64), ShardRun> =
            runs.into_iter().map(|r| ((r.job_id, r.shard), r)).collect();
        w.last_seen = now;
        let mut batch = Batch { costs, ..Batch::default() };
        for (job_id, shard, outcome) in outcomes {
            let held = self.workers.get_mut(&worker).is_some_and(|w| w.release(job_id, shard));
            let Some(job) = self.jobs.get_mut(&job_id).filter(|_| held) else {
                batch.dropped += 1;
                continue;
            };
            if job.assigned.remove(&shard).is_some() {
                self.accounts.released(job.principal, 1);
            }
            let run = if runs.is_empty() { None } else { runs.remove(&(job_id, shard)) };
            match &outcome {
                ShardOutcome::Done(_) => self.keep_log(worker, (job_id, shard), run, None, out),
                ShardOutcome::Failed(e) | ShardOutcome::Invalid(e) => {
                    self.keep_log(worker, (job_id, shard), run, Some(e), out)
                }
                ShardOutcome::Cancelled => {}
            }
            match outcome {
                ShardOutcome::Done(output) => {
                    *batch.completed.entry(job_id).or_default() += 1;
                    if self.done(worker, job_id, shard, output, now, out) {
                        batch.touched.insert(job_id);
                    }
                }
                ShardOutcome::Failed(error) => {
                    self.failed(worker, (job_id, shard), &error, true, now, out)
                }
                ShardOutcome::Invalid(error) => {
                    self.failed(worker, (job_id, shard), &error, false, now, out)
                }
                // Not a result: the worker handed the shard back unfinished; it runs again.
                ShardOutcome::Cancelled => self.requeue(job_id, shard, out),
            }
        }
        let dropped = batch.dropped;
        self.settle(worker, batch, now, out);
        Ok(dropped)
    }

    /// A completed run: counted once, unless it is sampled for `--verify` and must first agree
    /// with a run elsewhere. True if the job is still going and its progress changed.
    fn done(
        &mut self,
        worker: WorkerId,
        job_id: JobId,
        shard: u64,
        output: Output,
        now: Instant,
        out: &mut impl Outbox,
    ) -> bool {
        let Some(job) = self.jobs.get_mut(&job_id) else { return false };
        let output = if sampled(job_id, shard, job.spec.limits.verify_percent) {
            let (lo, hi, _) = job.spec.source.shard(shard);
            let name = self.workers.get(&worker).map_or("", |w| w.spec.name.as_str());
            let verify = self.verifying.entry(job_id).or_default();
            match verify.done(shard, (lo, hi), (worker, name), output) {
                Verdict::Accept(output) => output,
                Verdict::Held => {
                    let priority = job.spec.priority;
                    self.mark_pending(job_id, priority);
                    return false;
                }
                Verdict::Mismatch(error) => {
                    self.end_job(job_id, JobState::Failed, Some(error), now, out);
                    return false;
                }
            }
        } else {
            output
        };
        job.done += 1;
        out.counted(job_id, &job.spec.kind, Counted::Done);
        out.shard_output(job_id, shard, &output);
        if let Err(e) = job.acc.add(shard, &output) {
            self.end_job(job_id, JobState::Failed, Some(e), now, out);
            return false;
        }
        out.journal(JournalOp::Outcome { job: job_id, shard, output });
        if job.done < job.total {
            return true;
        }
        self.end_job(job_id, JobState::Succeeded, None, now, out);
        false
    }

    /// A failed run: run again after its backoff while the job's retries allow (and a rerun
    /// could go otherwise: `retry`), else the job fails naming it.
    pub(super) fn failed(
        &mut self,
        worker: WorkerId,
        (job_id, shard): (JobId, u64),
        error: &str,
        retry: bool,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let Some(job) = self.jobs.get_mut(&job_id) else { return };
        out.counted(job_id, &job.spec.kind, Counted::Failed);
        let failures = job.failures.entry(shard).or_insert(0);
        *failures += 1;
        let failures = *failures;
        if retry && failures <= job.spec.limits.retries {
            self.backoff.insert((now + backoff(failures), job_id, shard));
            return;
        }
        let shown = job.describe(shard);
        let runs = if failures > 1 { format!(" (run {failures})") } else { String::new() };
        // The worker's words, bounded: a kernel may fail with a message of any size.
        let error = farm_proto::kernel::truncate(error, MAX_ERROR_BYTES);
        let msg = format!("{shown} failed on worker {worker}{runs}: {error}");
        self.end_job(job_id, JobState::Failed, Some(msg), now, out);
    }

    /// After a batch: the worker's accepted completions earn it window, the costs of jobs
    /// with accepted completions count, watchers of jobs still going see their progress, and
    /// the worker is marked for dispatch.
    fn settle(&mut self, worker: WorkerId, batch: Batch, now: Instant, out: &mut impl Outbox) {
        if let Some(w) = self.workers.get_mut(&worker) {
            w.done += batch.completed.values().map(|&n| n as u64).sum::<u64>();
        }
        for cost in &batch.costs {
            if !batch.completed.contains_key(&cost.job_id) {
                continue;
            }
            if let Some(job) = self.jobs.get_mut(&cost.job_id).filter(|j| !j.state.is_final()) {
                job.cost.observe(cost);
            }
        }
        for job_id in batch.touched {
            if let Some(job) = self.jobs.get(&job_id).filter(|j| !j.state.is_final()) {
                out.job_changed(&view(job, now));
            }
        }
        self.dirty.worker(worker);
    }
}
