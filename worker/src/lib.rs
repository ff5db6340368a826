//! The farm worker: dials a master ([`run`]) or waits for one to dial it ([`serve`]), registers
//! its capacity, runs the shards it is sent on a pool of exactly T OS threads and streams their
//! outcomes back.
//!
//! It is also the SDK for user kernels: implement [`sdk::Kernel`], add it to a [`Registry`]
//! and hand that to [`cli::main_with`] from your own binary's `main` (see `examples/collatz`):
//! the binary then takes every flag `farm worker` takes and drains on Ctrl-C and SIGTERM. A
//! program that builds its own [`WorkerConfig`] calls [`run`] or [`serve`] instead.

pub mod cli;
mod dial;
pub mod kernels;
mod lifetime;
mod listen;
mod pool;
mod queue;
mod registry;
mod reports;
pub mod sdk;
mod session;
mod tail;
pub mod wasm;

pub use dial::run;
pub use farm_net::Backoff;
pub use lifetime::Lifetime;
pub use listen::serve;
pub use registry::Registry;
pub use wasm::WasmConfig;

use std::time::Duration;

/// How a worker runs; built by the CLI from its flags, or by a user's own worker binary.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The master's URL, e.g. `http://10.0.0.5:7070`.
    pub master: String,
    /// Shards run at once: the size of the thread pool.
    pub threads: usize,
    /// Shown in `farm workers`.
    pub name: String,
    /// Exit when the master is lost instead of reconnecting (set for workers a master spawned).
    pub exit_on_disconnect: bool,
    /// Longest wait between reconnection attempts.
    pub max_backoff: Duration,
    /// On SIGTERM or a drain request, how long running shards may take to finish before they
    /// are cancelled and handed back.
    pub drain_timeout: Duration,
    /// Times a supervisor restarted this worker (reported to the master).
    pub restarts: u32,
    /// The token this worker presents to its master, and requires from masters that dial it.
    pub token: Option<String>,
    /// TLS for dialing the master (its CA, and a client certificate for mutual TLS).
    pub tls: Option<tonic::transport::ClientTlsConfig>,
    /// TLS for serving masters that dial this worker (`--listen`).
    pub server_tls: Option<tonic::transport::ServerTlsConfig>,
    /// When it leaves on its own: idle, or before its allocation ends.
    pub lifetime: Lifetime,
    /// The scheduler job (allocation) it runs in, told to the master at registration.
    pub allocation: String,
}

impl WorkerConfig {
    /// A worker for `master` with one thread per available core.
    pub fn new(master: impl Into<String>) -> Self {
        WorkerConfig {
            master: master.into(),
            threads: default_threads(),
            name: String::new(),
            exit_on_disconnect: false,
            max_backoff: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(30),
            restarts: 0,
            token: None,
            tls: None,
            server_tls: None,
            lifetime: Lifetime::default(),
            allocation: String::new(),
        }
    }
}

/// One thread per available core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Why a worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The master URL does not parse.
    #[error("bad master url {0}")]
    BadMasterUrl(String),
    /// The thread pool could not be started.
    #[error("cannot start threads: {0}")]
    Threads(std::io::Error),
    /// The master refused the registration (another protocol version, bad token…).
    #[error("master refused the worker: {0}")]
    Rejected(String),
    /// The master went away and the worker was told to exit with it.
    #[error("master lost: {0}")]
    MasterLost(String),
    /// A flag or setting is wrong (a token file that cannot be read, bad TLS files, threads
    /// out of range); the message names it.
    #[error("{0}")]
    Config(String),
    /// The `--listen` address cannot be bound.
    #[error("cannot listen on {0}: {1}")]
    Listen(String, std::io::Error),
    /// The wasm runtime could not be set up.
    #[error("wasm: {0}")]
    Wasm(String),
}
