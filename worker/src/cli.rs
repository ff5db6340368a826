//! The worker's whole command line, shared by `farm worker` and every worker binary built on
//! the SDK, so a user's worker takes every flag `farm worker` takes (master, token, TLS,
//! `--listen`, threads, name, drain and its timeout, `--allow-exec`) and drains on Ctrl-C and
//! SIGTERM the same way. A user's `main` is a few lines:
//!
//! ```no_run
//! use farm_worker::Registry;
//!
//! fn main() -> std::process::ExitCode {
//!     let registry = Registry::builtin(false); // and `registry.register(Box::new(MyKernel))`
//!     farm_worker::cli::main_with(registry)
//! }
//! ```

use crate::{kernels, Registry, WorkerConfig, WorkerError};
use clap::{Args, Parser};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;
use tokio::net::TcpListener;
use tracing::warn;

mod lifetime;
#[cfg(feature = "wasm")]
mod wasm;
pub use lifetime::WorkerLifetimeArgs;
#[cfg(feature = "wasm")]
pub use wasm::WasmWorkerArgs;

/// Every flag of a worker: `farm worker` and SDK worker binaries alike.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// The master to dial, e.g. http://10.0.0.5:7070 (HOST:PORT also works).
    #[arg(long, env = "FARM_MASTER", default_value = "http://127.0.0.1:7070")]
    pub master: String,
    /// The token to present to the master (and to require from masters that dial this
    /// worker with --listen).
    #[arg(long, env = "FARM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Read the token from this file instead.
    #[arg(long, value_name = "FILE", env = "FARM_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Use TLS, trusting a master whose certificate this CA signed (PEM).
    #[arg(long, value_name = "FILE", env = "FARM_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// This worker's certificate (PEM): its client certificate for mutual TLS, and its server
    /// certificate with --listen.
    #[arg(long, value_name = "FILE", env = "FARM_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", env = "FARM_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Wait for a master to dial this worker (`farm master --connect`) on this address, e.g.
    /// 0.0.0.0:7071, instead of dialing --master.
    #[arg(long, value_name = "ADDR", env = "FARM_WORKER_LISTEN")]
    pub listen: Option<String>,
    /// Shards to run at once: the size of the thread pool [default: available cores].
    #[arg(long, value_name = "T", env = "FARM_THREADS")]
    pub threads: Option<usize>,
    /// Name shown in `farm workers` (which also shows the host and pid).
    #[arg(long, env = "FARM_WORKER_NAME")]
    pub name: Option<String>,
    /// A label KEY=VALUE this worker declares (repeatable), e.g. --label gpu=a100: jobs
    /// submitted with --require KEY=VALUE run only on workers holding every pair they require.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Offer the exec kernel, which runs programs named in job parameters.
    #[arg(long, env = "FARM_ALLOW_EXEC")]
    pub allow_exec: bool,
    /// Exit when the master is lost instead of reconnecting (set for workers a master spawns).
    #[arg(long)]
    pub exit_with_master: bool,
    /// On SIGTERM, Ctrl-C or a drain request: how long running shards may take to finish
    /// before they are cancelled and handed back to the master. (The local workers a master
    /// spawns get 2s: they drain only when their master stops, which waits 3s for them.)
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION",
          env = "FARM_DRAIN_TIMEOUT")]
    pub drain_timeout: Duration,
    /// Times the supervisor restarted this worker (set by a master for its local workers).
    #[arg(long, default_value_t = 0, hide = true)]
    pub restarts: u32,
    /// When it leaves on its own: idle, or before its allocation ends.
    #[command(flatten)]
    pub lifetime: WorkerLifetimeArgs,
    /// The wasm kernel's settings, or --no-wasm.
    #[cfg(feature = "wasm")]
    #[command(flatten)]
    pub wasm: WasmWorkerArgs,
}

/// The command line of a worker binary built on the SDK: the worker's flags alone.
#[derive(Debug, Parser)]
#[command(version, about = "A farm worker: dials the master and runs the shards it hands out.")]
struct WorkerCli {
    #[command(flatten)]
    args: WorkerArgs,
}

impl WorkerArgs {
    /// The flags as the library's config: the token read, TLS loaded, threads checked.
    pub fn config(&self) -> Result<WorkerConfig, WorkerError> {
        let bad =
            |what: &str, e: &dyn std::fmt::Display| WorkerError::Config(format!("{what}: {e}"));
        let token = farm_net::auth::load(self.token.clone(), self.token_file.as_deref())
            .map_err(|e| bad("cannot read --token-file", &e))?;
        let identity = self.tls_cert.as_deref().zip(self.tls_key.as_deref());
        let tls = match &self.tls_ca {
            Some(ca) => Some(farm_net::tls::client(ca, identity).map_err(|e| bad("tls", &e))?),
            None => None,
        };
        let mut config = WorkerConfig::new(farm_net::tls::dial_url(&self.master, tls.is_some()));
        config.token = token;
        config.tls = tls;
        if let (Some(_), Some((cert, key))) = (&self.listen, identity) {
            config.server_tls =
                Some(farm_net::tls::server(cert, key, None).map_err(|e| bad("tls", &e))?);
        }
        if let Some(threads) = self.threads {
            if threads == 0 || threads > farm_proto::MAX_THREADS as usize {
                let max = farm_proto::MAX_THREADS;
                return Err(WorkerError::Config(format!("--threads must be 1..={max}")));
            }
            config.threads = threads;
        }
        config.name = self.name.clone().unwrap_or_default();
        config.labels =
            farm_proto::labels::from_pairs("--label", &self.labels).map_err(WorkerError::Config)?;
        config.exit_on_disconnect = self.exit_with_master;
        config.drain_timeout = self.drain_timeout;
        config.restarts = self.restarts;
        self.lifetime.apply(&mut config);
        Ok(config)
    }
}

/// Runs a worker as `args` say, offering `registry`'s kernels (plus `exec` with
/// `--allow-exec`): it dials the master, or with `--listen` waits for masters to dial it,
/// until Ctrl-C or SIGTERM has drained it (in-flight shards finish within the drain timeout,
/// the rest go back to the master). Programs `exec` still runs when it returns are killed.
pub async fn run(args: WorkerArgs, mut registry: Registry) -> Result<(), WorkerError> {
    // However this ends (drained, master lost, an error, a panic), exec's programs die with it.
    let _programs = kernels::KillProgramsOnExit;
    let config = args.config()?;
    let _bound = StopBound::arm(config.drain_timeout);
    if args.allow_exec {
        registry.register(kernels::exec_kernel());
    }
    #[cfg(feature = "wasm")]
    if let Some(wasm) = args.wasm.config() {
        registry.enable_wasm(wasm)?;
    }
    let Some(addr) = &args.listen else {
        return crate::run(config, registry, shutdown_signal()).await;
    };
    let listener =
        TcpListener::bind(addr).await.map_err(|e| WorkerError::Listen(addr.clone(), e))?;
    let bound = listener.local_addr().map_err(|e| WorkerError::Listen(addr.clone(), e))?;
    if !bound.ip().is_loopback() && (config.token.is_none() || config.server_tls.is_none()) {
        warn!(%bound, "listening on a non-loopback address without TLS or a token: any master that can reach it can use it or read its traffic");
    }
    // One line on stdout that scripts (and the tests) read to learn the bound port.
    println!("farm worker listening on {bound}");
    let _ = std::io::stdout().flush();
    crate::serve(listener, config, registry, shutdown_signal()).await
}

/// The `main` of a worker binary: parses the worker's flags, logs to stderr (unless the caller
/// set up tracing already; `RUST_LOG` filters, default `info`), and runs the worker on a new
/// runtime until Ctrl-C or SIGTERM has drained it. Exits non-zero, with a one-line error, if
/// the worker fails (a bad flag, a master that refuses it).
pub fn main_with(registry: Registry) -> ExitCode {
    let args = WorkerCli::parse().args;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Fails only when a subscriber is set already: the caller's wins.
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(args, registry));
    // Pool threads may still run a kernel stuck in a loop: do not wait for them.
    runtime.shutdown_timeout(Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The async runtime a worker runs on: the calling thread alone. A worker's kernels run on its
/// pool threads, so its runtime only moves messages (the session, its gRPC stream, a fetch).
/// On a multi-thread runtime each message crossed threads (the session on the `block_on`
/// thread, the connection on a runtime thread), waking one to hand work to the other beside
/// the kernels (`BENCHMARKS.md`, issue 15's 2 x 1 row).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

/// How long past its drain timeout a worker stopped by a signal may take before it exits
/// anyway (within the 45 s that the deploy files give a stop, with the default 30 s drain).
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Bounds a worker's life once Ctrl-C or SIGTERM has come: if [`run`] has not returned
/// `drain_timeout` + [`STOP_GRACE`] later (a send to a master that stopped reading, say), a
/// plain thread kills exec's programs and exits the process with code 1. Local workers count
/// on it: they get SIGTERM when their master dies (`PR_SET_PDEATHSIG`, in the master's
/// spawner) and must not outlive it. A task of its own listens for the signal, so a session
/// stuck on a send still starts the bound; dropping it, when `run` returns, disarms it.
struct StopBound {
    /// The task that waits for the signal.
    listener: tokio::task::JoinHandle<()>,
    /// Dropped when `run` returns, which tells an armed thread to let the process be.
    _running: std::sync::mpsc::Sender<()>,
}

impl StopBound {
    fn arm(drain_timeout: Duration) -> StopBound {
        let (running, returned) = std::sync::mpsc::channel::<()>();
        let bound = drain_timeout.saturating_add(STOP_GRACE);
        let listener = tokio::spawn(async move {
            shutdown_signal().await;
            let thread = std::thread::Builder::new().name("farm-stop-bound".into());
            let spawned = thread.spawn(move || {
                if returned.recv_timeout(bound) == Err(RecvTimeoutError::Timeout) {
                    warn!(
                        bound_ms = bound.as_millis() as u64,
                        "worker still running after its drain timeout and grace, exiting"
                    );
                    kernels::kill_running_programs();
                    std::process::exit(1);
                }
            });
            if let Err(e) = spawned {
                warn!(error = %e, "cannot start the thread that bounds the drain");
            }
        });
        StopBound { listener, _running: running }
    }
}

impl Drop for StopBound {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Parses a duration with its unit, as humantime reads it: `250ms`, `1.5s`, `90m`, `1h`, `7d`,
/// `1h 30m`. A bare number is refused, with the fix in the message: it used to mean
/// milliseconds, so `30` meant for seconds would silently be 30 ms. Every duration flag of
/// farm, the worker's and the CLI's, goes through this one function.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!("`{s}` has no unit: write {s}s or {s}ms"));
    }
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration like 250ms, 1.5s, 90m or 1h: {e}"))?;
    if d.is_zero() {
        return Err("duration must be more than zero".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        WorkerCli::command().debug_assert();
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(90 * 60)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(90 * 60)));
        assert_eq!(parse_duration("30"), Err("`30` has no unit: write 30s or 30ms".into()));
        assert!(parse_duration("1.5").is_err());
        assert!(parse_duration("2x").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("2 weeks ago").is_err());
    }

    #[test]
    fn flags_become_the_config() {
        let cli = WorkerCli::try_parse_from([
            "w",
            "--master",
            "10.0.0.5:7070",
            "--threads",
            "3",
            "--name",
            "n1",
            "--drain-timeout",
            "2s",
            "--token",
            " secret ",
            "--label",
            "gpu=a100",
            "--label",
            "python=CPython 3.12",
        ])
        .expect("parses");
        let config = cli.args.config().expect("config");
        let labels: Vec<_> = config.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(labels, ["gpu=a100", "python=CPython 3.12"]);
        let bad = WorkerCli::try_parse_from(["w", "--label", "gpu"]).expect("parses");
        assert!(
            matches!(bad.args.config(), Err(WorkerError::Config(m)) if m == "--label \"gpu\" is not KEY=VALUE")
        );
        assert_eq!(config.master, "http://10.0.0.5:7070");
        assert_eq!((config.threads, config.name.as_str()), (3, "n1"));
        assert_eq!(config.drain_timeout, Duration::from_secs(2));
        assert_eq!(config.token.as_deref(), Some("secret"));
        let zero = WorkerCli::try_parse_from(["w", "--threads", "0"]).expect("parses");
        assert!(
            matches!(zero.args.config(), Err(WorkerError::Config(m)) if m.contains("1..=4096"))
        );
        let missing = WorkerCli::try_parse_from(["w", "--token-file", "/no/such/file"]);
        let missing = missing.expect("parses").args.config();
        assert!(matches!(missing, Err(WorkerError::Config(m)) if m.contains("--token-file")));
    }
}
