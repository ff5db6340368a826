//! The driver end to end over an in-memory link: the test plays the master. Timeouts run under
//! tokio's paused clock; those tests use a pool without threads, so that no real thread races
//! the virtual clock (a shard handed to it simply never comes back).

use super::{outgoing, run_session, End, Link};
use crate::pool::Pool;
use crate::registry::Registry;
use crate::WorkerConfig;
use farm_proto::pb;
use farm_proto::session::{Assign, JobDef, ShardOutcome, ShardTask, ToMaster, ToWorker, Welcome};
use farm_proto::Params;
use std::future::Future;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout, Instant};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

const DRAIN: Duration = Duration::from_secs(2);
/// Bounds every wait (virtual time under a paused clock).
const PATIENCE: Duration = Duration::from_secs(60);

/// The master's end of an in-memory session.
struct Master {
    to_worker: mpsc::Sender<Result<pb::MasterMessage, Status>>,
    from_worker: mpsc::Receiver<pb::WorkerMessage>,
}

impl Master {
    async fn send(&self, msg: ToWorker) {
        self.to_worker.send(Ok(msg.into())).await.unwrap();
    }

    /// The worker's next message, or `None` once it has closed its side.
    async fn recv(&mut self) -> Option<ToMaster> {
        let msg = timeout(PATIENCE, self.from_worker.recv()).await.expect("a message in time");
        msg.map(|m| ToMaster::try_from(m).unwrap())
    }

    /// The worker's next message that is not a heartbeat.
    async fn recv_busy(&mut self) -> Option<ToMaster> {
        loop {
            match self.recv().await {
                Some(ToMaster::Heartbeat) => continue,
                other => return other,
            }
        }
    }
}

/// A shutdown future for the session and the switch that fires it.
fn stop_switch() -> (oneshot::Sender<()>, impl Future<Output = ()>) {
    let (stop, stopped) = oneshot::channel::<()>();
    (stop, async {
        let _ = stopped.await;
    })
}

fn link() -> (Link, Master) {
    let (to_worker, inbound) = mpsc::channel(64);
    let (tx, from_worker) = outgoing();
    let link = Link { inbound: Box::pin(ReceiverStream::new(inbound)), tx, peer: "test".into() };
    (link, Master { to_worker, from_worker })
}

fn welcome(heartbeat: Duration) -> ToWorker {
    ToWorker::Welcome(Welcome { worker_id: 1, heartbeat })
}

fn job(job_id: u64, kind: &str, params: &[&str], shards: u64) -> ToWorker {
    let def = JobDef {
        job_id,
        kind: kind.into(),
        params: Params::from_pairs(params).unwrap(),
        shard_timeout: None,
        record_runs: false,
        priority: 0,
    };
    let tasks =
        (0..shards).map(|shard| ShardTask { job_id, shard, lo: shard, hi: shard + 1, input: None });
    ToWorker::Assign(Assign { jobs: vec![def], tasks: tasks.collect() })
}

/// Runs a session over `link` with a pool of `threads` threads until it ends.
async fn session<F: Future<Output = ()>>(link: Link, threads: usize, shutdown: F) -> (bool, End) {
    let mut config = WorkerConfig::new("http://unused");
    config.threads = threads.max(1);
    config.drain_timeout = DRAIN;
    let pool = Pool::new(threads).unwrap();
    let registry = Registry::builtin(false);
    tokio::pin!(shutdown);
    let run = run_session(link, &config, &registry, &pool, &mut shutdown);
    timeout(PATIENCE * 2, run).await.expect("the session ends in time")
}

#[tokio::test(start_paused = true)]
async fn a_master_that_never_welcomes_is_given_up_on_after_ten_seconds() {
    let (link, _master) = link();
    let start = Instant::now();
    let (welcomed, end) = session(link, 0, std::future::pending()).await;
    assert!(!welcomed);
    assert_eq!(end, End::Lost("no welcome from the master in time".into()));
    assert_eq!(start.elapsed(), Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn a_refusal_before_the_welcome_ends_the_worker() {
    let (link, master) = link();
    let refusal = Status::failed_precondition("worker speaks protocol version 1");
    master.to_worker.send(Err(refusal)).await.unwrap();
    let (welcomed, end) = session(link, 0, std::future::pending()).await;
    assert!(!welcomed);
    assert_eq!(end, End::Rejected("worker speaks protocol version 1".into()));
}

#[tokio::test(start_paused = true)]
async fn a_silent_master_is_lost_after_three_heartbeat_periods() {
    let (link, mut master) = link();
    let start = Instant::now();
    master.send(welcome(Duration::from_secs(1))).await;
    let (welcomed, end) = session(link, 0, std::future::pending()).await;
    assert!(welcomed);
    assert_eq!(end, End::Lost("no heartbeat from the master".into()));
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    // The worker sent its own heartbeat each period meanwhile.
    assert_eq!(master.recv().await, Some(ToMaster::Heartbeat));
    assert_eq!(master.recv().await, Some(ToMaster::Heartbeat));
    assert_eq!(master.recv().await, None);
}

#[tokio::test(start_paused = true)]
async fn a_drain_whose_shards_never_finish_gives_up_and_closes() {
    let (link, mut master) = link();
    let (stop, shutdown) = stop_switch();
    let script = async move {
        master.send(welcome(Duration::from_secs(60))).await;
        master.send(job(1, "noop", &[], 2)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.send(()).unwrap();
        let draining_at = Instant::now();
        assert_eq!(master.recv_busy().await, Some(ToMaster::Draining));
        // The shards are cancelled at the drain timeout but never come back: the worker
        // gives up on them a close timeout later and closes its side.
        assert_eq!(master.recv_busy().await, None);
        assert_eq!(draining_at.elapsed(), DRAIN + super::machine::CLOSE_TIMEOUT);
        drop(master);
    };
    let ((welcomed, end), ()) = tokio::join!(session(link, 0, shutdown), script);
    assert!(welcomed);
    assert_eq!(end, End::Shutdown);
}

#[tokio::test]
async fn shards_run_on_the_pool_a_refused_job_is_refused_once_and_a_drain_closes() {
    let (link, mut master) = link();
    let (stop, shutdown) = stop_switch();
    let script = async move {
        master.send(welcome(Duration::from_secs(60))).await;
        master.send(job(1, "noop", &[], 3)).await;
        master.send(job(2, "sleep", &["bogus=1"], 2)).await;
        let mut done = Vec::new();
        let mut refusals = Vec::new();
        while done.len() < 3 || refusals.is_empty() {
            match master.recv_busy().await {
                Some(ToMaster::Results(r)) => done.extend(r.done),
                Some(ToMaster::Refused { job_id, .. }) => refusals.push(job_id),
                other => panic!("unexpected {other:?}"),
            }
        }
        done.sort_by_key(|d| d.1);
        let expected: Vec<_> =
            (0..3).map(|s| (1, s, ShardOutcome::Done(farm_proto::Output::Count(1)))).collect();
        assert_eq!(done, expected);
        assert_eq!(refusals, [2]);
        stop.send(()).unwrap();
        assert_eq!(master.recv_busy().await, Some(ToMaster::Draining));
        assert_eq!(master.recv_busy().await, None);
        drop(master);
    };
    let ((welcomed, end), ()) = tokio::join!(session(link, 2, shutdown), script);
    assert!(welcomed);
    assert_eq!(end, End::Shutdown);
}
