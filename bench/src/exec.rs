//! Figure 10, external programs through the `exec` kernel (issue 15's goal 3): 5,000 runs of
//! `/bin/true` per second (goal: 3 × HyperQueue's, which `farm-bench peers` measures), and
//! the efficiency of 400 runs of a program that costs 10 ms of CPU, its start-up included
//! (goal: 95 %). The 10 ms program is `spin-child 10`, built beside this binary.
//! Each row prints its command and its ratio to `xargs -P` running the same program as often
//! (measured in the same run); `--farm PATH` measures another build of farm the same way.

use crate::procs::{run_args, run_secs, spin_child_path};
use anyhow::{Context, Result};
use std::path::Path;

/// Runs of each row; the best is printed.
const RUNS: usize = 3;
/// The workloads, shared with the `peers` figure: `/bin/true` runs, and runs of a program
/// that costs [`PROG_MS`] of CPU.
pub(crate) const TRUE_RUNS: u64 = 5_000;
pub(crate) const PROG_RUNS: u64 = 400;
pub(crate) const PROG_MS: u64 = 10;

/// The `cmd` param that runs the [`PROG_MS`] program, `spin-child`, built beside this binary.
pub(crate) fn prog_cmd() -> Result<String> {
    let child = spin_child_path()?;
    let child = child.to_str().context("the spin-child path is not UTF-8")?;
    Ok(format!("\"{child}\" {PROG_MS}"))
}

/// The efficiency of `n` runs of `ms` each on `cores` cores that took `secs`: the ideal over
/// the elapsed time, 1.0 at best.
pub(crate) fn efficiency(n: u64, ms: u64, cores: usize, secs: f64) -> f64 {
    (n * ms) as f64 / 1000.0 / cores as f64 / secs
}

/// The `farm run exec` command line of `runs` runs of `cmd` on `workers` × `threads`.
fn command(cmd: &str, runs: u64, workers: usize, threads: usize) -> Vec<String> {
    run_args("exec", runs, &[&format!("cmd={cmd}")], workers, threads)
}

/// The best (lowest) of [`RUNS`] timings that `time` takes, in seconds.
fn best_of(mut time: impl FnMut() -> Result<f64>) -> Result<f64> {
    (0..RUNS).try_fold(f64::INFINITY, |best, _| Ok(best.min(time()?)))
}

/// The best elapsed seconds, as the master measured them, of [`RUNS`] runs of `args`.
fn best_secs(farm: &Path, args: &[String]) -> Result<f64> {
    best_of(|| run_secs(farm, args))
}

/// The command as a person would type it, the param quoted.
fn shown(farm: &Path, args: &[String]) -> String {
    let quoted: Vec<String> =
        args.iter().map(|a| if a.contains(' ') { format!("'{a}'") } else { a.clone() }).collect();
    format!("{} {}", farm.display(), quoted.join(" "))
}

/// Seconds of `seq 1 runs | xargs -P cores -I{} program args...`, the best of [`RUNS`]: the
/// bare spawn-and-wait loop, the reference each farm row is a ratio to.
fn xargs_secs(runs: u64, cores: usize, program: &[&str]) -> Result<f64> {
    best_of(|| {
        let script = r#"p=$1; shift; seq 1 "$0" | xargs -P "$p" -I{} "$@""#;
        let start = std::time::Instant::now();
        let status = std::process::Command::new("sh")
            .args(["-c", script, &runs.to_string(), &cores.to_string()])
            .args(program)
            .status()
            .context("cannot run sh for the xargs reference")?;
        anyhow::ensure!(status.success(), "the xargs reference failed: {status}");
        Ok(start.elapsed().as_secs_f64())
    })
}

/// CPU seconds of this process's reaped children so far (user + system).
fn children_cpu_secs() -> f64 {
    // SAFETY: a zeroed rusage is a valid value for getrusage to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes only into `usage`, which lives for the call.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// The CPU seconds one run of `program` costs on its own (its start-up and exit included),
/// from `runs` runs one after another: what bounds any runner at `cores` / this per second.
fn program_cpu_secs(program: &[&str], runs: u32) -> Result<f64> {
    let before = children_cpu_secs();
    for _ in 0..runs {
        let status = std::process::Command::new(program[0])
            .args(&program[1..])
            .status()
            .with_context(|| format!("cannot run {}", program[0]))?;
        anyhow::ensure!(status.success(), "{} failed: {status}", program[0]);
    }
    Ok((children_cpu_secs() - before) / f64::from(runs))
}

/// Figure 10: both workloads, on 1 worker × 2 threads and 2 workers × 1 thread, each beside
/// `xargs -P cores` running the same program the same number of times.
pub fn exec(farm: &Path, cores: usize) -> Result<()> {
    let child = spin_child_path()?;
    let child = child.to_str().context("the spin-child path is not UTF-8")?;
    let spin = prog_cmd()?;
    println!("10. exec: external programs, best of {RUNS} runs each");
    let cpu = program_cpu_secs(&["/bin/true"], 1000)?;
    println!(
        "   limit: /bin/true costs {:.0} us of CPU per run (1,000 runs in a row), so {cores} cores run at most {:.0} /s",
        cpu * 1e6,
        cores as f64 / cpu
    );
    let xargs = xargs_secs(TRUE_RUNS, cores, &["/bin/true"])?;
    println!(
        "   reference: seq 1 {TRUE_RUNS} | xargs -P {cores} -I{{}} /bin/true: {:.0} runs/s",
        TRUE_RUNS as f64 / xargs
    );
    for (workers, threads) in [(1, 2), (2, 1)] {
        let args = command("/bin/true", TRUE_RUNS, workers, threads);
        let secs = best_secs(farm, &args)?;
        println!(
            "   {TRUE_RUNS} x /bin/true, {workers} worker(s) x {threads} thread(s): {:.0} runs/s, {:.1} % of the limit, {:.2} x xargs\n     {}",
            TRUE_RUNS as f64 / secs,
            100.0 * TRUE_RUNS as f64 / secs * cpu / cores as f64,
            xargs / secs,
            shown(farm, &args)
        );
    }
    let ideal = (PROG_RUNS * PROG_MS) as f64 / 1000.0 / cores as f64;
    let xargs = xargs_secs(PROG_RUNS, cores, &[child, &PROG_MS.to_string()])?;
    println!(
        "   reference: seq 1 {PROG_RUNS} | xargs -P {cores} -I{{}} spin-child {PROG_MS}: {xargs:.2} s, efficiency {:.1} %",
        100.0 * efficiency(PROG_RUNS, PROG_MS, cores, xargs)
    );
    for (workers, threads) in [(1, 2), (2, 1)] {
        let args = command(&spin, PROG_RUNS, workers, threads);
        let secs = best_secs(farm, &args)?;
        println!(
            "   {PROG_RUNS} x a {PROG_MS} ms CPU program, {workers} worker(s) x {threads} thread(s): {secs:.2} s, ideal {ideal:.2} s on {cores} cores: efficiency {:.1} % (goal >= 95), {:.3} x xargs\n     {}",
            100.0 * efficiency(PROG_RUNS, PROG_MS, cores, secs),
            xargs / secs,
            shown(farm, &args)
        );
    }
    Ok(())
}
