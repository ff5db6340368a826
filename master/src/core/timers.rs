//! What the tick enforces besides heartbeats: hold deadlines and retry backoff.
//!
//! A worker that takes shards and never answers, while it keeps heartbeating, would stall a job
//! forever: `--shard-timeout` is enforced by workers, so not by that one. The master therefore
//! reclaims any shard held past its deadline (twice the shard timeout plus a grace, or the hold
//! timeout for jobs without one) and gives the worker no more shards. A shard the worker said
//! it started, of a job with a shard timeout, counts a failed run: it ran past its own
//! timeout, so `--retries` decides whether it runs again, and a shard that escapes its timeout
//! on every worker is not handed to each in turn. Any other counts a crash (the worker may
//! be hoarding or hung, not the shard) and reruns elsewhere.
//!
//! A shard that fails at once would otherwise rerun as fast as the round trip allows; instead
//! each failed run waits 100 ms × 2^(failures − 1), at most 10 s, before it may run again.

use super::{Core, CoreConfig, Job, JobId, Outbox, WorkerId};
use std::time::{Duration, Instant};
use tracing::warn;

/// The wait before a shard's first retry; it doubles with each failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait before a retry.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How long a shard waits after its `failures`-th failed run before it may run again.
pub(crate) fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_BACKOFF.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

/// How long a worker may hold a shard of `job`. With a shard timeout: twice it (a shard can
/// wait behind one full run in the worker's queue, then run for the timeout) plus the grace,
/// which covers the result's trip back and the kernel's last cancel check. Without one: the
/// configured hold timeout.
fn hold_limit(config: &CoreConfig, job: &Job) -> Duration {
    match job.spec.limits.shard_timeout_ms {
        Some(ms) => Duration::from_millis(ms).saturating_mul(2).saturating_add(config.hold_grace),
        None => config.hold_timeout,
    }
}

impl Core {
    /// Takes back every shard held past its deadline; the worker that held it becomes suspect
    /// (no new shards) and the shard counts a failed run (started, of a job with a shard
    /// timeout) or a crash, so a shard that hangs every worker fails its job instead of making
    /// every worker suspect in turn.
    pub(super) fn reclaim_expired(&mut self, now: Instant, out: &mut impl Outbox) {
        let mut expired: Vec<(WorkerId, JobId, u64, Duration)> = Vec::new();
        for (&id, w) in self.workers.iter_mut() {
            let jobs: Vec<JobId> = w.holds.keys().copied().collect();
            for job_id in jobs {
                let Some(job) = self.jobs.get(&job_id) else { continue };
                let limit = hold_limit(&self.config, job);
                let shards = w.expired(job_id, limit, now);
                expired.extend(shards.into_iter().map(|s| (id, job_id, s, limit)));
            }
        }
        for (worker, job_id, shard, limit) in expired {
            let Some(w) = self.workers.get_mut(&worker) else { continue };
            let started = w.started.contains(&(job_id, shard));
            if !w.release(job_id, shard) {
                continue;
            }
            let reason = format!("held shard {shard} of job {job_id} for over {limit:?}");
            if w.suspect.is_none() {
                warn!(worker, name = %w.spec.name, %reason, "worker is suspect: no more shards");
                w.suspect = Some(reason.clone());
            }
            let Some(job) = self.jobs.get_mut(&job_id) else { continue };
            if job.assigned.remove(&shard).is_some() {
                self.accounts.released(job.principal, 1);
            }
            if job.state.is_final() {
                continue;
            }
            if started && job.spec.limits.shard_timeout_ms.is_some() {
                let error = format!("timed out: {reason} (twice its shard timeout)");
                self.failed(worker, (job_id, shard), &error, true, now, out);
            } else if !self.crashed(job_id, shard, worker, &reason, now, out) {
                self.requeue(job_id, shard, out);
            }
        }
    }

    /// Lets failed shards whose backoff is over run again (of jobs still going); each counts
    /// as a rerun now.
    pub(super) fn end_backoff(&mut self, now: Instant, out: &mut impl Outbox) {
        while let Some(&(at, job_id, shard)) = self.backoff.first() {
            if at > now {
                break;
            }
            self.backoff.pop_first();
            // Skipped for a job that ended meanwhile.
            self.requeue(job_id, shard, out);
        }
    }
}
