//! A job's per-shard logs (`Logs`): each kept shard's last run and what it logged, in shard
//! order, as the master streams them in chunks, so a reader holds one chunk at a time.

use crate::{Client, Result};
use farm_proto::{pb, LogQuery, ShardLog};
use futures::{Stream, StreamExt};

impl Client {
    /// Job `job`'s logs that `query` asks for (a shard, failed runs only), chunk by chunk, in
    /// shard order. Fails with `NotFound` for an unknown job.
    pub async fn logs(
        &mut self,
        job: u64,
        query: LogQuery,
    ) -> Result<impl Stream<Item = Result<Vec<ShardLog>>> + use<>> {
        let request = self.req(pb::LogsRequest {
            job_id: job,
            shard: query.shard,
            failed_only: query.failed_only,
        })?;
        let stream = self.farm.logs(request).await?.into_inner();
        Ok(stream.map(|chunk| Ok(chunk?.logs.into_iter().map(ShardLog::from).collect())))
    }
}
