//! The flags of the listing commands (`farm jobs`, `farm kinds`) and of `farm completions`.

use super::{ClientArgs, OutputArgs};
use clap::Args;

/// `farm completions SHELL`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `farm kinds`.
#[derive(Debug, Args)]
pub struct KindsArgs {
    /// Where the master is and how to reach it.
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `farm jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Where the master is and how to reach it.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Only jobs in this state.
    #[arg(long, value_enum)]
    pub state: Option<StateFilter>,
    /// Only jobs of this kind.
    #[arg(long)]
    pub kind: Option<String>,
    /// Only the caller's own jobs (those its token's principal submitted).
    #[arg(long)]
    pub mine: bool,
    /// Show at most N jobs, the newest; says how many were left out (0: all).
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub limit: usize,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// A job state to filter by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateFilter {
    /// No shard handed out yet.
    Queued,
    /// Shards handed out.
    Running,
    /// Ended with a result.
    Succeeded,
    /// Ended with an error.
    Failed,
    /// Cancelled.
    Cancelled,
    /// Queued or running.
    Active,
    /// Succeeded, failed or cancelled.
    Ended,
}

impl StateFilter {
    /// Whether a job in `state` passes.
    pub fn admits(self, state: farm_proto::JobState) -> bool {
        use farm_proto::JobState as S;
        match self {
            StateFilter::Active => !state.is_final(),
            StateFilter::Ended => state.is_final(),
            StateFilter::Queued => state == S::Queued,
            StateFilter::Running => state == S::Running,
            StateFilter::Succeeded => state == S::Succeeded,
            StateFilter::Failed => state == S::Failed,
            StateFilter::Cancelled => state == S::Cancelled,
        }
    }
}
