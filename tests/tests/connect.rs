//! Masters that dial their workers (`farm master --connect`, `farm worker --listen`), mixed with
//! workers that dial in, in the same job.

use farm_proto::pb::{self, worker_host_client::WorkerHostClient};
use farm_tests::*;
use std::time::Duration;

#[test]
fn a_mixed_cluster_of_listed_and_dialing_workers_runs_one_job_exactly() {
    let tag = tag();
    let (_w1, a1) = listening_worker(&tag, "127.0.0.1:0", &[]);
    let (_w2, a2) = listening_worker(&tag, "127.0.0.1:0", &[]);
    let hosts = std::env::temp_dir().join(format!("{tag}-hosts.txt"));
    std::fs::write(&hosts, format!("# listed workers\n{a2}  # the second\n\n")).expect("hosts");
    let hosts_arg = hosts.to_string_lossy().to_string();
    let master = Master::start_tagged(
        &["--connect", &a1, "--connect-file", &hosts_arg],
        &tag,
        "127.0.0.1:0",
    );
    let _dialer = master.worker(&["--threads", "1"]);
    let workers = master.wait_workers(3);
    let mut dialed: Vec<&str> = workers.iter().filter_map(|w| w["dialed_by"].as_str()).collect();
    dialed.sort();
    assert_eq!(dialed, vec!["master", "master", "worker"]);

    let v =
        master.submit_wait(&["spin", "--range", "0..90", "--shard-size", "1", "--param", "ms=10"]);
    assert_eq!(v["result"], 90);
    let workers = master.wait_workers(3);
    assert!(
        workers.iter().all(|w| w["done"].as_u64() > Some(0)),
        "all three took part: {workers:?}"
    );
    let _ = std::fs::remove_file(hosts);
}

#[test]
fn a_listed_worker_that_starts_after_the_master_is_picked_up() {
    let tag = tag();
    let trap = DialTrap::new();
    let master = Master::start_tagged(&["--connect", &trap.addr], &tag, "127.0.0.1:0");
    // The master dialed the address and found nothing there; it keeps trying.
    assert!(trap.wait_for_dial(WAIT), "the master never dialed its listed worker");
    assert!(master.workers().is_empty());
    let addr = trap.release();
    let (_w, _) = listening_worker(&tag, &addr, &[]);
    master.wait_workers(1);
    assert_eq!(master.submit_wait(&["primes", "--range", "0..1000"])["result"], 168);
}

#[test]
fn a_listed_worker_killed_and_restarted_mid_job_rejoins_and_the_result_is_exact() {
    let tag = tag();
    let (mut doomed, addr) = listening_worker(&tag, "127.0.0.1:0", &[]);
    let (_steady, other) = listening_worker(&tag, "127.0.0.1:0", &[]);
    let master =
        Master::start_tagged(&["--connect", &format!("{addr},{other}")], &tag, "127.0.0.1:0");
    let before = master.wait_workers(2);
    let id = master.submit(&["spin", "--range", "0..80", "--shard-size", "1", "--param", "ms=20"]);
    master.wait_done(&id, 6);
    doomed.signal(libc::SIGKILL);
    doomed.wait(Duration::from_secs(10)).expect("killed");
    let (_again, _) = listening_worker(&tag, &addr, &[]);
    let v = master.watch(&id);
    assert_eq!(v["state"], "succeeded");
    assert_eq!(v["result"], 80);
    let after = master.wait_workers(2);
    let ids = |ws: &[serde_json::Value]| ws.iter().map(|w| w["worker"].clone()).collect::<Vec<_>>();
    assert_ne!(ids(&before), ids(&after), "the restarted worker is a new instance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_master_is_refused_while_the_first_holds_the_worker() {
    within(a_second_master_is_refused_while_the_first_holds_the_worker_body()).await;
}

async fn a_second_master_is_refused_while_the_first_holds_the_worker_body() {
    let tag = tag();
    let (_w, addr) = listening_worker(&tag, "127.0.0.1:0", &[]);
    let first = Master::start_tagged(&["--connect", &addr], &tag, "127.0.0.1:0");
    tokio::task::block_in_place(|| first.wait_workers(1));
    let first_addr = first.url.trim_start_matches("http://").to_string();
    let second =
        Master::start_tagged(&["--connect", &addr, "--heartbeat", "200ms"], &tag, "127.0.0.1:0");

    // Asked directly, the worker names the master that holds it.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let refused = WorkerHostClient::new(channel)
        .attach(tokio_stream::iter(Vec::<pb::MasterMessage>::new()))
        .await
        .map(|_| ())
        .expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(refused.message().contains(&first_addr), "{}", refused.message());
    // The second master dialed too and was told the same (it logs the refusal at warn).
    tokio::task::block_in_place(|| {
        second.proc.wait_for_log(WAIT, "of the worker refusing the second master", |line| {
            line.contains(&addr) && line.contains(&first_addr)
        });
        assert!(second.workers().is_empty());
    });

    // Once the first master is gone, the second takes the worker over.
    drop(first);
    tokio::task::block_in_place(|| {
        second.wait_workers(1);
        assert_eq!(second.submit_wait(&["noop", "--range", "0..100"])["result"], 100);
    });
}
