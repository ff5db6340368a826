//! End to end: a client that submits, then watches with shard results, gets every shard's
//! output exactly once, those accepted before the watch began (replayed from the master's
//! store) as well as the live ones, for counted and for list outputs.

use farm_client::{Client, JobEvent, JobState};
use farm_proto::{JobSource, JobSpec, Params};
use farm_tests::*;
use std::collections::BTreeMap;

/// A range job of one-index shards.
fn job(kind: &str, end: u64, params: &[&str]) -> JobSpec {
    let source = JobSource::Range { start: 0, end, shard_size: 1 };
    let params = Params::from_pairs(params).expect("params");
    JobSpec::new(kind, source, params, 0).expect("valid spec")
}

/// Submits `spec`, waits until `before` of its shards are done, then watches it to its end:
/// how many times each shard's output came.
async fn submit_then_watch(master: &Master, spec: JobSpec, before: u64) -> BTreeMap<u64, u32> {
    let mut client = Client::connect(&master.url).await.expect("client");
    let job = client.submit(spec).await.expect("submit").job;
    let id = job.to_string();
    tokio::task::block_in_place(|| master.wait_done(&id, before));
    let mut events = Box::pin(client.watch(job, true).await.expect("watch"));
    let mut seen = BTreeMap::new();
    while let Some(event) = tokio_stream::StreamExt::next(&mut events).await {
        match event.expect("event") {
            JobEvent::Shard { shard, .. } => *seen.entry(shard).or_default() += 1,
            JobEvent::Finished(status) => {
                assert_eq!(status.state, JobState::Succeeded, "{status:?}");
                let running = master.status(&id);
                assert!(running["done"].as_u64() >= Some(before), "{running}");
                return seen;
            }
            JobEvent::Progress(_) => {}
        }
    }
    panic!("the watch ended without the final status; saw {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_after_submit_replays_the_shards_done_before_it_then_the_live_ones() {
    let master = Master::start(&["--workers", "1", "--threads", "2", "--allow-exec"]);
    master.wait_workers(1);
    within(async {
        let every = |n: u64| (0..n).map(|s| (s, 1)).collect::<BTreeMap<u64, u32>>();
        // Counts: 40 sleeps of 30 ms, watched once 10 are done.
        let seen = submit_then_watch(&master, job("sleep", 40, &["ms=30"]), 10).await;
        assert_eq!(seen, every(40), "every shard once");
        // Lists: 30 program runs, watched once 10 are done.
        let cmd = "cmd=sh -c 'sleep 0.03; echo {}'";
        let seen = submit_then_watch(&master, job("exec", 30, &[cmd]), 10).await;
        assert_eq!(seen, every(30), "every shard once");
    })
    .await;
}
