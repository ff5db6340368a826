//! Processes a test starts: tagged so any left behind can be found, their stderr kept (and
//! shown with the test's output), killed and reaped when their handle drops.

use crate::wait::{wait_for, wait_until, WAIT};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// Extra log directives for a process that needs none beyond the default.
pub const QUIET: &str = "";

/// A tag put in the environment of every process a test starts, so the test can find any
/// process left behind, including grandchildren.
pub fn tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("farm-test-{}-{nanos}", std::process::id())
}

/// A started process, killed (SIGKILL) and reaped when dropped.
pub struct Proc {
    /// The process; its stdout is the caller's to take when piped.
    pub child: Child,
    /// Everything it wrote to stderr so far, so a test can wait for a log line.
    log: Arc<Mutex<String>>,
}

impl Proc {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on a child we have not reaped yet (Drop reaps it).
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_child(&mut self.child, timeout)
    }

    /// Waits until a line of its stderr satisfies `pred`; returns that line, or panics naming
    /// `what` after `timeout`.
    pub fn wait_for_log(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let found = wait_for(timeout, || {
            let log = self.log.lock().expect("log lock");
            log.lines().find(|l| pred(l)).map(str::to_string)
        });
        found.unwrap_or_else(|| panic!("no log line {what} within {timeout:?}"))
    }

    /// The most resident memory it has had so far, in MiB (VmHWM; 0 if it is gone).
    pub fn peak_rss_mib(&self) -> u64 {
        crate::rss::status_kib(self.pid(), "VmHWM:") / 1024
    }

    /// How many lines of its stderr so far satisfy `pred`.
    pub fn log_count(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.log.lock().expect("log lock").lines().filter(|l| pred(l)).count()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `child` to exit, at most `timeout`.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    wait_for(timeout, || child.try_wait().ok().flatten())
}

/// The log filter for a started process: the person's RUST_LOG (else `warn`), plus `extra`
/// directives (`farm_master=debug`) a test needs to observe something.
fn log_filter(extra: &str) -> String {
    let base = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    if extra.is_empty() {
        base
    } else {
        format!("{base},{extra}")
    }
}

/// Starts `program args`, tagged, logging with `log_filter(log)`, with the given stdout; its
/// stderr is kept in the returned handle and echoed into the test's output.
pub fn start(program: &Path, args: &[&str], tag: &str, log: &str, stdout: Stdio) -> Proc {
    start_with_env(program, args, &[], tag, log, stdout)
}

/// [`start`], with `env` added to the process's environment.
pub fn start_with_env(
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    tag: &str,
    log: &str,
    stdout: Stdio,
) -> Proc {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .env("FARM_TEST_TAG", tag)
        .env("RUST_LOG", log_filter(log))
        // Plain log lines, for tests that look for one.
        .env("NO_COLOR", "1")
        .env_remove("FARM_MASTER")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
    let log = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().expect("piped stderr");
    let kept = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            let mut kept = kept.lock().expect("log lock");
            kept.push_str(&line);
            kept.push('\n');
        }
    });
    Proc { child, log }
}

/// Starts `farm <args>` with the given stdout.
pub fn spawn(args: &[&str], tag: &str, stdout: Stdio) -> Proc {
    start(&crate::farm(), args, tag, QUIET, stdout)
}

/// Runs `farm <args>` to completion (killed after WAIT) and returns its output; stderr is
/// captured and also shown with the test's output.
pub fn run(args: &[&str], tag: &str) -> Output {
    let mut proc = spawn(args, tag, Stdio::piped());
    // Read while the command runs, so a chatty command never blocks on a full pipe.
    let stdout = drain(proc.child.stdout.take());
    let status =
        proc.wait(WAIT).unwrap_or_else(|| panic!("farm {args:?} did not finish in {WAIT:?}"));
    // Its children may still hold the pipes for a moment; do not wait for them for ever.
    let stdout = stdout.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    wait_until(Duration::from_secs(10), || Arc::strong_count(&proc.log) == 1);
    let stderr = proc.log.lock().expect("log lock").clone();
    Output { status, stdout, stderr: stderr.into_bytes() }
}

/// Reads a pipe to its end on a thread; the bytes arrive on the returned channel.
fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
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
