//! `farm showdown`: the classic "threading vs multiprocessing" comparison, measured on this
//! machine with the real thing.
//!
//! Two kernels run in several shapes, with N the number of cores:
//!
//! - `primes` (CPU-bound): serial (1 worker × 1 thread), threads only (1 × N), processes only
//!   (N × 1) and composed (N × N).
//! - `sleep` (waiting): the same four, plus a wide composed run (N × 4N), because work that waits
//!   wants more threads than there are cores.
//!
//! Each configuration is a child process, `current_exe() run KIND ... --json`, timed from spawn
//! to exit, so the wall time includes starting and stopping the workers; the job's own
//! `elapsed_ms` is kept next to it. Every configuration of a kernel must give the same result.
//!
//! When `python3` is on PATH, the same primality test runs in Python (serial, `threading`
//! with N threads, `multiprocessing.Pool(N)`), on a smaller range, with its own serial
//! baseline, and its count is checked against farm's own `is_prime`.
//!
//! Efficiency is speedup over the ideal: for `primes` and Python the ideal speedup is
//! min(P·T, N, shards); for `sleep` the ideal wall time is total sleep / min(P·T, shards), and
//! efficiency is that ideal divided by the measured wall time.

mod chart;
mod python;
mod run;
#[cfg(test)]
mod tests;

use chart::*;
use python::*;
use run::*;

use crate::args::ShowdownArgs;
use crate::job::parse_range;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

/// How long the output readers of a child that has exited may take to finish (a grandchild
/// that still holds stderr must not hang the showdown).
const READ_GRACE: Duration = Duration::from_secs(5);

/// One shape to run: a mode name and P workers × T threads.
#[derive(Debug, Clone, PartialEq)]
struct Shape {
    mode: &'static str,
    workers: usize,
    threads: usize,
}

impl Shape {
    fn new(mode: &'static str, workers: usize, threads: usize) -> Shape {
        Shape { mode, workers, threads }
    }

    fn slots(&self) -> usize {
        self.workers * self.threads
    }
}

/// The shapes every kernel runs with N cores; waiting work adds a wide composed run.
fn shapes(n: usize, waits: bool) -> Vec<Shape> {
    let mut all = vec![
        Shape::new("serial", 1, 1),
        Shape::new("threads", 1, n),
        Shape::new("processes", n, 1),
        Shape::new("composed", n, n),
    ];
    if waits {
        all.push(Shape::new("composed wide", n, 4 * n));
    }
    all
}

/// What a configuration is measured against.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ideal {
    /// CPU-bound: at most `cores` shards make progress at once.
    Cpu { cores: usize },
    /// Waiting: every slot waits in parallel; `total_s` is the sum of all the waits.
    Wait { total_s: f64 },
}

/// The ideal speedup over a perfect serial run for `slots` = P·T shards at once.
fn ideal_speedup(ideal: Ideal, slots: usize, shards: u64) -> f64 {
    let parallel = (slots as u64).min(shards).max(1);
    match ideal {
        Ideal::Cpu { cores } => parallel.min(cores.max(1) as u64) as f64,
        Ideal::Wait { .. } => parallel as f64,
    }
}

/// Speedup of a run over its serial baseline.
fn speedup(serial_wall_s: f64, wall_s: f64) -> f64 {
    if wall_s > 0.0 {
        serial_wall_s / wall_s
    } else {
        0.0
    }
}

/// Efficiency in 0..=1 (more only through noise): speedup over the ideal speedup for CPU work;
/// for waiting work the ideal wall time (total wait / parallel slots) over the measured one.
fn efficiency(ideal: Ideal, slots: usize, shards: u64, speedup: f64, wall_s: f64) -> f64 {
    let best = ideal_speedup(ideal, slots, shards);
    match ideal {
        Ideal::Cpu { .. } => speedup / best,
        Ideal::Wait { total_s } if wall_s > 0.0 => total_s / best / wall_s,
        Ideal::Wait { .. } => 0.0,
    }
}

/// One measured configuration.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    kernel: String,
    mode: String,
    workers: usize,
    threads: usize,
    /// Indices the run covered, for the rate.
    items: u64,
    wall_s: f64,
    /// The job's own time as the master measured it (farm rows only).
    elapsed_ms: Option<u64>,
    result: Value,
    speedup: f64,
    ideal_speedup: f64,
    efficiency: f64,
}

impl Row {
    fn rate(&self) -> f64 {
        if self.wall_s > 0.0 {
            self.items as f64 / self.wall_s
        } else {
            0.0
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "kernel": self.kernel,
            "mode": self.mode,
            "workers": self.workers,
            "threads": self.threads,
            "items": self.items,
            "wall_s": self.wall_s,
            "elapsed_ms": self.elapsed_ms,
            "result": self.result,
            "speedup": self.speedup,
            "ideal_speedup": self.ideal_speedup,
            "efficiency": self.efficiency,
            "items_per_s": self.rate(),
        })
    }
}

/// One measurement before the serial baseline is applied.
#[derive(Debug)]
struct Measured {
    shape: Shape,
    wall_s: f64,
    elapsed_ms: Option<u64>,
    result: Value,
}

/// Turns the measurements of one kernel (the first is the serial baseline) into rows, after
/// checking that they all got the same result.
fn rows_for(
    kernel: &str,
    items: u64,
    shards: u64,
    ideal: Ideal,
    measured: Vec<Measured>,
) -> Result<Vec<Row>> {
    let Some(first) = measured.first() else { return Ok(Vec::new()) };
    let (serial_wall, expected) = (first.wall_s, first.result.clone());
    for m in &measured {
        if m.result != expected {
            bail!(
                "{kernel} results disagree: {} {}x{} gave {expected}, {} {}x{} gave {}",
                first.shape.mode,
                first.shape.workers,
                first.shape.threads,
                m.shape.mode,
                m.shape.workers,
                m.shape.threads,
                m.result
            );
        }
    }
    Ok(measured
        .into_iter()
        .map(|m| {
            let slots = m.shape.slots();
            let s = speedup(serial_wall, m.wall_s);
            Row {
                kernel: kernel.to_string(),
                mode: m.shape.mode.to_string(),
                workers: m.shape.workers,
                threads: m.shape.threads,
                items,
                wall_s: m.wall_s,
                elapsed_ms: m.elapsed_ms,
                result: m.result,
                speedup: s,
                ideal_speedup: ideal_speedup(ideal, slots, shards),
                efficiency: efficiency(ideal, slots, shards, s, m.wall_s),
            }
        })
        .collect())
}

/// A checked, non-empty index range.
fn range_arg(flag: &str, s: &str) -> Result<(u64, u64)> {
    let (a, b) = parse_range(s).map_err(|_| {
        anyhow::anyhow!("bad {flag} {s:?}: expected A..B with whole numbers, e.g. 0..1000")
    })?;
    if a >= b {
        bail!("bad {flag} {s:?}: the range is empty (A must be below B)");
    }
    Ok((a, b))
}

/// What the showdown runs, checked from the flags before anything starts.
#[derive(Debug)]
struct Plan {
    cores: usize,
    primes: (u64, u64),
    shard_size: u64,
    sleep: (u64, u64),
    sleep_ms: u64,
    python: Option<(u64, u64)>,
    /// The interpreter of the Python rows.
    interpreter: Python,
}

fn plan(args: &ShowdownArgs) -> Result<Plan> {
    let cores = args.cores.unwrap_or_else(farm_worker::default_threads);
    if cores == 0 {
        bail!("--cores must be at least 1");
    }
    if args.shard_size == 0 {
        bail!("--shard-size must be at least 1");
    }
    if args.sleep_ms == 0 {
        bail!("--sleep-ms must be at least 1");
    }
    let python =
        if args.no_python { None } else { Some(range_arg("--python-range", &args.python_range)?) };
    Ok(Plan {
        cores,
        primes: range_arg("--range", &args.range)?,
        shard_size: args.shard_size,
        sleep: range_arg("--sleep-range", &args.sleep_range)?,
        sleep_ms: args.sleep_ms,
        python,
        interpreter: match &args.python {
            Some(path) => Python { program: path.clone(), explicit: true },
            None => Python { program: "python3".into(), explicit: false },
        },
    })
}

/// Load average per core above which the figures are skewed by other work.
const BUSY_PER_CORE: f64 = 0.5;

/// A warning when the 1-minute load average in `loadavg` (the text of /proc/loadavg) is above
/// `BUSY_PER_CORE` per core.
fn busy(loadavg: &str, cores: usize) -> Option<String> {
    let load: f64 = loadavg.split_whitespace().next()?.parse().ok()?;
    (load > BUSY_PER_CORE * cores.max(1) as f64).then(|| {
        format!(
            "warning: this machine is busy (load average {load:.2} on {cores} cores): other work \
             competes for the cores, and the figures below will be skewed"
        )
    })
}

/// `farm showdown`.
pub async fn showdown(args: ShowdownArgs) -> Result<()> {
    let plan = plan(&args)?;
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    if let Some(warning) = busy(&loadavg, farm_worker::default_threads()) {
        eprintln!("{warning}");
    }
    let json = args.output.json;
    let exe = std::env::current_exe().context("cannot find the farm executable to run")?;
    let say = |line: String| {
        if !json {
            eprintln!("{line}");
        }
    };
    if plan.python.is_some() && plan.interpreter.explicit {
        check_python(&plan.interpreter).await?;
    }
    let n = plan.cores;
    let mut rows = Vec::new();

    // primes: CPU-bound.
    let (a, b) = plan.primes;
    let shards = (b - a).div_ceil(plan.shard_size);
    let mut measured = Vec::new();
    for shape in shapes(n, false) {
        let run = FarmRun { kind: "primes", range: plan.primes, shard_size: plan.shard_size };
        let m = run.measure(&exe, &shape, &[], args.timeout).await?;
        say(progress("primes", &m));
        measured.push(m);
    }
    rows.extend(rows_for("primes", b - a, shards, Ideal::Cpu { cores: n }, measured)?);

    // sleep: waiting, one index per shard.
    let (a, b) = plan.sleep;
    let total_s = (b - a) as f64 * plan.sleep_ms as f64 / 1000.0;
    let param = vec![format!("ms={}", plan.sleep_ms)];
    let mut measured = Vec::new();
    for shape in shapes(n, true) {
        let run = FarmRun { kind: "sleep", range: plan.sleep, shard_size: 1 };
        let m = run.measure(&exe, &shape, &param, args.timeout).await?;
        say(progress("sleep", &m));
        measured.push(m);
    }
    rows.extend(rows_for("sleep", b - a, b - a, Ideal::Wait { total_s }, measured)?);

    // The same primality test in Python.
    let python = python_rows(&plan, args.timeout, &mut rows, &say).await?;
    let missing = python.as_ref().map(PythonInfo::missing).unwrap_or_default();

    if let Some(path) = &args.out {
        let title = format!("farm showdown: speedup over serial on {n} cores");
        let subtitle = subtitle(&plan);
        std::fs::write(path, svg(&rows, &title, &subtitle, &missing))
            .with_context(|| format!("cannot write {}", path.display()))?;
        say(format!("wrote {}", path.display()));
    }
    if json {
        let out = json!({
            "cores": n,
            "python": python.as_ref().map(|p| &p.version),
            "farm_executor": python.as_ref().map(PythonInfo::to_json),
            "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
        });
        crate::out::json(&out)?;
    } else {
        let mut text = table(&rows);
        for line in notes(&rows, n, python.as_ref()) {
            text.push_str(&line);
            text.push('\n');
        }
        crate::out::write(&text)?;
    }
    Ok(())
}

fn progress(kernel: &str, m: &Measured) -> String {
    format!(
        "{kernel:<16} {:<14} {}x{}: {:.2} s",
        m.shape.mode, m.shape.workers, m.shape.threads, m.wall_s
    )
}

fn subtitle(plan: &Plan) -> String {
    let mut s = format!(
        "primes {}..{} (shards of {}); sleep {} × {} ms",
        plan.primes.0,
        plan.primes.1,
        plan.shard_size,
        plan.sleep.1 - plan.sleep.0,
        plan.sleep_ms
    );
    if let Some((a, b)) = plan.python {
        let _ = write!(s, "; Python primes {a}..{b}");
    }
    s.push_str(". Tick: ideal speedup.");
    s
}
