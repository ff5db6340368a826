//! End to end: a worker that leaves takes the programs `exec` runs with it, the program and
//! everything in its process group, whether it drains on SIGTERM, exits with a lost master or
//! loses its master to SIGKILL; a worker killed by SIGKILL takes the program it started.

use farm_tests::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A file the test's program writes its shell's pid to (its process group's id).
fn pid_file(master: &Master) -> PathBuf {
    std::env::temp_dir().join(format!("{}-exec.pid", master.tag))
}

/// Submits one `exec` shard whose shell writes its pid to `file`, then runs `script`; the
/// shell's process group (its pid), killed when dropped, as soon as the pid is written.
fn start_program(master: &Master, file: &Path, script: &str) -> KillGroup {
    let cmd = format!("cmd=sh -c 'echo $$ > {}; {script}'", file.display());
    master.submit(&["exec", "--range", "0..1", "--param", &cmd]);
    let pgid = wait_for(WAIT, || std::fs::read_to_string(file).ok()?.trim().parse().ok());
    KillGroup(pgid.expect("the program wrote its pid"))
}

/// [`start_program`] of a shell that waits for `sleep 30` in the background, once both run.
fn start_group(master: &Master, file: &Path) -> KillGroup {
    let group = start_program(master, file, "sleep 30 & wait");
    // Its background sleep is in the group too before the worker is stopped.
    let both = wait_until(WAIT, || group_members(group.0).len() >= 2);
    assert!(both, "the shell and its sleep run: {:?}", group_members(group.0));
    group
}

/// Live processes (not zombies) of process group `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // After the command's ")": state, ppid, pgrp.
            let fields: Vec<&str> =
                stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
            fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
        })
        .collect()
}

/// Kills process group `pgid` when dropped, so a failed assertion leaves no `sleep 30`.
struct KillGroup(u32);

impl Drop for KillGroup {
    fn drop(&mut self) {
        // SAFETY: killpg only sends a signal; a group that is gone makes it fail harmlessly.
        unsafe {
            libc::killpg(self.0 as libc::pid_t, libc::SIGKILL);
        }
    }
}

/// Asserts the group `pgid` empties within the wait bound.
fn assert_group_gone(pgid: u32) {
    let gone = wait_until(Duration::from_secs(15), || group_members(pgid).is_empty());
    assert!(gone, "left running in group {pgid}: {:?}", group_members(pgid));
}

#[test]
fn a_worker_stopped_by_sigterm_leaves_no_program_running() {
    let master = Master::start(&[]);
    let mut worker = master.worker(&["--threads", "1", "--allow-exec", "--drain-timeout", "1s"]);
    master.wait_workers(1);
    let file = pid_file(&master);
    let group = start_group(&master, &file);
    worker.signal(libc::SIGTERM);
    let status = worker.wait(WAIT).expect("the worker exits after its drain timeout");
    assert!(status.success(), "{status:?}");
    assert_group_gone(group.0);
    let _ = std::fs::remove_file(file);
}

#[test]
fn a_worker_killed_by_sigkill_takes_its_program_with_it() {
    let master = Master::start(&[]);
    let mut worker = master.worker(&["--threads", "1", "--allow-exec"]);
    master.wait_workers(1);
    let file = pid_file(&master);
    // The shell becomes the sleep, so the program is one process: the one the kernel kills
    // when its worker dies (PR_SET_PDEATHSIG; what that program started itself lives on).
    let group = start_program(&master, &file, "exec sleep 30");
    let pid = group.0;
    let sleeping = wait_until(WAIT, || {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    });
    assert!(sleeping, "the program became the sleep");
    worker.signal(libc::SIGKILL);
    let _ = worker.wait(WAIT);
    assert_group_gone(pid);
    let _ = std::fs::remove_file(file);
}

/// Starts the program of [`start_program`] on `master`'s one worker, then kills the master
/// with SIGKILL; the program's group (killed when dropped) and its pid file.
fn kill_master_under_a_program(master: &mut Master) -> (KillGroup, PathBuf) {
    master.wait_workers(1);
    let file = pid_file(master);
    let group = start_group(master, &file);
    master.proc.signal(libc::SIGKILL);
    let _ = master.proc.wait(WAIT);
    (group, file)
}

#[test]
fn a_worker_that_exits_with_its_lost_master_leaves_no_program_running() {
    let mut master = Master::start(&[]);
    let mut worker = master.worker(&["--threads", "1", "--allow-exec", "--exit-with-master"]);
    let (group, file) = kill_master_under_a_program(&mut master);
    worker.wait(WAIT).expect("the worker exits with its master");
    assert_group_gone(group.0);
    let _ = std::fs::remove_file(file);
}

#[test]
fn a_master_killed_by_sigkill_leaves_no_local_worker_and_no_program_running() {
    let mut master = Master::start(&["--workers", "1", "--threads", "1", "--allow-exec"]);
    let (group, file) = kill_master_under_a_program(&mut master);
    // The kernel sends the local worker SIGTERM (PR_SET_PDEATHSIG); it leaves, killing its
    // program's group on the way out. The worker and the programs carry the test's tag.
    assert_group_gone(group.0);
    assert_none_left(&master.tag);
    let _ = std::fs::remove_file(file);
}
