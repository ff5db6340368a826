//! A typed async client for a farm master: submit jobs, watch them, list and cancel them, list
//! workers. The `farm` CLI is built on it; a Rust program can embed it the same way.
//!
//! ```no_run
//! # async fn demo() -> Result<(), farm_client::ClientError> {
//! use farm_proto::{JobSource, JobSpec, Params};
//! let mut client = farm_client::Client::connect("http://127.0.0.1:7070").await?;
//! let source = JobSource::Range { start: 0, end: 1_000_000, shard_size: 10_000 };
//! let spec = JobSpec::new("primes", source, Params::default(), 0).expect("valid spec");
//! let job = client.submit(spec).await?;
//! let status = client.wait(job.job, |_| {}).await?;
//! println!("{}", status.result);
//! # Ok(()) }
//! ```

use farm_proto::pb::{self, farm_service_client::FarmServiceClient, job_event::Event};
use farm_proto::{JobSpec, Output};
use futures::{Stream, StreamExt};
use serde::Serialize;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The master could not be reached.
    #[error("cannot reach master at {url}: {reason}")]
    Connect {
        /// The master URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The master answered with an error.
    #[error("{}: {}", code_name(.0.code()), .0.message())]
    Status(tonic::Status),
    /// The master went away while a job was being waited for.
    #[error("lost the master while waiting for job {0}: jobs do not survive a master restart")]
    MasterLost(u64),
}

// By hand rather than `#[from]`, so the status is not also reported as the error's source
// (which would print its message twice).
impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        ClientError::Status(status)
    }
}

impl ClientError {
    /// The gRPC status code, if the master answered.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            ClientError::Status(s) => Some(s.code()),
            _ => None,
        }
    }
}

/// Codes a stream ends with when the master shut down or the connection broke.
fn master_gone(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(code, Unavailable | Unknown | Internal | Cancelled)
}

fn code_name(code: tonic::Code) -> String {
    format!("{code:?}").chars().fold(String::new(), |mut s, c| {
        if c.is_uppercase() && !s.is_empty() {
            s.push(' ');
        }
        s.push(c.to_ascii_lowercase());
        s
    })
}

/// Result of this crate's calls.
pub type Result<T> = std::result::Result<T, ClientError>;

/// A job's status, with its result parsed; this is also the CLI's stable `--json` shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobStatus {
    /// The job id.
    pub job: u64,
    /// Its kernel.
    pub kind: String,
    /// queued, running, succeeded, failed or cancelled.
    pub state: String,
    /// Shards in all.
    pub shards: u64,
    /// Shards completed.
    pub done: u64,
    /// Shards in flight.
    pub running: u64,
    /// The reduced result (null until succeeded).
    pub result: serde_json::Value,
    /// Why it failed or was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// From submission to the end (or to now).
    pub elapsed_ms: u64,
    /// Its priority.
    pub priority: i32,
    /// Shards handed out again (lost or drained worker, retried failure).
    pub reruns: u64,
}

impl JobStatus {
    /// Whether the job is over.
    pub fn is_final(&self) -> bool {
        matches!(self.state.as_str(), "succeeded" | "failed" | "cancelled")
    }
}

impl From<pb::JobStatus> for JobStatus {
    fn from(s: pb::JobStatus) -> Self {
        let state = match pb::JobState::try_from(s.state).unwrap_or(pb::JobState::Unspecified) {
            pb::JobState::Queued => "queued",
            pb::JobState::Running => "running",
            pb::JobState::Succeeded => "succeeded",
            pb::JobState::Failed => "failed",
            pb::JobState::Cancelled => "cancelled",
            pb::JobState::Unspecified => "unknown",
        };
        let result = serde_json::from_str(&s.result_json).unwrap_or(serde_json::Value::Null);
        JobStatus {
            job: s.job_id,
            kind: s.kind,
            state: state.into(),
            shards: s.shards_total,
            done: s.shards_done,
            running: s.shards_running,
            result,
            error: (!s.error.is_empty()).then_some(s.error),
            elapsed_ms: s.elapsed_ms,
            priority: s.priority,
            reruns: s.shards_rerun,
        }
    }
}

/// An accepted submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Submitted {
    /// The new job's id.
    pub job: u64,
    /// How many shards it has.
    pub shards: u64,
}

/// Progress of a running job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Shards completed.
    pub done: u64,
    /// Shards in all.
    pub total: u64,
    /// Shards in flight.
    pub running: u64,
}

/// One event of a watched job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEvent {
    /// Progress changed.
    Progress(Progress),
    /// A shard's output (only when watching with shard results).
    Shard {
        /// The shard's index in the job.
        shard: u64,
        /// What it produced.
        output: Output,
    },
    /// The job ended; the last event.
    Finished(JobStatus),
}

/// A connection to a master. Cheap to clone. Its `Debug` output leaves the token out.
#[derive(Clone)]
pub struct Client {
    farm: FarmServiceClient<Channel>,
    /// Sent with every call, when the master requires one.
    token: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("token", &self.token.as_ref().map(|_| "***")).finish()
    }
}

impl Client {
    /// Connects to the master at `url` (e.g. `http://127.0.0.1:7070`).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_token(url, None).await
    }

    /// Connects to a master that requires a token (`FARM_TOKEN` on the master).
    pub async fn connect_with_token(url: &str, token: Option<String>) -> Result<Self> {
        Self::connect_with(url, token, None).await
    }

    /// Connects with a token and TLS (an `https://` URL; see `farm_proto::tls::client`).
    pub async fn connect_with(
        url: &str,
        token: Option<String>,
        tls: Option<tonic::transport::ClientTlsConfig>,
    ) -> Result<Self> {
        let err = |reason: String| ClientError::Connect { url: url.to_string(), reason };
        let url = farm_proto::tls::dial_url(url, tls.is_some());
        let mut endpoint = Endpoint::from_shared(url).map_err(|e| err(e.to_string()))?;
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls).map_err(|e| err(e.to_string()))?;
        }
        let channel = endpoint
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| err(farm_proto::tls::error_chain(&e)))?;
        let max = farm_proto::MAX_MESSAGE_BYTES;
        let farm = FarmServiceClient::new(channel)
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
        Ok(Client { farm, token })
    }

    /// A request carrying the token.
    fn req<T>(&self, message: T) -> Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(message);
        farm_proto::auth::attach(&mut request, self.token.as_deref())?;
        Ok(request)
    }

    /// Submits a job.
    pub async fn submit(&mut self, spec: JobSpec) -> Result<Submitted> {
        let req = pb::SubmitRequest {
            spec: Some(spec.into()),
            protocol_version: farm_proto::PROTOCOL_VERSION,
        };
        let resp = self.farm.submit(self.req(req)?).await?.into_inner();
        Ok(Submitted { job: resp.job_id, shards: resp.shards })
    }

    /// A job's events: progress, shard outputs if `shard_results`, and the final status last.
    pub async fn watch(
        &mut self,
        job: u64,
        shard_results: bool,
    ) -> Result<impl Stream<Item = Result<JobEvent>> + use<>> {
        let request = self.req(pb::WatchRequest { job_id: job, shard_results })?;
        let stream = self.farm.watch(request).await?;
        Ok(stream.into_inner().filter_map(|item| async move {
            match item {
                Err(status) => Some(Err(ClientError::Status(status))),
                Ok(pb::JobEvent { event: None }) => None,
                Ok(pb::JobEvent { event: Some(e) }) => Some(Ok(match e {
                    Event::Progress(p) => JobEvent::Progress(Progress {
                        done: p.done,
                        total: p.total,
                        running: p.running,
                    }),
                    Event::Shard(s) => {
                        let output = s.output.and_then(|o| Output::try_from(o).ok())?;
                        JobEvent::Shard { shard: s.shard, output }
                    }
                    Event::Finished(status) => JobEvent::Finished(status.into()),
                })),
            }
        }))
    }

    /// Waits for a job to end, calling `on_progress` as it advances; returns its final status.
    pub async fn wait(
        &mut self,
        job: u64,
        mut on_progress: impl FnMut(Progress),
    ) -> Result<JobStatus> {
        let mut events = std::pin::pin!(self.watch(job, false).await?);
        while let Some(event) = events.next().await {
            match event {
                Ok(JobEvent::Progress(p)) => on_progress(p),
                Ok(JobEvent::Finished(status)) => return Ok(status),
                Ok(JobEvent::Shard { .. }) => {}
                Err(ClientError::Status(s)) if master_gone(s.code()) => break,
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::MasterLost(job))
    }

    /// One job's status.
    pub async fn get(&mut self, job: u64) -> Result<JobStatus> {
        Ok(self.farm.get(self.req(pb::GetRequest { job_id: job })?).await?.into_inner().into())
    }

    /// Every job the master remembers, oldest first.
    pub async fn list(&mut self) -> Result<Vec<JobStatus>> {
        let jobs = self.farm.list(self.req(pb::ListRequest {})?).await?.into_inner().jobs;
        Ok(jobs.into_iter().map(Into::into).collect())
    }

    /// Cancels a job; returns its status after the cancel.
    pub async fn cancel(&mut self, job: u64) -> Result<JobStatus> {
        Ok(self
            .farm
            .cancel(self.req(pb::CancelRequest { job_id: job })?)
            .await?
            .into_inner()
            .into())
    }

    /// The connected workers.
    pub async fn workers(&mut self) -> Result<Vec<pb::WorkerInfo>> {
        Ok(self.farm.list_workers(self.req(pb::ListWorkersRequest {})?).await?.into_inner().workers)
    }

    /// Asks a worker to drain and leave; returns it as it is now (draining).
    pub async fn drain_worker(&mut self, worker: u64) -> Result<pb::WorkerInfo> {
        let request = self.req(pb::DrainWorkerRequest { worker_id: worker })?;
        Ok(self.farm.drain_worker(request).await?.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_read_as_lowercase_words() {
        let e = ClientError::Status(tonic::Status::invalid_argument("range 5..5 is empty"));
        assert_eq!(e.to_string(), "invalid argument: range 5..5 is empty");
        assert_eq!(e.code(), Some(tonic::Code::InvalidArgument));
    }

    #[test]
    fn job_status_parses_the_result_json() {
        let s = pb::JobStatus {
            job_id: 3,
            state: pb::JobState::Succeeded as i32,
            result_json: "664579".into(),
            ..Default::default()
        };
        let status = JobStatus::from(s);
        assert_eq!(status.result, serde_json::json!(664579));
        assert!(status.is_final());
        assert_eq!(status.error, None);
    }
}
