//! The long-running roles: `farm master`, `farm worker`, and `farm run` (a master and local
//! workers for one job).

use crate::args::{LocalWorkerArgs, MasterArgs, RunArgs, SchedulerArgs, WorkerArgs};
use crate::fail::{Interrupted, Usage};
use crate::show;
use anyhow::{bail, Context, Result};
use farm_client::Client;
use farm_master::core::CoreConfig;
use farm_master::spawner::{self, LocalWorkers, SpawnConfig};
use farm_master::MasterConfig;
use farm_worker::Registry;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::warn;

/// How long local workers get to stop before they are killed.
const WORKER_GRACE: Duration = Duration::from_secs(3);

use farm_worker::cli::shutdown_signal;

/// Warns at start about a master whose clients need no token: on a non-loopback address; when
/// FARM_TOKEN is set but empty (which reads as "no token"); and when only workers need one.
fn warn_open_doors(addr: SocketAddr, token: Option<&str>, worker_token: Option<&str>) {
    if token.is_some() {
        return;
    }
    if std::env::var_os("FARM_TOKEN").is_some_and(|t| t.to_string_lossy().trim().is_empty()) {
        warn!("FARM_TOKEN is set but empty: clients are not checked");
    }
    if worker_token.is_some() {
        warn!("only workers need a token: clients are not checked (set --token or FARM_TOKEN too)");
    }
    if !addr.ip().is_loopback() {
        warn!(%addr, "listening on a non-loopback address without a token: anyone who can reach it can submit jobs (set FARM_TOKEN)");
    }
}

fn master_config(s: &SchedulerArgs) -> MasterConfig {
    let core = CoreConfig {
        prefetch_per_thread: s.prefetch,
        max_shards_per_job: s.max_shards,
        memory_budget: s.memory_budget_mib.saturating_mul(1 << 20),
        inline_result_bytes: usize::from(s.inline_result_mib) << 20,
        keep_finished: s.keep_finished,
        keep_finished_bytes: s.keep_finished_mib.saturating_mul(1 << 20),
        keep_finished_for: s.keep_finished_for,
        hold_timeout: s.hold_timeout,
        shard_log_bytes: s.shard_log_mib.saturating_mul(1 << 20),
        fair_share: s.fair_share == "on",
        // The heartbeat's rules are applied by `serve`, from `heartbeat` below.
        ..CoreConfig::default()
    };
    // The kernels every `farm worker` offers, so their jobs are checked and can queue before
    // the first worker connects; workers' own descriptors replace these as they register.
    let mut known_kinds = crate::kinds::offered(false);
    // And the `python` kernel of Python workers (`python -m farm worker`), so a python job
    // submitted before they connect is checked and waits for them rather than being refused.
    known_kinds.push(farm_proto::python::descriptor());
    let modules = s.modules.limits();
    MasterConfig {
        core,
        heartbeat: s.heartbeat,
        known_kinds,
        journal: s.journal.clone(),
        modules,
        ..MasterConfig::default()
    }
}

/// A master serving in this process, and the local workers it supervises.
struct Running {
    url: String,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), farm_master::MasterError>>,
    workers: LocalWorkers,
}

fn start(
    listener: TcpListener,
    config: MasterConfig,
    workers: usize,
    local: &LocalWorkerArgs,
    log: &crate::logging::Setup,
    extra_env: Vec<(String, String)>,
) -> Result<Running> {
    let addr = listener.local_addr()?;
    // Local workers dial the loopback address even when the master listens on all interfaces.
    let dial = SocketAddr::new(
        if addr.ip().is_unspecified() { [127, 0, 0, 1].into() } else { addr.ip() },
        addr.port(),
    );
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{dial}");
    let (stop, stopped) = oneshot::channel::<()>();
    let mut env = extra_env;
    env.extend(log.env());
    // Local workers take their settings from the master alone, not from a config file (which
    // may hold a client's token or CA): an empty FARM_CONFIG reads none.
    env.push(("FARM_CONFIG".to_string(), String::new()));
    let mut config = config;
    if config.principals.is_some() && workers > 0 {
        // With a principals file there may be no shared worker token, and the operator's own
        // is better kept out of the children's environment: the local workers get a token of
        // their own, minted now and held in memory only, good for connecting as a worker.
        let minted = farm_master::access::LocalWorkerToken::mint();
        env.push(("FARM_TOKEN".to_string(), minted.expose().to_string()));
        config.local_worker_token = Some(minted);
    } else if let Some(token) = config.worker_token.clone() {
        env.push(("FARM_TOKEN".to_string(), token));
    }
    let server = tokio::spawn(farm_master::serve(listener, config, async {
        let _ = stopped.await;
    }));
    let threads = local.threads.unwrap_or_else(farm_worker::default_threads);
    if workers > 0 && threads == 0 {
        bail!("--threads must be at least 1");
    }
    let workers = spawner::spawn(SpawnConfig {
        exe: std::env::current_exe().context("cannot find the farm executable to spawn workers")?,
        master: url.clone(),
        workers,
        threads,
        extra_args: if local.allow_exec { vec!["--allow-exec".into()] } else { vec![] },
        // Through the environment, so none of it shows in `ps`.
        env,
        log_filter: log.filter.clone(),
    });
    Ok(Running { url, stop, server, workers })
}

impl Running {
    /// Stops the workers first (so none reconnects), then the master.
    async fn stop(self) -> Result<()> {
        self.workers.stop(WORKER_GRACE).await;
        let _ = self.stop.send(());
        match tokio::time::timeout(Duration::from_secs(5), self.server).await {
            Ok(Ok(result)) => Ok(result?),
            Ok(Err(join)) => bail!("master task failed: {join}"),
            Err(_) => {
                warn!("master did not stop within 5 s");
                Ok(())
            }
        }
    }
}

/// `farm master`; `me` carries the shared token clients (and, without a worker token, workers)
/// must present, and the TLS files it serves with.
pub async fn master(
    args: MasterArgs,
    me: &crate::conn::Target,
    log: &crate::logging::Setup,
) -> Result<()> {
    if args.tls_client_ca.is_some() && me.identity.is_none() {
        bail!("--tls-client-ca needs --tls-cert and --tls-key: the master must serve TLS");
    }
    let token = me.token.clone();
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let mut connect = args.connect.clone();
    if let Some(path) = &args.connect_file {
        connect.extend(read_hosts(path)?);
    }
    let worker_token =
        farm_net::auth::load(args.worker_token.clone(), args.worker_token_file.as_deref())
            .context("cannot read --worker-token-file")?
            .or_else(|| token.clone());
    let principals = match &args.principals {
        Some(path) => Some(farm_master::access::PrincipalsFile::read(path).map_err(Usage)?),
        None => None,
    };
    // With principals, every call needs a token: no door is open.
    if principals.is_none() {
        warn_open_doors(addr, token.as_deref(), worker_token.as_deref());
    }
    if !addr.ip().is_loopback() && me.identity.is_none() {
        warn!(%addr, "listening on a non-loopback address without TLS: tokens and data cross the network in clear text (see --tls-cert)");
    }
    let tls = match &me.identity {
        Some((cert, key)) => Some(farm_net::tls::server(cert, key, args.tls_client_ca.as_deref())?),
        None => None,
    };
    if tls.is_some() && args.workers > 0 && me.ca.is_none() {
        bail!("--workers with TLS needs --tls-ca, so local workers can verify the master");
    }
    let scheme = if me.identity.is_some() { "https" } else { "http" };
    let alloc = crate::alloc::settings(&args.alloc, addr, scheme, worker_token.clone(), me)?;
    let checked = token.is_some() || principals.is_some();
    let http = crate::http::bind(&args.http, checked)?;
    let config = MasterConfig {
        connect,
        http: http.clone(),
        client_token: token,
        worker_token,
        principals,
        connect_tls: me.tls.clone(),
        tls,
        alloc: Some(alloc),
        ..master_config(&args.scheduler)
    };
    let mut running =
        start(listener, config, args.workers, &args.local, log, crate::conn::local_tls_env(me))?;
    // One line on stdout that scripts (and the tests) read to learn the bound port.
    let scheme = if me.identity.is_some() { "https" } else { "http" };
    crate::out::line(format_args!("farm master listening on {scheme}://{addr}"))?;
    // A second line when the dashboard is on, for scripts (and the tests) to learn its port.
    if let Some(url) = http.as_ref().and_then(crate::http::url) {
        crate::out::line(format_args!("farm dashboard on {url}"))?;
    }
    let failed = tokio::select! {
        _ = shutdown_signal() => None,
        ended = &mut running.server => Some(ended),
    };
    let Some(ended) = failed else { return running.stop().await };
    running.workers.stop(WORKER_GRACE).await;
    match ended {
        Ok(Ok(())) => bail!("master stopped unexpectedly"),
        Ok(Err(e)) => Err(e.into()),
        Err(join) => bail!("master task failed: {join}"),
    }
}

/// Reads a hosts file: one host:port per line, `#` starts a comment, blank lines are skipped.
pub fn read_hosts(path: &std::path::Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --connect-file {}", path.display()))?;
    Ok(parse_hosts(&text))
}

fn parse_hosts(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `farm worker`: the SDK's worker command line, with the built-in kernels.
pub async fn worker(args: WorkerArgs) -> Result<()> {
    Ok(farm_worker::cli::run(args, Registry::builtin(false)).await?)
}

/// Waits until `n` local workers have registered, so the job starts on all of them at once and
/// kinds only some workers offer (exec) are known when it is submitted.
async fn wait_for_workers(client: &mut Client, n: usize) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while client.workers().await?.len() < n {
        if tokio::time::Instant::now() > deadline {
            bail!("local workers did not register within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// `farm run`: a master in this process, N local workers, one job, then everything stops.
pub async fn run(args: RunArgs, log: &crate::logging::Setup) -> Result<()> {
    let spec = crate::submit::spec(&args.job)?;
    let module = crate::job::module(&args.job)?;
    if args.workers == 0 {
        bail!("--workers must be at least 1");
    }
    check_kind(&spec, args.local.allow_exec)?;
    let listener = TcpListener::bind("127.0.0.1:0").await.context("cannot listen on loopback")?;
    let http = crate::http::bind(&args.http, false)?;
    let json = args.output.json;
    // For a person at a terminal only: not in --json, a pipe, or a log shipper's JSON lines
    // (the master logs the address at info, "dashboard serving").
    let to_person =
        !json && std::io::stderr().is_terminal() && log.format == crate::logging::LogFormat::Text;
    if let Some(url) = http.as_ref().and_then(crate::http::url).filter(|_| to_person) {
        eprintln!("farm: dashboard at {url}");
    }
    // Polled once now, so Ctrl-C is ours (not the default, which would leave the workers
    // behind) from before the first worker starts.
    let mut stop = Box::pin(shutdown_signal());
    let _ = futures::FutureExt::now_or_never(&mut stop);
    let config = MasterConfig { http, ..master_config(&args.scheduler) };
    let running = start(listener, config, args.workers, &args.local, log, Vec::new())?;
    let bar = show::progress_bar(json);
    let work = async {
        let mut client = Client::connect(&running.url).await?;
        wait_for_workers(&mut client, args.workers).await?;
        let submitted = crate::submit::submit(&mut client, &spec, module.as_deref(), &args.job);
        let job = submitted.await?.job;
        let mut waiting = None;
        let status = client.wait(job, |p| show::advance(&bar, p, &mut waiting)).await;
        // Cleared on every way out, an error included.
        bar.finish_and_clear();
        // Delivered before the master stops: a large result streams from its store.
        crate::submit::finish(&mut client, &status?, &spec, &args.job, json).await
    };
    // Ctrl-C at any point (workers starting, the job running, the result streaming) stops
    // everything: the job goes with this process's master.
    let outcome = tokio::select! {
        outcome = work => outcome,
        _ = stop => {
            // Cleared, not abandoned: no stale half-line stays above the message.
            bar.finish_and_clear();
            Err(Interrupted("interrupted: the job was stopped with its workers".into()).into())
        }
    };
    running.stop().await?;
    outcome
}

/// Refuses a job that `farm run`'s own workers could not run (an unknown kind, with the
/// closest known one suggested; params a kernel refuses), before any worker starts.
fn check_kind(spec: &farm_proto::JobSpec, allow_exec: bool) -> Result<()> {
    if spec.kind == "exec" && !allow_exec {
        return Err(Usage(
            "exec runs programs, so its workers need --allow-exec: farm run exec --allow-exec …"
                .into(),
        )
        .into());
    }
    if spec.kind == farm_proto::wasm::KIND {
        // Its params name an uploaded module; the master checks them at submit.
        return Ok(());
    }
    let catalog = farm_master::catalog::Catalog::new(crate::kinds::offered(allow_exec));
    catalog.check(spec).map_err(|e| Usage(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_files_skip_comments_and_blank_lines() {
        let hosts = parse_hosts("# workers\nhost1:7071\n\n  host2:7071  # rack 2\n#host3:7071\n");
        assert_eq!(hosts, vec!["host1:7071", "host2:7071"]);
    }
}
