//! Reading a job's per-shard logs back from the store: its `logs` rows in shard order, those a
//! [`LogQuery`] asks for, in chunks well under the message limit. Runs on a blocking thread
//! (never the core's task) and hands each chunk to a callback that may block, so a slow reader
//! holds the read back instead of filling memory.

use super::{fail, Store, StoreError, LOGS};
use crate::core::JobId;
use farm_proto::{pb, LogQuery, ShardLog};
use prost::Message;
use redb::ReadableDatabase;

/// A chunk of logs is sent once its records pass this many bytes.
pub const LOG_CHUNK_BYTES: usize = 1 << 20;

impl Store {
    /// Sends job `job`'s logs that `query` asks for, in shard order, in chunks, to `send`
    /// (false: the reader is gone, stop). Returns the records sent. Blocking: call it on a
    /// blocking thread.
    pub fn read_logs(
        &self,
        job: JobId,
        query: LogQuery,
        mut send: impl FnMut(Vec<ShardLog>) -> bool,
    ) -> Result<u64, StoreError> {
        let read = self.db().begin_read().map_err(|e| fail(e.into()))?;
        let rows = read.open_table(LOGS).map_err(|e| fail(e.into()))?;
        let range = match query.shard {
            Some(shard) => (job, shard)..=(job, shard),
            None => (job, 0)..=(job, u64::MAX),
        };
        let (mut chunk, mut bytes, mut sent) = (Vec::new(), 0, 0);
        for row in rows.range(range).map_err(|e| fail(e.into()))? {
            let (key, value) = row.map_err(|e| fail(e.into()))?;
            let shard = key.value().1;
            let log = pb::ShardLog::decode(value.value())
                .map_err(|e| StoreError::Corrupt(format!("log of job {job} shard {shard}: {e}")))?;
            let log = ShardLog::from(log);
            if !query.wants(&log) {
                continue;
            }
            bytes += log.bytes();
            chunk.push(log);
            if bytes >= LOG_CHUNK_BYTES {
                sent += chunk.len() as u64;
                if !send(std::mem::take(&mut chunk)) {
                    return Ok(sent);
                }
                bytes = 0;
            }
        }
        if !chunk.is_empty() {
            sent += chunk.len() as u64;
            send(chunk);
        }
        Ok(sent)
    }
}
