//! Starting an `exec` program: `clone(CLONE_VM | CLONE_VFORK)` onto a stack kept per pool
//! thread, then `execve` in the child.
//!
//! This is what glibc's `posix_spawn` does, less what a farm run does not need and what cost
//! it most: posix_spawn maps a fresh stack for every child and unmaps it afterwards, and the
//! unmap of a multi-threaded process sends a TLB-shootdown interrupt to every other CPU the
//! worker runs on (18 % of the worker's own CPU in the profile of 5,000 × `/bin/true`,
//! BENCHMARKS.md). Here each pool thread keeps one stack for its children (a thread starts one
//! child at a time, and `CLONE_VFORK` holds it until the child has exec'd), `/dev/null` is
//! opened once, and the program's path is searched in the parent.
//!
//! The child shares the worker's memory until its `execve`, so it does only what is safe
//! there: it reads the plan the parent built (the program's paths, argv, and the environment,
//! copied under std's environment lock), asks for SIGKILL when the worker's thread dies
//! (`PR_SET_PDEATHSIG`) and checks the worker is still its parent (it may have died first),
//! sets signals back to their defaults (the worker's handlers would run on the child's stack,
//! and the worker ignores SIGPIPE), joins a new process group, moves its pipes onto 0, 1 and
//! 2, unblocks every signal and execs. It allocates nothing and takes no lock. If it fails, it
//! leaves the error number where the parent reads it once the clone returns, and exits 127.
//! The parent-death signal kills the program even when the worker is SIGKILLed, unless the
//! program execs a set-user-ID, set-group-ID or file-capability binary or changes its
//! credentials (the kernel then clears it), and not what the program started itself.
//!
//! While a child is being cloned, the parent thread blocks every signal `pthread_sigmask` can
//! block, so that no handler of the worker's runs on the child's stack before the child has
//! reset them. glibc's two internal signals (thread cancellation, `setuid` across threads)
//! stay unblocked, unlike in its own posix_spawn; glibc sends them only to the worker's own
//! threads, never to a child.

use std::cell::RefCell;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;

/// Bytes of the stack a child runs on between its clone and its exec.
const CHILD_STACK: usize = 64 << 10;
/// Where glibc's `execvp` looks when `PATH` is not set.
const DEFAULT_PATH: &str = "/bin:/usr/bin";

thread_local! {
    /// The stack this thread's children run on: one child at a time per thread, since the
    /// thread is suspended from the clone until the child has exec'd or exited.
    static STACK: RefCell<Vec<u8>> = RefCell::new(vec![0; CHILD_STACK]);
}

/// A started program: its pid (not yet reaped, the leader of its own process group) and the
/// read ends of its stdout and stderr pipes.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub(crate) pid: libc::pid_t,
    pub(crate) stdout: OwnedFd,
    pub(crate) stderr: OwnedFd,
}

/// What the child does, built by the parent so the child only reads it.
struct Plan {
    /// The program's paths to try in order (one unless `PATH` was searched).
    paths: Vec<CString>,
    /// argv, null-terminated, pointing into `args`.
    argv: Vec<*const libc::c_char>,
    /// The environment, `KEY=VALUE`, null-terminated, pointing into a copy the parent keeps.
    envp: Vec<*const libc::c_char>,
    /// Descriptors for 0, 1 and 2.
    fds: [RawFd; 3],
    /// The worker's pid, which the child checks is still its parent's.
    parent: libc::pid_t,
    /// The child's error number if it could not exec; 0 until then.
    error: AtomicI32,
}

/// Starts `args[0]` with the rest as its arguments: stdin `/dev/null`, stdout and stderr
/// pipes, in a process group of its own, with the worker's environment less its secrets
/// ([`farm_net::SECRET_ENV`]) and plus `extra`. A program name without a `/` is searched in
/// `PATH`, as `execvp` does.
pub(crate) fn spawn(args: &[String], extra: &[(&str, &str)]) -> io::Result<Spawned> {
    let cstring =
        |s: &[u8]| CString::new(s).map_err(|_| io::Error::other("an argument holds a NUL byte"));
    let args: Vec<CString> =
        args.iter().map(|a| cstring(a.as_bytes())).collect::<Result<_, _>>()?;
    let program = args.first().ok_or_else(|| io::Error::other("no program"))?;
    let paths = candidates(program.as_bytes(), std::env::var_os("PATH").as_deref())?;
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let (stdout, stdout_w) = pipe()?;
    let (stderr, stderr_w) = pipe()?;
    let fds = [dev_null()?, stdout_w.as_raw_fd(), stderr_w.as_raw_fd()];
    // A copy taken under std's environment lock: another thread may `set_var` meanwhile.
    let env = child_env(std::env::vars_os(), extra);
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    let plan = Plan { paths, argv, envp, fds, parent, error: AtomicI32::new(0) };
    let pid = clone_child(&plan)?;
    drop((stdout_w, stderr_w));
    let error = plan.error.load(Ordering::Acquire);
    if error != 0 {
        // It exited 127 without exec'ing: reap it, and say why.
        let _ = reap(pid);
        return Err(io::Error::from_raw_os_error(error));
    }
    Ok(Spawned { pid, stdout, stderr })
}

/// The child's environment, `KEY=VALUE`: `vars` less [`farm_net::SECRET_ENV`] and the keys
/// of `extra`, then `extra`.
fn child_env(
    vars: impl Iterator<Item = (OsString, OsString)>,
    extra: &[(&str, &str)],
) -> Vec<CString> {
    let dropped = |k: &OsStr| {
        let mut names = farm_net::SECRET_ENV.iter().chain(extra.iter().map(|(e, _)| e));
        names.any(|e| e.as_bytes() == k.as_bytes())
    };
    let entry = |k: &[u8], v: &[u8]| CString::new([k, b"=", v].concat()).ok();
    let extra = extra.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes()));
    vars.filter(|(k, _)| !dropped(k))
        .filter_map(|(k, v)| entry(k.as_bytes(), v.as_bytes()))
        .chain(extra.filter_map(|(k, v)| entry(k, v)))
        .collect()
}

/// Waits for the child `pid` to end and reaps it; its exit code, or minus the signal that
/// killed it.
pub(crate) fn reap(pid: libc::pid_t) -> io::Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes only into `status`.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        -libc::WTERMSIG(status)
    } else {
        -1
    })
}

/// The paths to try for `program`: itself if it holds a `/`, else each `PATH` entry joined
/// with it (an empty entry is the current directory).
fn candidates(program: &[u8], path: Option<&OsStr>) -> io::Result<Vec<CString>> {
    if program.is_empty() {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    }
    if program.contains(&b'/') {
        return Ok(vec![CString::new(program)?]);
    }
    let path = path.map_or(DEFAULT_PATH.as_bytes(), OsStr::as_bytes);
    path.split(|&b| b == b':')
        .map(|dir| {
            let dir = if dir.is_empty() { b".".as_slice() } else { dir };
            let mut full = dir.to_vec();
            full.push(b'/');
            full.extend_from_slice(program);
            Ok(CString::new(full)?)
        })
        .collect()
}

/// A pipe, both ends close-on-exec (the child's `dup2` onto 1 or 2 clears it there) and
/// above 2, so that moving one onto 0, 1 or 2 in the child cannot overwrite another; the read
/// end first.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned both descriptors and nothing else owns them.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((above_stdio(read)?, above_stdio(write)?))
}

/// `fd`, or a close-on-exec copy of it numbered 3 or more if it is 0, 1 or 2 (a worker
/// started with those closed).
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: fcntl duplicates a descriptor we own; the copy is ours alone.
    let copy = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if copy < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// `/dev/null`, opened once for the process and shared by every child as its stdin.
fn dev_null() -> io::Result<RawFd> {
    static NULL: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(fd) = NULL.get() {
        return Ok(fd.as_raw_fd());
    }
    let file = std::fs::OpenOptions::new().read(true).open("/dev/null")?;
    Ok(NULL.get_or_init(|| file.into()).as_raw_fd())
}

/// Clones the child that runs `plan`, on this thread's stack for children, with every signal
/// this thread can block blocked meanwhile; the child's pid once it has exec'd or exited.
fn clone_child(plan: &Plan) -> io::Result<libc::pid_t> {
    // SAFETY: sigset_t values are plain data; sigfillset and pthread_sigmask only write them.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    let pid = STACK.with_borrow_mut(|stack| {
        // The stack grows down from its top, which must be 16-byte aligned.
        let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
        let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
        let arg = plan as *const Plan as *mut libc::c_void;
        // SAFETY: `child` only reads `plan`, which outlives the call (CLONE_VFORK returns once
        // the child has exec'd or exited), runs on `stack`, which no one else uses meanwhile,
        // and does nothing a child sharing our memory must not (see the module's doc).
        unsafe { libc::clone(child, top as *mut libc::c_void, flags, arg) }
    });
    let cloned = if pid < 0 { Err(io::Error::last_os_error()) } else { Ok(pid) };
    // SAFETY: restores the mask saved above.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
    cloned
}

/// The child, from its clone to its exec: only async-signal-safe calls, no allocation.
extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Plan` the parent keeps alive until this child has exec'd or
    // exited; the child only reads it, and writes its atomic error.
    let plan = unsafe { &*(arg as *const Plan) };
    // SAFETY: every call below is async-signal-safe and touches only this stack, `plan`, and
    // the errno of the parent thread, which is suspended until the exec.
    unsafe {
        // Killed if the thread that started it dies: the worker, even by SIGKILL. First, and
        // then the parent checked: a worker killed before this would leave it an orphan.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
            fail(plan);
        }
        if libc::getppid() != plan.parent {
            libc::_exit(127);
        }
        reset_signals();
        if libc::setpgid(0, 0) != 0 {
            fail(plan);
        }
        for (target, &fd) in plan.fds.iter().enumerate() {
            let target = target as RawFd;
            let moved = if fd == target {
                libc::fcntl(fd, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, target)
            };
            if moved < 0 {
                fail(plan);
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        // As execvp: a path that is missing or not allowed lets the search go on, and the
        // error is EACCES if any path was not allowed.
        let (mut error, mut denied) = (0, false);
        for path in &plan.paths {
            libc::execve(path.as_ptr(), plan.argv.as_ptr(), plan.envp.as_ptr());
            match *libc::__errno_location() {
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
                libc::EACCES => denied = true,
                e => {
                    error = e;
                    break;
                }
            }
        }
        if error == 0 {
            error = if denied { libc::EACCES } else { libc::ENOENT };
        }
        plan.error.store(error, Ordering::Release);
        libc::_exit(127)
    }
}

/// Sets every signal the worker handles, and SIGPIPE (which it ignores), back to its default.
///
/// # Safety
/// Only for the child between clone and exec.
unsafe fn reset_signals() {
    let mut default: libc::sigaction = std::mem::zeroed();
    default.sa_sigaction = libc::SIG_DFL;
    for signal in 1..=libc::SIGRTMAX() {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        let mut current: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signal, std::ptr::null(), &mut current) != 0 {
            continue;
        }
        if signal == libc::SIGPIPE || current.sa_sigaction != libc::SIG_IGN {
            libc::sigaction(signal, &default, std::ptr::null_mut());
        }
    }
}

/// Leaves the child's error number for the parent and exits 127.
///
/// # Safety
/// Only for the child between clone and exec.
unsafe fn fail(plan: &Plan) -> ! {
    plan.error.store(*libc::__errno_location(), Ordering::Release);
    libc::_exit(127)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Runs `args` to its end; its exit code and its stdout.
    fn run(args: &[&str]) -> io::Result<(i32, String)> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let spawned = spawn(&args, &[])?;
        let mut out = String::new();
        std::fs::File::from(spawned.stdout).read_to_string(&mut out)?;
        Ok((reap(spawned.pid)?, out))
    }

    #[test]
    fn a_program_runs_with_its_arguments_found_in_path() {
        assert_eq!(run(&["echo", "a b", "c"]).expect("echo"), (0, "a b c\n".to_string()));
        assert_eq!(run(&["/bin/sh", "-c", "exit 7"]).expect("sh").0, 7);
        assert_eq!(run(&["sh", "-c", "kill -9 $$"]).expect("sh").0, -9);
    }

    #[test]
    fn the_child_starts_clean_in_a_group_of_its_own_with_stdin_null() {
        // No signal blocked, none ignored (the worker ignores SIGPIPE), its own process group.
        let script = "grep -E '^Sig(Blk|Ign)' /proc/self/status; \
                      [ \"$(cut -d' ' -f5 /proc/$$/stat)\" = \"$$\" ] && echo leader; \
                      cat; echo eof";
        let (code, out) = run(&["sh", "-c", script]).expect("sh");
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("SigBlk:\t0000000000000000"), "{out}");
        // The standard signals this process ignores, less SIGPIPE (signals 32 and up are
        // glibc's own), are what the child ignores: ignored ones stay ignored across exec.
        let ignored = |status: &str| {
            let mask = status.lines().find_map(|l| l.strip_prefix("SigIgn:\t")).expect("SigIgn");
            u64::from_str_radix(mask, 16).expect("hex") & 0x7fff_ffff
        };
        let own = std::fs::read_to_string("/proc/self/status").expect("own status");
        let sigpipe = 1u64 << (libc::SIGPIPE - 1);
        assert_ne!(ignored(&own) & sigpipe, 0, "this process ignores SIGPIPE");
        assert_eq!(ignored(&out), ignored(&own) & !sigpipe, "{out}");
        assert!(out.ends_with("leader\neof\n"), "{out}");
    }

    #[test]
    fn a_program_that_cannot_start_is_an_error_naming_why() {
        let missing = run(&["no-such-program-farm-xyz"]).expect_err("missing");
        assert_eq!(missing.kind(), io::ErrorKind::NotFound, "{missing}");
        let dir = std::env::temp_dir();
        let denied = run(&[dir.to_str().expect("utf-8")]).expect_err("a directory");
        assert_eq!(denied.kind(), io::ErrorKind::PermissionDenied, "{denied}");
        let nul = run(&["echo", "a\0b"]).expect_err("a NUL");
        assert!(nul.to_string().contains("NUL"), "{nul}");
        let empty = run(&[""]).expect_err("no name");
        assert_eq!(empty.kind(), io::ErrorKind::NotFound, "{empty}");
    }

    #[test]
    fn the_program_gets_the_environment_less_its_secrets_plus_the_extra() {
        let var = |k: &str, v: &str| (OsString::from(k), OsString::from(v));
        let mut vars: Vec<_> = farm_net::SECRET_ENV.iter().map(|k| var(k, "s3cret")).collect();
        vars.extend([var("PATH", "/bin"), var("FARM_INPUT", "stale"), var("FARM_MASTER", "m")]);
        let env = child_env(vars.into_iter(), &[("FARM_INPUT", "in put")]);
        let env: Vec<&str> = env.iter().map(|e| e.to_str().expect("utf-8")).collect();
        assert_eq!(env, ["PATH=/bin", "FARM_MASTER=m", "FARM_INPUT=in put"]);
        // And what a program sees: the worker's own environment goes through the same door.
        let spawned = spawn(&["env".to_string()], &[("FARM_INPUT", "x")]).expect("env");
        let mut out = String::new();
        std::fs::File::from(spawned.stdout).read_to_string(&mut out).expect("read");
        assert_eq!(reap(spawned.pid).expect("reap"), 0);
        assert!(out.lines().any(|l| l == "FARM_INPUT=x"), "{out}");
    }

    #[test]
    fn path_entries_are_tried_in_order() {
        let found = candidates(b"ls", Some(OsStr::new("/nope::/bin"))).expect("paths");
        let found: Vec<&[u8]> = found.iter().map(|c| c.as_bytes()).collect();
        assert_eq!(found, [b"/nope/ls".as_slice(), b"./ls", b"/bin/ls"]);
        let given = candidates(b"./x", None).expect("paths");
        assert_eq!(given.len(), 1);
    }
}
