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

/// The Python side: counts primes with the same test as farm's `primes` kernel (trial division
/// by the primes below 100, then deterministic Miller-Rabin with the same bases), over the same
/// kind of shards, three ways. Arguments: start end shard_size n. Prints one JSON line.
const PYTHON: &str = r#"
import json, os, sys, time
import multiprocessing
from concurrent.futures import ThreadPoolExecutor

SMALL = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79,
         83, 89, 97)
BASES = (2, 325, 9375, 28178, 450775, 9780504, 1795265022)

def is_prime(n):
    if n < 2:
        return False
    for p in SMALL:
        if n == p:
            return True
        if n % p == 0:
            return False
    if n < 101 * 101:
        return True
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for base in BASES:
        a = base % n
        if a == 0:
            continue
        x = pow(a, d, n)
        if x == 1 or x == n - 1:
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True

def count(shard):
    lo, hi = shard
    return sum(1 for i in range(lo, hi) if is_prime(i))

def die_with(parent):
    # Pool workers die with the script (PR_SET_PDEATHSIG), so a killed script leaves none.
    try:
        import ctypes, signal
        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))
        if os.getppid() != parent:
            os._exit(1)
    except (AttributeError, OSError):
        pass

def main():
    start, end, size, n = (int(a) for a in sys.argv[1:5])
    shards = [(lo, min(lo + size, end)) for lo in range(start, end, size)]
    gil = getattr(sys, "_is_gil_enabled", None)
    out = {"version": sys.version.split()[0], "gil": True if gil is None else bool(gil())}
    t = time.perf_counter()
    total = sum(map(count, shards))
    out["serial"] = {"result": total, "wall_s": time.perf_counter() - t}
    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=n) as pool:
        total = sum(pool.map(count, shards))
    out["threading"] = {"result": total, "wall_s": time.perf_counter() - t}
    t = time.perf_counter()
    # fork: a -c script has no module file that spawn or forkserver could import.
    with multiprocessing.get_context("fork").Pool(n, die_with, (os.getpid(),)) as pool:
        total = sum(pool.imap_unordered(count, shards))
    out["multiprocessing"] = {"result": total, "wall_s": time.perf_counter() - t}
    print(json.dumps(out), flush=True)

main()
"#;

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
    })
}

/// `farm showdown`.
pub async fn showdown(args: ShowdownArgs) -> Result<()> {
    let plan = plan(&args)?;
    let json = args.output.json;
    let exe = std::env::current_exe().context("cannot find the farm executable to run")?;
    let say = |line: String| {
        if !json {
            eprintln!("{line}");
        }
    };
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
    let mut python_version = None;
    if let Some((a, b)) = plan.python {
        match python(a, b, plan.shard_size, n, args.timeout).await? {
            None => eprintln!("python3 is not on PATH: skipped the Python rows"),
            Some((version, measured)) => {
                let expected = tokio::task::spawn_blocking(move || {
                    (a..b).filter(|&i| farm_worker::kernels::primes::is_prime(i)).count() as u64
                })
                .await?;
                if let Some(m) = measured.iter().find(|m| m.result != json!(expected)) {
                    bail!(
                        "Python counted {} primes in {a}..{b} ({}), farm's test counts {expected}",
                        m.result,
                        m.shape.mode
                    );
                }
                let shards = (b - a).div_ceil(plan.shard_size);
                for m in &measured {
                    say(progress("primes (python)", m));
                }
                rows.extend(rows_for(
                    "primes (python)",
                    b - a,
                    shards,
                    Ideal::Cpu { cores: n },
                    measured,
                )?);
                python_version = Some(version);
            }
        }
    }

    if let Some(path) = &args.out {
        let title = format!("farm showdown: speedup over serial on {n} cores");
        let subtitle = subtitle(&plan);
        std::fs::write(path, svg(&rows, &title, &subtitle))
            .with_context(|| format!("cannot write {}", path.display()))?;
        say(format!("wrote {}", path.display()));
    }
    if json {
        let out = json!({
            "cores": n,
            "python": python_version,
            "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string(&out)?);
    } else {
        print!("{}", table(&rows));
        for line in notes(&rows, n, python_version.as_deref()) {
            println!("{line}");
        }
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

/// One `farm run` configuration.
struct FarmRun {
    kind: &'static str,
    range: (u64, u64),
    shard_size: u64,
}

impl FarmRun {
    fn args(&self, shape: &Shape, params: &[String]) -> Vec<String> {
        let mut args = vec![
            "run".to_string(),
            self.kind.to_string(),
            "--range".into(),
            format!("{}..{}", self.range.0, self.range.1),
            "--shard-size".into(),
            self.shard_size.to_string(),
            "--workers".into(),
            shape.workers.to_string(),
            "--threads".into(),
            shape.threads.to_string(),
            "--json".into(),
        ];
        for p in params {
            args.push("--param".into());
            args.push(p.clone());
        }
        args
    }

    /// Runs `farm run ... --json` as a child and checks that the job succeeded.
    async fn measure(
        &self,
        exe: &Path,
        shape: &Shape,
        params: &[String],
        timeout: Duration,
    ) -> Result<Measured> {
        let what = format!("farm run {} ({}x{})", self.kind, shape.workers, shape.threads);
        let mut cmd = Command::new(exe);
        cmd.args(self.args(shape, params));
        let started = Instant::now();
        let child = spawn(&mut cmd).with_context(|| format!("cannot start {what}"))?;
        let done = finish(child, &what, timeout).await?;
        let wall_s = done.exited.duration_since(started).as_secs_f64();
        let status: Value = last_json_line(&done.stdout).ok_or_else(|| {
            anyhow::anyhow!("{what} printed no JSON status ({})", done.failure_reason())
        })?;
        let state = status["state"].as_str().unwrap_or("unknown");
        if state != "succeeded" || !done.status.success() {
            let why = status["error"].as_str().map_or_else(|| done.failure_reason(), str::to_owned);
            bail!("{what} ended {state}: {why}");
        }
        Ok(Measured {
            shape: shape.clone(),
            wall_s,
            elapsed_ms: status["elapsed_ms"].as_u64(),
            result: status["result"].clone(),
        })
    }
}

/// Runs the Python script; `None` when python3 is not on PATH.
async fn python(
    start: u64,
    end: u64,
    shard_size: u64,
    n: usize,
    timeout: Duration,
) -> Result<Option<(String, Vec<Measured>)>> {
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(PYTHON).args([
        start.to_string(),
        end.to_string(),
        shard_size.to_string(),
        n.to_string(),
    ]);
    let child = match spawn(&mut cmd) {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).context("cannot start python3"),
    };
    let what = "the Python script";
    let done = finish(child, what, timeout).await?;
    if !done.status.success() {
        bail!("{what} failed: {}", done.failure_reason());
    }
    let out = last_json_line(&done.stdout)
        .ok_or_else(|| anyhow::anyhow!("{what} printed no JSON: {}", done.failure_reason()))?;
    let version = out["version"].as_str().unwrap_or("?").to_string();
    let threading =
        if out["gil"].as_bool() == Some(false) { "threading, no GIL" } else { "threading" };
    let mut measured = Vec::new();
    for (key, shape) in [
        ("serial", Shape::new("serial", 1, 1)),
        ("threading", Shape::new(threading, 1, n)),
        ("multiprocessing", Shape::new("multiprocessing", n, 1)),
    ] {
        let wall_s = out[key]["wall_s"]
            .as_f64()
            .ok_or_else(|| anyhow::anyhow!("{what} gave no wall time for {key}"))?;
        measured.push(Measured {
            shape,
            wall_s,
            elapsed_ms: None,
            result: out[key]["result"].clone(),
        });
    }
    Ok(Some((version, measured)))
}

fn spawn(cmd: &mut Command) -> std::io::Result<Child> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
}

/// A child that has exited.
struct Finished {
    status: ExitStatus,
    /// When `wait` returned.
    exited: Instant,
    stdout: String,
    stderr: String,
}

impl Finished {
    /// The last line of stderr, or the exit status.
    fn failure_reason(&self) -> String {
        match self.stderr.lines().rev().find(|l| !l.trim().is_empty()) {
            Some(line) => line.trim().to_string(),
            None => format!("exit {}", self.status),
        }
    }
}

/// Waits for a child at most `timeout` while reading its output; on a timeout, an error or an
/// interrupt it kills the child and waits for it, so none is left behind.
async fn finish(mut child: Child, what: &str, timeout: Duration) -> Result<Finished> {
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    let waited = tokio::select! {
        waited = tokio::time::timeout(timeout, child.wait()) => waited,
        _ = crate::roles::shutdown_signal() => {
            let _ = child.kill().await;
            bail!("interrupted while running {what}");
        }
    };
    let status = match waited {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => {
            let _ = child.kill().await;
            bail!("cannot wait for {what}: {e}");
        }
        Err(_) => {
            let _ = child.kill().await;
            bail!("{what} did not finish within {} s; killed it", timeout.as_secs_f64());
        }
    };
    let exited = Instant::now();
    Ok(Finished { status, exited, stdout: collect(stdout).await, stderr: collect(stderr).await })
}

type Reader = tokio::task::JoinHandle<String>;

fn read_all<R: tokio::io::AsyncRead + Unpin + Send + 'static>(pipe: Option<R>) -> Reader {
    tokio::spawn(async move {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf).await;
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

async fn collect(reader: Reader) -> String {
    let abort = reader.abort_handle();
    match tokio::time::timeout(READ_GRACE, reader).await {
        Ok(Ok(text)) => text,
        Ok(Err(_)) => String::new(),
        Err(_) => {
            abort.abort();
            String::new()
        }
    }
}

fn last_json_line(stdout: &str) -> Option<Value> {
    stdout.lines().rev().find_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
}

/// The table for people.
fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<16} {:<18} {:>9} {:>8} {:>7} {:>8} {:>10} {:>11}\n",
        "KERNEL", "MODE", "P x T", "WALL S", "JOB S", "SPEEDUP", "EFFICIENCY", "ITEMS/S"
    );
    for r in rows {
        let job =
            r.elapsed_ms.map_or_else(|| "-".to_string(), |ms| format!("{:.2}", ms as f64 / 1e3));
        let _ = writeln!(
            out,
            "{:<16} {:<18} {:>9} {:>8.2} {:>7} {:>8.2} {:>9.0}% {:>11}",
            r.kernel,
            r.mode,
            format!("{} x {}", r.workers, r.threads),
            r.wall_s,
            job,
            r.speedup,
            r.efficiency * 100.0,
            human_rate(r.rate()),
        );
    }
    out
}

fn human_rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2}M", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.1}k", per_s / 1e3)
    } else {
        format!("{per_s:.0}")
    }
}

/// What the table means, in a few lines computed from it.
fn notes(rows: &[Row], n: usize, python: Option<&str>) -> Vec<String> {
    let find =
        |kernel: &str, mode: &str| rows.iter().find(|r| r.kernel == kernel && r.mode == mode);
    let mut lines = vec![format!(
        "N = {n}. WALL S is the whole `farm run` (starting and stopping the workers); JOB S is the \
         job alone."
    )];
    if let (Some(c), Some(w)) = (find("sleep", "composed"), find("sleep", "composed wide")) {
        let verdict = if w.wall_s < c.wall_s * 0.9 {
            "waiting work wants more threads than cores"
        } else {
            "no gain from the extra threads here"
        };
        lines.push(format!(
            "sleep: {}x{} finished in {:.2} s against {:.2} s for {}x{}: {verdict}.",
            w.workers, w.threads, w.wall_s, c.wall_s, c.workers, c.threads
        ));
    }
    if let Some(version) = python {
        let py_serial = find("primes (python)", "serial");
        let py_threads =
            rows.iter().find(|r| r.kernel == "primes (python)" && r.mode.starts_with("threading"));
        let py_procs = find("primes (python)", "multiprocessing");
        if let (Some(s), Some(t), Some(p)) = (py_serial, py_threads, py_procs) {
            lines.push(format!(
                "python {version}: {} gives {:.2}x, multiprocessing {:.2}x over Python serial.",
                t.mode, t.speedup, p.speedup
            ));
            if let Some(f) = find("primes", "serial") {
                if s.rate() > 0.0 {
                    lines.push(format!(
                        "farm serial tests {:.1}x as many numbers per second as Python serial \
                         (same test; farm's range has larger numbers).",
                        f.rate() / s.rate()
                    ));
                }
            }
        }
    }
    lines
}

/// Colour of a mode's bars.
fn colour(mode: &str) -> &'static str {
    match mode {
        "serial" => "#8c8c8c",
        "threads" => "#4c78a8",
        "processes" | "multiprocessing" => "#f58518",
        "composed" => "#54a24b",
        "composed wide" => "#b279a2",
        m if m.starts_with("threading") => "#4c78a8",
        _ => "#e45756",
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A tick step that gives at most 10 ticks up to `max`.
fn tick_step(max: f64) -> f64 {
    [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 10.0, 20.0, 25.0, 50.0, 100.0]
        .into_iter()
        .find(|step| max / step <= 10.0)
        .unwrap_or_else(|| (max / 10.0).ceil())
}

/// The chart: grouped horizontal bars of speedup per mode, one group per kernel, with a tick at
/// each bar's ideal speedup. A standalone 900×500 SVG.
fn svg(rows: &[Row], title: &str, subtitle: &str) -> String {
    const W: f64 = 900.0;
    const H: f64 = 500.0;
    const LEFT: f64 = 250.0;
    const RIGHT: f64 = 780.0;
    const TOP: f64 = 72.0;
    const BOTTOM: f64 = 440.0;
    let mut groups: Vec<(&str, Vec<&Row>)> = Vec::new();
    for r in rows {
        match groups.iter_mut().find(|(k, _)| *k == r.kernel) {
            Some((_, members)) => members.push(r),
            None => groups.push((&r.kernel, vec![r])),
        }
    }
    let peak = rows.iter().map(|r| r.speedup.max(r.ideal_speedup)).fold(1.0, f64::max);
    let step = tick_step(peak);
    let max = (peak / step).ceil() * step;
    let x = |v: f64| LEFT + (v.max(0.0) / max) * (RIGHT - LEFT);
    let slots = (rows.len() + groups.len()).max(1) as f64;
    let slot = (BOTTOM - TOP) / slots;
    let bar = slot * 0.72;

    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" \
         viewBox=\"0 0 {W} {H}\" font-family=\"Helvetica, Arial, sans-serif\">\n"
    );
    let _ = writeln!(s, "<rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#ffffff\"/>");
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"30\" font-size=\"20\" font-weight=\"bold\" text-anchor=\"middle\">{}</text>",
        W / 2.0,
        escape(title)
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"52\" font-size=\"12\" fill=\"#555555\" text-anchor=\"middle\">{}</text>",
        W / 2.0,
        escape(subtitle)
    );
    // Grid and axis.
    let mut v = 0.0;
    while v <= max + 1e-9 {
        let gx = x(v);
        let _ = writeln!(
            s,
            "<line x1=\"{gx:.1}\" y1=\"{TOP}\" x2=\"{gx:.1}\" y2=\"{BOTTOM}\" stroke=\"#e3e3e3\"/>"
        );
        let _ = writeln!(
            s,
            "<text x=\"{gx:.1}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">{}</text>",
            BOTTOM + 18.0,
            trim_number(v)
        );
        v += step;
    }
    let _ = writeln!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{BOTTOM}\" x2=\"{RIGHT}\" y2=\"{BOTTOM}\" stroke=\"#333333\"/>"
    );
    let _ = writeln!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{BOTTOM}\" stroke=\"#333333\"/>"
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"13\" text-anchor=\"middle\">speedup over the same kernel's serial run (×)</text>",
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 42.0
    );
    // Bars.
    let mut y = TOP;
    for (kernel, members) in &groups {
        let _ = writeln!(
            s,
            "<text x=\"12\" y=\"{:.1}\" font-size=\"14\" font-weight=\"bold\">{}</text>",
            y + slot * 0.7,
            escape(kernel)
        );
        y += slot;
        for r in members {
            let top = y + (slot - bar) / 2.0;
            let mid = y + slot / 2.0 + 4.0;
            let end = x(r.speedup);
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{mid:.1}\" font-size=\"12\" text-anchor=\"end\">{} {}×{}</text>",
                LEFT - 8.0,
                escape(&r.mode),
                r.workers,
                r.threads
            );
            let _ = writeln!(
                s,
                "<rect class=\"bar\" x=\"{LEFT}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{bar:.1}\" fill=\"{}\" stroke=\"none\"><title>{} {} {}×{}: {:.2}× in {:.2} s</title></rect>",
                end - LEFT,
                colour(&r.mode),
                escape(&r.kernel),
                escape(&r.mode),
                r.workers,
                r.threads,
                r.speedup,
                r.wall_s
            );
            let ix = x(r.ideal_speedup);
            let _ = writeln!(
                s,
                "<line class=\"ideal\" x1=\"{ix:.1}\" y1=\"{:.1}\" x2=\"{ix:.1}\" y2=\"{:.1}\" stroke=\"#222222\" stroke-width=\"2\"/>",
                top - 2.0,
                top + bar + 2.0
            );
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{mid:.1}\" font-size=\"12\">{:.2}×  ({:.2} s)</text>",
                end.max(ix) + 6.0,
                r.speedup,
                r.wall_s
            );
            y += slot;
        }
    }
    s.push_str("</svg>\n");
    s
}

fn trim_number(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        kernel: &str,
        mode: &str,
        p: usize,
        t: usize,
        wall_s: f64,
        serial: f64,
        ideal: Ideal,
    ) -> Row {
        let s = speedup(serial, wall_s);
        Row {
            kernel: kernel.into(),
            mode: mode.into(),
            workers: p,
            threads: t,
            items: 1000,
            wall_s,
            elapsed_ms: Some((wall_s * 900.0) as u64),
            result: json!(78498),
            speedup: s,
            ideal_speedup: ideal_speedup(ideal, p * t, 100),
            efficiency: efficiency(ideal, p * t, 100, s, wall_s),
        }
    }

    fn sample() -> Vec<Row> {
        let cpu = Ideal::Cpu { cores: 2 };
        let wait = Ideal::Wait { total_s: 4.0 };
        vec![
            row("primes", "serial", 1, 1, 4.0, 4.0, cpu),
            row("primes", "threads", 1, 2, 2.0, 4.0, cpu),
            row("primes", "processes", 2, 1, 2.5, 4.0, cpu),
            row("primes", "composed", 2, 2, 2.1, 4.0, cpu),
            row("sleep", "serial", 1, 1, 4.2, 4.2, wait),
            row("sleep", "composed wide", 2, 8, 0.5, 4.2, wait),
            Row { elapsed_ms: None, ..row("primes (python)", "threading", 1, 2, 1.0, 0.9, cpu) },
        ]
    }

    #[test]
    fn speedup_and_efficiency() {
        let cpu = Ideal::Cpu { cores: 2 };
        assert_eq!(speedup(4.0, 2.0), 2.0);
        assert_eq!(speedup(4.0, 0.0), 0.0);
        // CPU work: the ideal is min(P·T, cores, shards).
        assert_eq!(ideal_speedup(cpu, 1, 100), 1.0);
        assert_eq!(ideal_speedup(cpu, 4, 100), 2.0);
        assert_eq!(ideal_speedup(Ideal::Cpu { cores: 8 }, 4, 3), 3.0);
        assert!((efficiency(cpu, 4, 100, 1.9, 1.0) - 0.95).abs() < 1e-12);
        assert!((efficiency(cpu, 1, 100, 1.0, 1.0) - 1.0).abs() < 1e-12);
        // Waiting work: ideal wall = total wait / P·T; 4 s of waits on 16 slots ideally 0.25 s.
        let wait = Ideal::Wait { total_s: 4.0 };
        assert_eq!(ideal_speedup(wait, 16, 200), 16.0);
        assert!((efficiency(wait, 16, 200, 8.0, 0.5) - 0.5).abs() < 1e-12);
        assert!((efficiency(wait, 1, 200, 1.0, 4.0) - 1.0).abs() < 1e-12);
        // Fewer shards than slots: the shards bound the parallelism.
        assert!((efficiency(wait, 16, 4, 4.0, 1.0) - 1.0).abs() < 1e-12);
        assert_eq!(efficiency(wait, 16, 4, 4.0, 0.0), 0.0);
    }

    #[test]
    fn shapes_add_a_wide_run_for_waiting_work() {
        let cpu = shapes(2, false);
        let modes: Vec<_> = cpu.iter().map(|s| (s.mode, s.workers, s.threads)).collect();
        assert_eq!(
            modes,
            [("serial", 1, 1), ("threads", 1, 2), ("processes", 2, 1), ("composed", 2, 2)]
        );
        let wait = shapes(2, true);
        assert_eq!(wait.last(), Some(&Shape::new("composed wide", 2, 8)));
    }

    #[test]
    fn rows_use_the_first_run_as_baseline_and_results_must_agree() {
        let m = |mode, p, t, wall_s, result: u64| Measured {
            shape: Shape::new(mode, p, t),
            wall_s,
            elapsed_ms: Some(1),
            result: json!(result),
        };
        let rows = rows_for(
            "primes",
            1000,
            10,
            Ideal::Cpu { cores: 2 },
            vec![m("serial", 1, 1, 3.0, 168), m("threads", 1, 2, 1.5, 168)],
        )
        .expect("rows");
        assert_eq!(rows[0].speedup, 1.0);
        assert_eq!(rows[1].speedup, 2.0);
        assert_eq!(rows[1].efficiency, 1.0);
        let err = rows_for(
            "primes",
            1000,
            10,
            Ideal::Cpu { cores: 2 },
            vec![m("serial", 1, 1, 3.0, 168), m("processes", 2, 1, 1.5, 167)],
        )
        .expect_err("mismatch");
        assert!(err.to_string().contains("results disagree"), "{err}");
    }

    #[test]
    fn the_table_has_a_header_and_one_aligned_line_per_row() {
        let rows = sample();
        let text = table(&rows);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), rows.len() + 1);
        assert!(lines[0].starts_with("KERNEL"));
        assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{text}");
        assert!(
            lines[2].contains("1 x 2") && lines[2].contains("2.00") && lines[2].contains("100%")
        );
        assert!(lines[7].contains("primes (python)") && lines[7].contains(" - "), "{text}");
        assert_eq!(human_rate(2_500_000.0), "2.50M");
        assert_eq!(human_rate(400.0), "400");
    }

    #[test]
    fn the_svg_is_standalone_with_one_bar_per_row() {
        let rows = sample();
        let svg = svg(&rows, "farm showdown <2 cores> & more", "sub");
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
        assert_eq!(svg.matches("<svg").count(), 1);
        assert_eq!(svg.matches("</svg>").count(), 1);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), rows.len());
        assert_eq!(svg.matches("class=\"ideal\"").count(), rows.len());
        assert!(svg.contains("&lt;2 cores&gt; &amp; more"));
        assert_balanced(&svg);
    }

    /// Every element is closed, in order; no stray `<` or `&` in text.
    fn assert_balanced(xml: &str) {
        let mut stack: Vec<&str> = Vec::new();
        let mut rest = xml;
        while let Some(open) = rest.find('<') {
            let text = &rest[..open];
            assert!(!text.contains('>'), "stray > in {text:?}");
            for (i, _) in text.match_indices('&') {
                let entity = &text[i..];
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;"].iter().any(|e| entity.starts_with(e)),
                    "bare & in {text:?}"
                );
            }
            let close = rest[open..].find('>').expect("tag closes") + open;
            let tag = &rest[open + 1..close];
            let name = tag.trim_start_matches('/').split_whitespace().next().unwrap_or("");
            if tag.starts_with('/') {
                assert_eq!(stack.pop(), Some(name), "closing {name}");
            } else if !tag.ends_with('/') {
                stack.push(name);
            }
            rest = &rest[close + 1..];
        }
        assert!(stack.is_empty(), "unclosed {stack:?}");
    }

    #[test]
    fn bad_flags_fail_before_anything_runs() {
        use crate::args::{Cli, Command};
        use clap::Parser;
        let parse = |extra: &[&str]| {
            let mut argv = vec!["farm", "showdown"];
            argv.extend_from_slice(extra);
            match Cli::try_parse_from(argv).expect("parses").command {
                Command::Showdown(args) => plan(&args),
                _ => unreachable!("showdown"),
            }
        };
        let p = parse(&["--cores", "3"]).expect("defaults");
        assert_eq!((p.cores, p.primes, p.shard_size), (3, (0, 8_000_000), 100_000));
        assert_eq!((p.sleep, p.sleep_ms, p.python), ((0, 200), 20, Some((0, 400_000))));
        assert!(parse(&["--no-python"]).expect("no python").python.is_none());
        let err = |extra: &[&str]| parse(extra).expect_err("bad").to_string();
        assert_eq!(err(&["--cores", "0"]), "--cores must be at least 1");
        assert!(err(&["--range", "1..x"]).starts_with("bad --range \"1..x\""));
        assert!(err(&["--range", "5..5"]).contains("empty"));
        assert!(err(&["--python-range", "x"]).starts_with("bad --python-range"));
        assert!(err(&["--shard-size", "0"]).contains("--shard-size"));
        assert!(err(&["--sleep-ms", "0"]).contains("--sleep-ms"));
    }

    #[test]
    fn farm_runs_are_real_run_commands() {
        let run = FarmRun { kind: "sleep", range: (0, 200), shard_size: 1 };
        let args = run.args(&Shape::new("composed", 2, 8), &["ms=20".into()]);
        assert_eq!(
            args.join(" "),
            "run sleep --range 0..200 --shard-size 1 --workers 2 --threads 8 --json --param ms=20"
        );
        assert_eq!(
            last_json_line("noise\n{\"state\":\"succeeded\"}\n"),
            Some(json!({"state": "succeeded"}))
        );
        assert_eq!(last_json_line("no json"), None);
    }
}
