//! Submit validation: the limits a job must fit before the core queues it.

use super::memory::{mib, Submission};
use super::{CoreConfig, CoreError};

/// Checks a submission against the core's limits: at most `max_active_jobs` jobs not yet
/// ended (`active` of them now), at most `max_shards_per_job` shards per job, and its bytes
/// within what is left of the memory budget (`used` bytes are held by live jobs now).
pub(crate) fn check_submit(
    config: &CoreConfig,
    active: usize,
    used: usize,
    sub: &Submission,
) -> Result<(), CoreError> {
    if active >= config.max_active_jobs {
        return Err(CoreError::TooManyJobs { active, limit: config.max_active_jobs });
    }
    let shards = sub.shards();
    if shards > config.max_shards_per_job {
        return Err(CoreError::TooManyShards { shards, limit: config.max_shards_per_job });
    }
    let need = sub.bytes();
    if used.saturating_add(need) > config.memory_budget {
        return Err(CoreError::MemoryBudget {
            budget_mib: mib(config.memory_budget),
            need_mib: mib(need),
            used_mib: mib(used),
        });
    }
    Ok(())
}
