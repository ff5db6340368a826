//! Figure 12: priorities under load. On 2 local workers × 2 threads, a high-priority job is
//! submitted 2 s into a 20 s low-priority spin job (8,000 shards of 10 ms, which by then fill
//! every worker's window), and timed from its submit: its first shard result and its end,
//! against the same job alone on the idle cluster (its ideal).

use crate::procs::Master;
use crate::wait_workers;
use anyhow::{bail, Context, Result};
use farm_client::{Client, JobEvent, JobState};
use farm_proto::{JobSource, JobSpec, Params};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;

/// A range job.
fn job(kind: &str, end: u64, shard_size: u64, params: &[&str], priority: i32) -> Result<JobSpec> {
    let source = JobSource::Range { start: 0, end, shard_size };
    Ok(JobSpec::new(kind, source, Params::from_pairs(params.iter().copied())?, priority)?)
}

/// The high-priority jobs measured: the primes job, and 40 spin shards of 50 ms.
fn high_jobs() -> Result<Vec<(&'static str, JobSpec)>> {
    Ok(vec![
        ("primes 0..1000 --shard-size 100", job("primes", 1000, 100, &[], 10)?),
        ("spin 0..40 --shard-size 1 ms=50", job("spin", 40, 1, &["ms=50"], 10)?),
    ])
}

/// Submits `spec` and watches it to its end: (first shard result, end), from the submit.
async fn timed(client: &mut Client, spec: JobSpec) -> Result<(Duration, Duration)> {
    let start = Instant::now();
    let id = client.submit(spec).await?.job;
    let mut events = Box::pin(client.watch(id, true).await?);
    let mut first = None;
    while let Some(event) = tokio::time::timeout(Duration::from_secs(120), events.next())
        .await
        .context("no event in 120 s")?
    {
        match event? {
            JobEvent::Shard { .. } => {
                first.get_or_insert_with(|| start.elapsed());
            }
            JobEvent::Finished(status) if status.state == JobState::Succeeded => {
                let end = start.elapsed();
                return Ok((first.unwrap_or(end), end));
            }
            JobEvent::Finished(status) => bail!("job {id} {}: {:?}", status.state, status.error),
            JobEvent::Progress(_) => {}
        }
    }
    bail!("the watch of job {id} ended without its final status")
}

/// Measures and prints the figure.
pub async fn priority(farm: &Path) -> Result<()> {
    let master = Master::start(farm, &["--workers", "2", "--threads", "2"])?;
    let mut client = Client::connect(&master.url).await?;
    wait_workers(&mut client, 2).await?;
    for (label, spec) in high_jobs()? {
        let mut alone = Duration::MAX;
        for _ in 0..3 {
            alone = alone.min(timed(&mut client, spec.clone()).await?.1);
        }
        let low = client.submit(job("spin", 8000, 1, &["ms=10"], 0)?).await?.job;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (first, end) = timed(&mut client, spec).await?;
        let low_status = client.get(low).await?;
        client.cancel(low).await?;
        println!(
            "12. priority: {label} --priority 10, 2 s into spin 0..8000 ms=10 (20 s) on 2 workers x 2 threads: first shard result {:.0} ms, end {:.0} ms; alone {:.0} ms ({:+.0} ms); the low job then {}/{} done",
            first.as_secs_f64() * 1e3,
            end.as_secs_f64() * 1e3,
            alone.as_secs_f64() * 1e3,
            (end.as_secs_f64() - alone.as_secs_f64()) * 1e3,
            low_status.done,
            low_status.shards,
        );
    }
    Ok(())
}
