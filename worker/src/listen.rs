//! Workers that wait for a master to dial them (`farm worker --listen ADDR`, reached by
//! `farm master --connect`). The worker serves `WorkerHost.Attach`; each accepted call becomes a
//! session run by the same code as a dialed one. One master holds the worker at a time: another
//! is refused with FailedPrecondition naming the holder, until the holder's session ends (it
//! left, or fell silent past the heartbeat bound).

use crate::pool::Pool;
use crate::registry::Registry;
use crate::session::{self, End, Link};
use crate::{WorkerConfig, WorkerError};
use farm_proto::pb::{
    self,
    worker_host_server::{WorkerHost, WorkerHostServer},
};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

/// The master holding this worker, if any.
type Holder = Arc<Mutex<Option<String>>>;

struct Host {
    holder: Holder,
    links: mpsc::Sender<Link>,
    config: WorkerConfig,
    registry: Registry,
    /// Checks the dialing master's token; refusals are counted and logged at most every 10 s.
    gate: farm_net::auth::Gate,
}

type WorkerStream = Pin<Box<dyn Stream<Item = Result<pb::WorkerMessage, Status>> + Send>>;

#[tonic::async_trait]
impl WorkerHost for Host {
    type AttachStream = WorkerStream;

    async fn attach(
        &self,
        req: Request<Streaming<pb::MasterMessage>>,
    ) -> Result<Response<WorkerStream>, Status> {
        let from = req.remote_addr().map(|a| a.to_string()).unwrap_or_else(|| "unknown".into());
        self.gate.check(&req)?;
        // A farm master names itself by its listen address; the connection's own port says little.
        let peer = match req.metadata().get("farm-master").and_then(|v| v.to_str().ok()) {
            Some(name) => format!("{name} (connected from {from})"),
            None => from,
        };
        {
            let mut holder =
                self.holder.lock().map_err(|_| Status::internal("holder lock poisoned"))?;
            if let Some(current) = holder.as_ref() {
                warn!(%peer, %current, "second master refused");
                return Err(Status::failed_precondition(format!(
                    "worker is held by master {current}"
                )));
            }
            *holder = Some(peer.clone());
        }
        let (tx, rx) = session::outgoing();
        session::register(&tx, &self.config, &self.registry).await;
        let link = Link { inbound: Box::pin(req.into_inner()), tx, peer: peer.clone() };
        if self.links.try_send(link).is_err() {
            if let Ok(mut holder) = self.holder.lock() {
                *holder = None;
            }
            return Err(Status::unavailable("worker is shutting down"));
        }
        info!(master = %peer, "master attached");
        Ok(Response::new(Box::pin(ReceiverStream::new(rx).map(Ok))))
    }
}

/// Serves on `listener` until `shutdown` resolves (draining a session in progress).
pub async fn serve<F>(
    listener: TcpListener,
    config: WorkerConfig,
    registry: Registry,
    shutdown: F,
) -> Result<(), WorkerError>
where
    F: Future<Output = ()> + Send,
{
    let pool = Pool::new(config.threads.max(1)).map_err(WorkerError::Threads)?;
    let holder: Holder = Arc::default();
    let (links, mut incoming) = mpsc::channel::<Link>(1);
    let host = Host {
        holder: holder.clone(),
        links,
        config: config.clone(),
        registry: registry.clone(),
        gate: farm_net::auth::Gate::new("masters", config.token.clone()),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut builder = farm_net::server_builder(config.server_tls.clone())
        .map_err(|e| WorkerError::Rejected(format!("bad TLS settings: {e}")))?;
    let server = tokio::spawn(
        builder
            .add_service(
                WorkerHostServer::new(host)
                    .max_decoding_message_size(farm_proto::MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(farm_proto::MAX_MESSAGE_BYTES),
            )
            .serve_with_incoming_shutdown(farm_net::incoming_nodelay(listener), async {
                let _ = stopped.await;
            }),
    );
    tokio::pin!(shutdown);
    let result = loop {
        let link = tokio::select! {
            _ = shutdown.as_mut() => break Ok(()),
            link = incoming.recv() => match link {
                Some(link) => link,
                None => break Ok(()),
            },
        };
        let peer = link.peer.clone();
        let outcome = session::run_session(link, &config, &registry, &pool, &mut shutdown).await;
        if let Ok(mut h) = holder.lock() {
            *h = None;
        }
        match outcome {
            (_, End::Shutdown) => break Ok(()),
            (_, End::Lost(reason)) => {
                warn!(master = %peer, %reason, "session ended, waiting for a master")
            }
            (_, End::Rejected(reason)) => {
                warn!(master = %peer, %reason, "master refused, waiting for another")
            }
        }
    };
    let _ = stop.send(());
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), server).await;
    result
}
