//! The kernels the cluster offers (`ListKinds`).

use crate::{Client, ClientError, Result};
use farm_proto::{pb, KindInfo};

impl Client {
    /// The kinds the cluster offers, as its workers describe them, in name order.
    pub async fn kinds(&mut self) -> Result<Vec<KindInfo>> {
        let kinds = self.farm.list_kinds(self.req(pb::ListKindsRequest {})?).await?.into_inner();
        kinds
            .kinds
            .into_iter()
            .map(|k| {
                KindInfo::try_from(k).map_err(|e| {
                    ClientError::Status(tonic::Status::internal(format!(
                        "bad kind from master: {e}"
                    )))
                })
            })
            .collect()
    }
}
