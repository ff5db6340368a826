//! Client commands: submit, watch, status, cancel, jobs, workers.

use crate::args::{
    JobRef, OutputArgs, ReconnectArgs, SubmitArgs, WatchArgs, WorkersAction, WorkersArgs,
};
use crate::{job, show};
use anyhow::Result;
use farm_client::{Client, JobStatus, WaitEvent, WaitOptions};

/// Where client commands (and workers) go, and what they present: a token, TLS settings.
pub struct Target {
    /// The master's URL.
    pub url: String,
    /// The shared token, if any.
    pub token: Option<String>,
    /// TLS for dialing (--tls-ca, and --tls-cert/--tls-key for mutual TLS).
    pub tls: Option<tonic::transport::ClientTlsConfig>,
    /// The certificate and key files given (a master serves with them).
    pub identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// The CA file given.
    pub ca: Option<std::path::PathBuf>,
}

impl Target {
    /// The master's URL with a scheme: https when TLS is on.
    pub fn url(&self) -> String {
        farm_net::tls::dial_url(&self.url, self.tls.is_some())
    }
}

pub(crate) async fn connect(master: &Target) -> Result<Client> {
    Ok(Client::connect_with(&master.url(), master.token.clone(), master.tls.clone()).await?)
}

/// `farm submit`.
pub async fn submit(master: &Target, args: SubmitArgs) -> Result<()> {
    let spec = job::spec(&args.job)?;
    let module = job::module(&args.job)?;
    let mut client = connect(master).await?;
    let submitted = match &module {
        Some(wasm) => client.submit_wasm(wasm, spec.clone()).await?,
        None => client.submit(spec.clone()).await?,
    };
    if !args.wait {
        if args.output.json {
            println!("{}", serde_json::to_string(&submitted)?);
        } else {
            println!("{}", submitted.job);
        }
        return Ok(());
    }
    let status = follow(&mut client, submitted.job, &args.reconnect, args.output.json).await?;
    crate::results::save(&mut client, &status, args.job.out.as_deref(), args.job.ndjson).await?;
    show::finished(&status, args.output.json, args.job.out.as_deref(), &spec.params)
}

/// `farm watch`.
pub async fn watch(master: &Target, args: WatchArgs) -> Result<()> {
    let mut client = connect(master).await?;
    let json = args.job.output.json;
    let status = follow(&mut client, args.job.id, &args.reconnect, json).await?;
    show::finished(&status, json, None, &Default::default())
}

/// Waits for a job with a progress bar, riding through a lost master, and says on stderr when
/// the master is lost and when it is back.
async fn follow(
    client: &mut Client,
    job: u64,
    reconnect: &ReconnectArgs,
    json: bool,
) -> Result<JobStatus> {
    let bar = show::progress_bar(json);
    let options = WaitOptions { reconnect_for: reconnect.reconnect_for };
    let status = client
        .wait_with(job, &options, |event| match event {
            WaitEvent::Progress(p) => show::advance(&bar, p),
            // The lines the client words: "lost the master; reconnecting for up to 60s".
            event => bar.suspend(|| eprintln!("{event}")),
        })
        .await;
    bar.finish_and_clear();
    Ok(status?)
}

/// `farm status`.
pub async fn status(master: &Target, args: JobRef) -> Result<()> {
    let status = connect(master).await?.get(args.id).await?;
    show::jobs(std::slice::from_ref(&status), args.output.json)
}

/// `farm cancel`.
pub async fn cancel(master: &Target, args: JobRef) -> Result<()> {
    let status = connect(master).await?.cancel(args.id).await?;
    show::jobs(std::slice::from_ref(&status), args.output.json)
}

/// `farm jobs`.
pub async fn jobs(master: &Target, args: OutputArgs) -> Result<()> {
    let jobs = connect(master).await?.list().await?;
    show::jobs(&jobs, args.json)
}

/// `farm workers` and `farm workers drain ID`.
pub async fn workers(master: &Target, args: WorkersArgs) -> Result<()> {
    let mut client = connect(master).await?;
    let workers = match args.action {
        Some(WorkersAction::Drain { id }) => vec![client.drain_worker(id).await?],
        None => client.workers().await?,
    };
    if args.output.json {
        println!("{}", serde_json::to_string(&workers)?);
        return Ok(());
    }
    println!(
        "{:>6}  {:<16} {:<16} {:>7} {:>7} {:>7} {:>9} {:>8}  {:<8} STATE",
        "WORKER", "NAME", "HOST", "PID", "THREADS", "RUNNING", "DONE", "RESTARTS", "DIALED"
    );
    for w in workers {
        let name = if w.name.is_empty() { "-" } else { &w.name };
        let state = match (&w.suspect, w.draining) {
            (Some(why), _) => format!("suspect: {why}"),
            (None, true) => "draining".into(),
            (None, false) => "ready".into(),
        };
        println!(
            "{:>6}  {:<16} {:<16} {:>7} {:>7} {:>7} {:>9} {:>8}  {:<8} {state}",
            w.worker,
            name,
            w.hostname,
            w.pid,
            w.threads,
            w.running,
            w.done,
            w.restarts,
            w.dialed_by
        );
    }
    Ok(())
}
