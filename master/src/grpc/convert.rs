//! The client service's wire conversions: errors to statuses (the one place), jobs and workers
//! to the types clients see.

use crate::clock::unix_ms;
use crate::core::{JobView, WorkerView};
use crate::error::{Error, Kind, Result};
use farm_proto::{DialedBy, JobStatus, JsonText, WorkerInfo, LIST_RESULT_BYTES};
use tonic::{Code, Status};

/// Maps every error the master can return to a status, in this one place: the code by the
/// error's kind, the message its `Display` (the HTTP API maps the same kinds in `http::api`).
pub(crate) fn status(e: Error) -> Status {
    let code = match e.kind() {
        Kind::NotFound => Code::NotFound,
        Kind::AlreadyExists => Code::AlreadyExists,
        Kind::InvalidArgument => Code::InvalidArgument,
        Kind::FailedPrecondition => Code::FailedPrecondition,
        Kind::ResourceExhausted => Code::ResourceExhausted,
        Kind::PermissionDenied => Code::PermissionDenied,
        Kind::Unavailable => Code::Unavailable,
        Kind::Internal => Code::Internal,
    };
    Status::new(code, e.to_string())
}

/// A job as clients see it; the domain type becomes the wire type in farm-proto.
pub fn job_status(v: JobView) -> JobStatus {
    JobStatus {
        job: v.id,
        kind: v.kind,
        state: v.state,
        shards: v.total,
        done: v.done,
        in_flight: v.in_flight,
        // The core rendered it with serde_json; it goes on as text, unparsed. The one copy of
        // it a reply needs is made here, on the handler's side, not on the core's task.
        result: v.result_json.map_or_else(JsonText::null, |r| JsonText::trusted(r.to_string())),
        error: v.error,
        elapsed_ms: v.elapsed_ms,
        priority: v.priority,
        reruns: v.reruns,
        result_in_store: v.result_in_store,
        submitted_unix_ms: unix_ms().saturating_sub(v.age_ms),
        result_left_out: false,
        waiting: v.waiting,
        output: v.output,
        owner: v.owner.to_string(),
    }
}

/// A job as a List shows it: a result longer than `LIST_RESULT_BYTES` is left out (and said
/// to be), so a list of many jobs stays cheap; Get has it.
pub fn listed_status(v: JobView) -> JobStatus {
    let long = v.result_json.as_ref().is_some_and(|r| r.len() > LIST_RESULT_BYTES);
    if long {
        JobStatus { result: JsonText::null(), result_left_out: true, ..job_status(v) }
    } else {
        job_status(v)
    }
}

/// A worker as clients see it. A session states who dialed it; anything else is a bug here.
pub(super) fn worker_info(w: WorkerView) -> Result<WorkerInfo> {
    let dialed_by =
        w.spec.dialed_by.parse::<DialedBy>().map_err(|e| Error::Internal(e.to_string()))?;
    Ok(WorkerInfo {
        worker: w.id,
        name: w.spec.name,
        hostname: w.spec.hostname,
        pid: w.spec.pid,
        address: w.spec.address,
        threads: w.spec.threads,
        in_flight: w.in_flight,
        done: w.done,
        kinds: w.spec.kinds,
        connected_secs: w.connected_secs,
        restarts: w.spec.restarts,
        draining: w.draining,
        dialed_by,
        suspect: w.suspect,
        labels: w.spec.labels,
    })
}
