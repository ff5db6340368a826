//! Allocation queues (`AllocAdd`, `AllocList`, `AllocRemove`): the master submits worker
//! allocations to a batch scheduler while shards wait.

use crate::{Client, Result};
use farm_proto::{pb, AllocQueueInfo, AllocQueueSpec};

impl Client {
    /// Registers an allocation queue; returns it as the master named and holds it.
    pub async fn alloc_add(&mut self, spec: AllocQueueSpec) -> Result<AllocQueueInfo> {
        let req = self.req(pb::AllocAddRequest { spec: Some(spec.into()) })?;
        Ok(self.farm.alloc_add(req).await?.into_inner().try_into()?)
    }

    /// Every allocation queue and its allocations.
    pub async fn alloc_list(&mut self) -> Result<Vec<AllocQueueInfo>> {
        let list = self.farm.alloc_list(self.req(pb::AllocListRequest {})?).await?.into_inner();
        Ok(list.queues.into_iter().map(TryInto::try_into).collect::<std::result::Result<_, _>>()?)
    }

    /// Stops a queue: its running allocations drain, or are cancelled if `now`.
    pub async fn alloc_remove(&mut self, name: &str, now: bool) -> Result<AllocQueueInfo> {
        let req = self.req(pb::AllocRemoveRequest { name: name.into(), now })?;
        Ok(self.farm.alloc_remove(req).await?.into_inner().try_into()?)
    }
}
