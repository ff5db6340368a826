//! The worker's own limits on the command line: `--idle-timeout` and `--time-limit` (plus the
//! allocation's id and end time, which an allocation's batch script passes in the
//! environment). Kept apart from the rest of the worker's flags: they are an allocation's business.

use super::parse_duration;
use crate::WorkerConfig;
use clap::Args;
use std::time::{Duration, SystemTime};

/// When a worker leaves on its own.
#[derive(Debug, Clone, Args)]
pub struct WorkerLifetimeArgs {
    /// Drain and exit after no work for this long (also while no master answers), e.g. 5m;
    /// workers of an allocation queue get the queue's --idle-timeout.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", env = "FARM_IDLE_TIMEOUT")]
    pub idle_timeout: Option<Duration>,
    /// This worker may run this long (its allocation's wall time, e.g. 1h): it stops taking
    /// shards shortly before (its drain timeout plus 10 s), finishes what it holds, and exits.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", env = "FARM_TIME_LIMIT")]
    pub time_limit: Option<Duration>,
    /// The allocation's end, in seconds since the Unix epoch (set by an allocation's batch
    /// script from the scheduler); the earlier of this and --time-limit counts.
    #[arg(long, value_name = "UNIX_SECONDS", env = "FARM_END_AT", hide = true)]
    pub end_at: Option<u64>,
    /// The scheduler job this worker runs in (set by an allocation's batch script), so the
    /// master knows which allocation it came from.
    #[arg(long, value_name = "ID", env = "FARM_ALLOC_ID", hide = true)]
    pub allocation: Option<String>,
}

impl WorkerLifetimeArgs {
    /// Puts the limits into the worker's config.
    pub fn apply(&self, config: &mut WorkerConfig) {
        config.lifetime.idle_timeout = self.idle_timeout;
        if let Some(limit) = self.time_limit {
            config.lifetime.end_no_later_than(SystemTime::now() + limit);
        }
        if let Some(secs) = self.end_at {
            config.lifetime.end_no_later_than(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
        }
        config.allocation = self.allocation.clone().unwrap_or_default();
    }
}
