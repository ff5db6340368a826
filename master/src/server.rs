//! Serving: the client and worker services, gRPC health and reflection, on one listener; the
//! HTTP endpoint (dashboard, `/metrics`) on another, if configured.

use crate::actor;
use crate::core::CoreConfig;
use crate::grpc::guard::{Guarded, Side};
use crate::grpc::Farm;
use crate::metrics::Metrics;
use crate::modules::Modules;
use crate::sessions::Workers;
use crate::store;
use crate::tasks::Tasks;
use farm_proto::pb::farm_service_server::FarmServiceServer;
use farm_proto::pb::worker_service_server::WorkerServiceServer;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use tracing::info;

/// How long shutdown waits for the master's tasks after signalling them. They stop within
/// milliseconds when all is well; the bound keeps a stuck one from holding the exit.
pub const TASKS_BOUND: Duration = Duration::from_secs(2);

/// How the master serves.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// Scheduler limits and tuning.
    pub core: CoreConfig,
    /// How often master and workers exchange heartbeats; the core's heartbeat timeout and hold
    /// grace follow from it ([`CoreConfig::with_heartbeat`]), whatever `core` says.
    pub heartbeat: Duration,
    /// Listening workers to dial (`host:port`), kept dialing while they are down.
    pub connect: Vec<String>,
    /// Token clients must present; none: clients are not checked.
    pub client_token: Option<String>,
    /// Token workers must present (and that this master presents to listening workers).
    pub worker_token: Option<String>,
    /// Named principals (`--principals FILE`) beside the two tokens' `default` and `workers`;
    /// with them, every client and worker call needs a token.
    pub principals: Option<crate::access::PrincipalsFile>,
    /// The token of the master's own local workers, minted at start when a principals file
    /// leaves no shared worker token to hand them (principal `(local workers)`, role worker).
    pub local_worker_token: Option<crate::access::LocalWorkerToken>,
    /// Serve TLS with this identity (and, for mutual TLS, client CA).
    pub tls: Option<tonic::transport::ServerTlsConfig>,
    /// TLS for dialing listening workers.
    pub connect_tls: Option<tonic::transport::ClientTlsConfig>,
    /// Kernels known before any worker connects, so their jobs can queue and be checked
    /// (`farm master` passes the built-in kernels' descriptors; the master links no kernel).
    pub known_kinds: Vec<farm_proto::KernelDescriptor>,
    /// The journal's file (`--journal`): jobs and accepted outcomes survive a restart. None:
    /// a temporary store, removed at exit.
    pub journal: Option<std::path::PathBuf>,
    /// How allocation queues start workers (`farm alloc`); None: they are refused.
    pub alloc: Option<crate::autoalloc::AllocSettings>,
    /// The bounds of the wasm module store (`--max-module-mib`, `--module-store-mib`).
    pub modules: crate::modules::ModuleLimits,
    /// Serve the dashboard and `/metrics` over HTTP on a listener of its own; none: no HTTP.
    pub http: Option<crate::HttpConfig>,
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            core: CoreConfig::default(),
            heartbeat: crate::core::DEFAULT_HEARTBEAT,
            connect: Vec::new(),
            client_token: None,
            worker_token: None,
            principals: None,
            local_worker_token: None,
            tls: None,
            connect_tls: None,
            known_kinds: Vec::new(),
            journal: None,
            alloc: None,
            modules: Default::default(),
            http: None,
        }
    }
}

impl MasterConfig {
    /// The core's configuration, with the heartbeat's rules applied.
    fn core(&self) -> CoreConfig {
        self.core.clone().with_heartbeat(self.heartbeat)
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
    /// The principals and tokens do not make a consistent set (a name defined twice).
    #[error("principals: {0}")]
    Access(String),
    /// The journal could not be opened, read or replayed.
    #[error("journal: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The wasm modules in the journal could not be indexed, or opening it did not finish.
    #[error("journal: {0}")]
    Journal(String),
    /// The HTTP listener could not be used.
    #[error("http: {0}")]
    Http(#[from] std::io::Error),
}

/// The services the master's port serves, as reflection lists them.
pub const SERVED: &[&str] = &[
    "farm.v1.FarmService",
    "farm.v1.WorkerService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Raises the soft limit on open files to the hard one: each worker session and client is a
/// socket, and a common soft limit of 1,024 would refuse the 1,000th worker.
fn raise_open_files() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 || limit.rlim_cur >= limit.rlim_max
        {
            return;
        }
        let soft = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
            tracing::debug!(from = soft, to = limit.rlim_max, "raised the open files limit");
        }
    }
}

/// Serves on `listener` until `shutdown` resolves, then shuts down in order: health turns
/// `NOT_SERVING` (so probes and load balancers stop sending work), every tracked task is
/// signalled (the core's task ends each worker session and watch stream with `Unavailable`;
/// session readers and connectors stop) and awaited up to [`TASKS_BOUND`], naming any that did
/// not stop; then the transport stops accepting and drains. No task outlives this function.
pub async fn serve(
    listener: TcpListener,
    config: MasterConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), MasterError> {
    raise_open_files();
    let mut builder = farm_net::server_builder(config.tls.clone())?;
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let tasks = Tasks::default();
    let http_listener = config.http.as_ref().map(crate::http::listener).transpose()?;
    let access = crate::access::Access::new(
        config.client_token.as_deref(),
        config.worker_token.as_deref(),
        config.principals.clone(),
    )
    .map_err(MasterError::Access)?;
    let access = match &config.local_worker_token {
        Some(token) => access.with_local_workers(token),
        None => access,
    };
    let access = Arc::new(access);
    let (core, journal, modules, audit) = open_store(&config).await?;
    let audit = Arc::new(audit);
    let metrics = Arc::new(Metrics::new(journal.sender().backlog().commits.clone()));
    let core = actor::spawn(
        core,
        journal.sender(),
        config.heartbeat,
        config.known_kinds.clone(),
        tasks.clone(),
        metrics,
    );
    if let Some((listener, http)) = http_listener.zip(config.http.as_ref()) {
        let guard = (access.clone(), audit.clone());
        crate::http::spawn(listener, http, core.clone(), journal.store(), guard);
    }
    let me = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    for host in &config.connect {
        let (token, tls) = (config.worker_token.clone(), config.connect_tls.clone());
        let modules = modules.clone();
        crate::connector::spawn(core.clone(), modules, host.clone(), me.clone(), token, tls);
    }
    let alloc = crate::autoalloc::spawn(
        core.clone(),
        config.alloc.clone(),
        Default::default(),
        crate::autoalloc::TICK,
    );
    let max = farm_proto::MAX_MESSAGE_BYTES;
    let farm = Farm {
        core: core.clone(),
        store: journal.store(),
        alloc,
        modules: modules.clone(),
        audit: audit.clone(),
    };
    let farm =
        FarmServiceServer::new(farm).max_decoding_message_size(max).max_encoding_message_size(max);
    let farm = Guarded::new(farm, Side::Clients, access.clone(), audit.clone());
    let workers = WorkerServiceServer::new(Workers { core, modules })
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let workers = Guarded::new(workers, Side::Workers, access, audit.clone());
    let (health_reporter, health) = tonic_health::server::health_reporter();
    set_health(&health_reporter, ServingStatus::Serving).await;
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "master serving");
    }
    let stopping = tasks.clone();
    let signal = async move {
        shutdown.await;
        info!("master shutting down");
        set_health(&health_reporter, ServingStatus::NotServing).await;
        stopping.shutdown(TASKS_BOUND).await;
    };
    let served = builder
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(farm)
        .add_service(workers)
        .serve_with_incoming_shutdown(farm_net::incoming_nodelay(listener), signal)
        .await;
    // The transport may also have failed: the tasks stop either way (at once if already done).
    tasks.shutdown(TASKS_BOUND).await;
    // The core's task is gone with its sender: the writer commits what is queued and ends.
    let closed = tokio::task::spawn_blocking(move || {
        audit.close();
        journal.close()
    });
    if tokio::time::timeout(TASKS_BOUND, closed).await.is_err() {
        tracing::warn!("journal writer did not stop in time");
    }
    Ok(served?)
}

/// Opens the journal and replays it into a core, indexes the wasm modules it holds and reads
/// back the audit trail, on a blocking thread.
async fn open_store(
    config: &MasterConfig,
) -> Result<(crate::core::Core, store::Journal, Modules, crate::audit::Audit), MasterError> {
    let (path, core_config, limits) = (config.journal.clone(), config.core(), config.modules);
    tokio::task::spawn_blocking(move || {
        let (core, journal, replayed) = store::open(path.as_deref(), core_config)?;
        let modules = Modules::open(journal.store(), limits, replayed.modules)
            .map_err(|e| MasterError::Journal(e.to_string()))?;
        let audit = crate::audit::Audit::open(journal.store())?;
        Ok((core, journal, modules, audit))
    })
    .await
    .map_err(|e| MasterError::Journal(e.to_string()))?
}

/// The reflection service's builder. Both versions are served: grpcurl asks for v1 first,
/// older tools only know v1alpha. Only the services this port serves: farm.proto also defines
/// WorkerHost, which listening workers serve, and listing it here would send tools to a
/// service that is not there.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    SERVED.iter().fold(
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(farm_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET),
        |b, name| b.with_service_name(*name),
    )
}

/// Sets the status of the whole server ("") and of each farm service.
async fn set_health(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    reporter.set_service_status(service_name::<FarmServiceServer<Farm>>(), status).await;
    reporter.set_service_status(service_name::<WorkerServiceServer<Workers>>(), status).await;
}

fn service_name<S: NamedService>() -> &'static str {
    S::NAME
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_custom_heartbeat_sets_the_timeout_and_the_grace() {
        let heartbeat = Duration::from_millis(200);
        let core = MasterConfig { heartbeat, ..Default::default() }.core();
        assert_eq!(core.heartbeat_timeout, Duration::from_millis(500));
        assert_eq!(core.hold_grace, Duration::from_millis(600));
        let core = MasterConfig::default().core();
        assert_eq!(
            (core.heartbeat_timeout, core.hold_grace),
            (Duration::from_millis(2500), Duration::from_secs(3))
        );
    }
}
