//! The core's task under paused time: heartbeats, lost workers and shutdown, with channels
//! standing in for worker sessions.

use super::*;
use crate::core::CoreConfig;
use crate::outgoing::{self, WorkerRx};
use farm_proto::pb::master_message::Msg;
use farm_proto::{JobSource, Params};
use futures::{FutureExt, StreamExt};
use std::future::Future;

const HEARTBEAT: Duration = Duration::from_secs(1);
const WAIT: Duration = Duration::from_secs(60);

type Inbox = WorkerRx;

fn start() -> (CoreHandle, Tasks) {
    let tasks = Tasks::default();
    let config = CoreConfig::default().with_heartbeat(HEARTBEAT);
    let noop = KernelDescriptor::new("noop", farm_proto::OutputShape::Count, "nothing");
    let journal = crate::store::JournalTx::null();
    let metrics = Arc::new(crate::metrics::Metrics::new(crate::metrics::commit_histogram()));
    (spawn(Core::new(config), journal, HEARTBEAT, vec![noop], tasks.clone(), metrics), tasks)
}

async fn join(core: &CoreHandle) -> (WorkerId, LastHeard, Inbox) {
    join_bounded(core, outgoing::MIN_QUEUE_BYTES).await
}

/// A worker whose queue holds at most `bound` bytes.
async fn join_bounded(core: &CoreHandle, bound: usize) -> (WorkerId, LastHeard, Inbox) {
    let (tx, rx) = outgoing::channel(bound, Default::default());
    let spec = WorkerSpec { threads: 1, kinds: vec!["noop".into()], ..Default::default() };
    let noop = KernelDescriptor::new("noop", farm_proto::OutputShape::Count, "nothing");
    let (id, heard) = core.join(spec, vec![noop], tx).await.expect("join");
    (id, heard, rx)
}

async fn submit(core: &CoreHandle, shards: u64) -> JobId {
    let source = JobSource::Range { start: 0, end: shards, shard_size: 1 };
    let spec = JobSpec::new("noop", source, Params::default(), 0).expect("spec");
    core.submit(spec, Owner::anonymous()).await.expect("submit").0
}

/// Keeps stamping `heard` every half period, as a live worker's reader would.
fn keep_alive(tasks: &Tasks, heard: LastHeard) {
    let stop = tasks.clone();
    tasks.spawn("keep alive", async move {
        loop {
            tokio::select! {
                _ = stop.stopped() => return,
                _ = tokio::time::sleep(HEARTBEAT / 2) => heard.stamp(),
            }
        }
    });
}

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The next message that is not a heartbeat: `Ok` a message, `Err` the session's end.
async fn next(inbox: &mut Inbox) -> Result<Msg, tonic::Status> {
    loop {
        match within("a message", inbox.next()).await.expect("session open") {
            Ok(pb::MasterMessage { msg: Some(Msg::Heartbeat(_)) }) => continue,
            Ok(pb::MasterMessage { msg: Some(msg) }) => return Ok(msg),
            Ok(pb::MasterMessage { msg: None }) => panic!("empty message"),
            Err(status) => return Err(status),
        }
    }
}

async fn assigned(inbox: &mut Inbox) -> Vec<u64> {
    match next(inbox).await {
        Ok(Msg::Assign(batch)) => batch.tasks.iter().map(|t| t.shard).collect(),
        other => panic!("expected an assignment, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_worker_is_lost_after_two_and_a_half_periods_and_its_shards_move() {
    let (core, tasks) = start();
    let (a, _silent, mut inbox_a) = join(&core).await;
    let joined = Instant::now();
    assert!(matches!(next(&mut inbox_a).await, Ok(Msg::Welcome(_))));
    submit(&core, 2).await;
    assert_eq!(assigned(&mut inbox_a).await, vec![0, 1]);
    let (b, heard_b, mut inbox_b) = join(&core).await;
    keep_alive(&tasks, heard_b);
    assert!(matches!(next(&mut inbox_b).await, Ok(Msg::Welcome(_))));

    let lost = next(&mut inbox_a).await.expect_err("a is declared lost");
    assert_eq!(lost.code(), tonic::Code::Unavailable);
    let after = joined.elapsed();
    assert!(after > HEARTBEAT * 5 / 2 && after <= HEARTBEAT * 3, "lost after {after:?}");
    assert_eq!(assigned(&mut inbox_b).await, vec![0, 1], "a's shards go to b");
    let ids: Vec<WorkerId> = core.workers().await.expect("workers").iter().map(|w| w.id).collect();
    assert_eq!(ids, vec![b]);
    assert_ne!(a, b);
    assert!(tasks.shutdown(Duration::from_secs(1)).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_worker_that_keeps_heartbeating_stays() {
    let (core, tasks) = start();
    let (w, heard, mut inbox) = join(&core).await;
    keep_alive(&tasks, heard);
    assert!(matches!(next(&mut inbox).await, Ok(Msg::Welcome(_))));
    tokio::time::sleep(HEARTBEAT * 10).await;
    let ids: Vec<WorkerId> = core.workers().await.expect("workers").iter().map(|w| w.id).collect();
    assert_eq!(ids, vec![w]);
    // Only heartbeats came meanwhile: the session is still open.
    while let Some(Some(msg)) = inbox.next().now_or_never() {
        assert!(matches!(msg, Ok(pb::MasterMessage { msg: Some(Msg::Heartbeat(_)) })), "{msg:?}");
    }
    assert!(tasks.shutdown(Duration::from_secs(1)).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn shutdown_ends_every_session_and_stops_the_core_task() {
    let (core, tasks) = start();
    let (_, _, mut inbox) = join(&core).await;
    assert!(matches!(next(&mut inbox).await, Ok(Msg::Welcome(_))));
    assert!(tasks.shutdown(Duration::from_secs(1)).await.is_empty());
    let ended = next(&mut inbox).await.expect_err("session ended");
    assert_eq!(ended.code(), tonic::Code::Unavailable);
    assert!(inbox.next().await.is_none(), "the core's task dropped the session");
    let refused = core.workers().await.expect_err("the core is gone");
    assert_eq!(refused, Error::ShuttingDown);
}

#[tokio::test(start_paused = true)]
async fn a_worker_that_does_not_read_is_dropped_and_its_shards_move() {
    let (core, tasks) = start();
    // Room for nothing beyond the welcome, which this worker never reads.
    let (slow, heard_slow, mut inbox_slow) = join_bounded(&core, 0).await;
    keep_alive(&tasks, heard_slow);
    submit(&core, 1).await;
    let (b, heard_b, mut inbox_b) = join(&core).await;
    keep_alive(&tasks, heard_b);
    assert!(matches!(next(&mut inbox_b).await, Ok(Msg::Welcome(_))));
    // Its assignment (or a heartbeat) finds the queue over the bound: the session is dropped,
    // its queue emptied, and its shard goes to b, while it still heartbeats.
    assert_eq!(assigned(&mut inbox_b).await, vec![0]);
    let ids: Vec<WorkerId> = core.workers().await.expect("workers").iter().map(|w| w.id).collect();
    assert_eq!(ids, vec![b]);
    let ended = next(&mut inbox_slow).await.expect_err("its stream fails");
    assert_eq!(ended.code(), tonic::Code::Unavailable);
    assert_ne!(slow, b);
    assert!(tasks.shutdown(Duration::from_secs(1)).await.is_empty());
}
