//! `farm-bench`: the end-to-end benchmarks behind BENCHMARKS.md, run against the real release
//! binary on this machine. Each figure is printed with its configuration.
//!
//! ```text
//! cargo build --release -p farm -p farm-bench   # farm, farm-bench and spin-child
//! ./target/release/farm-bench all
//! ```
//!
//! # Files
//!
//! One entry per source file under `src/` (a test in `tests/tests/docs.rs` fails when one
//! is missing or names a file that is gone):
//!
//! - `bin/spin-child.rs`: `spin-child MS`: a program that costs MS milliseconds of CPU
//! - `dashboard.rs`: figure 8, the dashboard's cost: noop throughput with the HTTP endpoint on
//! - `efficiency.rs`: figure 2: how close farm comes to the machine's limit on small shards
//! - `exec.rs`: figure 10, external programs through the `exec` kernel (issue 15's goal 3)
//! - `peers.rs`: the `peers` figure: the same workloads on farm and on its peers, in one run
//! - `priority.rs`: figure 12: a high-priority job behind a long low-priority one
//! - `procs.rs`: starting the real `farm` binary; its memory and CPU time from /proc
//! - `python.rs`: figure 13: farm.Executor against PPE, mp.Pool, loky, Dask and Ray
//! - `wasm.rs`: figure 7: wasm kernels against the built-in ones, side by side in one run

mod dashboard;
mod efficiency;
mod exec;
mod peers;
mod priority;
mod procs;
mod python;
mod wasm;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use farm_client::Client;
use farm_proto::{JobSource, JobSpec, Params};
use procs::{cpu_secs, farm_path, rss_kib, run_json, Master};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The benchmarks of BENCHMARKS.md.
#[derive(Parser)]
struct Args {
    /// Which figure to measure.
    #[arg(value_enum, default_value = "all")]
    figure: Figure,
    /// The farm binary [default: `farm` next to this binary].
    #[arg(long)]
    farm: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Figure {
    All,
    Overhead,
    Efficiency,
    Latency,
    Memory,
    Scale,
    Startup,
    Wasm,
    Dashboard,
    Journal,
    Exec,
    /// A high-priority job behind a 20 s low-priority one, against its ideal.
    Priority,
    /// farm against HyperQueue, Ray, Dask, PPE, mp.Pool; in `all` only if its venv exists.
    Peers,
    /// farm.Executor against PPE, mp.Pool, loky, Dask, Ray; in `all` only if the venv exists.
    Python,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let farm = farm_path(args.farm)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let want = |f: Figure| args.figure == Figure::All || args.figure == f;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("machine: {cores} cores; farm: {}", farm.display());
    let mut overhead_rate = None;
    if want(Figure::Overhead) {
        overhead_rate = Some(rt.block_on(overhead(&farm))?);
    }
    if want(Figure::Efficiency) {
        efficiency::efficiency(&farm, cores)?;
    }
    if want(Figure::Latency) {
        rt.block_on(latency(&farm))?;
    }
    if want(Figure::Memory) {
        rt.block_on(memory(&farm))?;
    }
    if want(Figure::Scale) {
        rt.block_on(scale(&farm, overhead_rate))?;
    }
    if want(Figure::Startup) {
        startup(&farm)?;
    }
    if want(Figure::Wasm) {
        rt.block_on(wasm::wasm(&farm))?;
    }
    if want(Figure::Dashboard) {
        rt.block_on(dashboard::dashboard(&farm))?;
    }
    if want(Figure::Journal) {
        journal(&farm)?;
    }
    if want(Figure::Exec) {
        exec::exec(&farm, cores)?;
    }
    if want(Figure::Priority) {
        rt.block_on(priority::priority(&farm))?;
    }
    if want(Figure::Peers) {
        peers::figure(&farm, args.figure == Figure::All)?;
    }
    if want(Figure::Python) {
        python::figure(args.figure == Figure::All)?;
    }
    Ok(())
}

fn noop(shards: u64) -> JobSpec {
    let source = JobSource::Range { start: 0, end: shards, shard_size: 1 };
    JobSpec::new("noop", source, Params::default(), 0).expect("valid spec")
}

async fn wait_workers(client: &mut Client, n: usize) -> Result<Vec<u64>> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let workers = client.workers().await?;
        if workers.len() >= n {
            return Ok(workers.iter().map(|w| w.worker).collect());
        }
        if Instant::now() > deadline {
            bail!("only {} of {n} workers registered", workers.len());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs a job to its end; returns its elapsed milliseconds as the master measured them.
async fn run_job(client: &mut Client, spec: JobSpec) -> Result<u64> {
    let job = client.submit(spec).await?.job;
    let status = tokio::time::timeout(Duration::from_secs(600), client.wait(job, |_| {}))
        .await
        .context("job did not finish in 600 s")??;
    if status.state != farm_client::JobState::Succeeded {
        bail!("job {job} {}: {:?}", status.state, status.error);
    }
    Ok(status.elapsed_ms.max(1))
}

/// Figure 1: 1,000,000 noop shards through a master and 2 local workers x 1 thread.
async fn overhead(farm: &Path) -> Result<f64> {
    let master = Master::start(farm, &["--workers", "2", "--threads", "1"])?;
    let mut client = Client::connect(&master.url).await?;
    wait_workers(&mut client, 2).await?;
    let mut best: Option<(f64, f64)> = None;
    for _ in 0..3 {
        let cpu0 = cpu_secs(master.pid())?;
        let ms = run_job(&mut client, noop(1_000_000)).await?;
        let cpu = cpu_secs(master.pid())? - cpu0;
        let rate = 1e6 / (ms as f64 / 1000.0);
        if best.is_none_or(|(r, _)| rate > r) {
            best = Some((rate, cpu));
        }
    }
    let (rate, cpu) = best.context("no run")?;
    println!(
        "1. overhead: noop 0..1000000 --shard-size 1, 2 workers x 1 thread: {:.0} shards/s end to end (best of 3); master CPU {:.2} us/shard",
        rate,
        cpu // seconds per million shards = microseconds per shard
    );
    Ok(rate)
}

/// Figure 3: a one-shard job, submit to result, 1,000 times.
async fn latency(farm: &Path) -> Result<()> {
    let master = Master::start(farm, &["--workers", "1", "--threads", "1"])?;
    let mut client = Client::connect(&master.url).await?;
    wait_workers(&mut client, 1).await?;
    let mut samples = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let start = Instant::now();
        let job = client.submit(noop(1)).await?.job;
        client.wait(job, |_| {}).await?;
        samples.push(start.elapsed());
    }
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "3. latency: one-shard noop job, submit to result, 1000 times, 1 worker x 1 thread: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3
    );
    Ok(())
}

/// Figure 4: master resident memory with a 10,000,000-shard range job queued, and with
/// 1,000,000 explicit 16-byte inputs queued (no workers, so everything stays queued).
async fn memory(farm: &Path) -> Result<()> {
    let master = Master::start(farm, &[])?;
    let mut client = Client::connect(&master.url).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = rss_kib(master.pid())?;
    client.submit(noop(10_000_000)).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ranged = rss_kib(master.pid())?;
    let inputs: Vec<String> = (0..1_000_000u64).map(|i| format!("{i:016}")).collect();
    let spec = JobSpec::new("noop", JobSource::Inputs(inputs), Params::default(), 0)?;
    client.submit(spec).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let with_inputs = rss_kib(master.pid())?;
    println!(
        "4. memory: master idle {:.1} MiB; + 10,000,000-shard range job queued: +{:.2} MiB; + 1,000,000 16-byte inputs queued: +{:.1} MiB = {:.0} bytes/shard",
        idle as f64 / 1024.0,
        ranged.saturating_sub(idle) as f64 / 1024.0,
        with_inputs.saturating_sub(ranged) as f64 / 1024.0,
        with_inputs.saturating_sub(ranged) as f64 * 1024.0 / 1e6
    );
    Ok(())
}

/// Figure 5: 500 workers, each a real gRPC session with 1 thread, simulated in this process,
/// running 1,000,000 noop shards; then 2,000 such workers joining and running a job, none of
/// which may be declared lost.
async fn scale(farm: &Path, single: Option<f64>) -> Result<()> {
    for workers in [500, 2000] {
        let (rate, lost, kib) = simulated(farm, workers).await?;
        let vs =
            single.map(|s| format!(", {:.0} % of figure 1", 100.0 * rate / s)).unwrap_or_default();
        println!(
            "5. scale: {workers} workers x 1 thread (one process, one gRPC session each): noop 1,000,000 shards at {rate:.0} shards/s{vs}; workers declared lost: {lost}; master memory {kib:.1} KiB per worker",
        );
    }
    Ok(())
}

/// `workers` simulated one-thread workers on a fresh master run 1,000,000 noop shards: the
/// rate, how many of them the master lost, and its memory per worker.
async fn simulated(farm: &Path, workers: usize) -> Result<(f64, usize, f64)> {
    let master = Master::start(farm, &[])?;
    let mut client = Client::connect(&master.url).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = rss_kib(master.pid())?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    for i in 0..workers {
        let mut config = farm_worker::WorkerConfig::new(master.url.clone());
        config.threads = 1;
        config.name = format!("sim-{i}");
        let mut stopped = stopped.clone();
        let registry = farm_worker::Registry::builtin(false);
        tokio::spawn(farm_worker::run(config, registry, async move {
            let _ = stopped.changed().await;
        }));
    }
    let ids = wait_workers(&mut client, workers).await?;
    let joined = rss_kib(master.pid())?;
    let ms = run_job(&mut client, noop(1_000_000)).await?;
    let rate = 1e6 / (ms as f64 / 1000.0);
    let after = client.workers().await?;
    let kept = after.iter().filter(|w| ids.contains(&w.worker)).count();
    let _ = stop.send(true);
    Ok((rate, workers - kept, joined.saturating_sub(idle) as f64 / workers as f64))
}

/// Figure 9: noop throughput with `--journal` (every outcome committed durably) against
/// without (the temporary store), alternated three times.
fn journal(farm: &Path) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("farm-bench-journal-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut ratios = Vec::new();
    for round in 0..3 {
        let path = dir.join(format!("{round}.redb"));
        let path = path.to_str().context("temp path is not UTF-8")?;
        let off = procs::run_args("noop", 1_000_000, &[], 2, 1);
        let on: Vec<String> =
            off.iter().cloned().chain(["--journal".into(), path.into()]).collect();
        let ms = |args: &[String]| -> Result<f64> { Ok(procs::run_secs(farm, args)? * 1000.0) };
        let (on_ms, off_ms) = (ms(&on)?, ms(&off)?);
        ratios.push(format!("{:.2} ({on_ms:.0} ms on, {off_ms:.0} ms off)", off_ms / on_ms));
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "9. journal: noop 1,000,000 shards, 2 workers x 1 thread, throughput with --journal / without: {}",
        ratios.join(", ")
    );
    Ok(())
}

/// Figure 6: `farm run` with 2 workers, from process start to the first shard running.
fn startup(farm: &Path) -> Result<()> {
    let now_ns = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    };
    let mut samples = Vec::new();
    for _ in 0..5 {
        let start = now_ns();
        let v = run_json(
            farm,
            &[
                "run",
                "exec",
                "--range",
                "0..1",
                "--param",
                "cmd=date +%s%N",
                "--workers",
                "2",
                "--threads",
                "1",
                "--allow-exec",
                "--json",
            ],
        )?;
        let ran: u128 = v["result"][0]["stdout"]
            .as_str()
            .and_then(|s| s.trim().parse().ok())
            .context("exec printed no time")?;
        samples.push(ran.saturating_sub(start) as f64 / 1e6);
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "6. startup: farm run with 2 workers x 1 thread, process start to first shard running: median {:.0} ms (min {:.0}, max {:.0}, 5 runs)",
        samples[2], samples[0], samples[4]
    );
    Ok(())
}
