//! The `Watch` stream: a job's subscription turned into events, after the replay of the shard
//! results accepted before it began, if asked.

use crate::actor::Subscription;
use crate::core::{JobId, JobView};
use crate::store::{Snapshot, StoreError};
use farm_proto::pb::{self, job_event::Event};
use farm_proto::{JobEvent, Progress};
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use super::{job_status, status as to_status};
use crate::error::Error;

/// Turns a subscription into the events of a `Watch` stream: progress while the job runs, shard
/// results if asked, and the final status last.
pub(super) async fn forward_events(
    sub: Subscription,
    tx: mpsc::Sender<Result<pb::JobEvent, Status>>,
) {
    let Subscription { mut status, mut shards, overflowed, replay } = sub;
    if let Some(snapshot) = replay {
        let job = status.borrow().id;
        if !send_replay(snapshot, job, &tx).await {
            return;
        }
    }
    let fell_behind = || Err(to_status(Error::FellBehind));
    let event = |e: Event| Ok(pb::JobEvent { event: Some(e) });
    let progress = |v: &JobView| {
        let waiting = v.waiting.clone();
        let p = Progress { done: v.done, total: v.total, in_flight: v.in_flight, waiting };
        Ok(JobEvent::Progress(p).into())
    };
    let first = status.borrow_and_update().clone();
    if !first.state.is_final() && tx.send(progress(&first)).await.is_err() {
        return;
    }
    loop {
        let current = status.borrow().clone();
        if current.state.is_final() {
            // Every shard result was queued before the final status: pass them on first.
            if let Some(rx) = shards.as_mut() {
                while let Ok((shard, output)) = rx.try_recv() {
                    let result = pb::ShardResult { shard, output: Some(output) };
                    if tx.send(event(Event::Shard(result))).await.is_err() {
                        return;
                    }
                }
            }
            let last = if overflowed.load(std::sync::atomic::Ordering::Relaxed) {
                fell_behind()
            } else {
                Ok(JobEvent::Finished(job_status(current)).into())
            };
            let _ = tx.send(last).await;
            return;
        }
        tokio::select! {
            biased;
            shard = async { shards.as_mut()?.recv().await }, if shards.is_some() => match shard {
                Some((shard, output)) => {
                    let result = pb::ShardResult { shard, output: Some(output) };
                    if tx.send(event(Event::Shard(result))).await.is_err() {
                        return;
                    }
                }
                None if status.borrow().state.is_final() => shards = None,
                None => {
                    let _ = tx.send(fell_behind()).await;
                    return;
                }
            },
            changed = status.changed() => {
                if changed.is_ok() {
                    let v = status.borrow_and_update().clone();
                    if !v.state.is_final() && tx.send(progress(&v)).await.is_err() {
                        return;
                    }
                } else if !status.borrow().state.is_final() {
                    let _ = tx.send(Err(to_status(Error::ShuttingDown))).await;
                    return;
                }
            }
        }
    }
}

/// Sends the shard results of `job` the snapshot holds (those accepted before the watch
/// began), read on a blocking thread whose sends wait while the stream is full. False if the
/// stream ended: the watcher is gone, or the replay failed (the watcher was told why).
async fn send_replay(
    snapshot: oneshot::Receiver<Result<Snapshot, StoreError>>,
    job: JobId,
    tx: &mpsc::Sender<Result<pb::JobEvent, Status>>,
) -> bool {
    let failed =
        |e: String| Err(to_status(Error::Internal(format!("cannot replay shard results: {e}"))));
    let snapshot = match snapshot.await {
        Ok(Ok(snapshot)) => snapshot,
        Ok(Err(e)) => {
            let _ = tx.send(failed(e.to_string())).await;
            return false;
        }
        Err(_) => {
            let _ = tx.send(Err(to_status(Error::ShuttingDown))).await;
            return false;
        }
    };
    let out = tx.clone();
    let read = tokio::task::spawn_blocking(move || {
        snapshot.shard_outputs(job, |shard, output| {
            let result = pb::ShardResult { shard, output: Some(output) };
            let event = pb::JobEvent { event: Some(Event::Shard(result)) };
            out.blocking_send(Ok(event)).is_ok()
        })
    });
    match read.await {
        Ok(Ok(_)) => !tx.is_closed(),
        Ok(Err(e)) => {
            let _ = tx.send(failed(e.to_string())).await;
            false
        }
        Err(e) => {
            let _ = tx.send(failed(e.to_string())).await;
            false
        }
    }
}
