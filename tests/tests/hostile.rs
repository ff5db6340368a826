//! Workers that hoard, lie or fail fast, against a real master: a fake worker built on the
//! generated client claims 4,096 threads and heartbeats but never answers (or answers wrong),
//! next to a real `farm worker`; and a shard that fails at once backs off between its retries.

use farm_proto::pb::{self, master_message::Msg, worker_message};
use farm_tests::*;
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;

/// How a fake worker answers its shards.
#[derive(Clone, Copy)]
enum Answer {
    /// It never does (a hoarder).
    Never,
    /// Every shard counts 0 (a liar, for noop).
    Zero,
}

/// Opens a worker session as `name`, registered with `threads` threads and `kernels`: the way
/// to send it messages, and its stream from the master.
async fn session(
    url: &str,
    name: &str,
    threads: u32,
    kernels: &[farm_proto::KernelDescriptor],
) -> FakeSession {
    fake_session(url, registration(name, "fake", threads, kernels)).await.expect("session")
}

/// A runtime for a fake worker's tasks.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Starts a fake worker named `name` in its own runtime: it registers with 4,096 threads and
/// the built-in kernels, heartbeats every 100 ms, and answers as `answer` says. It stops when
/// the returned runtime drops.
fn fake_worker(url: &str, name: &str, answer: Answer) -> tokio::runtime::Runtime {
    let rt = runtime();
    let (url, name) = (url.to_string(), name.to_string());
    rt.spawn(async move {
        let kernels = farm_worker::Registry::builtin(false).descriptors().to_vec();
        let (tx, mut inbound) = session(&url, &name, 4096, &kernels).await;
        let send = |msg| pb::WorkerMessage { msg: Some(msg) };
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
                                deterministic: false,
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

/// A valid farm module of `pad` bytes and a few more: the smallest `farm_run`, padded with a
/// custom section.
fn padded_module(pad: usize) -> Vec<u8> {
    let wat = r#"(module (func (export "farm_run") (param i64 i64) (result i64) (i64.const 1)))"#;
    let mut wasm = wat::parse_str(wat).expect("wat");
    let leb = |wasm: &mut Vec<u8>, mut n: usize| loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        wasm.push(if n == 0 { byte } else { byte | 0x80 });
        if n == 0 {
            break;
        }
    };
    wasm.push(0);
    leb(&mut wasm, 1 + 3 + pad);
    leb(&mut wasm, 3);
    wasm.extend_from_slice(b"pad");
    wasm.resize(wasm.len() + pad, 0);
    wasm
}

#[test]
fn a_worker_that_floods_module_fetches_without_reading_is_dropped_and_the_master_stays_small() {
    let master = Master::start(&[]);
    let _real = master.worker(&["--threads", "1", "--name", "real"]);
    let rt = runtime();
    let url = master.url.clone();
    let module = rt.block_on(async {
        let mut client = farm_client::Client::connect(&url).await.expect("client");
        client.put_module(padded_module(1 << 20)).await.expect("module stored").sha256
    });
    let mut registry = farm_worker::Registry::builtin(false);
    let config = farm_worker::WasmConfig { cache_dir: None, ..Default::default() };
    registry.enable_wasm(config).expect("wasm");
    let (tx, inbound) = rt.block_on(session(&url, "flooder", 1, &registry.descriptors()));
    master.wait_workers(2);
    let pid = master.proc.pid();
    let peak = Peak::start(pid);
    // 1,000 asks for the 1 MiB module, its stream never read; heartbeats go on, so only the
    // flood can get it dropped.
    let flood = rt.spawn(async move {
        let msg = |msg| pb::WorkerMessage { msg: Some(msg) };
        let fetch = pb::FetchModule { sha256: module };
        for _ in 0..1000 {
            let ask = msg(worker_message::Msg::FetchModule(fetch.clone()));
            if tx.send_timeout(ask, Duration::from_secs(1)).await.is_err() {
                break;
            }
        }
        let mut beat = tokio::time::interval(Duration::from_millis(100));
        loop {
            beat.tick().await;
            let _ = tx.try_send(msg(worker_message::Msg::Heartbeat(pb::Heartbeat {})));
        }
    });
    let why = master.proc.wait_for_log(WAIT, "of the flooder dropped", |l| {
        l.contains("worker reads too slowly, dropping its session")
    });
    assert!(why.contains("queued_bytes="), "{why}");
    let gone = |ws: &[serde_json::Value]| ws.iter().all(|w| w["name"] != "flooder");
    master.wait_workers_where("the flooder gone", gone);
    let started = Instant::now();
    let v = master.submit_wait(&["noop", "--range", "0..10", "--shard-size", "1"]);
    assert_eq!(v["state"], "succeeded", "{v}");
    let (took, peak_mib) = (started.elapsed(), peak.stop());
    assert!(peak_mib < 100, "the master grew to {peak_mib} MiB");
    eprintln!("master peak {peak_mib} MiB; sanity job in {took:?}");
    flood.abort();
    drop(inbound);
}
