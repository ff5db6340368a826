//! Serving: the client and worker services, gRPC health and reflection, on one listener.

use crate::actor;
use crate::core::CoreConfig;
use crate::grpc::Farm;
use crate::sessions::Workers;
use farm_proto::pb::farm_service_server::FarmServiceServer;
use farm_proto::pb::worker_service_server::WorkerServiceServer;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tracing::{info, warn};

/// How the master serves.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// Scheduler limits and tuning.
    pub core: CoreConfig,
    /// How often master and workers exchange heartbeats; a worker silent for 2.5 of these is lost.
    pub heartbeat: Duration,
    /// Listening workers to dial (`host:port`), kept dialing while they are down.
    pub connect: Vec<String>,
    /// Token clients must present; none: clients are not checked.
    pub client_token: Option<String>,
    /// Token workers must present (and that this master presents to listening workers).
    pub worker_token: Option<String>,
    /// Serve TLS with this identity (and, for mutual TLS, client CA).
    pub tls: Option<tonic::transport::ServerTlsConfig>,
    /// TLS for dialing listening workers.
    pub connect_tls: Option<tonic::transport::ClientTlsConfig>,
}

impl Default for MasterConfig {
    fn default() -> Self {
        let heartbeat = Duration::from_secs(1);
        MasterConfig {
            core: CoreConfig { heartbeat_timeout: heartbeat * 5 / 2, ..Default::default() },
            heartbeat,
            connect: Vec::new(),
            client_token: None,
            worker_token: None,
            tls: None,
            connect_tls: None,
        }
    }
}

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// The transport failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The reflection service could not be built from the descriptor set.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// An interceptor that lets through only requests carrying `token` (all, if there is none), and
/// logs the ones it refuses.
fn require(
    who: &'static str,
    token: Option<String>,
) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    move |req: tonic::Request<()>| {
        if let Err(status) = farm_proto::auth::check(&req, token.as_deref()) {
            let peer = req.remote_addr().map(|a| a.to_string()).unwrap_or_default();
            warn!(%peer, who, reason = status.message(), "request refused");
            return Err(status);
        }
        Ok(req)
    }
}

/// Serves on `listener` until `shutdown` resolves. On shutdown every worker session and watch
/// stream is ended first, so the transport can close without waiting on long-lived streams.
pub async fn serve(
    listener: TcpListener,
    config: MasterConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), MasterError> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let core = actor::spawn(config.core.clone(), config.heartbeat, stop_rx.clone());
    let me = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    for host in &config.connect {
        let token = config.worker_token.clone();
        let tls = config.connect_tls.clone();
        crate::connector::spawn(
            core.clone(),
            host.clone(),
            me.clone(),
            token,
            tls,
            stop_rx.clone(),
        );
    }
    let max = farm_proto::MAX_MESSAGE_BYTES;
    let farm = FarmServiceServer::new(Farm { core: core.clone() })
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let farm = InterceptedService::new(farm, require("client", config.client_token.clone()));
    let workers = WorkerServiceServer::new(Workers { core })
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let workers = InterceptedService::new(workers, require("worker", config.worker_token.clone()));
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<FarmServiceServer<Farm>>().await;
    health_reporter.set_serving::<WorkerServiceServer<Workers>>().await;
    // Both reflection versions: grpcurl asks for v1 first, older tools only know v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(farm_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "master serving");
    }
    let mut stopped = stop_rx;
    let signal = async move {
        shutdown.await;
        info!("master shutting down");
        let _ = stop_tx.send(true);
        // Give the core's task a moment to end sessions and streams before the transport drains.
        let _ = tokio::time::timeout(Duration::from_millis(200), stopped.changed()).await;
    };
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = config.tls.clone() {
        builder = builder.tls_config(tls)?;
    }
    builder
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(farm)
        .add_service(workers)
        .serve_with_incoming_shutdown(farm_proto::incoming_nodelay(listener), signal)
        .await?;
    Ok(())
}
