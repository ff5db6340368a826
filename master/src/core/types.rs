//! The core's vocabulary: its configuration, errors, the events' payloads, the views it gives
//! out, and the [`Outbox`] through which it asks for side effects.

use super::{JobId, JobState, WorkerId};
use farm_proto::{Output, OutputShape};
use std::time::Duration;

/// Limits and tuning of the core.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Shards handed to a worker beyond its thread count, per thread, to hide the round trip.
    pub prefetch_per_thread: u32,
    /// How much work, in time, to keep queued per thread on a worker, from what the job's
    /// shards cost (`window.rs`), up to `max_window`. More than a worker lets its results
    /// wait (50 ms) plus a round trip, so no worker runs dry while its results travel
    /// together; the tail's share keeps the end of a job balanced.
    pub queue_target: Duration,
    /// Most shards a worker may hold.
    pub max_window: usize,
    /// A job with more shards is refused with ResourceExhausted.
    pub max_shards_per_job: u64,
    /// A worker silent for longer is declared lost. Derived from the heartbeat by
    /// [`CoreConfig::with_heartbeat`], which `serve` applies with `MasterConfig::heartbeat`.
    pub heartbeat_timeout: Duration,
    /// Finished jobs kept for `Get`/`List`; older ones are forgotten.
    pub keep_finished: usize,
    /// Jobs not yet ended; more are refused with ResourceExhausted.
    pub max_active_jobs: usize,
    /// Bytes of finished jobs' results and errors kept for `Get`/`List`; past it the oldest
    /// are forgotten (the newest is kept whatever its size).
    pub keep_finished_bytes: usize,
    /// How long an ended job is kept after it ended; then it is forgotten (and its rows
    /// leave the journal).
    pub keep_finished_for: Duration,
    /// Bytes the jobs not yet ended may hold: inputs, params and accumulated list outputs. A
    /// submit that would pass it is refused with ResourceExhausted; a job whose outputs would
    /// pass it fails.
    pub memory_budget: usize,
    /// Bytes of a list result's JSON kept in RAM and returned inline by `Get` and `Watch`; a
    /// larger result lives only in the store and is streamed by `Results`.
    pub inline_result_bytes: usize,
    /// How long a worker may hold a shard of a job without `--shard-timeout` before the shard
    /// is reclaimed and the worker marked suspect. Jobs with longer shards and no shard timeout
    /// need it raised (`farm master --hold-timeout`).
    pub hold_timeout: Duration,
    /// Added to twice a job's shard timeout to make its hold deadline: the time a result may
    /// take to come back after the worker's own timeout fired (batching, the network, a busy
    /// core). A few heartbeat periods: less than that is a hiccup, not a hoarder. Derived from
    /// the heartbeat by [`CoreConfig::with_heartbeat`].
    pub hold_grace: Duration,
    /// Bytes of per-shard logs (and errors) kept per job; past them a shard's record keeps
    /// its run but not its log (`--shard-log-mib`).
    pub shard_log_bytes: usize,
    /// After the master starts, how long workers have to (re)connect before a job is
    /// reported waiting for one (`served.rs`): a restart is not news for every watcher. At
    /// least the workers' longest reconnect backoff (5 s).
    pub startup_grace: Duration,
    /// Within a priority, share each worker's window between the principals with shards
    /// waiting, in proportion to their weights (`fair.rs`); off, jobs are served in
    /// submission order whoever owns them (`farm master --fair-share off`).
    pub fair_share: bool,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            prefetch_per_thread: 1,
            queue_target: Duration::from_millis(150),
            max_window: 8192,
            max_shards_per_job: 100_000_000,
            heartbeat_timeout: Duration::ZERO,
            keep_finished: 10_000,
            max_active_jobs: 10_000,
            keep_finished_bytes: 256 << 20,
            keep_finished_for: Duration::from_secs(7 * 24 * 3600),
            memory_budget: 256 << 20,
            inline_result_bytes: 1 << 20,
            hold_timeout: Duration::from_secs(3600),
            hold_grace: Duration::ZERO,
            shard_log_bytes: 64 << 20,
            startup_grace: Duration::from_secs(6),
            fair_share: true,
        }
        .with_heartbeat(DEFAULT_HEARTBEAT)
    }
}

/// How often master and workers exchange heartbeats unless told otherwise (`--heartbeat`).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);

impl CoreConfig {
    /// The rules that follow from the heartbeat: a worker silent for 2.5 heartbeats is lost,
    /// and a late result gets 3 heartbeats of grace past its hold deadline.
    pub fn with_heartbeat(self, heartbeat: Duration) -> CoreConfig {
        CoreConfig { heartbeat_timeout: heartbeat * 5 / 2, hold_grace: heartbeat * 3, ..self }
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
    /// Too many jobs are queued or running.
    #[error("{active} jobs are queued or running, the limit is {limit}")]
    TooManyJobs {
        /// Jobs not yet ended.
        active: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The job's inputs and params do not fit in what is left of the memory budget.
    #[error(
        "master memory budget of {budget_mib} MiB for job inputs and results is full \
         (--memory-budget-mib): this job needs {need_mib} MiB and jobs not yet ended hold \
         {used_mib} MiB; wait for jobs to end, or split the inputs"
    )]
    MemoryBudget {
        /// The budget, in MiB.
        budget_mib: String,
        /// What the job would hold, in MiB.
        need_mib: String,
        /// What live jobs hold now, in MiB.
        used_mib: String,
    },
    /// A principal's quota would be passed (`quota: principal alice has 10 jobs queued or
    /// running, its limit is 10`).
    #[error("{0}")]
    Quota(String),
    /// No such job (never submitted, or forgotten).
    #[error(
        "no job {0} on this master (finished jobs are kept up to a limit; without --journal, \
         jobs do not survive a master restart)"
    )]
    NoSuchJob(JobId),
    /// No such worker session.
    #[error("no worker {0}")]
    NoSuchWorker(WorkerId),
    /// The job is over and cannot be changed.
    #[error("job {0} has already ended")]
    JobEnded(JobId),
}

pub use farm_proto::session::ShardOutcome;

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
    /// Times its supervisor restarted this local worker slot.
    pub restarts: u32,
    /// Which side opened the session: "worker" or "master".
    pub dialed_by: String,
    /// The scheduler job (allocation) it runs in, if an allocation queue started it.
    pub allocation: String,
}

/// What the core sends a worker, as the session protocol's own types: a shard to run, and a
/// job's definition (once per worker, ahead of its first shard).
pub use farm_proto::session::{JobDef, ShardTask};

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
    /// Shards in flight: assigned to a worker, no outcome accepted yet (on the wire,
    /// `shards_running`).
    pub in_flight: u64,
    /// The reduced result, once succeeded; shared, not copied, by every view of it.
    pub result_json: Option<std::sync::Arc<str>>,
    /// The result is a list kept only in the store (too large for a status): read it with
    /// `Results`.
    pub result_in_store: bool,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
    /// Since submission, until it ended.
    pub elapsed_ms: u64,
    /// Since submission, until now (the job's age, which keeps growing after it ended).
    pub age_ms: u64,
    /// Its priority.
    pub priority: i32,
    /// Shards handed out again (lost or drained worker, retried failure).
    pub reruns: u64,
    /// Why it cannot go on: no connected worker offers its kind (`None` when one does, and
    /// once the job ended).
    pub waiting: Option<String>,
    /// The name of the principal that submitted it.
    pub owner: std::sync::Arc<str>,
}

/// A worker as clients see it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerView {
    /// The session id.
    pub id: WorkerId,
    /// What it stated when it joined.
    pub spec: WorkerSpec,
    /// Shards in flight: assigned to it, no outcome accepted yet (on the wire,
    /// `shards_running`).
    pub in_flight: u64,
    /// Shards it completed.
    pub done: u64,
    /// Seconds since it joined.
    pub connected_secs: u64,
    /// It takes no new shards.
    pub draining: bool,
    /// Why it takes no new shards although connected: it held a shard past its deadline.
    pub suspect: Option<String>,
}

/// Side effects the core asks for. The master's implementation (`actor::Effects`) carries out
/// every one. No method has a default, so a new effect does not compile until every outbox
/// says what it does with it: an outbox that needs only some (a replay collecting journal
/// ops, a benchmark keeping worker queues) ignores the others explicitly, and the tests'
/// one recording outbox (`core::recording`) records it.
pub trait Outbox {
    /// Send new job definitions (first) and shards to a worker.
    fn assign(&mut self, worker: WorkerId, defs: Vec<JobDef>, tasks: Vec<ShardTask>);
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
    /// Ask a worker to drain: finish or hand back its shards, then leave.
    fn drain_worker(&mut self, worker: WorkerId);
    /// Record a change in the journal (the store's writer thread commits it; this must not
    /// block).
    fn journal(&mut self, op: JournalOp);
    /// A shard of job `job` (kernel `kind`) was counted, for metrics: called once per shard
    /// per event, so it must be cheap (the master's counts into cached atomic counters).
    fn counted(&mut self, job: JobId, kind: &str, what: Counted);
}

/// What became of a shard, as metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Its outcome was accepted as done (once per shard).
    Done,
    /// A run of it failed (retried or not).
    Failed,
    /// It was put back to run again (lost or draining worker, retried failure, held too long).
    Rerun,
}

/// A change the core asks the journal to record, in the order it happened. Replaying the
/// committed ones rebuilds the core (`Core::restore_*`).
#[derive(Debug, Clone, PartialEq)]
pub enum JournalOp {
    /// A job was accepted; the client's reply waits until this is committed.
    Submit {
        /// Its id.
        job: JobId,
        /// What was submitted (inputs included, shared with the job), to run it again after
        /// a restart; the store encodes it.
        spec: super::SubmittedJob,
        /// How its outputs are reduced (its kernel's declared shape, fixed at submit).
        output: OutputShape,
        /// The name of the principal that submitted it.
        owner: std::sync::Arc<str>,
    },
    /// A shard's outcome was accepted as done: after a restart it counts and never reruns.
    Outcome {
        /// Its job.
        job: JobId,
        /// The shard.
        shard: u64,
        /// What it produced.
        output: Output,
    },
    /// A job ended (succeeded, failed or cancelled): its final status is what a restarted
    /// master shows; its spec and outcomes can go.
    End(JobView),
    /// An ended job was dropped by retention: it goes from the journal too.
    Forget(JobId),
    /// A shard's last run, for its job's logs (kept until the job is forgotten).
    ShardLog {
        /// Its job.
        job: JobId,
        /// The record.
        log: farm_proto::ShardLog,
    },
}
