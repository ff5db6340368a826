//! Figure 8, external programs through the `exec` kernel (issue 15's goal 3): 5,000 runs of
//! `/bin/true` per second (goal: 3 × HyperQueue's 411/s, so about 1,250/s on 2 cores), and
//! the efficiency of 400 runs of a program that burns 10 ms of CPU (goal: 95 %). The 10 ms
//! program is this binary itself, `farm-bench spin-child 10`, so no other tool is needed.
//! Each row prints its command; `--farm PATH` measures another build of farm the same way.

use crate::procs::{run_args, run_secs};
use anyhow::{Context, Result};
use std::path::Path;

/// The argument that makes this binary the 10 ms program instead of the bench.
const SPIN_CHILD: &str = "spin-child";
/// Runs of each row; the best is printed.
const RUNS: usize = 3;

/// When this process is `farm-bench spin-child MS`: burns MS milliseconds of its thread's CPU
/// time; the exit code, 0 (2 on a bad MS). `None` for every other command line.
pub fn spin_child() -> Option<i32> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some(SPIN_CHILD) {
        return None;
    }
    let Some(ms) = args.next().and_then(|ms| ms.parse::<u64>().ok()) else {
        eprintln!("usage: farm-bench {SPIN_CHILD} MS");
        return Some(2);
    };
    let start = farm_worker::kernels::spin::thread_cpu_nanos();
    let nanos = ms.saturating_mul(1_000_000);
    while farm_worker::kernels::spin::thread_cpu_nanos().saturating_sub(start) < nanos {
        for _ in 0..64 {
            std::hint::spin_loop();
        }
    }
    Some(0)
}

/// The `farm run exec` command line of `runs` runs of `cmd` on `workers` × `threads`.
fn command(cmd: &str, runs: u64, workers: usize, threads: usize) -> Vec<String> {
    run_args("exec", runs, &[&format!("cmd={cmd}")], workers, threads)
}

/// The best (lowest) elapsed seconds, as the master measured them, of [`RUNS`] runs of `args`.
fn best_secs(farm: &Path, args: &[String]) -> Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..RUNS {
        best = best.min(run_secs(farm, args)?);
    }
    Ok(best)
}

/// The command as a person would type it, the param quoted.
fn shown(farm: &Path, args: &[String]) -> String {
    let quoted: Vec<String> =
        args.iter().map(|a| if a.contains(' ') { format!("'{a}'") } else { a.clone() }).collect();
    format!("{} {}", farm.display(), quoted.join(" "))
}

/// Figure 8: both workloads, on 1 worker × 2 threads and 2 workers × 1 thread.
pub fn exec(farm: &Path, cores: usize) -> Result<()> {
    const TRUE_RUNS: u64 = 5_000;
    const SPIN_RUNS: u64 = 400;
    const SPIN_MS: u64 = 10;
    let me = std::env::current_exe().context("cannot find this binary for spin-child")?;
    let me = me.to_str().context("this binary's path is not UTF-8")?;
    let spin = format!("\"{me}\" {SPIN_CHILD} {SPIN_MS}");
    println!("10. exec: external programs, best of {RUNS} runs each");
    for (workers, threads) in [(1, 2), (2, 1)] {
        let args = command("/bin/true", TRUE_RUNS, workers, threads);
        let secs = best_secs(farm, &args)?;
        println!(
            "   {TRUE_RUNS} x /bin/true, {workers} worker(s) x {threads} thread(s): {:.0} runs/s (goal >= 1250)\n     {}",
            TRUE_RUNS as f64 / secs,
            shown(farm, &args)
        );
    }
    let ideal = (SPIN_RUNS * SPIN_MS) as f64 / 1000.0 / cores as f64;
    for (workers, threads) in [(1, 2), (2, 1)] {
        let args = command(&spin, SPIN_RUNS, workers, threads);
        let secs = best_secs(farm, &args)?;
        println!(
            "   {SPIN_RUNS} x a {SPIN_MS} ms CPU program, {workers} worker(s) x {threads} thread(s): {secs:.2} s, ideal {ideal:.2} s on {cores} cores: efficiency {:.1} % (goal >= 95)\n     {}",
            100.0 * ideal / secs,
            shown(farm, &args)
        );
    }
    Ok(())
}
