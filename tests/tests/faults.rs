//! Faults injected for real: workers killed, stopped, crashing on a poison shard, drained,
//! respawned; a master restarted; shards that hang. Results stay exact and nothing is left
//! running.

use farm_tests::*;
use std::time::{Duration, Instant};

#[test]
fn killing_one_of_three_workers_mid_job_keeps_the_result_exact() {
    let master = Master::start(&[]);
    let mut doomed = master.worker(&["--threads", "2"]);
    let _a = master.worker(&["--threads", "1"]);
    let _b = master.worker(&["--threads", "1"]);
    master.wait_workers(3);
    let id = master.submit(&["spin", "--range", "0..120", "--shard-size", "1", "--param", "ms=20"]);
    master.wait_done(&id, 10);
    doomed.signal(libc::SIGKILL);
    doomed.wait(Duration::from_secs(10)).expect("worker killed");
    let v = master.watch(&id);
    assert_eq!(v["state"], "succeeded");
    assert_eq!(v["result"], 120, "every index counted exactly once");
    assert!(v["reruns"].as_u64() >= Some(1), "the killed worker's shards ran again: {v}");
}

/// How soon a worker that stops answering must be declared lost with a 200 ms heartbeat (lost
/// after 500 ms of silence): well under the 20 s of the HTTP/2 keep-alive, so only the
/// heartbeat can have found it.
const LOST_WITHIN: Duration = Duration::from_secs(10);

#[test]
fn a_stopped_worker_is_declared_lost_and_comes_back_as_a_new_instance() {
    let master = Master::start(&["--heartbeat", "200ms"]);
    let frozen = master.worker(&["--threads", "1"]);
    let _steady = master.worker(&["--threads", "1"]);
    let before = master.wait_workers(2);
    let frozen_id = Master::worker_by_pid(&before, frozen.pid()).expect("listed")["worker"].clone();
    let id = master.submit(&["spin", "--range", "0..40", "--shard-size", "1", "--param", "ms=20"]);
    master.wait_done(&id, 4);
    frozen.signal(libc::SIGSTOP);
    let stopped_at = Instant::now();
    // While it is still stopped, the master drops it: the heartbeat found it silent.
    let gone = wait_until(LOST_WITHIN, || {
        let workers = master.workers();
        workers.len() == 1 && Master::worker_by_pid(&workers, frozen.pid()).is_none()
    });
    assert!(gone, "the stopped worker was not declared lost within {LOST_WITHIN:?}");
    let lost_after = stopped_at.elapsed();
    let v = master.watch(&id);
    assert_eq!(v["state"], "succeeded");
    assert_eq!(v["result"], 40, "what it held ran elsewhere (lost after {lost_after:?})");
    frozen.signal(libc::SIGCONT);
    // Told it was lost, it drops what it held and registers again under a new id.
    master.wait_workers_where("the resumed worker under a new id", |workers| {
        Master::worker_by_pid(workers, frozen.pid()).is_some_and(|w| w["worker"] != frozen_id)
    });
}

#[test]
fn a_poison_shard_fails_its_job_by_name_and_spares_the_cluster() {
    let master = Master::start(&["--workers", "3", "--threads", "1", "--allow-exec"]);
    master.wait_workers(3);
    // Shard 7 kills the worker running it (exec's child kills its parent, the worker).
    let cmd = "cmd=sh -c 'if [ {} = 7 ]; then kill -9 $PPID; sleep 1; fi'";
    let poison = master.submit(&["exec", "--range", "0..12", "--param", cmd]);
    let healthy = master.submit(&["noop", "--range", "0..1000", "--shard-size", "10"]);
    let v = master.watch(&poison);
    assert_eq!(v["state"], "failed");
    let error = v["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("shard 7 (indices 7..8) was running on 3 workers that were lost"),
        "{error}"
    );
    let v = master.watch(&healthy);
    assert_eq!(v["result"], 1000, "the other job is unaffected");
    // The supervisor restarted the killed workers; the cluster is whole and still works.
    let workers = master.wait_workers(3);
    let restarts: u64 = workers.iter().map(|w| w["restarts"].as_u64().unwrap_or(0)).sum();
    // At least the three crashes blamed on shard 7; a crash can also be blamed on a shard whose
    // "started" report was lost with the worker, which costs one more.
    assert!(restarts >= 3, "{workers:?}");
    assert_eq!(master.submit_wait(&["primes", "--range", "0..1000"])["result"], 168);
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
    let v = master.submit_wait(&[
        "exec",
        "--range",
        "0..1",
        "--param",
        &cmd,
        "--shard-timeout",
        "3s",
        "--retries",
        "1",
    ]);
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
    let id = master.submit(&["exec", "--range", "0..80", "--param", &cmd]);
    master.wait_done(&id, 8);

    // A rolling restart: SIGTERM one worker, `farm workers drain` the other.
    by_signal.signal(libc::SIGTERM);
    let target =
        Master::worker_by_pid(&workers, by_command.pid()).expect("listed")["worker"].to_string();
    let out = master.cli(&["workers", "drain", &target, "--json"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out)[0]["draining"], true);
    for w in [&mut by_signal, &mut by_command] {
        let status = w.wait(WAIT).expect("drained worker exits");
        assert!(status.success(), "a drained worker exits 0: {status:?}");
    }
    let v = master.watch(&id);
    assert_eq!(v["state"], "succeeded");
    // No shard lost, none run twice: every index was logged exactly once.
    let runs = std::fs::read_to_string(&log).expect("run log");
    let mut seen: Vec<u64> = runs.lines().filter_map(|l| l.trim().parse().ok()).collect();
    seen.sort();
    assert_eq!(seen, (0..80).collect::<Vec<_>>());
    let _ = std::fs::remove_file(log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_reconnect_to_a_restarted_master_and_watchers_get_a_clear_error() {
    let master = Master::start(&[]);
    let port = master.url.rsplit(':').next().expect("port").to_string();
    let _worker = master.worker(&["--threads", "1"]);
    tokio::task::block_in_place(|| master.wait_workers(1));
    let args = ["sleep", "--range", "0..1000", "--shard-size", "1", "--param", "ms=100"];
    let id: u64 = tokio::task::block_in_place(|| master.submit(&args)).parse().expect("job id");
    // A watcher that has had the job's first progress is surely streaming when the master goes.
    let mut client = within(farm_client::Client::connect(&master.url)).await.expect("client");
    let (first_tx, mut first_rx) = tokio::sync::mpsc::unbounded_channel();
    // A short reconnect bound: the master stays away until the watcher has given up.
    let ride = farm_client::WaitOptions { reconnect_for: std::time::Duration::from_secs(1) };
    let watcher = tokio::spawn(async move {
        client
            .wait_with(id, &ride, |e| {
                let _ = first_tx.send(e);
            })
            .await
            .map(|status| status.state)
    });
    within(first_rx.recv()).await.expect("the watch reported progress");
    let master_tag = master.tag.clone();
    drop(master);
    let lost = within(watcher).await.expect("watcher task").expect_err("the master went away");
    assert!(
        matches!(lost, farm_client::ClientError::MasterLost { job, .. } if job == id),
        "{lost:?}"
    );
    assert!(lost.to_string().contains("it was not back within 1s"), "{lost}");

    let master = Master::start_tagged(&[], &master_tag, &format!("127.0.0.1:{port}"));
    tokio::task::block_in_place(|| {
        master.wait_workers(1);
        assert_eq!(master.submit_wait(&["primes", "--range", "0..1000"])["result"], 168);
    });
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
    master.wait_workers_where("the worker back with restarts = 1", |w| {
        w.len() == 1 && w[0]["restarts"] == 1 && w[0]["pid"].as_u64() != Some(pid)
    });
    assert_eq!(master.submit_wait(&["noop", "--range", "0..50"])["result"], 50);
}

#[test]
fn a_draining_worker_whose_master_goes_away_still_exits_cleanly() {
    let mut master = Master::start(&[]);
    let mut worker = master.worker(&["--threads", "1"]);
    master.wait_workers(1);
    // Long enough that the worker is still running it when the master leaves.
    master.submit(&["spin", "--range", "0..1", "--param", "ms=10000"]);
    master.wait_workers_where("the worker running its shard", |w| {
        w.first().is_some_and(|w| w["in_flight"] == 1)
    });
    worker.signal(libc::SIGTERM);
    // The master knows it is draining (its shard still running) before the master leaves.
    master.wait_workers_where("the worker draining", |w| {
        w.first().is_some_and(|w| w["draining"] == true)
    });
    master.proc.signal(libc::SIGTERM);
    let status = worker.wait(WAIT).expect("worker exits");
    assert!(status.success(), "a worker asked to stop exits 0 even if the master left: {status:?}");
    master.proc.wait(WAIT).expect("master exits");
}
