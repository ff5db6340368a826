//! Running the configurations: `farm run` children and the embedded Python script, each
//! with a timeout, killed on error and always waited for.

use super::*;
use std::path::PathBuf;

/// The Python side: counts primes with the same test as farm's `primes` kernel (trial division
/// by the primes below 100, then deterministic Miller-Rabin with the same bases), over the same
/// kind of shards: serial, `ThreadPoolExecutor(n)`, `ProcessPoolExecutor(n)`, and, when the
/// `farm` package imports, `farm.Executor` with 1 process × n threads, n × 1 and n × n. Each
/// pool is started and shut down inside its timing. Arguments: start end shard_size n limit,
/// where limit is the seconds a farm.Executor shape may take before it is cancelled and
/// reported. Prints one JSON line (`python_panel` reads it).
pub(super) const PYTHON: &str = r#"
import concurrent.futures, json, os, sys, time
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

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

def timed(make, shards):
    t = time.perf_counter()
    with make() as pool:
        total = sum(pool.map(count, shards))
    return {"result": total, "wall_s": time.perf_counter() - t}

def timed_farm(farm, p, t, shards, limit):
    # A shape that gets no result within `limit` s is cancelled, so the other rows still run.
    start = time.perf_counter()
    ex = farm.Executor(workers=p, threads=t)
    try:
        total = sum(ex.map(count, shards, timeout=limit))
    except BaseException:
        ex.shutdown(wait=False, cancel_futures=True)
        raise
    ex.shutdown(wait=True)
    return {"result": total, "wall_s": time.perf_counter() - start}

def main():
    start, end, size, n = (int(a) for a in sys.argv[1:5])
    limit = float(sys.argv[5])
    shards = [(lo, min(lo + size, end)) for lo in range(start, end, size)]
    gil = getattr(sys, "_is_gil_enabled", None)
    out = {"version": sys.version.split()[0], "gil": True if gil is None else bool(gil()),
           "executable": sys.executable}
    t = time.perf_counter()
    total = sum(map(count, shards))
    out["serial"] = {"result": total, "wall_s": time.perf_counter() - t}
    out["threads"] = timed(lambda: ThreadPoolExecutor(max_workers=n), shards)
    # fork: a -c script has no module file that spawn or forkserver could import.
    fork = multiprocessing.get_context("fork")
    out["processes"] = timed(
        lambda: ProcessPoolExecutor(n, mp_context=fork, initializer=die_with,
                                    initargs=(os.getpid(),)), shards)
    try:
        import farm
        farm.Executor
    except Exception as e:
        out["farm_missing"] = f"{type(e).__name__}: {e}"
        print(json.dumps(out), flush=True)
        return
    try:
        from importlib.metadata import version
        out["farm_version"] = version("farm")
    except Exception:
        out["farm_version"] = getattr(farm, "__version__", "?")
    # count comes from __main__: farm.Executor ships it by value, by its content hash.
    for key, p, t in (("threads", 1, n), ("processes", n, 1), ("composed", n, n)):
        try:
            out["farm_" + key] = timed_farm(farm, p, t, shards, limit)
        except concurrent.futures.TimeoutError:
            out["farm_" + key] = {"error": f"TimeoutError: no result within {limit:.0f} s"}
        except Exception as e:
            out["farm_" + key] = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(out), flush=True)

main()
"#;

/// One `farm run` configuration.
pub(super) struct FarmRun {
    pub(super) kind: &'static str,
    pub(super) range: (u64, u64),
    pub(super) shard_size: u64,
}

impl FarmRun {
    pub(super) fn args(&self, shape: &Shape, params: &[String]) -> Vec<String> {
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
    pub(super) async fn measure(
        &self,
        exe: &Path,
        shape: &Shape,
        params: &[String],
        timeout: Duration,
    ) -> Result<Measured> {
        let what = format!("farm run {} ({}x{})", self.kind, shape.workers, shape.threads);
        let mut cmd = Command::new(exe);
        // The same runs on every machine: no config file adds retries or a log filter, and no
        // dashboard runs beside them.
        cmd.args(self.args(shape, params)).env("FARM_CONFIG", "").env("FARM_HTTP", "off");
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

/// The interpreter of the Python panel.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Python {
    pub(super) program: PathBuf,
    /// Named with `--python`: its absence is an error, not a skipped panel.
    pub(super) explicit: bool,
}

/// Fails early when the interpreter named with `--python` cannot run, before the long runs.
pub(super) async fn check_python(python: &Python) -> Result<()> {
    let shown = python.program.display();
    let mut cmd = Command::new(&python.program);
    cmd.args(["-c", "pass"]);
    let child = spawn(&mut cmd).with_context(|| format!("cannot start {shown} (--python)"))?;
    let done = finish(child, &format!("{shown} -c pass"), Duration::from_secs(60)).await?;
    if !done.status.success() {
        bail!("{shown} (--python) cannot run a script: {}", done.failure_reason());
    }
    Ok(())
}

/// Runs the Python script and returns its JSON line; `None` when the default `python3` is not
/// on PATH.
pub(super) async fn python(
    python: &Python,
    start: u64,
    end: u64,
    shard_size: u64,
    n: usize,
    timeout: Duration,
) -> Result<Option<Value>> {
    let mut cmd = Command::new(&python.program);
    // Each farm.Executor shape gets a fifth of the whole script's time.
    let limit = (timeout.as_secs_f64() / 5.0).max(1.0);
    cmd.arg("-c").arg(PYTHON).args([
        start.to_string(),
        end.to_string(),
        shard_size.to_string(),
        n.to_string(),
        format!("{limit:.0}"),
    ]);
    let shown = python.program.display();
    let child = match spawn(&mut cmd) {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !python.explicit => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot start {shown}")),
    };
    let what = format!("the Python script ({shown})");
    let done = finish(child, &what, timeout).await?;
    if !done.status.success() {
        bail!("{what} failed: {}", done.failure_reason());
    }
    let out = last_json_line(&done.stdout)
        .ok_or_else(|| anyhow::anyhow!("{what} printed no JSON: {}", done.failure_reason()))?;
    Ok(Some(out))
}

/// What the Python script measured.
#[derive(Debug)]
pub(super) struct PythonPanel {
    pub(super) version: String,
    /// Serial first (the baseline), then the pools that ran.
    pub(super) measured: Vec<Measured>,
    /// `Ok(version)` of the `farm` package, or why it could not be imported.
    pub(super) farm: std::result::Result<String, String>,
    /// The farm.Executor shapes that raised, each with its error.
    pub(super) failed: Vec<String>,
}

/// At most this many characters of a message from the script reach the table and the chart.
const MESSAGE_BUDGET: usize = 200;

/// `text` on one line, cut to `MESSAGE_BUDGET` characters.
fn clip(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(MESSAGE_BUDGET) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// The mode names of the farm.Executor rows, by the script's keys.
const FARM_MODES: [(&str, &str); 3] = [
    ("farm_threads", "farm.Executor threads"),
    ("farm_processes", "farm.Executor processes"),
    ("farm_composed", "farm.Executor composed"),
];

/// Reads the script's JSON line (see `PYTHON`) into measurements with N-core shapes.
pub(super) fn python_panel(out: &Value, n: usize) -> Result<PythonPanel> {
    let what = "the Python script";
    let version = out["version"].as_str().unwrap_or("?").to_string();
    let threads = if out["gil"].as_bool() == Some(false) {
        "ThreadPoolExecutor, no GIL"
    } else {
        "ThreadPoolExecutor"
    };
    let one = |key: &str, shape: Shape| -> Result<Measured> {
        let wall_s = out[key]["wall_s"]
            .as_f64()
            .ok_or_else(|| anyhow::anyhow!("{what} gave no wall time for {key}"))?;
        Ok(Measured { shape, wall_s, elapsed_ms: None, result: out[key]["result"].clone() })
    };
    let mut measured = vec![
        one("serial", Shape::new("serial", 1, 1))?,
        one("threads", Shape::new(threads, 1, n))?,
        one("processes", Shape::new("ProcessPoolExecutor", n, 1))?,
    ];
    let mut failed = Vec::new();
    let farm = match out["farm_missing"].as_str() {
        Some(why) => Err(clip(why)),
        None => {
            for ((key, mode), (p, t)) in FARM_MODES.into_iter().zip([(1, n), (n, 1), (n, n)]) {
                if let Some(error) = out[key]["error"].as_str() {
                    failed.push(format!("{mode} {p}x{t}: {}", clip(error)));
                } else {
                    measured.push(one(key, Shape::new(mode, p, t))?);
                }
            }
            Ok(out["farm_version"].as_str().unwrap_or("?").to_string())
        }
    };
    Ok(PythonPanel { version, measured, farm, failed })
}

pub(super) fn spawn(cmd: &mut Command) -> std::io::Result<Child> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
}

/// A child that has exited.
pub(super) struct Finished {
    pub(super) status: ExitStatus,
    /// When `wait` returned.
    pub(super) exited: Instant,
    pub(super) stdout: String,
    pub(super) stderr: String,
}

impl Finished {
    /// The last line of stderr, or the exit status.
    pub(super) fn failure_reason(&self) -> String {
        match self.stderr.lines().rev().find(|l| !l.trim().is_empty()) {
            Some(line) => line.trim().to_string(),
            None => format!("exit {}", self.status),
        }
    }
}

/// Waits for a child at most `timeout` while reading its output; on a timeout, an error or an
/// interrupt it kills the child and waits for it, so none is left behind.
pub(super) async fn finish(mut child: Child, what: &str, timeout: Duration) -> Result<Finished> {
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    let waited = tokio::select! {
        waited = tokio::time::timeout(timeout, child.wait()) => waited,
        _ = farm_worker::cli::shutdown_signal() => {
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

pub(super) type Reader = tokio::task::JoinHandle<String>;

pub(super) fn read_all<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    pipe: Option<R>,
) -> Reader {
    tokio::spawn(async move {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf).await;
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

pub(super) async fn collect(reader: Reader) -> String {
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

pub(super) fn last_json_line(stdout: &str) -> Option<Value> {
    stdout.lines().rev().find_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
}
