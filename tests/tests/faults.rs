//! Faults injected for real: workers killed, stopped, crashing on a poison shard, drained,
//! respawned; a master restarted; shards that hang. Results stay exact and nothing is left
//! running.

mod common;

use common::*;
use std::time::{Duration, Instant};

fn job_id(out: &std::process::Output) -> String {
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(id.parse::<u64>().is_ok(), "submit printed {id:?}");
    id
}

fn done(master: &Master, id: &str) -> u64 {
    json(&master.cli(&["status", id, "--json"]))[0]["done"].as_u64().unwrap_or(0)
}

#[test]
fn killing_one_of_three_workers_mid_job_keeps_the_result_exact() {
    let master = Master::start(&[]);
    let mut doomed = master.worker(&["--threads", "2"]);
    let _a = master.worker(&["--threads", "1"]);
    let _b = master.worker(&["--threads", "1"]);
    master.wait_workers(3);
    let id = job_id(&master.cli(&[
        "submit",
        "spin",
        "--range",
        "0..120",
        "--shard-size",
        "1",
        "--param",
        "ms=20",
    ]));
    assert!(wait_until(WAIT, || done(&master, &id) >= 10));
    doomed.signal(libc::SIGKILL);
    doomed.wait(Duration::from_secs(10)).expect("worker killed");
    let v = json(&master.cli(&["watch", &id, "--json"]));
    assert_eq!(v["state"], "succeeded");
    assert_eq!(v["result"], 120, "every index counted exactly once");
    assert!(v["reruns"].as_u64() >= Some(1), "the killed worker's shards ran again: {v}");
}

#[test]
fn a_stopped_worker_is_declared_lost_and_comes_back_as_a_new_instance() {
    let master = Master::start(&["--heartbeat", "200ms"]);
    let frozen = master.worker(&["--threads", "1"]);
    let _steady = master.worker(&["--threads", "1"]);
    let before = master.wait_workers(2);
    let frozen_id = before
        .iter()
        .find(|w| w["pid"].as_u64() == Some(u64::from(frozen.pid())))
        .map(|w| w["worker"].clone())
        .expect("frozen worker listed");
    let id = job_id(&master.cli(&[
        "submit",
        "spin",
        "--range",
        "0..40",
        "--shard-size",
        "1",
        "--param",
        "ms=20",
    ]));
    assert!(wait_until(WAIT, || done(&master, &id) >= 4));
    frozen.signal(libc::SIGSTOP);
    let stopped_at = Instant::now();
    let v = json(&master.cli(&["watch", &id, "--json"]));
    assert_eq!(v["state"], "succeeded");
    assert_eq!(v["result"], 40);
    // Heartbeat 200 ms: lost after 500 ms; the rest of the work is under a second on one thread.
    assert!(stopped_at.elapsed() < WAIT);
    frozen.signal(libc::SIGCONT);
    // Told it was lost, it drops what it held and registers again under a new id.
    let ok =
        wait_until(WAIT, || {
            let workers = json(&master.cli(&["workers", "--json"]));
            workers.as_array().into_iter().flatten().any(|w| {
                w["pid"].as_u64() == Some(u64::from(frozen.pid())) && w["worker"] != frozen_id
            })
        });
    assert!(ok, "the resumed worker re-registered as a new instance");
}

#[test]
fn a_poison_shard_fails_its_job_by_name_and_spares_the_cluster() {
    let master = Master::start(&["--workers", "3", "--threads", "1", "--allow-exec"]);
    master.wait_workers(3);
    // Shard 7 kills the worker running it (exec's child kills its parent, the worker).
    let cmd = "cmd=sh -c 'if [ {} = 7 ]; then kill -9 $PPID; sleep 1; fi'";
    let poison = job_id(&master.cli(&["submit", "exec", "--range", "0..12", "--param", cmd]));
    let healthy =
        job_id(&master.cli(&["submit", "noop", "--range", "0..1000", "--shard-size", "10"]));
    let v = json(&master.cli(&["watch", &poison, "--json"]));
    assert_eq!(v["state"], "failed");
    let error = v["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("shard 7 (indices 7..8) was running on 3 workers that were lost"),
        "{error}"
    );
    let v = json(&master.cli(&["watch", &healthy, "--json"]));
    assert_eq!(v["result"], 1000, "the other job is unaffected");
    // The supervisor restarted the killed workers; the cluster is whole and still works.
    let workers = master.wait_workers(3);
    let restarts: u64 = workers.iter().map(|w| w["restarts"].as_u64().unwrap_or(0)).sum();
    // At least the three crashes blamed on shard 7; a crash can also be blamed on a shard whose
    // "started" report was lost with the worker, which costs one more.
    assert!(restarts >= 3, "{workers:?}");
    let v = json(&master.cli(&["submit", "primes", "--range", "0..1000", "--wait", "--json"]));
    assert_eq!(v["result"], 168);
}

#[test]
fn a_hung_shard_times_out_and_a_retry_can_succeed() {
    let master = Master::start(&["--workers", "1", "--threads", "2", "--allow-exec"]);
    master.wait_workers(1);
    let out = master.cli(&[
        "submit",
        "sleep",
        "--range",
        "0..2",
        "--param",
        "ms=60000",
        "--shard-timeout",
        "300ms",
        "--wait",
        "--json",
    ]);
    assert!(!out.status.success());
    let v = json(&out);
    assert_eq!(v["state"], "failed");
    assert!(v["error"].as_str().unwrap_or_default().ends_with("timed out after 300 ms"), "{v}");

    // The first run hangs and is stopped; the retry finds the marker file and succeeds.
    let marker = std::env::temp_dir().join(format!("{}-marker", master.tag));
    let cmd = format!(
        "cmd=sh -c 'if [ -e {m} ]; then echo ok; else touch {m}; sleep 60; fi'",
        m = marker.display()
    );
    let out = master.cli(&[
        "submit",
        "exec",
        "--range",
        "0..1",
        "--param",
        &cmd,
        "--shard-timeout",
        "3s",
        "--retries",
        "1",
        "--wait",
        "--json",
    ]);
    let v = json(&out);
    assert_eq!(v["state"], "succeeded", "{v}");
    assert_eq!(v["result"][0]["stdout"], "ok\n");
    assert_eq!(v["reruns"], 1);
    let _ = std::fs::remove_file(marker);
}

#[test]
fn draining_workers_finish_their_shards_hand_back_the_rest_and_exit_cleanly() {
    let master = Master::start(&[]);
    let mut by_signal = master.worker(&["--threads", "2", "--allow-exec"]);
    let mut by_command = master.worker(&["--threads", "2", "--allow-exec"]);
    let _stays = master.worker(&["--threads", "1", "--allow-exec"]);
    let workers = master.wait_workers(3);
    let log = std::env::temp_dir().join(format!("{}-runs.log", master.tag));
    let cmd = format!("cmd=sh -c 'echo {{}} >> {}; sleep 0.05'", log.display());
    let id = job_id(&master.cli(&["submit", "exec", "--range", "0..80", "--param", &cmd]));
    assert!(wait_until(WAIT, || done(&master, &id) >= 8));

    // A rolling restart: SIGTERM one worker, `farm workers drain` the other.
    by_signal.signal(libc::SIGTERM);
    let target = workers
        .iter()
        .find(|w| w["pid"].as_u64() == Some(u64::from(by_command.pid())))
        .map(|w| w["worker"].to_string())
        .expect("listed");
    let out = master.cli(&["workers", "drain", &target, "--json"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out)[0]["draining"], true);
    for w in [&mut by_signal, &mut by_command] {
        let status = w.wait(WAIT).expect("drained worker exits");
        assert!(status.success(), "a drained worker exits 0: {status:?}");
    }
    let v = json(&master.cli(&["watch", &id, "--json"]));
    assert_eq!(v["state"], "succeeded");
    // No shard lost, none run twice: every index was logged exactly once.
    let runs = std::fs::read_to_string(&log).expect("run log");
    let mut seen: Vec<u64> = runs.lines().filter_map(|l| l.trim().parse().ok()).collect();
    seen.sort();
    assert_eq!(seen, (0..80).collect::<Vec<_>>());
    let _ = std::fs::remove_file(log);
}

#[test]
fn workers_reconnect_to_a_restarted_master_and_watchers_get_a_clear_error() {
    let master = Master::start(&[]);
    let port = master.url.rsplit(':').next().expect("port").to_string();
    let _worker = master.worker(&["--threads", "1"]);
    master.wait_workers(1);
    let id = job_id(&master.cli(&[
        "submit",
        "sleep",
        "--range",
        "0..100",
        "--shard-size",
        "1",
        "--param",
        "ms=100",
    ]));
    let master_tag = master.tag.clone();
    let (tag, url) = (master.tag.clone(), master.url.clone());
    let watcher = std::thread::spawn(move || run_capture(&["--master", &url, "watch", &id], &tag));
    std::thread::sleep(Duration::from_millis(500));
    drop(master);
    let out = watcher.join().expect("watcher thread");
    assert!(!out.status.success(), "watch must fail when the master goes away");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("jobs do not survive a master restart"), "{stderr}");

    let master = Master::start_tagged(&[], &master_tag, &format!("127.0.0.1:{port}"));
    master.wait_workers(1);
    let v = json(&master.cli(&["submit", "primes", "--range", "0..1000", "--wait", "--json"]));
    assert_eq!(v["result"], 168);
}

#[test]
fn a_local_worker_that_dies_is_respawned_and_counted() {
    let master = Master::start(&["--workers", "1", "--threads", "1"]);
    let before = master.wait_workers(1);
    let pid = before[0]["pid"].as_u64().expect("pid");
    // SAFETY: kill(2) on a worker process this test's master started.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
    let ok = wait_until(WAIT, || {
        let w = json(&master.cli(&["workers", "--json"]));
        w[0]["restarts"] == 1 && w[0]["pid"].as_u64() != Some(pid)
    });
    assert!(ok, "the worker came back with restarts = 1");
    let v = json(&master.cli(&["submit", "noop", "--range", "0..50", "--wait", "--json"]));
    assert_eq!(v["result"], 50);
}

#[test]
fn a_draining_worker_whose_master_goes_away_still_exits_cleanly() {
    let mut master = Master::start(&[]);
    let mut worker = master.worker(&["--threads", "1"]);
    master.wait_workers(1);
    let out = master.cli(&["submit", "spin", "--range", "0..1", "--param", "ms=5000"]);
    assert!(out.status.success(), "{out:?}");
    assert!(wait_until(WAIT, || {
        json(&master.cli(&["workers", "--json"]))[0]["running"].as_u64() == Some(1)
    }));
    worker.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    master.proc.signal(libc::SIGTERM);
    let status = worker.wait(WAIT).expect("worker exits");
    assert!(status.success(), "a worker asked to stop exits 0 even if the master left: {status:?}");
    master.proc.wait(WAIT).expect("master exits");
}
