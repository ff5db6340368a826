//! Per-shard logs as the master serves them: one query that the gRPC `Logs` handler and the
//! HTTP layer both call. It checks the job exists, waits until what the core journaled before
//! is committed (so the logs of a job that just ended are there), then reads the `logs` table
//! on a blocking thread into a bounded channel of chunks: a slow reader holds the read back.

use crate::actor::CoreHandle;
use crate::core::{CoreError, JobId};
use crate::error::Result;
use crate::store::Store;
use farm_proto::{LogQuery, ShardLog};
use tokio::sync::mpsc;

/// Chunks read ahead of a slow reader.
const AHEAD: usize = 4;

/// Job `job`'s logs that `query` asks for, in shard order, as chunks on a channel. Errors: no such
/// job, the master is stopping, or the store cannot be read.
pub(crate) async fn shard_logs(
    core: &CoreHandle,
    store: &Store,
    job: JobId,
    query: LogQuery,
) -> Result<mpsc::Receiver<Result<Vec<ShardLog>>>> {
    if core.get(job).await?.is_none() {
        return Err(CoreError::NoSuchJob(job).into());
    }
    // The reply above left the core's task before that batch's journal ops went to the
    // writer; a second round trip comes after they went, so the barrier is behind them.
    core.get(job).await?;
    store.committed().await?;
    let (tx, rx) = mpsc::channel(AHEAD);
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let read = store.read_logs(job, query, |chunk| tx.blocking_send(Ok(chunk)).is_ok());
        if let Err(e) = read {
            let _ = tx.blocking_send(Err(e.into()));
        }
    });
    Ok(rx)
}
