//! Figure 7, wasm kernels, side by side in one run: the C-compiled primes module against the
//! built-in primes on the same range and shards (goal: at least 0.7 of native), noop-like
//! wasm shards per second (goal: 200,000 on 2 cores), and the first-use latency of a
//! ~100 KiB module (upload, fetch by the workers, compile) against its second use.

use crate::procs::Master;
use crate::{run_job, wait_workers};
use anyhow::{Context, Result};
use farm_client::Client;
use farm_proto::{JobSource, JobSpec, Params};
use std::path::Path;
use std::time::Instant;

/// The C primes module shipped in `examples/wasm`.
const PRIMES: &[u8] = include_bytes!("../../examples/wasm/primes.wasm");

/// A module whose `farm_run` returns `hi - lo`: farm's own cost per wasm shard.
const NOOP: &str = r#"(module (memory (export "memory") 1)
  (func (export "farm_run") (param i64 i64) (result i64) (i64.sub (local.get 1) (local.get 0))))"#;

fn range(kind: &str, end: u64, shard_size: u64) -> JobSpec {
    let source = JobSource::Range { start: 0, end, shard_size };
    JobSpec::new(kind, source, Params::default(), 0).expect("valid spec")
}

/// Best (lowest) master-measured milliseconds of `runs` runs of a job.
async fn best_ms(
    client: &mut Client,
    wasm: Option<&[u8]>,
    spec: &JobSpec,
    runs: usize,
) -> Result<u64> {
    let mut best = u64::MAX;
    for _ in 0..runs {
        let ms = match wasm {
            Some(module) => {
                let job = client.submit_wasm(module, spec.clone()).await?.job;
                let status = client.wait(job, |_| {}).await?;
                anyhow::ensure!(status.error.is_none(), "wasm job {job}: {:?}", status.error);
                status.elapsed_ms.max(1)
            }
            None => run_job(client, spec.clone()).await?,
        };
        best = best.min(ms);
    }
    Ok(best)
}

/// A valid module of about `kib` KiB of code, unique to this run (so nothing caches it):
/// many functions of arithmetic, one of which `farm_run` calls.
fn big_module(kib: usize) -> Result<Vec<u8>> {
    let salt =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as i64;
    let mut wat = String::from("(module (memory (export \"memory\") 1)\n");
    let body: String = (0..40)
        .map(|k| {
            format!(
                "(local.set 0 (i64.add (i64.mul (local.get 0) (i64.const {})) (i64.const {k})))\n",
                k * 7 + 3
            )
        })
        .collect();
    let mut funcs = 0;
    // About 7 bytes of text per byte of code.
    while wat.len() / 7 < kib * 1024 {
        wat.push_str(&format!("(func $f{funcs} (param i64) (result i64)\n{body}(local.get 0))\n"));
        funcs += 1;
    }
    wat.push_str(&format!(
        "(func (export \"farm_run\") (param i64 i64) (result i64) (call $f0 (i64.const {salt})) drop (i64.sub (local.get 1) (local.get 0))))"
    ));
    let bytes = wat::parse_str(&wat).context("generated module")?;
    Ok(bytes)
}

/// Figure 7: wasm against native, shards per second, first use.
pub async fn wasm(farm: &Path) -> Result<()> {
    let master = Master::start(farm, &["--workers", "2", "--threads", "1"])?;
    let mut client = Client::connect(&master.url).await?;
    wait_workers(&mut client, 2).await?;
    let primes = range("primes", 30_000_000, 100_000);
    let native = best_ms(&mut client, None, &primes, 3).await?;
    best_ms(&mut client, Some(PRIMES), &primes, 1).await?; // upload, fetch, compile
    let ours = best_ms(&mut client, Some(PRIMES), &primes, 3).await?;
    println!(
        "7. wasm: primes 0..30000000 --shard-size 100000, 2 workers x 1 thread: built-in {native} ms, C-compiled wasm {ours} ms: {:.2} of native (best of 3)",
        native as f64 / ours as f64
    );
    let noop = wat::parse_str(NOOP)?;
    let shards = 1_000_000;
    let ms = best_ms(&mut client, Some(&noop), &range("wasm", shards, 1), 3).await?;
    let builtin = best_ms(&mut client, None, &range("noop", shards, 1), 3).await?;
    println!(
        "   noop-like wasm module 0..{shards} --shard-size 1: {:.0} shards/s (built-in noop {:.0}; best of 3)",
        shards as f64 * 1000.0 / ms as f64,
        shards as f64 * 1000.0 / builtin as f64
    );
    let big = big_module(100)?;
    let started = Instant::now();
    let first = best_ms(&mut client, Some(&big), &range("wasm", 2, 1), 1).await?;
    let first_wall = started.elapsed().as_millis();
    let second = best_ms(&mut client, Some(&big), &range("wasm", 2, 1), 1).await?;
    println!(
        "   first use of a {} KiB module: {first_wall} ms from upload to result ({first} ms in the master: both workers fetch and compile it); second job {second} ms",
        big.len() / 1024
    );
    Ok(())
}
