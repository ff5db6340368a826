//! Waiting for an `exec` program without sleeping: one `ppoll(2)` on the pool thread over the
//! program's stdout and stderr pipes and a pidfd of the program, which becomes readable the
//! moment it exits. A run is noticed as soon as it ends, and its pipes are read as they fill.
//!
//! The pidfd only watches: the program is not reaped here, so while it is watched its pid
//! still names its process group (see `exec_groups.rs`). On a kernel without `pidfd_open`
//! (before Linux 5.3, or a seccomp filter that refuses it) the exit is checked with
//! `waitid(WNOWAIT)` instead, between polls whose timeout doubles from 100 µs to 5 ms.

use crate::kernels::exec_io::Pipes;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The longest wait in one poll: how soon a cancel or a time limit is seen.
pub(crate) const CHECK_EVERY: Duration = Duration::from_millis(5);
/// The first pause of the fallback's polling for the exit.
const FIRST_PAUSE: Duration = Duration::from_micros(100);
/// Set once `pidfd_open` said it is not available here, so it is not asked again.
static NO_PIDFD: AtomicBool = AtomicBool::new(false);

/// Watches a child for its exit without reaping it.
#[derive(Debug)]
pub(crate) struct ExitWatch {
    /// The child's pid.
    pid: libc::pid_t,
    /// A pidfd of the child, readable once it exits; none on the fallback.
    pidfd: Option<OwnedFd>,
    /// Whether it has exited (it is a zombie until reaped).
    exited: bool,
    /// The fallback's next poll timeout.
    pause: Duration,
}

impl ExitWatch {
    /// Starts watching `pid`, an unreaped child. Fails only if the kernel has pidfds and
    /// cannot give one (out of descriptors, say).
    pub(crate) fn new(pid: libc::pid_t) -> std::io::Result<ExitWatch> {
        let pidfd = if NO_PIDFD.load(Ordering::Relaxed) { None } else { pidfd_open(pid)? };
        Ok(ExitWatch { pid, pidfd, exited: false, pause: FIRST_PAUSE })
    }

    /// Whether the child has exited.
    pub(crate) fn exited(&self) -> bool {
        self.exited
    }

    /// Whether the fallback found the child exited (without reaping it).
    fn check_exited(&mut self) -> std::io::Result<()> {
        // SAFETY: a zeroed siginfo_t is a valid value for waitid to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        // SAFETY: waitid writes only into `info`, which lives for the call.
        let rc = unsafe { libc::waitid(libc::P_PID, self.pid as libc::id_t, &mut info, flags) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: waitid filled `info`; si_pid is 0 when the child has not exited yet.
        self.exited = unsafe { info.si_pid() } != 0;
        Ok(())
    }
}

/// A pidfd for `pid`; `None` when the kernel has none (ENOSYS, or EPERM from a seccomp
/// filter), remembered for the next runs.
fn pidfd_open(pid: libc::pid_t) -> std::io::Result<Option<OwnedFd>> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOSYS | libc::EPERM) => {
                NO_PIDFD.store(true, Ordering::Relaxed);
                Ok(None)
            }
            _ => Err(e),
        };
    }
    // SAFETY: the kernel just returned this descriptor and nothing else owns it.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) }))
}

/// Waits until a pipe has something to read, the child exits, or [`CHECK_EVERY`] passes
/// (sooner on the fallback), then reads the pipes that are ready and notes an exit.
pub(crate) fn step(pipes: &mut Pipes, exit: &mut ExitWatch) -> std::io::Result<()> {
    let pollfd = |fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    let [stdout, stderr] = pipes.fds();
    let watch = exit.pidfd.as_ref().filter(|_| !exit.exited).map(|fd| fd.as_raw_fd());
    // A closed slot is -1, which poll skips.
    let mut fds = [stdout, stderr, watch].map(|fd| pollfd(fd.unwrap_or(-1)));
    let timeout = match (exit.exited, &exit.pidfd) {
        (false, None) => exit.pause,
        _ => CHECK_EVERY,
    };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `fds` is a valid array of 3 pollfds for the call; no signal mask is passed.
    let rc =
        unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, &ts, std::ptr::null()) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        return if e.kind() == std::io::ErrorKind::Interrupted { Ok(()) } else { Err(e) };
    }
    if fds[0].revents != 0 {
        pipes.read_stdout();
    }
    if fds[1].revents != 0 {
        pipes.read_stderr();
    }
    if fds[2].revents != 0 {
        exit.exited = true;
    }
    if !exit.exited && exit.pidfd.is_none() {
        exit.check_exited()?;
        exit.pause = (exit.pause * 2).min(CHECK_EVERY);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::ShardLog;
    use std::process::{Command, Stdio};

    /// Runs `sh -c script` to its end through `step`, watching its exit with `watch` made
    /// from its pid; its stdout and stderr tail.
    fn run_with(script: &str, watch: impl Fn(u32) -> ExitWatch) -> (String, String) {
        let mut child = Command::new("sh")
            .args(["-c", script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let mut exit = watch(child.id());
        let stdout = child.stdout.take().expect("piped").into();
        let stderr = child.stderr.take().expect("piped").into();
        let mut pipes =
            Pipes::new(stdout, stderr, 1 << 20, 64, ShardLog::default()).expect("pipes");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !(exit.exited() && pipes.done()) {
            assert!(std::time::Instant::now() < deadline, "the run did not end");
            step(&mut pipes, &mut exit).expect("step");
        }
        assert!(child.wait().expect("reap").success());
        let (stdout, tail) = pipes.finish();
        (stdout, tail.text())
    }

    #[test]
    fn a_run_is_read_whole_with_a_pidfd_and_without() {
        let script = "echo out; echo err >&2; seq 1 30000 | tail -n 1";
        let pidfd = run_with(script, |pid| ExitWatch::new(pid as libc::pid_t).expect("watch"));
        assert_eq!((pidfd.0.as_str(), pidfd.1.as_str()), ("out\n30000\n", "err\n"));
        let polled = run_with(script, |pid| ExitWatch {
            pid: pid as libc::pid_t,
            pidfd: None,
            exited: false,
            pause: FIRST_PAUSE,
        });
        assert_eq!((polled.0.as_str(), polled.1.as_str()), ("out\n30000\n", "err\n"));
    }
}
