//! The handlers behind `/api/` and `/metrics`: thin adapters like the gRPC ones, asking the
//! core's task through the same handle; a refusal is the master's [`Error`], mapped to an HTTP
//! status in one function ([`http_status`]), with the message gRPC sends too.

use super::feed::{average, tenth, JobOut};
use super::{Http, ACTION_HEADER};
use crate::access::{Principal, Role};
use crate::core::{CoreError, JobRow, ShardTrouble};
use crate::error::{Error, Kind, Result};
use axum::extract::{Extension, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Serialize;
use std::convert::Infallible;
use std::sync::Arc;

/// Troubled shards listed in a job's detail.
const TROUBLES: usize = 100;

/// A JSON body.
fn json(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Maps every error the master can return to an HTTP status, in this one place: by the
/// error's kind, as `grpc::status` maps it to a gRPC code.
pub(crate) fn http_status(e: &Error) -> StatusCode {
    match e.kind() {
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::AlreadyExists | Kind::FailedPrecondition => StatusCode::CONFLICT,
        Kind::InvalidArgument => StatusCode::BAD_REQUEST,
        Kind::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Kind::PermissionDenied => StatusCode::FORBIDDEN,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A refusal: its HTTP status, and the message as JSON.
pub(super) fn refused(e: &Error) -> Response {
    let body = serde_json::json!({ "error": e.to_string() }).to_string();
    (http_status(e), [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The refusal of an action without [`ACTION_HEADER`], which a cross-site form cannot send.
fn forged(headers: &HeaderMap) -> Option<Response> {
    if headers.contains_key(ACTION_HEADER) {
        return None;
    }
    let msg = format!("actions need the {ACTION_HEADER} header");
    Some(refused(&Error::FailedPrecondition(msg)))
}

/// `GET /api/state`: a fresh frame, as the feed sends them.
pub(super) async fn state(
    State(http): State<Http>,
    Extension(who): Extension<Arc<Principal>>,
) -> Response {
    match http.feed.refresh().await {
        Ok(frame) => json(super::feed::seen_by(&frame, &who).to_string()),
        Err(s) => refused(&s),
    }
}

/// `GET /api/events`: server-sent events, one frame per second (the feed's, shared by every
/// browser), starting with a fresh one; ends at shutdown.
pub(super) async fn events(
    State(http): State<Http>,
    Extension(who): Extension<Arc<Principal>>,
) -> Response {
    let mut rx = http.feed.subscribe();
    if let Err(s) = http.feed.refresh().await {
        return refused(&s);
    }
    rx.mark_changed();
    let frames = futures::stream::unfold(rx, move |mut rx| {
        let who = who.clone();
        async move {
            rx.changed().await.ok()?;
            let frame = rx.borrow_and_update().clone();
            let frame = super::feed::seen_by(&frame, &who);
            Some((Ok::<_, Infallible>(Event::default().data(&*frame)), rx))
        }
    });
    let tasks = http.core.tasks().clone();
    let frames = frames.take_until(async move { tasks.stopped().await });
    Sse::new(frames).keep_alive(KeepAlive::default()).into_response()
}

/// `GET /api/me`: who the token names and what it may do, so the page greys out the rest.
pub(super) async fn me(Extension(who): Extension<Arc<Principal>>) -> Response {
    let body = serde_json::json!({
        "name": &*who.name,
        "roles": who.roles.iter().map(|r| r.name()).collect::<Vec<_>>(),
        "sees_all": who.sees_all(),
        "may_cancel_own": who.may(Role::Submit),
        "may_cancel_any": who.may(Role::Operate),
        "may_drain": who.may(Role::Operate),
    });
    json(body.to_string())
}

/// A job in detail.
#[derive(Serialize)]
struct Detail<'a> {
    /// The job.
    job: JobOut<'a>,
    /// Its troubled shards, at most [`TROUBLES`].
    troubles: Vec<Trouble>,
    /// How many shards are troubled in all.
    troubled: usize,
    /// The kept per-shard logs (`farm logs`), failed runs first, at most [`LOGS`] of them, one
    /// text block each; null when they cannot be read.
    logs: Option<Vec<String>>,
}

/// A troubled shard.
#[derive(Serialize)]
struct Trouble {
    /// The shard.
    shard: u64,
    /// Its first index.
    lo: u64,
    /// The end of its indices (exclusive).
    hi: u64,
    /// Failed runs.
    failures: u32,
    /// Workers lost while it ran on them.
    crashes: u32,
}

impl From<&ShardTrouble> for Trouble {
    fn from(t: &ShardTrouble) -> Self {
        Trouble { shard: t.shard, lo: t.lo, hi: t.hi, failures: t.failures, crashes: t.crashes }
    }
}

/// The average rate of a job since it was submitted.
fn average_rate(row: &JobRow) -> f64 {
    tenth(average(row.view.done, row.view.elapsed_ms))
}

/// `GET /api/jobs/{id}`: one job, with its troubled shards.
pub(super) async fn job(
    State(http): State<Http>,
    Extension(who): Extension<Arc<Principal>>,
    Path(id): Path<u64>,
) -> Response {
    let detail = match http.core.detail(id, TROUBLES).await {
        Ok(Some(d)) => d,
        Ok(None) => return refused(&CoreError::NoSuchJob(id).into()),
        Err(s) => return refused(&s),
    };
    let owner = crate::grpc::job_owner(&detail.row.view);
    if let Err(denied) = who.require_owner(Role::Read, owner, "status") {
        return refused(&denied.into());
    }
    let body = Detail {
        job: JobOut::new(&detail.row, average_rate(&detail.row)),
        troubles: detail.troubles.iter().map(Trouble::from).collect(),
        troubled: detail.troubled,
        logs: shard_logs(&http, id).await,
    };
    json(serde_json::to_string(&body).unwrap_or_default())
}

/// Most per-shard logs a job's detail view shows; `farm logs JOB` has them all.
const LOGS: usize = 50;

/// A job's kept per-shard logs as text blocks: failed runs first, then the others, at most
/// [`LOGS`]; `None` if the store cannot be read.
async fn shard_logs(http: &Http, job: u64) -> Option<Vec<String>> {
    let mut blocks = Vec::new();
    for failed_only in [true, false] {
        let query = farm_proto::LogQuery { shard: None, failed_only };
        let mut chunks = crate::logs::shard_logs(&http.core, &http.store, job, query).await.ok()?;
        while let Some(chunk) = chunks.recv().await {
            for log in chunk.ok()? {
                if blocks.len() == LOGS {
                    return Some(blocks);
                }
                if failed_only || !log.failed {
                    blocks.push(log_block(&log));
                }
            }
        }
    }
    Some(blocks)
}

/// One shard's log as the page shows it: a header line, the error, what it logged.
fn log_block(log: &farm_proto::ShardLog) -> String {
    let outcome = if log.failed { "failed" } else { "done" };
    let exit = log.exit_code.map(|c| format!(", exit {c}")).unwrap_or_default();
    let mut text = format!(
        "shard {} on {} ({}), {} ms, {outcome}{exit}",
        log.shard, log.worker, log.host, log.duration_ms
    );
    for part in [&log.error, &log.log] {
        if !part.is_empty() {
            text.push('\n');
            text.push_str(part.trim_end());
        }
    }
    text
}

/// `POST /api/jobs/{id}/cancel`.
pub(super) async fn cancel(
    State(http): State<Http>,
    Extension(who): Extension<Arc<Principal>>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = forged(&headers) {
        return refusal;
    }
    let cancelled = match http.core.get(id).await {
        Ok(Some(view)) => {
            match who.require_owner(Role::Submit, crate::grpc::job_owner(&view), "cancel") {
                Ok(()) => http.core.cancel(id).await,
                Err(denied) => Err(denied.into()),
            }
        }
        Ok(None) => Err(CoreError::NoSuchJob(id).into()),
        Err(e) => Err(e),
    };
    http.audit.outcome(&who.name, "cancel", &format!("job {id}"), &cancelled);
    answer(cancelled, |view| {
        let row = JobRow { view, queued: 0 };
        serde_json::to_string(&JobOut::new(&row, 0.0)).unwrap_or_default()
    })
}

/// `POST /api/workers/{id}/drain`.
pub(super) async fn drain(
    State(http): State<Http>,
    Extension(who): Extension<Arc<Principal>>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = forged(&headers) {
        return refusal;
    }
    let drained = http.core.drain(id).await;
    http.audit.outcome(&who.name, "drain", &format!("worker {id}"), &drained);
    answer(drained, |w| {
        serde_json::json!({ "id": w.id, "name": w.spec.name, "draining": w.draining }).to_string()
    })
}

/// An action's reply: its result as JSON, or the core's refusal as the matching HTTP status.
fn answer<T>(result: Result<T>, body: impl FnOnce(T) -> String) -> Response {
    match result {
        Ok(done) => json(body(done)),
        Err(e) => refused(&e),
    }
}

/// `GET /metrics`: the gauges set from a fresh overview, then every metric in the OpenMetrics
/// text format.
pub(super) async fn metrics(State(http): State<Http>) -> Response {
    let _one_at_a_time = http.scrape.lock().await;
    let overview = match http.core.overview(0).await {
        Ok(o) => o,
        Err(s) => return refused(&s),
    };
    let metrics = http.core.metrics();
    metrics.set_gauges(&overview);
    let text = metrics.encode();
    let kind = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, kind)], text).into_response()
}
