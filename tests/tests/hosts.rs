//! The farm across separate hosts: network namespaces with their own addresses (no container
//! engine needed), a worker killed and another partitioned mid-job, exact result. The scenario
//! is tests/scripts/netns-cluster.sh; it needs root and iproute2 and says SKIPPED without them
//! (CI runs as root, so there it must pass).

mod common;

use common::*;
use std::process::{Command, Stdio};

#[test]
fn a_cluster_of_namespaced_hosts_survives_a_killed_and_a_partitioned_worker() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/netns-cluster.sh");
    let farm = farm();
    let mut child = Command::new("bash")
        .arg(script)
        .arg(&farm)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run the netns scenario");
    let deadline = std::time::Instant::now() + WAIT * 3;
    while child.try_wait().ok().flatten().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the netns scenario did not finish");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    if stdout.contains("SKIPPED") {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        assert!(!(root && std::env::var("CI").is_ok()), "CI runs as root: the scenario must run");
        return;
    }
    assert!(out.status.success() && stdout.contains("PASS"), "{stdout}");
}
