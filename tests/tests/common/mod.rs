//! The shared harness for end-to-end tests: builds the real binaries once, starts masters on
//! port 0 and workers against them, runs CLI commands, all with timeouts, and kills every
//! process it started when its handle drops.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Longest any single wait in a test may take.
pub const WAIT: Duration = Duration::from_secs(60);

/// The directory holding the built binaries (target/debug).
fn bin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // current_exe is target/debug/deps/<test>-<hash>.
        let exe = std::env::current_exe().expect("test executable path");
        let dir = exe.parent().and_then(|p| p.parent()).expect("target dir").to_path_buf();
        // Build (or confirm up to date) the binaries the tests start; cargo test alone builds
        // only this package's targets.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "farm", "-p", "farm-example-collatz", "--bins"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building the binaries failed");
        dir
    })
    .clone()
}

/// Path of the `farm` binary.
pub fn farm() -> PathBuf {
    bin_dir().join("farm")
}

/// Path of the example worker with the `collatz` kernel.
pub fn collatz_worker() -> PathBuf {
    bin_dir().join("farm-example-collatz")
}

/// A tag put in the environment of every process a test starts, so the test can find any
/// process left behind, including grandchildren.
pub fn tag() -> String {
    format!("farm-test-{}-{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// A started process, killed (SIGKILL) and reaped when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on a child we have not reaped yet.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Log filter for started processes: quiet unless the person running the tests sets RUST_LOG.
fn log_filter() -> String {
    std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into())
}

/// Starts `farm` with args and the given stdout; stderr is inherited.
pub fn spawn(args: &[&str], tag: &str, stdout: Stdio) -> Proc {
    let child = Command::new(farm())
        .env("RUST_LOG", log_filter())
        .args(args)
        .env("FARM_TEST_TAG", tag)
        .env_remove("FARM_MASTER")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start farm");
    Proc { child, name: args.first().map(|s| s.to_string()).unwrap_or_default() }
}

/// Starts `farm <args>` for a server role and waits for its "... listening on ADDR" line;
/// returns the process and the address (without scheme).
pub fn spawn_announcing(args: &[&str], tag: &str) -> (Proc, String) {
    let mut proc = spawn(args, tag, Stdio::piped());
    let stdout = proc.child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        // Keep draining so the process never blocks on a full pipe.
        for _ in lines {}
    });
    let line = rx.recv_timeout(WAIT).expect("the server printed its address in time");
    let addr = line.rsplit(' ').next().expect("address on the line");
    let addr = addr.trim_start_matches("http://").trim_start_matches("https://").to_string();
    assert!(addr.starts_with("127.0.0.1:"), "unexpected line {line:?}");
    (proc, addr)
}

/// A free port on loopback (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A master on an ephemeral port.
pub struct Master {
    pub proc: Proc,
    pub url: String,
    pub tag: String,
}

impl Master {
    /// Starts `farm master --listen 127.0.0.1:0 <extra>` and waits for its listening line.
    pub fn start(extra: &[&str]) -> Master {
        let tag = tag();
        Master::start_tagged(extra, &tag, "127.0.0.1:0")
    }

    pub fn start_tagged(extra: &[&str], tag: &str, listen: &str) -> Master {
        let mut args = vec!["master", "--listen", listen];
        args.extend_from_slice(extra);
        let (proc, addr) = spawn_announcing(&args, tag);
        let url = format!("http://{addr}");
        Master { proc, url, tag: tag.to_string() }
    }

    /// Starts a `farm worker` dialing this master.
    pub fn worker(&self, extra: &[&str]) -> Proc {
        let mut args = vec!["worker", "--master", &self.url];
        args.extend_from_slice(extra);
        spawn(&args, &self.tag, Stdio::null())
    }

    /// Runs a client command against this master.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut all = vec!["--master", self.url.as_str()];
        all.extend_from_slice(args);
        run(&all, &self.tag)
    }

    /// Waits until `n` workers are connected; returns `farm workers --json`.
    pub fn wait_workers(&self, n: usize) -> Vec<serde_json::Value> {
        let mut last = Vec::new();
        let ok = wait_until(WAIT, || {
            let out = self.cli(&["workers", "--json"]);
            last =
                serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap_or_default();
            last.len() == n
        });
        assert!(ok, "expected {n} workers, last saw {last:?}");
        last
    }
}

/// Runs `farm <args>` to completion (killed after WAIT) and returns its output; stderr is
/// inherited (shown with the test's output).
pub fn run(args: &[&str], tag: &str) -> Output {
    run_with(args, tag, false)
}

/// Runs `farm <args>` capturing stderr too (for checking error messages).
pub fn run_capture(args: &[&str], tag: &str) -> Output {
    run_with(args, tag, true)
}

fn run_with(args: &[&str], tag: &str, capture_stderr: bool) -> Output {
    let stderr = if capture_stderr { Stdio::piped() } else { Stdio::inherit() };
    let child = Command::new(farm())
        .args(args)
        .env("FARM_TEST_TAG", tag)
        .env("RUST_LOG", log_filter())
        .env_remove("FARM_MASTER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start farm");
    let mut proc = Proc { child, name: args.first().map(|s| s.to_string()).unwrap_or_default() };
    // Both pipes are read while the command runs, so a chatty one never blocks on a full pipe.
    let stdout = drain(proc.child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(proc.child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let status =
        proc.wait(WAIT).unwrap_or_else(|| panic!("farm {args:?} did not finish in {WAIT:?}"));
    // Its children may still hold the pipes for a moment; do not wait for them for ever.
    let collect =
        |rx: mpsc::Receiver<Vec<u8>>| rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    Output { status, stdout: collect(stdout), stderr: collect(stderr) }
}

/// Reads a pipe to its end on a thread; the bytes arrive on the returned channel.
fn drain(pipe: Option<Box<dyn Read + Send>>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        let _ = tx.send(buf);
    });
    rx
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Pids of live processes (not zombies) whose environment carries `tag`.
pub fn tagged_processes(tag: &str) -> Vec<u32> {
    let needle = format!("FARM_TEST_TAG={tag}");
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let carries = env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes());
            carries && !is_zombie(*pid)
        })
        .collect()
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
        .unwrap_or(true)
}

/// Asserts that every process carrying `tag` is gone within the wait bound.
pub fn assert_none_left(tag: &str) {
    let mut left = Vec::new();
    let gone = wait_until(Duration::from_secs(15), || {
        left = tagged_processes(tag);
        left.is_empty()
    });
    assert!(gone, "processes left behind: {left:?}");
}

/// Parses a command's stdout as one JSON value.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("stdout is not JSON ({e}): {:?}", String::from_utf8_lossy(&out.stdout))
    })
}

/// Awaits `fut`, failing the test if it takes longer than WAIT.
pub async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.expect("finished within the wait bound")
}
