//! Workers that hoard, lie or fail fast, against a real master: a fake worker built on the
//! generated client claims 4,096 threads and heartbeats but never answers (or answers wrong),
//! next to a real `farm worker`; and a shard that fails at once backs off between its retries.

use farm_proto::pb::{self, master_message::Msg, worker_message, worker_service_client};
use farm_tests::*;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

/// How a fake worker answers its shards.
#[derive(Clone, Copy)]
enum Answer {
    /// It never does (a hoarder).
    Never,
    /// Every shard counts 0 (a liar, for noop).
    Zero,
}

/// Starts a fake worker named `name` in its own runtime: it registers with 4,096 threads and
/// the built-in kernels, heartbeats every 100 ms, and answers as `answer` says. It stops when
/// the returned runtime drops.
fn fake_worker(url: &str, name: &str, answer: Answer) -> tokio::runtime::Runtime {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (url, name) = (url.to_string(), name.to_string());
    rt.spawn(async move {
        let channel = tonic::transport::Endpoint::from_shared(url)
            .expect("url")
            .connect()
            .await
            .expect("connect");
        let mut client = worker_service_client::WorkerServiceClient::new(channel);
        let (tx, rx) = mpsc::channel(64);
        let kernels = farm_worker::Registry::builtin(false)
            .descriptors()
            .iter()
            .map(pb::KernelDescriptor::from)
            .collect();
        let register = pb::Register {
            protocol_version: farm_proto::PROTOCOL_VERSION,
            threads: 4096,
            kernels,
            name,
            hostname: "fake".into(),
            pid: 1,
            restarts: 0,
            allocation: String::new(),
        };
        let send = |msg| pb::WorkerMessage { msg: Some(msg) };
        tx.send(send(worker_message::Msg::Register(register))).await.expect("register");
        let mut inbound =
            client.connect(ReceiverStream::new(rx)).await.expect("session").into_inner();
        let mut beat = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = beat.tick() => {
                    let _ = tx.send(send(worker_message::Msg::Heartbeat(pb::Heartbeat {}))).await;
                }
                msg = inbound.next() => match msg {
                    Some(Ok(pb::MasterMessage { msg: Some(Msg::Assign(batch)) })) => {
                        if let Answer::Zero = answer {
                            let done = batch.tasks.iter().map(|t| pb::ShardDone {
                                job_id: t.job_id,
                                shard: t.shard,
                                outcome: Some(pb::shard_done::Outcome::Output(pb::ShardOutput {
                                    value: Some(pb::shard_output::Value::Count(0)),
                                })),
                            });
                            let results =
                                pb::ResultBatch { done: done.collect(), ..Default::default() };
                            let _ = tx.send(send(worker_message::Msg::Results(results))).await;
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                },
            }
        }
    });
    rt
}

#[test]
fn a_hoarding_worker_cannot_stall_a_job_and_is_shown_suspect() {
    // Hold deadline: 2 × 1 s shard timeout + 3 heartbeats (600 ms).
    let master = Master::start(&["--heartbeat", "200ms"]);
    let _hoarder = fake_worker(&master.url, "hoarder", Answer::Never);
    master.wait_workers(1);
    let _real = master.worker(&["--threads", "2", "--name", "real"]);
    master.wait_workers(2);
    let args = ["noop", "--range", "0..2000", "--shard-size", "1", "--shard-timeout", "1s"];
    let id = master.submit(&args);
    let v = master.watch(&id);
    assert_eq!(v["state"], "succeeded", "{v}");
    assert_eq!(v["result"], 2000, "every index counted exactly once");
    let workers = master.workers();
    let hoarder = workers.iter().find(|w| w["name"] == "hoarder").expect("listed");
    let why = hoarder["suspect"].as_str().unwrap_or_default();
    assert!(why.starts_with("held shard "), "{hoarder}");
    assert!(hoarder["in_flight"].as_u64() == Some(0), "its shards were reclaimed: {hoarder}");
    let real = workers.iter().find(|w| w["name"] == "real").expect("listed");
    assert!(real["suspect"].is_null(), "{real}");
    let table = String::from_utf8_lossy(&master.cli(&["workers"]).stdout).to_string();
    assert!(table.contains("suspect: held shard"), "{table}");
}

#[test]
fn verify_catches_a_lying_worker_and_names_both_workers() {
    let master = Master::start(&[]);
    let _liar = fake_worker(&master.url, "liar", Answer::Zero);
    master.wait_workers(1);
    let _real = master.worker(&["--threads", "1", "--name", "honest"]);
    master.wait_workers(2);
    let id = master.submit(&["noop", "--range", "0..200", "--shard-size", "1", "--verify", "100"]);
    let v = master.watch(&id);
    assert_eq!(v["state"], "failed", "{v}");
    let error = v["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("verification failed: shard "), "{error}");
    assert!(error.contains("(liar)") && error.contains("(honest)"), "{error}");
}

#[test]
fn a_shard_that_fails_at_once_backs_off_between_retries() {
    let master = Master::start(&[]);
    let _w = master.worker(&["--threads", "1", "--allow-exec"]);
    master.wait_workers(1);
    let started = Instant::now();
    let cmd = "cmd=no-such-program-farm-hostile";
    let id = master.submit(&["exec", "--range", "0..1", "--param", cmd, "--retries", "5"]);
    let v = master.watch(&id);
    let took = started.elapsed();
    assert_eq!(v["state"], "failed", "{v}");
    let error = v["error"].as_str().unwrap_or_default();
    assert!(error.contains("(run 6)"), "five retries, then the job fails: {error}");
    assert_eq!(v["reruns"], 5, "{v}");
    // 100 + 200 + 400 + 800 + 1600 ms of backoff: a lower bound, whatever the load.
    assert!(took >= Duration::from_millis(3100), "no backoff: failed after {took:?}");
}
