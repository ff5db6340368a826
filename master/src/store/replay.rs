//! A watcher's replay: the shard outputs of a job accepted before the watch began, read from
//! a snapshot the writer takes exactly where the watch subscribed (`JournalTx::snapshot`),
//! so the replay and the live results that follow it hold every shard once, with no gap.
//! Reading runs on a blocking thread, never the core's task.

use super::{fail, StoreError, LIST_OUTPUTS, OUTCOMES};
use crate::core::JobId;
use farm_proto::pb;
use prost::Message;
use redb::ReadTransaction;

/// A read of the store as it was when a watch subscribed.
pub struct Snapshot(pub(super) ReadTransaction);

impl Snapshot {
    /// Sends each shard output of `job` the snapshot holds to `send` (false: the reader is
    /// gone, stop): counts and fractions of a job still going, and list outputs. Returns how
    /// many were sent. Blocking: call it on a blocking thread.
    pub fn shard_outputs(
        &self,
        job: JobId,
        mut send: impl FnMut(u64, pb::ShardOutput) -> bool,
    ) -> Result<u64, StoreError> {
        let mut sent = 0;
        let outcomes = self.0.open_table(OUTCOMES).map_err(|e| fail(e.into()))?;
        for row in outcomes.range((job, 0)..=(job, u64::MAX)).map_err(|e| fail(e.into()))? {
            let (key, bytes) = row.map_err(|e| fail(e.into()))?;
            let first = key.value().1;
            let bad = |e: String| {
                StoreError::Corrupt(format!("outcomes of job {job} from shard {first}: {e}"))
            };
            let run = pb::JournalOutcomes::decode(bytes.value()).map_err(|e| bad(e.to_string()))?;
            let mut shard = first;
            for (delta, output) in run.shard_deltas.into_iter().zip(run.outputs) {
                shard = shard.wrapping_add(delta as u64);
                if !send(shard, output) {
                    return Ok(sent);
                }
                sent += 1;
            }
        }
        let lists = self.0.open_table(LIST_OUTPUTS).map_err(|e| fail(e.into()))?;
        for row in lists.range((job, 0)..=(job, u64::MAX)).map_err(|e| fail(e.into()))? {
            let (key, value) = row.map_err(|e| fail(e.into()))?;
            let shard = key.value().1;
            let output = pb::ShardOutput::decode(value.value())
                .map_err(|e| StoreError::Corrupt(format!("job {job} shard {shard}: {e}")))?;
            if !send(shard, output) {
                return Ok(sent);
            }
            sent += 1;
        }
        Ok(sent)
    }
}
