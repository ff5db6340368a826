//! Masters that dial their workers (`farm master --connect host:port`): one task per listed
//! worker keeps dialing it with capped backoff and jitter, opens `WorkerHost.Attach`, and hands
//! the stream to the same session code as a worker that dialed in. A reconnect after a loss is
//! a new worker instance: its old shards were already re-queued when the session ended.

use crate::actor::CoreHandle;
use crate::modules::Modules;
use crate::sessions::{accept_session, queue};
use farm_net::Backoff;
use farm_proto::pb::worker_host_client::WorkerHostClient;
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::transport::Endpoint;
use tracing::{debug, info, warn};

/// Longest wait between attempts to reach a listed worker.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The request header with which a master names itself (its listen address) to a worker.
pub const MASTER_HEADER: &str = "farm-master";

/// Keeps a session with the worker at `host` until shutdown, as one of the master's tracked
/// tasks; `me` is this master's listen address, shown to the worker (and to any other master
/// it refuses).
pub fn spawn(
    core: CoreHandle,
    modules: Modules,
    host: String,
    me: String,
    token: Option<String>,
    tls: Option<tonic::transport::ClientTlsConfig>,
) {
    let tasks = core.tasks().clone();
    tasks.clone().spawn(format!("connector to {host}"), async move {
        let endpoint = match farm_net::endpoint(&host, tls) {
            Ok(e) => e,
            Err(e) => {
                warn!(%host, error = %e, "bad worker address, not dialing it");
                return;
            }
        };
        let mut backoff = Backoff::new(MAX_BACKOFF);
        loop {
            tokio::select! {
                _ = tasks.stopped() => return,
                ended = attach(&core, &modules, &endpoint, &host, &me, token.as_deref()) => match ended {
                    Ok(()) => backoff.reset(),
                    Err(reason) => debug!(%host, %reason, "worker not reached"),
                },
            }
            tokio::select! {
                _ = tasks.stopped() => return,
                _ = tokio::time::sleep(backoff.next()) => {}
            }
        }
    });
}

/// One session with the worker: dial, attach, run until it ends. `Err` if none was established.
async fn attach(
    core: &CoreHandle,
    modules: &Modules,
    endpoint: &Endpoint,
    host: &str,
    me: &str,
    token: Option<&str>,
) -> Result<(), String> {
    let channel = endpoint.connect().await.map_err(|e| format!("cannot connect: {e}"))?;
    let mut client = WorkerHostClient::new(channel)
        .max_decoding_message_size(farm_proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(farm_proto::MAX_MESSAGE_BYTES);
    let (tx, rx) = queue(core, modules);
    // An `Err` queued for the worker (declared lost, fallen behind) ends our half of the stream.
    let outgoing = rx.map_while(Result::ok);
    let mut request = tonic::Request::new(outgoing);
    if let Ok(value) = me.parse() {
        request.metadata_mut().insert(MASTER_HEADER, value);
    }
    farm_net::auth::attach(&mut request, token).map_err(|s| s.message().to_string())?;
    let inbound = match client.attach(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            if matches!(
                status.code(),
                tonic::Code::FailedPrecondition | tonic::Code::Unauthenticated
            ) {
                warn!(%host, reason = status.message(), "listed worker refused this master");
            }
            return Err(status.message().to_string());
        }
    };
    let (core, modules) = (core.clone(), modules.clone());
    let session = accept_session(core, modules, inbound, host.to_string(), "master", tx)
        .await
        .map_err(|s| {
            warn!(%host, reason = s.message(), "listed worker's registration refused");
            s.message().to_string()
        })?;
    info!(%host, "attached to listed worker");
    let _ = session.await;
    Ok(())
}
