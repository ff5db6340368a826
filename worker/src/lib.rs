//! The farm worker: dials a master ([`run`]) or waits for one to dial it ([`serve`]), registers
//! its capacity, runs the shards it is sent on a pool of exactly T OS threads and streams their
//! outcomes back.
//!
//! It is also the SDK for user kernels: implement [`sdk::Kernel`], add it to a [`Registry`]
//! and hand that to [`cli::main_with`] from your own binary's `main` (see `examples/collatz`):
//! the binary then takes every flag `farm worker` takes and drains on Ctrl-C and SIGTERM. A
//! program that builds its own [`WorkerConfig`] calls [`run`] or [`serve`] instead, and stops
//! it from any thread with a [`StopHandle`] (the Python package runs its workers this way).
//!
//! Cargo feature `wasm` (on by default) builds the `wasm` kernel on wasmtime and the worker's
//! wasm flags; without it the worker offers no `wasm` kernel and links no wasmtime.
//!
//! # Files
//!
//! One entry per source file under `src/` (a test in `tests/tests/docs.rs` fails when one
//! is missing or names a file that is gone):
//!
//! - `cli.rs`: the worker's whole command line (`WorkerArgs`), `run`, and `main_with` for SDK
//!   binaries
//! - `cli/lifetime.rs`: the worker's own limits on the command line: `--idle-timeout`,
//!   `--time-limit`
//! - `cli/wasm.rs`: the worker's wasm flags (feature `wasm`) (`--no-wasm`, `--wasm-max-memory`, `--wasm-cache`, …)
//! - `dial.rs`: workers that dial their master (`farm worker --master URL`)
//! - `kernels/exec.rs`: the `exec` kernel: runs an external program once per index
//! - `kernels/exec_cmd.rs`: how the `exec` kernel's `cmd` becomes each run's argv
//! - `kernels/exec_cmd_tests.rs`: tests of how `cmd` and an input line become argv
//! - `kernels/exec_groups.rs`: the process groups of the programs `exec` is running
//! - `kernels/exec_io.rs`: the `exec` kernel's pipes: stdout up to a limit, stderr passed on with
//!   its tail
//! - `kernels/exec_spawn.rs`: starting an `exec` program: `clone(CLONE_VM | CLONE_VFORK)` on a
//!   per-thread stack
//! - `kernels/exec_wait.rs`: waiting for an `exec` program without sleeping: one `ppoll` over pipes
//!   and pidfd
//! - `kernels/hashchain.rs`: the `hashchain` kernel: iterated SHA-256 per index
//! - `kernels/mandelbrot.rs`: the `mandelbrot` kernel: escape-time iteration counts
//! - `kernels/mod.rs`: the built-in kernels and the registry functions that list them
//! - `kernels/noop.rs`: the `noop` kernel: does nothing, for measuring farm's own per-shard
//!   overhead
//! - `kernels/params.rs`: shared helpers for the kernels: turning a shard into the index values
//! - `kernels/pi.rs`: the `pi` kernel: Monte Carlo estimate of pi from reproducible per-index
//!   streams
//! - `kernels/primes.rs`: the `primes` kernel: counts the primes among a shard's indices
//! - `kernels/sleep.rs`: the `sleep` kernel: waits a fixed wall-clock time per index
//! - `kernels/spin.rs`: the `spin` kernel: burns a fixed amount of this thread's CPU time per index
//! - `lifetime.rs`: when a worker leaves on its own: after a while with no work (`--idle-timeout`)
//! - `listen.rs`: workers that wait for a master to dial them (`farm worker --listen ADDR`)
//! - `modules.rs`: fetched modules that kernels other than `wasm` need, bounded in bytes
//! - `pool.rs`: the worker's thread pool: exactly T OS threads that run kernels
//! - `queue.rs`: the pool's run queue: held shards not yet started, highest job priority first
//! - `registry.rs`: the kernels a worker offers, by name
//! - `reports.rs`: where the pool's threads leave their reports, and when they wake the session
//! - `sdk.rs`: the SDK for kernels: the `Kernel` trait, what a kernel receives and returns
//! - `session/batch.rs`: the result batch a session is filling, and when it goes out
//! - `session/driver_tests.rs`: the driver end to end over an in-memory link
//! - `session/fetch.rs`: jobs that wait for their module (a `wasm` job's, a `python` job's)
//! - `session/machine.rs`: the session as a sans-I/O state machine, the master core's pattern
//! - `session/machine/jobs.rs`: jobs and tasks as they arrive: defining a job or refusing it once
//! - `session/mod.rs`: one session with a master, whichever side dialed: the select loop that
//!   drives the machine
//! - `session/tests.rs`: the session state machine, driven by hand: the test plays the master and
//!   the pool
//! - `stop.rs`: `StopHandle`: drains and stops a worker run in-process, from any thread
//! - `tail.rs`: the last bytes of a stream, bounded: what a shard's log and exec's error keep
//! - `wasm/bound_tests.rs`: the wasm kernel's bounds against hostile modules
//! - `wasm/cache.rs`: the disk cache of compiled wasm modules
//! - `wasm/compile.rs`: compiling modules off the pool, on one compile thread per worker
//! - `wasm/job.rs`: one `wasm` job on a worker: its module and params
//! - `wasm/linker.rs`: what a module sees of the worker: the `farm` imports and the memory limiter
//! - `wasm/mod.rs`: the `wasm` kernel: runs a job's own WebAssembly module, sandboxed
//! - `wasm/runtime.rs`: the worker's wasm runtime: one wasmtime engine, the epoch ticker
//! - `wasm/tests.rs`: the wasm kernel against the built-in kernels and its sandbox
//! - `wasm/ticker.rs`: the epoch ticker: one thread per worker that advances the engine's epoch

pub mod cli;
mod dial;
pub mod kernels;
mod lifetime;
mod listen;
mod modules;
mod pool;
mod queue;
mod registry;
mod reports;
pub mod sdk;
mod session;
mod stop;
mod tail;
#[cfg(feature = "wasm")]
pub mod wasm;

pub use dial::run;
pub use farm_net::Backoff;
pub use farm_proto::Labels;
pub use lifetime::Lifetime;
pub use listen::serve;
pub use modules::DEFAULT_MODULE_BYTES;
pub use registry::Registry;
pub use stop::StopHandle;
#[cfg(feature = "wasm")]
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
    /// Its environment as key/value pairs, sent at registration (`--label key=value`): jobs
    /// that require pairs (`farm submit --require`) run only on workers that hold them all.
    pub labels: Labels,
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
            labels: Labels::new(),
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
