//! Worker sessions on the master's side, whichever side dialed: a worker calling
//! `WorkerService.Connect`, or the master calling `WorkerHost.Attach` on a listening worker
//! (`--connect`). Both hand their stream to [`accept_session`]; only the transport differs.

use crate::actor::{CoreHandle, LastHeard, WorkerTx};
use crate::core::{ShardOutcome, WorkerId, WorkerSpec};
use crate::modules::Modules;
use crate::outgoing::{self, NotSent};
use farm_proto::kernel::{clip, quote};
use farm_proto::pb::{self, worker_message::Msg, worker_service_server::WorkerService};
use farm_proto::session::Results;
use farm_proto::session::{ModuleBytes, ToWorker};
use farm_proto::KernelDescriptor;
use std::pin::Pin;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, warn};

/// A worker claiming more threads is refused.
pub const MAX_THREADS: u32 = farm_proto::MAX_THREADS;
/// A worker must register within this long after its stream opens.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);

/// `WorkerService`, for workers that dial the master.
pub struct Workers {
    /// The core's task.
    pub core: CoreHandle,
    /// The wasm modules workers fetch.
    pub modules: Modules,
}

/// A session's messages to its worker ([`outgoing::WorkerRx`]).
type MasterStream = Pin<Box<dyn Stream<Item = Result<pb::MasterMessage, Status>> + Send>>;

#[tonic::async_trait]
impl WorkerService for Workers {
    type ConnectStream = MasterStream;

    async fn connect(
        &self,
        req: Request<Streaming<pb::WorkerMessage>>,
    ) -> Result<Response<MasterStream>, Status> {
        let address = req.remote_addr().map(|a| a.to_string()).unwrap_or_default();
        let (tx, rx) = queue(&self.core, &self.modules);
        let (core, modules) = (self.core.clone(), self.modules.clone());
        accept_session(core, modules, req.into_inner(), address, "worker", tx).await?;
        Ok(Response::new(Box::pin(rx)))
    }
}

/// A new session's queue toward its worker, bounded for the largest module this master holds,
/// counting what leaves into the sent-bytes metric.
pub(crate) fn queue(core: &CoreHandle, modules: &Modules) -> (WorkerTx, outgoing::WorkerRx) {
    let bound = outgoing::bound_for(modules.limits().max_module);
    outgoing::channel(bound, core.metrics().sent_bytes.clone())
}

/// Checks the worker's registration, joins it to the core (whose messages to it go to `tx`),
/// and spawns the task that reads its messages, tracked with the master's tasks; the task ends
/// with the session or at shutdown.
pub(crate) async fn accept_session(
    core: CoreHandle,
    modules: Modules,
    mut inbound: Streaming<pb::WorkerMessage>,
    address: String,
    dialed_by: &'static str,
    tx: WorkerTx,
) -> Result<JoinHandle<()>, Status> {
    let first = tokio::time::timeout(REGISTER_TIMEOUT, inbound.message())
        .await
        .map_err(|_| Status::deadline_exceeded("no register message in time"))??;
    let Some(pb::WorkerMessage { msg: Some(Msg::Register(reg)) }) = first else {
        return Err(Status::invalid_argument("the first message must be register"));
    };
    let ours = farm_proto::PROTOCOL_VERSION;
    if reg.protocol_version != ours {
        warn!(%address, theirs = reg.protocol_version, ours, "worker of another protocol version refused");
        return Err(Status::failed_precondition(format!(
            "worker speaks protocol version {}, this master speaks {ours}",
            reg.protocol_version
        )));
    }
    if reg.threads == 0 || reg.threads > MAX_THREADS {
        warn!(%address, threads = reg.threads, "worker with a bad thread count refused");
        return Err(Status::invalid_argument(format!(
            "threads must be 1..={MAX_THREADS}, got {}",
            reg.threads
        )));
    }
    let kernels = reg
        .kernels
        .into_iter()
        .map(KernelDescriptor::try_from)
        .collect::<Result<Vec<_>, _>>()
        .and_then(|k| farm_proto::kernel::check_limits(&k).map(|()| k))
        .map_err(|e| {
            warn!(%address, error = %e, "worker with bad kernel descriptors refused");
            Status::invalid_argument(format!("bad kernel descriptors: {e}"))
        })?;
    let shown = |what: &str, text: &str| {
        if text.chars().any(char::is_control) {
            warn!(%address, what, text = ?clip(text), "worker with a control character in a name refused");
            return Err(Status::invalid_argument(format!(
                "worker {what} {} holds a control character",
                quote(text)
            )));
        }
        Ok(clip(text))
    };
    let labels: farm_proto::Labels = reg.labels.into_iter().collect();
    farm_proto::labels::check("label", &labels).map_err(|e| {
        warn!(%address, error = %e, "worker with bad labels refused");
        Status::invalid_argument(format!("bad worker labels: {e}"))
    })?;
    let spec = WorkerSpec {
        threads: reg.threads,
        kinds: kernels.iter().map(|k| k.kind.clone()).collect(),
        name: shown("name", &reg.name)?,
        hostname: shown("hostname", &reg.hostname)?,
        pid: reg.pid,
        address: address.clone(),
        restarts: reg.restarts,
        dialed_by: dialed_by.to_string(),
        allocation: shown("allocation", &reg.allocation)?,
        labels,
    };
    let link = Link { modules, tx: tx.clone() };
    let (id, heard) = core.join(spec, kernels, tx).await.map_err(crate::grpc::status)?;
    let tasks = core.tasks().clone();
    Ok(tasks.spawn(format!("session reader for worker {id}"), async move {
        tokio::select! {
            reason = read_session(&core, &link, id, &heard, &mut inbound) => {
                core.left(id, reason).await
            }
            // The core's task ends every session itself; nothing is left to tell it.
            _ = core.tasks().stopped() => {}
        }
    }))
}

/// Reads one worker's messages until its session ends (its stream ends, or its queue is
/// closed: dropped by the core, fallen behind), and says why it ended. Every message stamps
/// `heard`; results wait for room in the core's mailbox, which slows this worker's stream (and
/// so the worker) when the core falls behind. Messages are handled one at a time, a module
/// fetch included, so a session has at most one fetch in flight.
async fn read_session(
    core: &CoreHandle,
    link: &Link,
    id: WorkerId,
    heard: &LastHeard,
    inbound: &mut Streaming<pb::WorkerMessage>,
) -> String {
    loop {
        let next = tokio::select! {
            next = inbound.message() => next,
            why = link.tx.closed() => return why,
        };
        let msg = match next {
            Ok(Some(pb::WorkerMessage { msg: Some(msg) })) => msg,
            Ok(Some(pb::WorkerMessage { msg: None })) => {
                debug!(worker = id, "empty message from worker ignored");
                continue;
            }
            Ok(None) => return "stream closed".to_string(),
            Err(e) => return format!("stream error: {}", e.message()),
        };
        heard.stamp();
        // One walk of the message for its size (a result batch's is also the results').
        let metrics = core.metrics();
        let bytes = msg.encoded_len() as u64;
        metrics.received_bytes.inc_by(bytes);
        match msg {
            Msg::Heartbeat(_) => {}
            Msg::Results(batch) => {
                metrics.result_bytes.inc_by(bytes);
                let lenient = |d| Ok::<_, std::convert::Infallible>(outcome(d));
                let Ok(results) = Results::from_wire(batch, lenient);
                // Results wait while the journal's writer is behind, so a fast producer of
                // large outputs cannot queue without bound in the master.
                core.journal_room().await;
                core.results(id, results).await
            }
            Msg::Draining(_) => core.draining(id).await,
            Msg::Refused(r) => core.refused(id, r.job_id, clip(&r.reason)).await,
            Msg::FetchModule(f) => {
                if let Err(why) = send_module(link, id, f.sha256).await {
                    return why;
                }
            }
            Msg::Register(_) => {
                warn!(worker = id, "second register on one session, ending it");
                return "registered twice".to_string();
            }
        }
    }
}

/// What a session's reader needs besides the core: the modules, and the way to the worker.
struct Link {
    /// The wasm modules, for fetches.
    modules: Modules,
    /// Messages to the worker (the same channel the core's task sends on).
    tx: WorkerTx,
}

/// Sends a worker the module it asked for (or why not). The read runs on a blocking thread, a
/// few at a time (`Modules::fetch`); this reader waits for it, so a worker that asks again
/// before the answer is queued waits too. `Err` (why) if the worker's queue is over its bound:
/// a worker that asks faster than it reads is dropped, not buffered for.
async fn send_module(link: &Link, id: WorkerId, sha256: String) -> Result<(), String> {
    let wasm = link.modules.fetch(&sha256).await.map_err(|e| e.to_string());
    match &wasm {
        Ok(bytes) => debug!(worker = id, module = %sha256, bytes = bytes.len(), "module sent"),
        Err(e) => warn!(worker = id, module = %sha256, error = %e, "module not sent"),
    }
    match link.tx.send(ToWorker::Module(ModuleBytes { sha256, wasm }).into()) {
        Err(NotSent::FellBehind { queued }) => Err(outgoing::fell_behind(id, queued).to_string()),
        // Closed: the reader sees it at its next message.
        Err(NotSent::Closed) | Ok(()) => Ok(()),
    }
}

/// One shard's outcome; one that does not decode fails that shard alone, not the batch.
fn outcome(done: pb::ShardDone) -> (u64, u64, ShardOutcome) {
    let (job_id, shard) = (done.job_id, done.shard);
    ShardOutcome::of_done(done).unwrap_or_else(|e| {
        (job_id, shard, ShardOutcome::Failed(format!("malformed result from worker: {e}")))
    })
}
