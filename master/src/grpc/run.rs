//! `Run`: submit a job and answer once it ended, or once the caller's wait is over.

use super::{job_status, Farm};
use crate::access::Principal;
use crate::core::{CoreError, JobId, JobView};
use crate::error::{Error, Result};
use farm_proto::{pb, JobStatus};
use std::time::Duration;

/// Submits the request's job as Submit does (same checks, same codes, acknowledged once
/// journaled), then waits for it to end, for at most `wait_ms` when that is set, and returns
/// its status then. The wait holds nothing but a watch receiver, which goes with this future:
/// a caller that goes away leaves the job running as a Submit would, and nothing else.
pub(super) async fn run(farm: &Farm, who: &Principal, req: pb::RunRequest) -> Result<JobStatus> {
    let pb::RunRequest { spec, protocol_version, wait_ms } = req;
    let submitted = farm.submit_spec(spec, protocol_version, who.owner()).await;
    let target = submitted.as_ref().map_or("-".into(), |s| format!("job {}", s.job));
    farm.audit.outcome(&who.name, "submit", &target, &submitted);
    let job = submitted?.job;
    let view = if wait_ms == 0 {
        ended(farm, job).await?
    } else {
        match tokio::time::timeout(Duration::from_millis(wait_ms), ended(farm, job)).await {
            Ok(view) => view?,
            // Not ended yet: its status now, so the caller can follow it by its id.
            Err(_) => farm.core.get(job).await?.ok_or(CoreError::NoSuchJob(job))?,
        }
    };
    Ok(job_status(view))
}

/// Waits for job `job` to end and returns its final view (at once if it already ended: a
/// subscription to an ended job holds its final status).
async fn ended(farm: &Farm, job: JobId) -> Result<JobView> {
    let sub = farm.core.watch(job, false, false).await?;
    let mut status_rx = sub.ok_or(CoreError::NoSuchJob(job))?.status;
    let view =
        status_rx.wait_for(|v| v.state.is_final()).await.map_err(|_| Error::ShuttingDown)?.clone();
    Ok(view)
}
