//! End to end: a job that nothing can run says so. When the only worker offering its kind dies,
//! `farm status` and `farm watch` show `waiting: no connected worker offers kind X`; a worker
//! that joins ends the wait; `--no-worker-timeout` fails a job that waited that long. A
//! `--verify` job with one worker says it waits for a second one, until one joins.

use farm_tests::*;
use std::process::Stdio;

const WAITING: &str = "no connected worker offers kind sleep";

#[test]
fn a_job_whose_only_worker_died_shows_it_is_waiting_until_a_worker_joins() {
    let master = Master::start(&[]);
    let only = master.worker(&["--threads", "1"]);
    master.wait_workers(1);
    let id = master.submit(&["sleep", "--range", "0..40", "--shard-size", "1", "--param", "ms=50"]);
    master.wait_done(&id, 1);
    let mut watch = spawn(&["--master", &master.url, "watch", &id], &master.tag, Stdio::null());

    only.signal(libc::SIGKILL);
    let mut last = serde_json::Value::Null;
    let waiting = wait_until(WAIT, || {
        last = master.status(&id);
        last["waiting"] == WAITING
    });
    assert!(waiting, "status never said it waits: {last}");
    assert_eq!(last["state"], "running");
    let text = master.cli(&["status", &id]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("waiting: {WAITING}")), "{text}");
    watch.wait_for_log(WAIT, "saying the job waits", |l| l == format!("waiting: {WAITING}"));

    // A worker that offers the kind ends the wait, and the job completes.
    let _back = master.worker(&["--threads", "2"]);
    watch.wait_for_log(WAIT, "saying a worker is back", |l| l.contains("a worker for the job"));
    let v = master.watch(&id);
    assert_eq!((v["state"].as_str(), v["result"].as_u64()), (Some("succeeded"), Some(40)), "{v}");
    assert!(v.get("waiting").is_none(), "{v}");
    let status = watch.wait(WAIT).expect("watch ends with the job");
    assert!(status.success(), "{status:?}");
}

#[test]
fn no_worker_timeout_fails_a_job_that_no_worker_can_run() {
    let master = Master::start(&[]);
    let out = master.cli(&[
        "submit",
        "sleep",
        "--range",
        "0..10",
        "--no-worker-timeout",
        "1s",
        "--wait",
        "--json",
    ]);
    assert!(!out.status.success(), "a job failed by the timeout exits non-zero: {out:?}");
    let v = json(&out);
    assert_eq!(v["state"], "failed", "{v}");
    assert_eq!(
        v["error"],
        format!("{WAITING}, and none joined within 1s (--no-worker-timeout)"),
        "{v}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("waiting: {WAITING}")), "{stderr}");
}

#[test]
fn a_verify_job_with_one_worker_says_it_waits_for_a_second_until_one_joins() {
    let master = Master::start(&[]);
    let _first = master.worker(&["--threads", "1"]);
    master.wait_workers(1);
    let id = master.submit(&["noop", "--range", "0..20", "--verify", "100"]);
    let mut last = serde_json::Value::Null;
    let waiting = wait_until(WAIT, || {
        last = master.status(&id);
        last["waiting"].as_str().is_some_and(|w| w.starts_with("--verify needs a second worker"))
    });
    assert!(waiting, "status never said it waits for a second worker: {last}");
    let _second = master.worker(&["--threads", "1"]);
    let v = master.watch(&id);
    assert_eq!((v["state"].as_str(), v["result"].as_u64()), (Some("succeeded"), Some(20)), "{v}");
    assert!(v.get("waiting").is_none(), "{v}");
}
