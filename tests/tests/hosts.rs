//! The farm across separate hosts: network namespaces with their own addresses (no container
//! engine needed), a worker killed and another partitioned mid-job, exact result. The scenario
//! is tests/scripts/netns-cluster.sh; it needs root and iproute2 and says SKIPPED without them
//! (CI runs as root, so there it must pass).

use farm_tests::*;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// SIGTERM to a scenario's whole process group, so its cleanup trap runs (namespaces,
/// containers, processes); SIGKILL after 30 s.
fn stop_group(child: &mut Child) {
    // SAFETY: kill(2) on the process group our child leads.
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), libc::SIGTERM);
    }
    if wait_child(child, Duration::from_secs(30)).is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Runs a scenario script to its end, at most `timeout` (then its group is stopped and the test
/// fails); returns its stdout, shown with the test's output.
fn run_scenario(mut command: Command, timeout: Duration) -> (std::process::ExitStatus, String) {
    let mut child = command
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run the scenario");
    if wait_child(&mut child, timeout).is_none() {
        stop_group(&mut child);
        panic!("the scenario did not finish in {timeout:?}");
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{stdout}");
    (out.status, stdout)
}

#[test]
fn a_cluster_of_namespaced_hosts_survives_a_killed_and_a_partitioned_worker() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/netns-cluster.sh");
    let mut command = Command::new("bash");
    command.arg(script).arg(farm());
    let (status, stdout) = run_scenario(command, WAIT * 3);
    if stdout.contains("SKIPPED") {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        assert!(!(root && std::env::var("CI").is_ok()), "CI runs as root: the scenario must run");
        return;
    }
    assert!(status.success() && stdout.contains("PASS"), "{stdout}");
}

/// The container deployment: deploy/build-image.sh builds the image FROM scratch around the
/// farm binary these tests use, deploy/test-compose.sh brings up deploy/compose.yaml with a
/// master and 3 workers on a private network, runs jobs, kills one worker container and
/// disconnects another mid-job, and checks the exact result. Skips visibly without Docker; CI
/// on this machine has a Docker engine, so there it must pass.
#[test]
fn the_compose_deployment_survives_a_killed_and_a_disconnected_worker() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/test-compose.sh");
    let mut command = Command::new("bash");
    command.arg(script).env("FARM_BIN", farm());
    let (status, stdout) = run_scenario(command, Duration::from_secs(900));
    let last = stdout.lines().last().unwrap_or_default();
    if last.starts_with("SKIP") {
        let docker =
            Command::new("docker").arg("info").stdout(Stdio::null()).stderr(Stdio::null()).status();
        assert!(
            !(docker.is_ok_and(|s| s.success()) && std::env::var("CI").is_ok()),
            "CI has a Docker engine: the compose scenario must run"
        );
        return;
    }
    assert!(status.success() && last == "PASS", "{stdout}");
}
