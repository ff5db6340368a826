//! Starting the real `farm` binary for a benchmark and reading what the kernel knows about it:
//! resident memory and CPU time from /proc.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A started process, killed and reaped when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    /// SIGTERM first, so a master stops its local workers cleanly; SIGKILL after 10 s.
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe {
            libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM);
        }
        for _ in 0..200 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `farm master` on an ephemeral loopback port.
pub struct Master {
    pub proc: Proc,
    pub url: String,
}

impl Master {
    /// Starts `farm master --listen 127.0.0.1:0 <extra>` and waits for its address line.
    pub fn start(farm: &Path, extra: &[&str]) -> Result<Master> {
        Ok(Master::start_lines(farm, extra, 1)?.0)
    }

    /// Like [`Master::start`], also reading `n - 1` more lines of its stdout (its dashboard's
    /// address, when it serves one); returns the last word of each.
    pub fn start_lines(farm: &Path, extra: &[&str], n: usize) -> Result<(Master, Vec<String>)> {
        let mut child = Command::new(farm)
            .args(["master", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", farm.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let proc = Proc(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for _ in 0..n {
                if let Some(Ok(line)) = lines.next() {
                    let _ = tx.send(line);
                }
            }
            for _ in lines {}
        });
        let mut words = Vec::new();
        for _ in 0..n {
            let line = rx.recv_timeout(Duration::from_secs(30)).context("master did not start")?;
            words.push(line.rsplit(' ').next().unwrap_or_default().to_string());
        }
        let url = words.remove(0);
        Ok((Master { proc, url }, words))
    }

    pub fn pid(&self) -> u32 {
        self.proc.0.id()
    }
}

/// The command line of `farm run KIND` over `shards` one-index shards with `params` on
/// `workers` × `threads` local workers, printing JSON (`--allow-exec` for `exec`).
pub fn run_args(
    kind: &str,
    shards: u64,
    params: &[&str],
    workers: usize,
    threads: usize,
) -> Vec<String> {
    let mut args = vec!["run".to_string(), kind.into(), "--range".into(), format!("0..{shards}")];
    args.extend(["--shard-size".into(), "1".into()]);
    for param in params {
        args.extend(["--param".into(), param.to_string()]);
    }
    args.extend(["--workers".into(), workers.to_string(), "--threads".into(), threads.to_string()]);
    if kind == "exec" {
        args.push("--allow-exec".into());
    }
    args.push("--json".into());
    args
}

/// Runs `farm <args>` (a `farm run … --json`) and returns the job's elapsed seconds as the
/// master measured them, from submit to the last result (so without the workers' start).
pub fn run_secs(farm: &Path, args: &[String]) -> Result<f64> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let v = run_json(farm, &args)?;
    Ok(v["elapsed_ms"].as_f64().context("no elapsed_ms")?.max(1.0) / 1000.0)
}

/// Runs `farm <args>` and parses its JSON stdout.
pub fn run_json(farm: &Path, args: &[&str]) -> Result<serde_json::Value> {
    let out = Command::new(farm)
        .args(args)
        .env("RUST_LOG", "warn")
        // The dashboard only where a figure asks for it (`--http` given beats this).
        .env("FARM_HTTP", "off")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", farm.display()))?;
    if !out.status.success() {
        bail!("farm {args:?} failed: {}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")
}

/// CPU time (user + system) a process has used itself, children excluded, in seconds.
pub fn cpu_secs(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = stat.rsplit(')').next().context("bad stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state is field 3, utime 14 and stime 15 (1-based over the whole line).
    let utime: f64 = fields.get(11).and_then(|v| v.parse().ok()).context("no utime")?;
    let stime: f64 = fields.get(12).and_then(|v| v.parse().ok()).context("no stime")?;
    // SAFETY: sysconf reads a constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((utime + stime) / ticks)
}

/// The `spin-child` program (`bench/src/bin/spin-child.rs`) built beside this binary: the
/// external program of the exec and peers figures' 10 ms rows.
pub fn spin_child_path() -> Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name("spin-child");
    if !path.exists() {
        bail!("{} not found: cargo build --release -p farm-bench first", path.display());
    }
    Ok(path)
}

/// The release binary next to this one, or the path given.
pub fn farm_path(given: Option<PathBuf>) -> Result<PathBuf> {
    let path = match given {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("farm"),
    };
    if !path.exists() {
        bail!(
            "{} not found: cargo build --release --bin farm first, or pass --farm",
            path.display()
        );
    }
    Ok(path)
}
