//! The command line: clap structs only. Each role converts its args into the plain config type
//! its library takes (see `roles.rs`).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

mod client;
mod duration;
pub(crate) mod lists;

pub use client::{AuthArgs, BeforeArgs, ClientArgs};
pub use duration::parse_duration;
pub use lists::{CompletionsArgs, JobsArgs, KindsArgs};

/// farm: a distributed master/worker process farm. A master splits a job into shards and hands
/// them to worker processes (local or on other machines); each worker runs them on its own
/// thread pool.
#[derive(Debug, Parser)]
#[command(name = "farm", version, propagate_version = true)]
pub struct Cli {
    /// Read flags from this TOML file (`key = value`, a key being a flag's long name; a
    /// `[command.NAME]` table applies to that command only) instead of farm.toml beside the binary or
    /// in $XDG_CONFIG_HOME/farm/ (~/.config/farm/); flags override the environment, which
    /// overrides the file. Also FARM_CONFIG; an empty value reads no file.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// How logs (on stderr) are written: text, coloured only on a terminal and never with
    /// NO_COLOR set, or one JSON object a line for log shippers.
    #[arg(long, global = true, value_enum, default_value = "text", env = "FARM_LOG_FORMAT")]
    pub log_format: crate::logging::LogFormat,

    /// Log filter, e.g. debug or farm_master=debug [default: RUST_LOG, else info for master and
    /// worker, warn otherwise]; h2, hyper, tower and tonic stay at warn unless named.
    #[arg(long, global = true, value_name = "FILTER", env = "FARM_LOG_LEVEL")]
    pub log_level: Option<String>,

    /// For client commands and `farm worker`, also accepted here, before the command.
    #[command(flatten)]
    pub before: BeforeArgs,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// farm's roles and client commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a job locally: start a master in this process and N local worker processes, run the
    /// job, print its result, stop everything.
    Run(RunArgs),
    /// Serve as the master: accept workers and clients on one port.
    Master(MasterArgs),
    /// Serve as a worker: dial the master and run the shards it hands out.
    Worker(Box<WorkerArgs>),
    /// Submit a job to a running master; prints its id, or waits for its result with --wait.
    Submit(SubmitArgs),
    /// Follow a job until it ends and print its result.
    Watch(WatchArgs),
    /// Print a job's status: its state, shards, result (or a summary of a long list) and error.
    Status(JobRef),
    /// Write a succeeded job's list result, of any size, streamed from the master: a JSON
    /// array, or one item a line with --ndjson.
    Results(ResultsArgs),
    /// Print a job's per-shard logs: each kept shard's last run (worker, start, duration,
    /// outcome, exit code), what it logged (exec's stderr, an SDK kernel's lines) and a failed
    /// run's error.
    Logs(LogsArgs),
    /// Cancel a job: every shard stops on every worker.
    Cancel(JobRef),
    /// List the jobs the master remembers, newest first.
    Jobs(JobsArgs),
    /// List the connected workers, or drain one.
    Workers(WorkersArgs),
    /// List the kernels the cluster offers, with their params and help, as the workers
    /// describe them.
    Kinds(KindsArgs),
    /// Let the master allocate workers through a batch scheduler (Slurm) while shards wait:
    /// add, list and remove allocation queues.
    Alloc(crate::alloc::AllocArgs),
    /// Threads or processes? Time the same work as serial, threads only, processes only and
    /// both composed, by running real `farm run`s (plus the same test in Python, if python3 is
    /// on PATH), and print speedup and efficiency per mode.
    Showdown(ShowdownArgs),
    /// Print a shell completion script: `farm completions bash > /etc/bash_completion.d/farm`.
    Completions(CompletionsArgs),
    /// Print farm's man page (roff): `farm man > farm.1; man ./farm.1`.
    Man,
}

/// `farm workers [drain ID]`.
#[derive(Debug, Args)]
pub struct WorkersArgs {
    /// Where the master is and how to reach it.
    #[command(flatten)]
    pub client: ClientArgs,
    /// What to do; without one, list the workers.
    #[command(subcommand)]
    pub action: Option<WorkersAction>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Actions on one worker.
#[derive(Debug, Subcommand)]
pub enum WorkersAction {
    /// Drain a worker: it takes no new shards, finishes or hands back the ones it holds, and
    /// exits (a supervisor or systemd then restarts it: a rolling restart).
    Drain {
        /// The worker's id, as `farm workers` shows it.
        id: u64,
    },
}

/// What a job is: a kernel over a range cut into shards, or over explicit inputs.
#[derive(Debug, Args)]
pub struct JobArgs {
    /// Kernel: any kind the cluster offers (`farm kinds` lists them with their params).
    pub kind: String,

    /// Indices to run, A..B (B exclusive), e.g. 0..10000000.
    #[arg(
        long,
        value_name = "A..B",
        required_unless_present = "inputs",
        conflicts_with = "inputs"
    )]
    pub range: Option<String>,

    /// Indices per shard [default: about 1000 shards per job].
    #[arg(long, value_name = "S")]
    pub shard_size: Option<u64>,

    /// A kernel parameter, key=value; repeat for several (e.g. --param rounds=1000).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,

    /// One shard per line of FILE instead of a range ("-" reads standard input).
    #[arg(long, value_name = "FILE")]
    pub inputs: Option<PathBuf>,

    /// For `wasm` jobs: the WebAssembly module to run (uploaded once, by its SHA-256).
    #[arg(long, value_name = "FILE.wasm")]
    pub module: Option<PathBuf>,

    /// Higher priority jobs get shards first; equal priorities run in submission order.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub priority: i32,

    /// Write the result to FILE once the job succeeded: a list streamed from the master (any
    /// size) as a JSON array, or NDJSON with --ndjson; for FILE.png, mandelbrot rows as an
    /// image.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// With --out: one JSON item a line instead of one array.
    #[arg(long, requires = "out")]
    pub ndjson: bool,

    /// Failed runs of a shard (kernel error, panic, timeout) to retry before the job fails,
    /// with a growing pause between runs (at most 100).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(..=i64::from(farm_proto::JobLimits::MAX_RETRIES)))]
    pub retries: u32,

    /// A shard that was running on this many workers when they were lost fails the job.
    #[arg(long, default_value_t = farm_proto::JobLimits::DEFAULT_MAX_CRASHES, value_parser = clap::value_parser!(u32).range(1..=i64::from(farm_proto::JobLimits::MAX_CRASHES)))]
    pub max_crashes: u32,

    /// Rerun N % of the shards on a different worker and fail the job, naming both workers,
    /// if the outputs differ (catches a worker that returns wrong results).
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u32).range(..=100))]
    pub verify: u32,

    /// Stop a shard running longer than this (e.g. 30s) and count it as a failed run.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub shard_timeout: Option<std::time::Duration>,

    /// Fail the job once no connected worker has offered its kind for this long (e.g. 5m);
    /// without it the job waits for one for ever, its status saying so.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub no_worker_timeout: Option<std::time::Duration>,

    /// Once the job ended, write one line per shard to FILE (tab-separated, with a header, as
    /// GNU parallel's --joblog, extended): shard, host, worker, start, runtime, exit code,
    /// signal, outcome. With `submit`, needs --wait.
    #[arg(long, value_name = "FILE")]
    pub joblog: Option<PathBuf>,
}

/// Output format.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print JSON for scripts instead of text for people.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A job id and the output format.
#[derive(Debug, Args)]
pub struct JobRef {
    /// Where the master is and how to reach it.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The job's id, as printed by submit.
    pub id: u64,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `farm logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Where the master is and how to reach it.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The job's id.
    pub id: u64,
    /// Only this shard's log.
    #[arg(long, value_name = "N")]
    pub shard: Option<u64>,
    /// Only shards whose last run failed.
    #[arg(long)]
    pub failed: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `farm results`.
#[derive(Debug, Args)]
pub struct ResultsArgs {
    /// Where the master is and how to reach it.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The job's id.
    pub id: u64,
    /// Write to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// One JSON item a line instead of one array.
    #[arg(long)]
    pub ndjson: bool,
    /// Start at this item (an index into the result list).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub offset: u64,
}

/// How a waiting client treats a lost master.
#[derive(Debug, Args)]
pub struct ReconnectArgs {
    /// If the master goes away while waiting: how long to keep reconnecting before giving up.
    /// A master restarted with --journal still has the job, and the wait follows it to its end.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION",
          env = "FARM_RECONNECT_FOR")]
    pub reconnect_for: std::time::Duration,
}

/// `farm watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub job: JobRef,
    #[command(flatten)]
    pub reconnect: ReconnectArgs,
}

/// `farm submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Where the master is and how to reach it.
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub job: JobArgs,
    /// Wait for the job to end, with a progress bar on a terminal, and print its result.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub reconnect: ReconnectArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

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
    pub alloc: crate::alloc::AllocMasterArgs,
    #[command(flatten)]
    pub http: crate::http::HttpArgs,
}

/// `farm worker`: its flags are the SDK's, so a user's worker binary takes the same ones.
pub use farm_worker::cli::WorkerArgs;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
