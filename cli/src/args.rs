//! The command line: clap structs only. Each role converts its args into the plain config type
//! its library takes (see `roles.rs`).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

mod alloc;
mod client;
mod duration;
pub(crate) mod lists;
mod serve;

pub use alloc::{AllocAction, AllocArgs, AllocMasterArgs};
pub use client::{AuthArgs, BeforeArgs, ClientArgs};
pub use duration::parse_duration;
pub use lists::{CompletionsArgs, JobsArgs, KindsArgs};
pub use serve::{LocalWorkerArgs, MasterArgs, RunArgs, SchedulerArgs, ShowdownArgs};

/// The help heading of the flags every command takes (`--config`, `--log-*`), so a command's
/// own flags stand apart from them in its `-h`.
const GLOBAL: &str = "Global options";

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
    #[arg(long, global = true, value_name = "FILE", help_heading = GLOBAL)]
    pub config: Option<PathBuf>,

    /// How logs (on stderr) are written: text, coloured only on a terminal and never with
    /// NO_COLOR set, or one JSON object a line for log shippers.
    #[arg(long, global = true, value_enum, default_value = "text", env = "FARM_LOG_FORMAT",
          help_heading = GLOBAL)]
    pub log_format: crate::logging::LogFormat,

    /// Log filter, e.g. debug or farm_master=debug [default: RUST_LOG, else info for master and
    /// worker, warn otherwise]; h2, hyper, tower and tonic stay at warn unless named.
    #[arg(long, global = true, value_name = "FILTER", env = "FARM_LOG_LEVEL", help_heading = GLOBAL)]
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
    /// Write a succeeded job's result: a list of any size streamed from the master (a JSON
    /// array, or one item a line with --ndjson), or a count or estimate as its JSON; with
    /// --partial, a failed job's good outputs.
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
    Alloc(AllocArgs),
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

    /// Run the job only on workers labelled KEY=VALUE (`farm worker --label`); repeat for
    /// several, all of which a worker must hold. While no connected worker has them the job
    /// waits, its status saying which it lacks.
    #[arg(long = "require", value_name = "KEY=VALUE")]
    pub requires: Vec<String>,

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
    /// Of a job that failed or was cancelled: the outputs of the shards that succeeded, with
    /// one item `{"missing_shard": N}` in place of each shard that has none.
    #[arg(long)]
    pub partial: bool,
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

    #[test]
    fn a_commands_help_puts_the_global_flags_under_their_own_heading() {
        let mut cli = Cli::command();
        cli.build();
        let run = cli.find_subcommand_mut("run").expect("run");
        let help = run.render_help().to_string();
        let global = help.find("Global options:").expect(&help);
        for flag in ["--config", "--log-format", "--log-level"] {
            assert!(help.find(flag).is_some_and(|at| at > global), "{flag}: {help}");
        }
        assert!(help.find("--shard-size").is_some_and(|at| at < global), "{help}");
    }
}
