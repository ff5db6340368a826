//! The worker's thread pool: exactly T OS threads that run kernels, so CPU work never touches
//! the async runtime. Shards wait in a run queue, highest job priority first (`queue.rs`);
//! outcomes go back to the session's
//! mailbox (`reports.rs`, which wakes the session only when it has something to decide), as
//! each shard finishes, with how the shard ran (its start, duration and log) when
//! the job records runs or the shard logged something or failed.

use crate::queue::RunQueue;
use crate::reports::Reports;
use crate::sdk::{CancelFlag, KernelError, Output, Prepared, ShardInput};
use farm_proto::session::ShardRun;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A job as the worker holds it: its prepared kernel and the flag that cancels its shards.
pub(crate) struct JobEntry {
    /// The kernel with the job's parameters parsed.
    pub prepared: Box<dyn Prepared>,
    /// Set when the master cancels the job or the session ends.
    pub cancel: CancelFlag,
    /// Each shard's time limit, counted from when it starts on a thread.
    pub timeout: Option<Duration>,
    /// Report how every shard ran, not only those that logged or failed (`--joblog`).
    pub record_runs: bool,
    /// The job's priority: its queued shards start before those of lower-priority jobs.
    pub priority: i32,
}

/// One shard to run and where to send its outcome.
pub(crate) struct Work {
    pub job_id: u64,
    pub shard: u64,
    pub job: Arc<JobEntry>,
    pub input: ShardInput,
    /// The mailbox of the session that asked for it; a closed one means the session is gone.
    pub reply: Arc<Reports>,
}

/// What the pool tells its session about a shard: that it started, then how it ended.
pub(crate) enum Report {
    Started { job_id: u64, shard: u64 },
    Finished(Finished),
}

/// A shard's outcome.
pub(crate) struct Finished {
    pub job_id: u64,
    pub shard: u64,
    pub outcome: Result<Output, KernelError>,
    /// How it ran, when the master wants to know (see the module's doc); none if it never ran.
    pub run: Option<ShardRun>,
    /// How long it ran on its pool thread; zero if it never ran.
    pub busy: Duration,
}

/// A fixed set of OS threads. Dropping the pool lets the threads finish their current shard and
/// exit; it does not wait for them (a kernel stuck in a loop must not hang the worker's exit).
pub(crate) struct Pool {
    queue: Arc<RunQueue<Work>>,
    /// Once set, shards not yet started are handed back (reported cancelled) instead of run.
    draining: Arc<AtomicBool>,
}

impl Pool {
    /// Starts `threads` OS threads.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let queue = Arc::new(RunQueue::default());
        let draining = Arc::new(AtomicBool::new(false));
        for i in 0..threads {
            let (queue, draining) = (queue.clone(), draining.clone());
            std::thread::Builder::new()
                .name(format!("farm-kernel-{i}"))
                .spawn(move || run(&queue, draining))?;
        }
        Ok(Pool { queue, draining })
    }

    /// From now on, hand back shards instead of starting them.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Queues a shard; it runs when a thread is free and no shard of a higher-priority job
    /// waits.
    pub fn submit(&self, work: Work) {
        self.queue.push(work.job.priority, work);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// Every shard sent to the pool gets exactly one `Finished` back (while its session lives), so
/// the session can count what is still in flight; one that runs is also reported `Started`.
fn run(queue: &RunQueue<Work>, draining: Arc<AtomicBool>) {
    while let Some(work) = queue.pop() {
        if work.reply.is_closed() {
            continue;
        }
        let report = |r: Report| work.reply.push(r, queue.len());
        let finished = if work.job.cancel.is_cancelled() || draining.load(Ordering::Relaxed) {
            let outcome = Err(KernelError::Cancelled);
            let busy = Duration::ZERO;
            Finished { job_id: work.job_id, shard: work.shard, outcome, run: None, busy }
        } else {
            report(Report::Started { job_id: work.job_id, shard: work.shard });
            run_one(&work)
        };
        report(Report::Finished(finished));
    }
}

/// Runs one shard with its own cancel flag and log, catching a panic.
fn run_one(work: &Work) -> Finished {
    let cancel = work.job.cancel.for_shard(work.job.timeout);
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| work.job.prepared.run(&work.input, &cancel)))
        .unwrap_or_else(|panic| Err(KernelError::Failed(panic_message(&panic))));
    let busy = started.elapsed();
    let (log, exit_code) = cancel.log().contents();
    let failed = !matches!(outcome, Ok(_) | Err(KernelError::Cancelled));
    let wanted = work.job.record_runs || failed || !log.is_empty();
    // The wall clock is read only for a run that is reported: quiet shards cost one Instant.
    let run = (wanted && !matches!(outcome, Err(KernelError::Cancelled))).then(|| {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        ShardRun {
            job_id: work.job_id,
            shard: work.shard,
            started_unix_ms: now.saturating_sub(busy).as_millis() as u64,
            duration_ms: busy.as_millis() as u64,
            exit_code,
            log,
        }
    });
    Finished { job_id: work.job_id, shard: work.shard, outcome, run, busy }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let msg = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".into());
    format!("kernel panicked: {msg}")
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Panics;
    impl Prepared for Panics {
        fn run(&self, shard: &ShardInput, _: &CancelFlag) -> Result<Output, KernelError> {
            if shard.lo == 1 {
                panic!("bad index {}", shard.lo);
            }
            Ok(Output::Count(shard.hi - shard.lo))
        }
    }

    #[tokio::test]
    async fn a_panicking_kernel_fails_its_shard_and_the_pool_keeps_running() {
        let pool = Pool::new(2).expect("threads");
        let job = Arc::new(JobEntry {
            prepared: Box::new(Panics),
            cancel: CancelFlag::default(),
            timeout: None,
            record_runs: false,
            priority: 0,
        });
        let reply = Arc::new(Reports::default());
        let rx = reply.clone();
        for lo in 0..4 {
            let input = ShardInput { lo, hi: lo + 1, input: None };
            pool.submit(Work {
                job_id: 7,
                shard: lo,
                job: job.clone(),
                input,
                reply: reply.clone(),
            });
        }
        let mut outcomes = Vec::new();
        while outcomes.len() < 4 {
            let report = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("outcome in time")
                .expect("channel open");
            if let Report::Finished(done) = report {
                outcomes.push((done.shard, done.outcome));
            }
        }
        outcomes.sort_by_key(|o| o.0);
        assert_eq!(outcomes[0].1, Ok(Output::Count(1)));
        assert_eq!(outcomes[1].1, Err(KernelError::Failed("kernel panicked: bad index 1".into())));
        assert_eq!(outcomes[3].1, Ok(Output::Count(1)));
    }

    struct Logs;
    impl Prepared for Logs {
        fn run(&self, shard: &ShardInput, cancel: &CancelFlag) -> Result<Output, KernelError> {
            if shard.lo % 2 == 1 {
                cancel.log().line(format!("odd index {}", shard.lo));
            }
            Ok(Output::Count(1))
        }
    }

    /// Runs shards 0..4 of `Logs` and returns each shard's reported run.
    async fn runs(record_runs: bool) -> Vec<(u64, Option<ShardRun>)> {
        let pool = Pool::new(2).expect("threads");
        let (prepared, cancel) = (Box::new(Logs), CancelFlag::new());
        let job = Arc::new(JobEntry { prepared, cancel, timeout: None, record_runs, priority: 0 });
        let reply = Arc::new(Reports::default());
        let rx = reply.clone();
        for lo in 0..4 {
            let input = ShardInput { lo, hi: lo + 1, input: None };
            let reply = reply.clone();
            pool.submit(Work { job_id: 3, shard: lo, job: job.clone(), input, reply });
        }
        let mut runs = Vec::new();
        while runs.len() < 4 {
            let report = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
            if let Some(Report::Finished(done)) = report.expect("a report within 10 s") {
                runs.push((done.shard, done.run));
            }
        }
        runs.sort_by_key(|r| r.0);
        runs
    }

    #[tokio::test]
    async fn a_shard_that_logs_reports_its_run_and_its_own_lines() {
        let logged: Vec<_> =
            runs(false).await.into_iter().map(|(s, r)| (s, r.map(|r| r.log))).collect();
        assert_eq!(
            logged,
            [
                (0, None),
                (1, Some("odd index 1\n".into())),
                (2, None),
                (3, Some("odd index 3\n".into()))
            ]
        );
        let recorded = runs(true).await;
        assert!(recorded.iter().all(|(_, r)| r.is_some()), "a job that records runs gets them all");
        let run = recorded[2].1.clone().expect("run");
        assert_eq!((run.job_id, run.shard, run.log.as_str()), (3, 2, ""));
        assert!(run.started_unix_ms > 1_600_000_000_000, "{run:?}");
    }

    #[tokio::test]
    async fn a_shard_past_its_time_limit_is_stopped_and_reported_timed_out() {
        let pool = Pool::new(1).expect("threads");
        let spin = crate::kernels::spin::Spin;
        let params = farm_proto::Params::from_pairs(["ms=10000"]).expect("params");
        let prepared = crate::sdk::prepare_checked(&spin, &params).expect("prepare");
        let timeout = Some(Duration::from_millis(50));
        let job = Arc::new(JobEntry {
            prepared,
            cancel: CancelFlag::new(),
            timeout,
            record_runs: false,
            priority: 0,
        });
        let reply = Arc::new(Reports::default());
        let rx = reply.clone();
        let input = ShardInput { lo: 0, hi: 1, input: None };
        pool.submit(Work { job_id: 1, shard: 0, job, input, reply });
        let started = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        let started = started.expect("started within 10 s");
        assert!(matches!(started, Some(Report::Started { job_id: 1, shard: 0 })));
        let done = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("stopped long before the 10 s spin would end");
        let Some(Report::Finished(done)) = done else { panic!("expected the outcome") };
        assert_eq!(done.outcome, Err(KernelError::TimedOut(50)));
    }
}
