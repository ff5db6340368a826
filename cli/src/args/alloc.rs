//! The flags of `farm alloc` and the master's flags that say how allocated workers reach it.

use super::{parse_duration, OutputArgs};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// `farm alloc …`.
#[derive(Debug, Args)]
pub struct AllocArgs {
    /// Where the master is and how to reach it (also accepted after the action).
    #[command(flatten)]
    pub client: super::ClientArgs,
    /// What to do.
    #[command(subcommand)]
    pub action: AllocAction,
}

/// The allocation queue commands.
#[derive(Debug, Subcommand)]
pub enum AllocAction {
    /// Register an allocation queue: while shards wait that connected and pending workers
    /// cannot take, the master submits allocations that each run `farm worker` processes,
    /// up to --max-workers; idle workers exit, ending their allocation.
    Add(AllocAddArgs),
    /// List the allocation queues and their allocations (queued, running, ended, failed,
    /// with the scheduler's job ids).
    List(OutputArgs),
    /// Remove an allocation queue: it submits nothing more, cancels its allocations still
    /// waiting at the scheduler, and lets running ones drain (or cancels them with --now).
    Remove {
        /// The queue's name, as `farm alloc list` shows it.
        name: String,
        /// Cancel its running allocations at once instead of letting them drain.
        #[arg(long)]
        now: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// `farm alloc add slurm [flags] -- [sbatch args]`.
#[derive(Debug, Args)]
pub struct AllocAddArgs {
    /// The batch scheduler to submit allocations to.
    #[arg(value_parser = ["slurm"])]
    pub scheduler: String,
    /// Most workers this queue's allocations run at once (queued or running).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub max_workers: u32,
    /// `farm worker` processes per allocation (Slurm tasks, started with srun).
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub workers_per_alloc: u32,
    /// Threads per worker, and CPUs per Slurm task [default: the cores each worker sees].
    #[arg(long, value_name = "T")]
    pub threads: Option<u32>,
    /// Each allocation's wall-time limit, e.g. 1h (at least 1m) [default: the partition's];
    /// workers stop taking shards shortly before it.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub time_limit: Option<Duration>,
    /// A worker with no work for this long exits; an allocation ends when its last worker has.
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    pub idle_timeout: Duration,
    /// The queue's name [default: slurm-1, slurm-2 …].
    #[arg(long)]
    pub name: Option<String>,
    /// More arguments for sbatch, after `--`, e.g. -- --partition=short --account=me: only
    /// options the master's operator allows (--alloc-allow-option; by default partition,
    /// account, qos, time, constraint, reservation, gres and mem), each as --name=value,
    /// --name value or -x value.
    #[arg(last = true, value_name = "SBATCH ARGS")]
    pub extra: Vec<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// How workers started by allocation queues reach this master (`farm master`).
#[derive(Debug, Args)]
pub struct AllocMasterArgs {
    /// The URL workers of allocation queues dial [default: this host's name and the port when
    /// listening on all interfaces, else the listen address].
    #[arg(long, value_name = "URL", env = "FARM_ADVERTISE")]
    pub advertise: Option<String>,
    /// Where allocation queues write batch scripts, the workers' token file (mode 0600) and
    /// the allocations' logs; compute nodes must see it at the same path [default:
    /// ~/.farm/alloc].
    #[arg(long, value_name = "DIR", env = "FARM_ALLOC_DIR")]
    pub alloc_dir: Option<PathBuf>,
    /// The sbatch options clients may pass with `farm alloc add slurm -- ARGS`, by long name,
    /// comma-separated, or `none`; any other option is refused [default:
    /// partition,account,qos,time,constraint,reservation,gres,mem].
    #[arg(long, value_delimiter = ',', value_name = "NAME,...", env = "FARM_ALLOC_ALLOW_OPTION")]
    pub alloc_allow_option: Option<Vec<String>>,
    /// An argument every allocation passes to sbatch after the client's, so it wins, e.g.
    /// --alloc-fixed-arg=--account=farm (repeat for more; the environment variable holds one).
    #[arg(long, value_name = "ARG", allow_hyphen_values = true, env = "FARM_ALLOC_FIXED_ARG")]
    pub alloc_fixed_arg: Vec<String>,
}
