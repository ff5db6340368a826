//! The process groups of the programs `exec` is running, kept process-wide so a worker that
//! leaves kills them instead of leaving them running.
//!
//! `exec` starts each program in a process group of its own (`exec_spawn.rs`). Each
//! program's group is registered here while it runs and taken out just before its leader is
//! reaped: a registered leader is never reaped yet, so its pid still names its group and
//! cannot have been reused. [`kill_running_programs`] kills every registered group;
//! [`KillProgramsOnExit`] does so when it drops, and the worker's `cli::run` holds one for its
//! whole life, so every way out it controls kills them: a drain that ends (Ctrl-C, SIGTERM,
//! `farm workers drain`), a lost master with `--exit-with-master`, an idle or time limit, an
//! error, and a panic that unwinds through it.
//!
//! A worker killed by SIGKILL (or the OOM killer) runs none of this. The program itself is
//! killed all the same, by the kernel (`PR_SET_PDEATHSIG`, set in the child before its exec),
//! but what the program started in turn (`sh -c 'a & b'`) keeps running, re-parented to init,
//! until it ends on its own. The read ends of the stdout and stderr pipes close with the
//! worker, so such a process that writes to either then gets SIGPIPE (or EPIPE) and usually
//! ends there.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};
use tracing::warn;

/// The process groups of the programs running in this process.
static RUNNING: Running = Running::new();

/// A set of running programs' process groups (their leaders' pids, which are the groups' ids).
#[derive(Debug)]
pub(crate) struct Running {
    groups: Mutex<Option<HashSet<libc::pid_t>>>,
}

impl Running {
    /// An empty set.
    const fn new() -> Self {
        Running { groups: Mutex::new(None) }
    }

    /// The groups; a thread that panicked while holding them leaves them usable.
    fn lock(&self) -> MutexGuard<'_, Option<HashSet<libc::pid_t>>> {
        self.groups.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Kills every group in the set; the number killed.
    fn kill_all(&self) -> usize {
        // The lock is held while killing, so no group is reaped (and its id reused) meanwhile.
        let guard = self.lock();
        let groups: Vec<libc::pid_t> = guard.iter().flatten().copied().collect();
        for &pgid in &groups {
            kill_group(pgid);
        }
        groups.len()
    }

    /// Whether the group led by `pid` is in the set.
    #[cfg(test)]
    fn holds(&self, pid: u32) -> bool {
        self.lock().as_ref().is_some_and(|set| set.contains(&(pid as libc::pid_t)))
    }
}

/// One running program's process group, registered until this drops. Drop it before reaping
/// the program: the registry may kill the group until then.
#[derive(Debug)]
pub(crate) struct Group {
    /// The leader's pid, which is the group's id.
    pid: libc::pid_t,
    /// The set it is registered in.
    set: &'static Running,
}

impl Group {
    /// Registers the group led by `pid`, a child started in a group of its own and not yet
    /// reaped, with the process's running programs.
    pub(crate) fn register(pid: libc::pid_t) -> Group {
        Group::register_in(&RUNNING, pid)
    }

    /// Registers the group led by `pid` in `set`.
    fn register_in(set: &'static Running, pid: libc::pid_t) -> Group {
        set.lock().get_or_insert_with(HashSet::new).insert(pid);
        Group { pid, set }
    }

    /// Kills every process of the group (SIGKILL). An error means none is left.
    pub(crate) fn kill(&self) {
        kill_group(self.pid);
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(set) = self.set.lock().as_mut() {
            set.remove(&self.pid);
        }
    }
}

/// Sends SIGKILL to the process group `pgid`.
fn kill_group(pgid: libc::pid_t) {
    // SAFETY: killpg has no memory effects. Callers pass a group whose leader is not reaped,
    // so the id names that group and no other.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}

/// Kills the process group of every program `exec` is running now; the number killed. Their
/// pool threads then see them end and report their shards failed.
pub fn kill_running_programs() -> usize {
    RUNNING.kill_all()
}

/// Kills every running program's group when it drops (see the module's doc). A worker
/// binary that runs [`crate::run`] or [`crate::serve`] itself holds one around that call.
#[derive(Debug, Default)]
pub struct KillProgramsOnExit;

impl Drop for KillProgramsOnExit {
    fn drop(&mut self) {
        let killed = kill_running_programs();
        if killed > 0 {
            warn!(programs = killed, "worker leaving: killed the programs exec was still running");
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::process::Command;
    use std::time::{Duration, Instant};

    /// Whether the process `pid` has ended (gone, or a zombie).
    pub(crate) fn ended(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
            .unwrap_or(true)
    }

    /// Asks `probe` every 10 ms until it answers, for at most 10 s.
    pub(crate) fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(found) = probe() {
                return Some(found);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn killing_running_programs_kills_their_whole_group() {
        use std::os::unix::process::CommandExt;
        // A shell in its own group that starts a sleep, then waits for it.
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("spawn sh");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .expect("read the sleep's pid");
        let sleep: u32 = line.trim().parse().expect("a pid");
        // A set of its own: the process's set holds the other tests' programs.
        static SET: Running = Running::new();
        let group = Group::register_in(&SET, child.id() as libc::pid_t);
        assert_eq!(SET.kill_all(), 1);
        assert!(wait_for(|| ended(sleep).then_some(())).is_some(), "sleep {sleep} survived");
        drop(group);
        let status = child.wait().expect("reap sh");
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGKILL));
        assert!(!SET.holds(child.id()), "a dropped group leaves the set");
    }
}
