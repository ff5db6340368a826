//! Local workers: the master starts N processes of its own executable (`farm worker …`) and
//! supervises them, restarting one that exits unexpectedly (with backoff, so a crash loop does
//! not spin), and stops them all on shutdown. Spawned workers also die with the master: they
//! exit when their connection to it is lost, and the kernel sends them SIGTERM if the master
//! dies.

use crate::tasks::Tasks;
use farm_net::Backoff;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tracing::{error, info, warn};

/// Environment variables a local worker must not inherit from its master.
const INHERITED_SETTINGS: [&str; 10] = [
    "FARM_MASTER",
    "FARM_TOKEN",
    "FARM_TOKEN_FILE",
    "FARM_WORKER_TOKEN",
    "FARM_WORKER_TOKEN_FILE",
    "FARM_TLS_CA",
    "FARM_TLS_CERT",
    "FARM_TLS_KEY",
    "FARM_TLS_CLIENT_CA",
    "FARM_WORKER_LISTEN",
];

/// What to spawn.
#[derive(Debug, Clone)]
pub struct SpawnConfig {
    /// The `farm` executable (normally `std::env::current_exe()`).
    pub exe: PathBuf,
    /// The master's URL, as the workers dial it.
    pub master: String,
    /// How many worker processes.
    pub workers: usize,
    /// Threads per worker.
    pub threads: usize,
    /// Extra arguments for `farm worker` (e.g. `--allow-exec`).
    pub extra_args: Vec<String>,
    /// Log filter for the workers when `RUST_LOG` is not set.
    pub log_filter: String,
    /// Extra environment for the workers (e.g. their token).
    pub env: Vec<(String, String)>,
}

/// The supervised local workers; [`LocalWorkers::stop`] ends them.
pub struct LocalWorkers {
    /// Set once, to the grace period, when the workers should stop.
    stop: watch::Sender<Duration>,
    /// The supervisor tasks, one per worker, tracked so `stop` waits for them all.
    supervisors: Tasks,
}

/// Starts the workers, each under its own supervisor task.
pub fn spawn(config: SpawnConfig) -> LocalWorkers {
    let (stop, stopped) = watch::channel(Duration::ZERO);
    let supervisors = Tasks::default();
    for slot in 0..config.workers {
        let name = format!("supervisor of local worker {slot}");
        supervisors.spawn(name, supervise(config.clone(), slot, stopped.clone()));
    }
    LocalWorkers { stop, supervisors }
}

impl LocalWorkers {
    /// Asks every worker to stop (SIGTERM), kills any still running after `grace`, and waits for
    /// all of them to be gone (logging any supervisor still running 2 s after that).
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(grace);
        self.supervisors.shutdown(grace + Duration::from_secs(2)).await;
    }
}

fn command(config: &SpawnConfig, slot: usize, restarts: u32) -> Command {
    let mut cmd = Command::new(&config.exe);
    cmd.arg("worker")
        .args(["--master", &config.master])
        .args(["--threads", &config.threads.to_string()])
        .args(["--name", &format!("local-{slot}")])
        .arg("--exit-with-master")
        // Shorter than the spawner's grace, so a drain finishes before SIGKILL would come.
        .args(["--drain-timeout", "2s"])
        .args(["--restarts", &restarts.to_string()])
        .args(&config.extra_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
    // Credentials and TLS settings come only from the master's decision, never from what the
    // master's own environment happened to hold (a client token file, a client's CA).
    for var in INHERITED_SETTINGS {
        cmd.env_remove(var);
    }
    cmd.envs(config.env.iter().map(|(k, v)| (k, v)));
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", &config.log_filter);
    }
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent. It asks the kernel
    // to SIGTERM the worker when the thread that spawned it (a runtime thread, alive as long as
    // the master) dies, so even `kill -9` of the master leaves no worker behind. SIGTERM, not
    // SIGKILL: the worker then leaves its own way (its master is gone, so at once) and kills
    // the programs `exec` runs, which a SIGKILLed worker would leave running; a worker still
    // there its drain timeout + 10 s after the signal exits anyway (`farm_worker::cli`).
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

async fn supervise(config: SpawnConfig, slot: usize, mut stopped: watch::Receiver<Duration>) {
    let mut backoff = Backoff::starting_at(Duration::from_millis(200), Duration::from_secs(10));
    let mut restarts = 0u32;
    loop {
        let mut child = match command(&config, slot, restarts).spawn() {
            Ok(child) => child,
            Err(e) => {
                error!(slot, exe = %config.exe.display(), error = %e, "cannot start local worker");
                return;
            }
        };
        let started = Instant::now();
        info!(slot, pid = child.id(), restarts, "local worker started");
        tokio::select! {
            status = child.wait() => {
                let status = match status {
                    Ok(status) => status.to_string(),
                    Err(e) => format!("cannot wait for it: {e}"),
                };
                warn!(slot, %status, "local worker exited, restarting");
                if started.elapsed() > Duration::from_secs(10) {
                    backoff.reset();
                }
            }
            _ = stopped.changed() => {
                let grace = *stopped.borrow();
                terminate(&mut child, grace).await;
                return;
            }
        }
        restarts += 1;
        tokio::select! {
            _ = tokio::time::sleep(backoff.next()) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// SIGTERM, then SIGKILL after `grace`.
async fn terminate(child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id() {
        // SAFETY: plain kill(2) on our own child's pid, which it keeps until we reap it.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        warn!(pid = child.id(), "local worker did not stop in time, killing it");
        let _ = child.kill().await;
    }
}
