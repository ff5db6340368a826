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
//! // Or both in one call, the quickest way to a small job's result:
//! let spec = JobSpec::new("primes", JobSource::Range { start: 0, end: 100, shard_size: 100 },
//!     Params::default(), 0).expect("valid spec");
//! let status = client.run(spec, None).await?;
//! println!("{}", status.result);
//! # Ok(()) }
//! ```
//!
//! # Files
//!
//! One entry per source file under `src/` (a test in `tests/tests/docs.rs` fails when one
//! is missing or names a file that is gone):
//!
//! - `alloc.rs`: allocation queues (`AllocAdd`, `AllocList`, `AllocRemove`)
//! - `kinds.rs`: the kernels the cluster offers (`ListKinds`)
//! - `logs.rs`: a job's per-shard logs (`Logs`): each kept shard's last run and what it logged
//! - `modules.rs`: wasm modules: uploaded once, content-addressed by SHA-256 (`PutModule`,
//!   `HasModule`)
//! - `results.rs`: a job's list result of any size (`Results`): its items in index order, from an
//!   offset
//! - `ride.rs`: waiting for a job to end, riding through a master restart
//! - `ride_tests.rs`: the ride through a lost master, against a scripted master under paused time

mod alloc;
mod kinds;
mod logs;
mod modules;
mod results;
mod ride;

pub use modules::{module_hash, ModuleRef};
pub use results::ResultsChunk;
pub use ride::{WaitEvent, WaitOptions};

use farm_proto::pb::{self, farm_service_client::FarmServiceClient};
use farm_proto::JobSpec;
pub use farm_proto::{
    AllocQueueInfo, AllocQueueSpec, AllocQueueState, AllocationInfo, AllocationState, DialedBy,
    JobEvent, JobState, JobStatus, JsonText, LogQuery, Progress, ShardLog, Submitted, WorkerInfo,
};
use futures::{Stream, StreamExt};
use tonic::transport::Channel;

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
    /// The master answered with an error (or the connection ended before it answered).
    #[error("{}: {}", code_name(.0.code()), .0.message())]
    Status(tonic::Status),
    /// The master went away while a job was being waited for, and did not come back within
    /// the bound (`WaitOptions::reconnect_for`).
    #[error(
        "lost the master while waiting for job {job}: it was not back within {}",
        seconds(*.waited)
    )]
    MasterLost {
        /// The job that was waited for.
        job: u64,
        /// How long the waiter tried to reconnect.
        waited: std::time::Duration,
    },
    /// The master came back without the job a client was waiting for: it restarted without
    /// its journal (or another job now has the id).
    #[error("job {0} is gone: the master restarted without --journal")]
    JobGone(u64),
    /// The master answered with something the domain types cannot hold (an unknown job state,
    /// an event without content, a result that is not JSON).
    #[error("malformed reply from the master: {0}")]
    Malformed(farm_proto::SpecError),
}

// By hand for the same reason as for `tonic::Status`.
impl From<farm_proto::SpecError> for ClientError {
    fn from(e: farm_proto::SpecError) -> Self {
        ClientError::Malformed(e)
    }
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

/// A duration as people write it on the command line: `60s`, `1500ms`.
fn seconds(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The channel every call goes through: for a plaintext client, a call the connection failed
/// gets the TLS mismatch hint here, whatever the RPC (see [`plaintext_failure`]).
type Transport = tower::util::MapErr<Channel, fn(tonic::transport::Error) -> tonic::Status>;

/// A connection's failure as the status tonic makes of it.
fn transport_failure(e: tonic::transport::Error) -> tonic::Status {
    tonic::Status::from_error(Box::new(e))
}

/// A plaintext connection's failure, with the hint of `farm_net::tls::mismatch_hint` when it
/// looks like a master that serves TLS hanging up.
fn plaintext_failure(e: tonic::transport::Error) -> tonic::Status {
    let status = transport_failure(e);
    let message = farm_net::tls::with_hint(status.message().to_string(), false);
    tonic::Status::new(status.code(), message)
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

/// A connection to a master. Cheap to clone. Its `Debug` output leaves the token out.
#[derive(Clone)]
pub struct Client {
    farm: FarmServiceClient<Transport>,
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

    /// Connects with a token and TLS (an `https://` URL; see `farm_net::tls::client`).
    pub async fn connect_with(
        url: &str,
        token: Option<String>,
        tls: Option<tonic::transport::ClientTlsConfig>,
    ) -> Result<Self> {
        let err = |reason: String| ClientError::Connect { url: url.to_string(), reason };
        let dials_tls = tls.is_some();
        let channel = farm_net::endpoint(url, tls).map_err(err)?.connect().await.map_err(|e| {
            err(farm_net::tls::with_hint(farm_net::tls::error_chain(&e), dials_tls))
        })?;
        let failure: fn(tonic::transport::Error) -> tonic::Status =
            if dials_tls { transport_failure } else { plaintext_failure };
        let max = farm_proto::MAX_MESSAGE_BYTES;
        let farm = FarmServiceClient::new(tower::ServiceExt::map_err(channel, failure))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
        Ok(Client { farm, token })
    }

    /// A request carrying the token.
    fn req<T>(&self, message: T) -> Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(message);
        farm_net::auth::attach(&mut request, self.token.as_deref())?;
        Ok(request)
    }

    /// Submits a job.
    pub async fn submit(&mut self, spec: JobSpec) -> Result<Submitted> {
        let req = pb::SubmitRequest {
            spec: Some(spec.into()),
            protocol_version: farm_proto::PROTOCOL_VERSION,
        };
        Ok(self.farm.submit(self.req(req)?).await?.into_inner().into())
    }

    /// Submits a job and waits for it to end, in one call (the `Run` RPC): returns its final
    /// status, a failed or cancelled one included. With `wait`, returns after that long at
    /// most, with the status of a job still queued or running (follow it with
    /// [`Client::wait`]). Unlike [`Client::wait`] it does not ride through a lost master: the
    /// call fails, and the job, once submitted, goes on.
    pub async fn run(
        &mut self,
        spec: JobSpec,
        wait: Option<std::time::Duration>,
    ) -> Result<JobStatus> {
        // 0 on the wire means "until it ends": a zero wait is sent as the shortest one.
        let wait_ms = wait.map_or(0, |w| u64::try_from(w.as_millis()).unwrap_or(u64::MAX).max(1));
        let req = pb::RunRequest {
            spec: Some(spec.into()),
            protocol_version: farm_proto::PROTOCOL_VERSION,
            wait_ms,
        };
        let status = self.farm.run(self.req(req)?).await?;
        Ok(status.into_inner().try_into()?)
    }

    /// A job's events: progress, shard outputs if `shard_results`, and the final status last.
    /// The shard outputs start with those accepted before the call (the master replays them
    /// from its store), so each shard's output comes exactly once however long after the
    /// submit the watch begins.
    pub async fn watch(
        &mut self,
        job: u64,
        shard_results: bool,
    ) -> Result<impl Stream<Item = Result<JobEvent>> + use<>> {
        let replay = shard_results;
        let request = self.req(pb::WatchRequest { job_id: job, shard_results, replay })?;
        let stream = self.farm.watch(request).await?;
        Ok(stream.into_inner().map(|item| Ok(JobEvent::try_from(item?)?)))
    }

    /// Waits for a job to end, calling `on_progress` as it advances; returns its final status.
    /// Rides through a master restart for up to a minute (see [`Client::wait_with`]).
    pub async fn wait(
        &mut self,
        job: u64,
        mut on_progress: impl FnMut(Progress),
    ) -> Result<JobStatus> {
        self.wait_with(job, &WaitOptions::default(), |event| {
            if let WaitEvent::Progress(p) = event {
                on_progress(p)
            }
        })
        .await
    }

    /// Waits for a job to end, calling `on_event` as it advances and when the master is lost
    /// and back; returns its final status. When the master goes away the wait reconnects, with
    /// backoff, for up to `options.reconnect_for`, then follows the job again: a job that ended
    /// meanwhile returns its final status. Ends with [`ClientError::JobGone`] if the master
    /// came back without the job, and [`ClientError::MasterLost`] if it did not come back.
    pub async fn wait_with(
        &mut self,
        job: u64,
        options: &WaitOptions,
        mut on_event: impl FnMut(WaitEvent),
    ) -> Result<JobStatus> {
        ride::follow(self, job, options, &mut on_event).await
    }

    /// One job's status.
    pub async fn get(&mut self, job: u64) -> Result<JobStatus> {
        let status = self.farm.get(self.req(pb::GetRequest { job_id: job })?).await?;
        Ok(status.into_inner().try_into()?)
    }

    /// Every job the master remembers, oldest first, without their results (`get` has them).
    pub async fn list(&mut self) -> Result<Vec<JobStatus>> {
        self.list_jobs(false).await
    }

    /// The jobs the master remembers, as [`Client::list`]; `mine`: only the caller's own.
    pub async fn list_jobs(&mut self, mine: bool) -> Result<Vec<JobStatus>> {
        let req = self.req(pb::ListRequest { mine })?;
        Ok(self.farm.list(req).await?.into_inner().try_into()?)
    }

    /// The audit trail's kept entries since `since_unix_ms` (0: all), oldest first.
    pub async fn audit(&mut self, since_unix_ms: u64) -> Result<Vec<pb::AuditEntry>> {
        let req = self.req(pb::AuditRequest { since_unix_ms, limit: 0 })?;
        Ok(self.farm.audit(req).await?.into_inner().entries)
    }

    /// Cancels a job; returns its status after the cancel.
    pub async fn cancel(&mut self, job: u64) -> Result<JobStatus> {
        let status = self.farm.cancel(self.req(pb::CancelRequest { job_id: job })?).await?;
        Ok(status.into_inner().try_into()?)
    }

    /// The connected workers.
    pub async fn workers(&mut self) -> Result<Vec<WorkerInfo>> {
        let request = self.req(pb::ListWorkersRequest {})?;
        Ok(self.farm.list_workers(request).await?.into_inner().try_into()?)
    }

    /// Asks a worker to drain and leave; returns it as it is now (draining).
    pub async fn drain_worker(&mut self, worker: u64) -> Result<WorkerInfo> {
        let request = self.req(pb::DrainWorkerRequest { worker_id: worker })?;
        Ok(self.farm.drain_worker(request).await?.into_inner().try_into()?)
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
    fn malformed_replies_name_what_was_wrong() {
        let wire = pb::JobStatus { state: 42, ..Default::default() };
        let e = ClientError::from(JobStatus::try_from(wire).expect_err("unknown state"));
        assert_eq!(e.to_string(), "malformed reply from the master: unknown job state 42");
        assert_eq!(e.code(), None);
    }
}
