//! A job's list result of any size (`Results`): its items in index order, from an offset, as
//! the master streams them in chunks, so a reader holds one chunk at a time.

use crate::{Client, Result};
use farm_proto::pb;
use futures::{Stream, StreamExt};

/// Consecutive items of a job's result list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultsChunk {
    /// The index of the first item, so a reader that lost the stream can resume there.
    pub offset: u64,
    /// Each item as JSON text (a string, a row, an exec run), in index order.
    pub items: Vec<String>,
}

impl Client {
    /// A succeeded list job's items from item `offset` on, chunk by chunk. Fails with
    /// `NotFound` for an unknown job and `FailedPrecondition` for one not succeeded or whose
    /// result is not a list (a count or an estimate is in its status).
    pub async fn results(
        &mut self,
        job: u64,
        offset: u64,
    ) -> Result<impl Stream<Item = Result<ResultsChunk>> + use<>> {
        self.results_with(job, offset, false).await
    }

    /// [`Client::results`]; with `partial`, also of a job that failed or was cancelled: the
    /// outputs of its shards that succeeded, an item `{"missing_shard": N}` in place of each
    /// shard without one.
    pub async fn results_with(
        &mut self,
        job: u64,
        offset: u64,
        partial: bool,
    ) -> Result<impl Stream<Item = Result<ResultsChunk>> + use<>> {
        let request = self.req(pb::ResultsRequest { job_id: job, offset, partial })?;
        let stream = self.farm.results(request).await?.into_inner();
        Ok(stream.map(|chunk| {
            let chunk = chunk?;
            Ok(ResultsChunk { offset: chunk.offset, items: chunk.items_json })
        }))
    }
}
