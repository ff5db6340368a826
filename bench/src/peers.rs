//! The `peers` figure: the same workloads on farm and on its peers, in one run, printed as one
//! table of ratios (farm to each peer) with the absolute figures beside them.
//!
//! Peers: HyperQueue (when `HQ_BIN` names an `hq` binary: a server and one worker with
//! `--cpus 2`, tasks submitted with `hq submit --array … --wait`), and, through
//! `bench/peers/peers.py`, Ray, Dask, `ProcessPoolExecutor` and `multiprocessing.Pool`, all
//! with 2 processes of 1 thread. Dask and Ray come from a venv that `bench/peers/setup.sh`
//! makes in `target/peers-venv` (from PyPI) the first time `farm-bench peers` runs;
//! `PEERS_PYTHON` names another Python that has them. `farm-bench all` runs this figure only
//! when that venv already exists: it never installs anything.

use crate::exec::{efficiency, prog_cmd, PROG_MS, PROG_RUNS, TRUE_RUNS};
use crate::procs::{run_args, run_secs, Master, Proc};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// No-op tasks for farm (it needs many for a figure that is more than its start-up ramp).
const FARM_NOOP: u64 = 200_000;
/// No-op tasks for mp.Pool and ProcessPoolExecutor.
const FAST_PY_NOOP: u64 = 20_000;
/// No-op tasks for Dask and Ray, which take about 1 ms a task.
const SLOW_PY_NOOP: u64 = 5_000;
/// 10 ms tasks (4 s ideal on 2 cores) and 1 ms tasks (2 s ideal).
const SPIN10: u64 = 800;
const SPIN1: u64 = 4_000;
/// One-task round trips timed.
const LATENCY: u64 = 500;
/// The longest one Python peer may take for all its workloads.
const PY_TIMEOUT: Duration = Duration::from_secs(300);

/// A row of the table.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Work {
    Noop,
    Spin10,
    Spin1,
    P50,
    P99,
    True,
    Prog,
}

impl Work {
    const ALL: [Work; 7] =
        [Work::Noop, Work::Spin10, Work::Spin1, Work::P50, Work::P99, Work::True, Work::Prog];

    fn label(self) -> String {
        match self {
            Work::Noop => "no-op tasks, tasks/s".into(),
            Work::Spin10 => "10 ms CPU tasks, efficiency".into(),
            Work::Spin1 => "1 ms CPU tasks, efficiency".into(),
            Work::P50 => "one-task latency p50".into(),
            Work::P99 => "one-task latency p99".into(),
            Work::True => format!("external program: {TRUE_RUNS} × /bin/true, tasks/s"),
            Work::Prog => format!("external program of {PROG_MS} ms, {PROG_RUNS} ×, efficiency"),
        }
    }

    fn is_latency(self) -> bool {
        matches!(self, Work::P50 | Work::P99)
    }

    /// The figure as printed.
    fn show(self, v: f64) -> String {
        match self {
            Work::Noop | Work::True => format!("{v:.0} /s"),
            Work::Spin10 | Work::Spin1 | Work::Prog => format!("{:.1} %", 100.0 * v),
            Work::P50 | Work::P99 => format!("{v:.2} ms"),
        }
    }

    /// The ratio with > 1 meaning farm is better: farm/peer, or peer/farm for latency.
    fn ratio(self, farm: f64, peer: f64) -> f64 {
        if self.is_latency() {
            peer / farm
        } else {
            farm / peer
        }
    }
}

/// One system's figures, by row.
type Figures = BTreeMap<Work, f64>;

/// A column: a system and its figures, or why it has none.
struct Column {
    name: &'static str,
    figures: Result<Figures, String>,
}

/// The figure: from `farm-bench all` (`from_all`) only if the venv is already there.
pub fn figure(farm: &Path, from_all: bool) -> Result<()> {
    let python = match std::env::var_os("PEERS_PYTHON") {
        Some(p) => Ok(PathBuf::from(p)),
        None if venv_python().exists() => Ok(venv_python()),
        None if from_all => {
            println!(
                "11. peers: skipped, no venv (farm-bench peers makes it: bench/peers/setup.sh)"
            );
            return Ok(());
        }
        None => setup_venv(),
    };
    let child = crate::procs::spin_child_path()?;
    println!(
        "11. peers: 2 processes x 1 thread each; farm `run --workers 2 --threads 1`, tasks of one index; no-op n = {FARM_NOOP} (farm), {FAST_PY_NOOP} (mp, PPE), {SLOW_PY_NOOP} (Dask, Ray); spin n = {SPIN10} x 10 ms, {SPIN1} x 1 ms; latency {LATENCY} round trips (farm: Python client, 1 worker x 1 thread)"
    );
    let mut columns = vec![Column { name: "farm", figures: farm_figures(farm, &python) }];
    columns.push(Column { name: "HyperQueue", figures: hq_figures(&child) });
    for (name, peer, n_noop) in [
        ("Ray", "ray", SLOW_PY_NOOP),
        ("Dask", "dask", SLOW_PY_NOOP),
        ("ProcessPoolExecutor", "ppe", FAST_PY_NOOP),
        ("mp.Pool(chunksize=1)", "mp", FAST_PY_NOOP),
    ] {
        // multiprocessing and concurrent.futures need no venv: the system Python will do.
        let py = match (&python, peer) {
            (Ok(p), _) => Ok(p.clone()),
            (Err(_), "ppe" | "mp") => Ok(PathBuf::from("python3")),
            (Err(e), _) => Err(e.clone()),
        };
        let figures =
            py.and_then(|py| python_figures(&py, peer, n_noop).map_err(|e| format!("{e:#}")));
        columns.push(Column { name, figures });
    }
    print_table(&columns);
    Ok(())
}

/// `target/peers-venv/bin/python` of this workspace.
pub fn venv_python() -> PathBuf {
    workspace().join("target/peers-venv/bin/python")
}

/// The workspace this runner was built from (its scripts live there).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Runs `bench/peers/setup.sh`, saying how long it took and how big the venv is.
pub fn setup_venv() -> Result<PathBuf, String> {
    let script = workspace().join("bench/peers/setup.sh");
    let start = Instant::now();
    println!("11. peers: making the venv with {} (Dask, Ray, gRPC from PyPI)", script.display());
    let out = Command::new("sh").arg(&script).stdin(Stdio::null()).output();
    match out {
        Ok(out) if out.status.success() && venv_python().exists() => {
            println!("   venv made in {:.0} s", start.elapsed().as_secs_f64());
            Ok(venv_python())
        }
        Ok(out) => Err(format!("venv setup failed: {}", last_line(&out.stderr))),
        Err(e) => Err(format!("venv setup failed: {e}")),
    }
}

/// farm's figures: `farm run` for the batch rows, the Python client for latency.
fn farm_figures(farm: &Path, python: &Result<PathBuf, String>) -> Result<Figures, String> {
    let run = |kind: &str, n: u64, params: &[String]| -> Result<f64> {
        let params: Vec<&str> = params.iter().map(String::as_str).collect();
        run_secs(farm, &run_args(kind, n, &params, 2, 1))
    };
    let eff = |n: u64, ms: u64, secs: f64| efficiency(n, ms, 2, secs);
    let all = || -> Result<Figures> {
        let mut f = Figures::new();
        f.insert(Work::Noop, FARM_NOOP as f64 / run("noop", FARM_NOOP, &[])?);
        for (work, ms, n) in [(Work::Spin10, 10, SPIN10), (Work::Spin1, 1, SPIN1)] {
            f.insert(work, eff(n, ms, run("spin", n, &[format!("ms={ms}")])?));
        }
        let secs = run("exec", TRUE_RUNS, &["cmd=/bin/true".into()])?;
        f.insert(Work::True, TRUE_RUNS as f64 / secs);
        let prog = format!("cmd={}", prog_cmd()?);
        f.insert(Work::Prog, eff(PROG_RUNS, PROG_MS, run("exec", PROG_RUNS, &[prog])?));
        match python {
            Ok(py) => {
                let (p50, p99) = farm_latency(farm, py)?;
                f.insert(Work::P50, p50);
                f.insert(Work::P99, p99);
            }
            Err(e) => println!("   farm latency: not measured, no Python with grpcio ({e})"),
        }
        Ok(f)
    };
    all().map_err(|e| format!("{e:#}"))
}

/// p50 and p99 of a one-shard noop job from the Python client (`bench/python_latency.py`).
fn farm_latency(farm: &Path, python: &Path) -> Result<(f64, f64)> {
    let master = Master::start(farm, &["--workers", "1", "--threads", "1", "--http", "off"])?;
    let script = workspace().join("bench/python_latency.py");
    let mut cmd = Command::new(python);
    let n = LATENCY.to_string();
    cmd.arg(&script).args(["--master", &master.url, "--n", &n, "--mode", "run"]);
    let out = run_timeout(cmd, PY_TIMEOUT)?;
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(line.trim()).context("python_latency.py printed no JSON")?;
    let get = |k: &str| v[k].as_f64().with_context(|| format!("no {k} from python_latency.py"));
    Ok((get("p50_ms")?, get("p99_ms")?))
}

/// A Python peer's figures: `peers.py PEER all`, one JSON line per workload.
fn python_figures(python: &Path, peer: &str, n_noop: u64) -> Result<Figures> {
    let mut cmd = Command::new(python);
    cmd.arg(workspace().join("bench/peers/peers.py")).args([peer, "all"]);
    for (flag, n) in [("--n-noop", n_noop), ("--n-spin10", SPIN10), ("--n-spin1", SPIN1)] {
        cmd.args([flag, &n.to_string()]);
    }
    cmd.args(["--n-latency", &LATENCY.to_string()]);
    let out = run_timeout(cmd, PY_TIMEOUT)?;
    let mut f = Figures::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).context("peers.py printed a non-JSON line")?;
        let value = v["value"].as_f64().context("no value")?;
        match v["workload"].as_str() {
            Some("noop") => f.insert(Work::Noop, value),
            Some("spin10") => f.insert(Work::Spin10, value),
            Some("spin1") => f.insert(Work::Spin1, value),
            Some("latency") => {
                f.insert(Work::P99, v["p99_ms"].as_f64().context("no p99_ms")?);
                f.insert(Work::P50, value)
            }
            other => bail!("peers.py: unknown workload {other:?}"),
        };
    }
    Ok(f)
}

/// Runs `cmd` in a process group of its own (so a stuck pool dies with its workers), stderr to
/// a temporary file; fails with stderr's last line unless it exits 0 within `limit`.
fn run_timeout(mut cmd: Command, limit: Duration) -> Result<Output> {
    use std::os::unix::process::CommandExt;
    let err_path = std::env::temp_dir().join(format!("farm-peers-{}.stderr", std::process::id()));
    let err = File::create(&err_path)?;
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(err).process_group(0);
    let mut child = cmd.spawn().with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    let pid = child.id() as libc::pid_t;
    let stdout = child.stdout.take().context("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut { stdout }, &mut buf);
        buf
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // SAFETY: kill(2) on the process group of our own child; what is left of it must go.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
    let _ = child.wait();
    let stdout = reader.join().unwrap_or_default();
    let stderr = std::fs::read(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&err_path);
    match status {
        Some(s) if s.success() => Ok(Output { status: s, stdout, stderr }),
        Some(s) => bail!("{:?} {s}: {}", cmd.get_program(), last_line(&stderr)),
        None => bail!("{:?} took more than {} s", cmd.get_program(), limit.as_secs()),
    }
}

/// The last non-empty line of some output.
fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output").trim().to_string()
}

/// HyperQueue's figures for the external-program rows, or why there are none.
fn hq_figures(child: &Path) -> Result<Figures, String> {
    let Some(hq) = std::env::var_os("HQ_BIN").map(PathBuf::from) else {
        return Err("HQ_BIN is not set (set it to an hq binary)".into());
    };
    hq_run(&hq, child).map_err(|e| format!("{e:#}"))
}

/// A HyperQueue server and one worker of 2 CPUs in a temporary server dir, then the two
/// external-program workloads, each timed from `hq submit --array … --wait` to its exit.
fn hq_run(hq: &Path, child: &Path) -> Result<Figures> {
    let dir = std::env::temp_dir().join(format!("farm-peers-hq-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = (|| {
        let hq_cmd = |args: &[&str]| {
            let mut c = Command::new(hq);
            c.arg("--server-dir").arg(&dir).args(args).current_dir(&dir);
            c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
            c
        };
        let _server = Proc(hq_cmd(&["server", "start"]).spawn().context("cannot start hq server")?);
        wait_for(|| Ok(hq_cmd(&["server", "info"]).status()?.success()), "hq server")?;
        let _worker = Proc(hq_cmd(&["worker", "start", "--cpus", "2"]).spawn()?);
        wait_for(
            || {
                let out = hq_cmd(&["--output-mode", "json", "worker", "list"])
                    .stdout(Stdio::piped())
                    .output()?;
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
                Ok(v.as_array().is_some_and(|a| !a.is_empty()))
            },
            "hq worker",
        )?;
        let timed = |n: u64, program: &[&str]| -> Result<f64> {
            let array = format!("1-{n}");
            let mut args = vec!["submit", "--array", &array, "--cpus", "1", "--wait", "--"];
            args.extend(program);
            let start = Instant::now();
            run_timeout(hq_cmd(&args), PY_TIMEOUT)?;
            Ok(start.elapsed().as_secs_f64())
        };
        let mut f = Figures::new();
        f.insert(Work::True, TRUE_RUNS as f64 / timed(TRUE_RUNS, &["/bin/true"])?);
        let child = child.to_string_lossy();
        let ms = PROG_MS.to_string();
        let secs = timed(PROG_RUNS, &[&child, &ms])?;
        f.insert(Work::Prog, efficiency(PROG_RUNS, PROG_MS, 2, secs));
        Ok(f)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Polls `ready` every 50 ms for up to 30 s.
fn wait_for(mut ready: impl FnMut() -> Result<bool>, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready()? {
        if Instant::now() > deadline {
            bail!("{what} not ready after 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The table, in Markdown, then the reason for each missing column.
fn print_table(columns: &[Column]) {
    println!(
        "\nratio: farm/peer for tasks/s and efficiency, peer/farm for latency: > 1 means farm is better; blank: the peer cannot run that workload\n"
    );
    let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
    println!("| work | {} |", names.join(" | "));
    println!("|{}", " --- |".repeat(columns.len() + 1));
    let farm = columns.first().and_then(|c| c.figures.as_ref().ok());
    for work in Work::ALL {
        let mut cells = vec![work.label()];
        for (i, col) in columns.iter().enumerate() {
            let mine = col.figures.as_ref().ok().and_then(|f| f.get(&work).copied());
            let theirs = farm.and_then(|f| f.get(&work).copied());
            cells.push(match (&col.figures, mine, theirs) {
                (Err(_), _, _) => "—".into(),
                (Ok(_), None, _) => String::new(),
                (Ok(_), Some(v), _) if i == 0 => work.show(v),
                (Ok(_), Some(v), Some(f)) => format!("{} (×{:.2})", work.show(v), work.ratio(f, v)),
                (Ok(_), Some(v), None) => work.show(v),
            });
        }
        println!("| {} |", cells.join(" | "));
    }
    for col in columns {
        if let Err(why) = &col.figures {
            println!("\n—  {}: {why}", col.name);
        }
    }
}
