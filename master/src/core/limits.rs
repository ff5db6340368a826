//! Submit validation: the limits a job must fit before the core queues it.

use super::{CoreConfig, CoreError};
use farm_proto::JobSpec;

/// Checks a submission against the core's limits: at most `max_active_jobs` jobs not yet
/// ended (`active` of them now), at most `max_shards_per_job` shards per job.
pub(crate) fn check_submit(
    config: &CoreConfig,
    active: usize,
    spec: &JobSpec,
) -> Result<(), CoreError> {
    if active >= config.max_active_jobs {
        return Err(CoreError::TooManyJobs { active, limit: config.max_active_jobs });
    }
    let shards = spec.source.shard_count();
    if shards > config.max_shards_per_job {
        return Err(CoreError::TooManyShards { shards, limit: config.max_shards_per_job });
    }
    Ok(())
}
