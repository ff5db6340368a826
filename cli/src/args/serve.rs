//! The flags of the commands that serve: `farm master`, `farm run` (a master and its local
//! workers for one job) and `farm showdown` (which times `farm run`s), with the scheduler and
//! local-worker flags the first two share.

use super::{parse_duration, AuthArgs, JobArgs, OutputArgs};
use clap::Args;
use std::path::PathBuf;

/// Local workers to spawn and supervise.
#[derive(Debug, Args)]
pub struct LocalWorkerArgs {
    /// Threads per local worker [default: available cores].
    #[arg(long, value_name = "T")]
    pub threads: Option<usize>,
    /// Let local workers run the exec kernel (runs programs named in job parameters).
    #[arg(long)]
    pub allow_exec: bool,
}

/// Scheduler tuning shared by `farm master` and `farm run`.
#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Heartbeat period between master and workers, e.g. 1s or 500ms; a worker silent for 2.5
    /// periods is declared lost and its shards run elsewhere.
    #[arg(long, default_value = "1s", value_parser = parse_duration, env = "FARM_HEARTBEAT")]
    pub heartbeat: std::time::Duration,
    /// Shards queued on a worker beyond its threads, per thread, to hide the round trip.
    #[arg(long, default_value_t = 1, env = "FARM_PREFETCH")]
    pub prefetch: u32,
    /// Jobs with more shards are refused (ResourceExhausted).
    #[arg(long, default_value_t = 100_000_000, env = "FARM_MAX_SHARDS")]
    pub max_shards: u64,
    /// MiB that queued and running jobs may hold in the master: their inputs, params and
    /// list results so far. A submit that would pass it is refused (ResourceExhausted); a job
    /// whose results would pass it fails.
    #[arg(long, default_value_t = 256, value_name = "MIB", env = "FARM_MEMORY_BUDGET_MIB")]
    pub memory_budget_mib: usize,
    /// MiB of a list result kept in the master's memory and returned inline by Get, Watch and
    /// --json; a larger result lives only in the store and is read with `farm results`.
    #[arg(long, default_value_t = 1, value_name = "MIB", env = "FARM_INLINE_RESULT_MIB",
          value_parser = clap::value_parser!(u16).range(1..=60))]
    pub inline_result_mib: u16,
    /// Finished jobs kept for status and results; older ones are forgotten.
    #[arg(long, default_value_t = 10_000, value_name = "N", env = "FARM_KEEP_FINISHED")]
    pub keep_finished: usize,
    /// MiB of results and errors that finished jobs keep; past it the oldest are forgotten
    /// (the newest is kept whatever its size).
    #[arg(long, default_value_t = 256, value_name = "MIB", env = "FARM_KEEP_FINISHED_MIB")]
    pub keep_finished_mib: usize,
    /// How long a finished job is kept after it ended (counted from when this master learned
    /// it ended); then it is forgotten, and its rows leave the journal.
    #[arg(long, default_value = "7d", value_parser = parse_duration, value_name = "DURATION", env = "FARM_KEEP_FINISHED_FOR")]
    pub keep_finished_for: std::time::Duration,
    /// How long a worker may hold a shard of a job without --shard-timeout; then the shard runs
    /// elsewhere and the worker gets no more shards (suspect). Raise it for longer shards.
    #[arg(long, default_value = "60m", value_parser = parse_duration, env = "FARM_HOLD_TIMEOUT")]
    pub hold_timeout: std::time::Duration,
    /// MiB of per-shard logs (exec's stderr, SDK log lines, errors) kept per job; past it a
    /// shard keeps its run record (`farm logs`, --joblog) but not its log.
    #[arg(long, default_value_t = 64, value_name = "MIB", env = "FARM_SHARD_LOG_MIB")]
    pub shard_log_mib: usize,
    /// Within a priority, share the workers' threads between the principals with work
    /// waiting, in proportion to their weights (the principals file), shard by shard; `off`
    /// serves jobs in submission order whoever submitted them.
    #[arg(long, default_value = "on", value_name = "on|off", value_parser = ["on", "off"], env = "FARM_FAIR_SHARE")]
    pub fair_share: String,
    #[command(flatten)]
    pub modules: crate::wasm_args::ModuleStoreArgs,
    /// Keep jobs and accepted shard results in this file (created if missing): a master
    /// restarted with the same file resumes unfinished jobs and never reruns a shard whose
    /// result was committed. Without it, a temporary file removed at exit.
    #[arg(long, value_name = "PATH", env = "FARM_JOURNAL")]
    pub journal: Option<std::path::PathBuf>,
}

/// `farm run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// Local worker processes to start.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub workers: usize,
    #[command(flatten)]
    pub local: LocalWorkerArgs,
    #[command(flatten)]
    pub scheduler: SchedulerArgs,
    #[command(flatten)]
    pub http: crate::http::HttpArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `farm showdown`.
#[derive(Debug, Args)]
pub struct ShowdownArgs {
    /// Indices for the CPU-bound `primes` runs, A..B (B exclusive).
    #[arg(long, default_value = "0..8000000", value_name = "A..B")]
    pub range: String,
    /// Indices per shard for the `primes` runs and the Python runs.
    #[arg(long, default_value_t = 100_000, value_name = "S")]
    pub shard_size: u64,
    /// Indices for the waiting `sleep` runs, A..B; each index is one shard.
    #[arg(long, default_value = "0..200", value_name = "A..B")]
    pub sleep_range: String,
    /// Milliseconds each `sleep` index waits.
    #[arg(long, default_value_t = 20, value_name = "MS")]
    pub sleep_ms: u64,
    /// N, the cores to compare against: configurations use N workers and N threads, and
    /// efficiency is measured against N [default: available cores].
    #[arg(long, value_name = "N")]
    pub cores: Option<usize>,
    /// Indices for the Python runs, A..B (Python tests numbers far more slowly than farm).
    #[arg(long, default_value = "0..400000", value_name = "A..B")]
    pub python_range: String,
    /// Skip the Python rows even when python3 is on PATH.
    #[arg(long)]
    pub no_python: bool,
    /// Longest one run may take (each `farm run`, and the Python script as a whole) before it
    /// is killed and the showdown fails, e.g. 90s or 10m.
    #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: std::time::Duration,
    /// Also write a bar chart of the speedups to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `farm master`.
#[derive(Debug, Args)]
pub struct MasterArgs {
    /// Address to serve workers and clients on; 0.0.0.0:7070 to accept other machines.
    #[arg(long, default_value = "127.0.0.1:7070", env = "FARM_LISTEN")]
    pub listen: String,
    /// Local worker processes to start and supervise.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub workers: usize,
    /// Listening workers to dial (`farm worker --listen`), comma-separated host:port; each is
    /// dialed again, with backoff, whenever it is down.
    #[arg(long, value_delimiter = ',', value_name = "HOST:PORT,...", env = "FARM_CONNECT")]
    pub connect: Vec<String>,
    /// A file listing listening workers to dial, one host:port per line (# starts a comment).
    #[arg(long, value_name = "FILE")]
    pub connect_file: Option<PathBuf>,
    /// A separate token for workers (default: the shared --token); clients cannot register
    /// as workers with the client token, nor workers submit jobs with this one.
    #[arg(long, env = "FARM_WORKER_TOKEN", hide_env_values = true)]
    pub worker_token: Option<String>,
    /// Read the worker token from this file instead.
    #[arg(long, value_name = "FILE", env = "FARM_WORKER_TOKEN_FILE")]
    pub worker_token_file: Option<PathBuf>,
    /// Named principals (TOML; see docs/security.md): each a token's SHA-256, roles, quotas
    /// and a weight. With it every call needs a token; the file must be readable by its owner
    /// only (chmod 600). `farm token new NAME --role R --principals FILE` adds one.
    #[arg(long, value_name = "FILE", env = "FARM_PRINCIPALS")]
    pub principals: Option<PathBuf>,
    /// Mutual TLS: require clients and workers to present a certificate this CA signed.
    #[arg(long, value_name = "FILE", env = "FARM_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// The token and TLS files.
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub local: LocalWorkerArgs,
    #[command(flatten)]
    pub scheduler: SchedulerArgs,
    #[command(flatten)]
    pub alloc: super::AllocMasterArgs,
    #[command(flatten)]
    pub http: crate::http::HttpArgs,
}
