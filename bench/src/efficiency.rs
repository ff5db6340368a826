//! Figure 2: how close farm comes to the machine's limit on small shards. Each row runs the
//! `spin` kernel (shards that burn a set amount of their thread's CPU time) through `farm run`
//! with 2 workers × 1 thread and 1 worker × 2 threads, and the same shards on an in-process
//! pool of as many threads as the machine has cores, which pulls them one at a time from a
//! shared counter: the limit. Each farm figure is a ratio to the limit measured in the same run.

use crate::procs::{run_args, run_secs};
use anyhow::Result;
use farm_proto::Params;
use farm_worker::kernels::spin::Spin;
use farm_worker::sdk::{prepare_checked, CancelFlag, Prepared, ShardInput};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// One row: a spin job, by its params, and its size.
struct Row {
    /// What the row is called in the output.
    label: &'static str,
    /// The spin kernel's params.
    params: &'static [&'static str],
    /// One-index shards.
    shards: u64,
}

/// The rows: 10 ms, 1 ms and 100 us shards (each about 10-20 CPU-seconds in all), and shards
/// whose costs vary tenfold (1 to 10 ms), whose tail shows whether windows stay balanced.
const ROWS: [Row; 4] = [
    Row { label: "spin 10 ms", params: &["ms=10"], shards: 2000 },
    Row { label: "spin 1 ms", params: &["ms=1"], shards: 20_000 },
    Row { label: "spin 100 us", params: &["ms=0", "us=100"], shards: 100_000 },
    Row { label: "spin 1-10 ms, uneven", params: &["ms=1", "vary=10"], shards: 4000 },
];

/// Runs every row and prints it.
pub fn efficiency(farm: &Path, cores: usize) -> Result<()> {
    for row in &ROWS {
        let limit = in_process(row.params, row.shards, cores)?;
        println!(
            "2. efficiency, {} x {} shards ({}): in-process pool of {cores} threads {limit:.2} s",
            row.label,
            row.shards,
            row.params.join(" ")
        );
        for (p, t) in [(2, 1), (1, 2)] {
            let secs = run_secs(farm, &run_args("spin", row.shards, row.params, p, t))?;
            println!(
                "   farm {p} workers x {t} threads: {secs:.2} s, {:.1} % of the in-process limit",
                100.0 * limit / secs
            );
        }
    }
    Ok(())
}

/// The spin kernel with `params` over `shards` one-index shards on `threads` OS threads in
/// this process, each taking the next shard from a shared counter; the elapsed seconds.
fn in_process(params: &[&str], shards: u64, threads: usize) -> Result<f64> {
    let params = Params::from_pairs(params.iter().copied())?;
    let prepared: Arc<dyn Prepared> = Arc::from(prepare_checked(&Spin, &params)?);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (prepared, next) = (prepared.clone(), next.clone());
            std::thread::spawn(move || {
                let cancel = CancelFlag::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= shards {
                        break;
                    }
                    let _ = prepared.run(&ShardInput { lo: i, hi: i + 1, input: None }, &cancel);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| anyhow::anyhow!("spin thread panicked"))?;
    }
    Ok(start.elapsed().as_secs_f64())
}
