//! The long-running roles: `farm master`, `farm worker`, and `farm run` (a master and local
//! workers for one job).

use crate::args::{LocalWorkerArgs, MasterArgs, RunArgs, SchedulerArgs, WorkerArgs};
use crate::{job, show};
use anyhow::{bail, Context, Result};
use farm_client::Client;
use farm_master::core::CoreConfig;
use farm_master::spawner::{self, LocalWorkers, SpawnConfig};
use farm_master::MasterConfig;
use farm_worker::{Registry, WorkerConfig};
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::warn;

/// How long local workers get to stop before they are killed.
const WORKER_GRACE: Duration = Duration::from_secs(3);

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
        heartbeat_timeout: s.heartbeat * 5 / 2,
        memory_budget: s.memory_budget_mib.saturating_mul(1 << 20),
        inline_result_bytes: usize::from(s.inline_result_mib) << 20,
        keep_finished: s.keep_finished,
        keep_finished_bytes: s.keep_finished_mib.saturating_mul(1 << 20),
        keep_finished_for: s.keep_finished_for,
        hold_timeout: s.hold_timeout,
        // A few heartbeat periods: a late result within them is a hiccup, not a hoarder.
        hold_grace: s.heartbeat * 3,
        ..CoreConfig::default()
    };
    // The kernels every `farm worker` offers, so their jobs are checked and can queue before
    // the first worker connects; workers' own descriptors replace these as they register.
    let known_kinds = Registry::builtin(false).descriptors();
    MasterConfig {
        core,
        heartbeat: s.heartbeat,
        known_kinds,
        journal: s.journal.clone(),
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
    log: &str,
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
    if let Some(token) = config.worker_token.clone() {
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
        log_filter: log.into(),
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
pub async fn master(args: MasterArgs, me: &crate::commands::Target) -> Result<()> {
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
    warn_open_doors(addr, token.as_deref(), worker_token.as_deref());
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
    let http = crate::http::bind(&args.http, token.as_deref())?;
    let config = MasterConfig {
        connect,
        http: http.clone(),
        client_token: token,
        worker_token,
        connect_tls: me.tls.clone(),
        tls,
        ..master_config(&args.scheduler)
    };
    let mut running =
        start(listener, config, args.workers, &args.local, "info", local_tls_env(me))?;
    // One line on stdout that scripts (and the tests) read to learn the bound port.
    let scheme = if me.identity.is_some() { "https" } else { "http" };
    println!("farm master listening on {scheme}://{addr}");
    // A second line when the dashboard is on, for scripts (and the tests) to learn its port.
    if let Some(url) = http.as_ref().and_then(crate::http::url) {
        println!("farm dashboard on {url}");
    }
    std::io::stdout().flush()?;
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

/// TLS settings for local workers: the master's CA and (for mutual TLS) its certificate.
fn local_tls_env(me: &crate::commands::Target) -> Vec<(String, String)> {
    let path = |p: &std::path::Path| {
        std::fs::canonicalize(p).unwrap_or(p.to_path_buf()).display().to_string()
    };
    let mut env = Vec::new();
    // Only a master that serves TLS needs its local workers to speak it.
    if me.identity.is_none() {
        return env;
    }
    if let Some(ca) = &me.ca {
        env.push(("FARM_TLS_CA".to_string(), path(ca)));
    }
    if let Some((cert, key)) = &me.identity {
        env.push(("FARM_TLS_CERT".to_string(), path(cert)));
        env.push(("FARM_TLS_KEY".to_string(), path(key)));
    }
    env
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

/// `farm worker`.
pub async fn worker(master: &crate::commands::Target, args: WorkerArgs) -> Result<()> {
    let mut config = WorkerConfig::new(master.url());
    config.token = master.token.clone();
    config.tls = master.tls.clone();
    if args.listen.is_some() {
        if let Some((cert, key)) = &master.identity {
            config.server_tls = Some(farm_net::tls::server(cert, key, None)?);
        }
    }
    if let Some(threads) = args.threads {
        if threads == 0 || threads > farm_master::MAX_THREADS as usize {
            bail!("--threads must be 1..={}", farm_master::MAX_THREADS);
        }
        config.threads = threads;
    }
    config.name = args.name.unwrap_or_default();
    config.exit_on_disconnect = args.exit_with_master;
    config.drain_timeout = args.drain_timeout;
    config.restarts = args.restarts;
    let registry = Registry::builtin(args.allow_exec);
    match args.listen {
        Some(addr) => {
            let listener = TcpListener::bind(&addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            let bound = listener.local_addr()?;
            if !bound.ip().is_loopback() {
                warn!(%bound, "listening on a non-loopback address without TLS or a token: any master that can reach it can use it");
            }
            // One line on stdout that scripts (and the tests) read to learn the bound port.
            println!("farm worker listening on {bound}");
            std::io::stdout().flush()?;
            farm_worker::serve(listener, config, registry, shutdown_signal()).await?;
        }
        None => farm_worker::run(config, registry, shutdown_signal()).await?,
    }
    Ok(())
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
pub async fn run(args: RunArgs) -> Result<()> {
    let spec = job::spec(&args.job)?;
    if args.workers == 0 {
        bail!("--workers must be at least 1");
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.context("cannot listen on loopback")?;
    let http = crate::http::bind(&args.http, None)?;
    if let Some(url) = http.as_ref().and_then(crate::http::url) {
        eprintln!("farm: dashboard at {url}");
    }
    let config = MasterConfig { http, ..master_config(&args.scheduler) };
    let running = start(listener, config, args.workers, &args.local, "warn", Vec::new())?;
    let json = args.output.json;
    let outcome = async {
        let mut client = Client::connect(&running.url).await?;
        wait_for_workers(&mut client, args.workers).await?;
        let job = client.submit(spec.clone()).await?.job;
        let bar = show::progress_bar(json);
        let status = tokio::select! {
            status = client.wait(job, |p| show::advance(&bar, p)) => status?,
            _ = shutdown_signal() => {
                bar.abandon();
                let _ = client.cancel(job).await;
                bail!("interrupted; job {job} cancelled");
            }
        };
        bar.finish_and_clear();
        let out = args.job.out.as_deref();
        crate::results::save(&mut client, &status, out, args.job.ndjson).await?;
        anyhow::Ok(status)
    }
    .await;
    running.stop().await?;
    show::finished(&outcome?, json, args.job.out.as_deref(), &spec.params)
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
