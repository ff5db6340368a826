//! Wasm modules: uploaded once, content-addressed by SHA-256 (`PutModule`, `HasModule`), and
//! `wasm` jobs that run them.

use crate::{Client, Result};
use farm_proto::{pb, wasm, JobSpec, OutputShape, Submitted};
use sha2::{Digest, Sha256};

/// A module as the master holds it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModuleRef {
    /// SHA-256 of its bytes, 64 lowercase hex digits: the `module` param of its jobs.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// How its jobs' outputs are reduced (counts, or lines for a module that emits).
    pub output: OutputShape,
}

/// The SHA-256 of a module's bytes as the ABI writes it (64 lowercase hex digits).
pub fn module_hash(wasm: &[u8]) -> String {
    Sha256::digest(wasm).iter().map(|b| format!("{b:02x}")).collect()
}

impl Client {
    /// Stores a module on the master (idempotent) after its checks: InvalidArgument for bytes
    /// that are not a module of the farm ABI (naming a forbidden import), ResourceExhausted
    /// over the size limit.
    pub async fn put_module(&mut self, wasm: Vec<u8>) -> Result<ModuleRef> {
        let info = self.farm.put_module(self.req(pb::PutModuleRequest { wasm })?).await?;
        let info = info.into_inner();
        let output = OutputShape::from_wire(info.output, 0.0).unwrap_or(OutputShape::Any);
        Ok(ModuleRef { sha256: info.sha256, size: info.size, output })
    }

    /// Whether the master holds the module with this SHA-256.
    pub async fn has_module(&mut self, sha256: &str) -> Result<bool> {
        let request = self.req(pb::HasModuleRequest { sha256: sha256.to_string() })?;
        Ok(self.farm.has_module(request).await?.into_inner().present)
    }

    /// Uploads the module unless the master already holds it; returns its hash and whether it
    /// was uploaded. A second job with the same module uploads nothing.
    pub async fn upload_module(&mut self, wasm: &[u8]) -> Result<(String, bool)> {
        let hash = module_hash(wasm);
        if self.has_module(&hash).await? {
            return Ok((hash, false));
        }
        let stored = self.put_module(wasm.to_vec()).await?;
        Ok((stored.sha256, true))
    }

    /// Submits `spec` as a `wasm` job running `wasm` (its kind and `module` param are set
    /// here), uploading the module first if the master lacks it.
    pub async fn submit_wasm(&mut self, wasm: &[u8], mut spec: JobSpec) -> Result<Submitted> {
        let (hash, _) = self.upload_module(wasm).await?;
        spec.kind = wasm::KIND.to_string();
        spec.params.0.insert(wasm::MODULE_PARAM.to_string(), hash);
        self.submit(spec).await
    }
}
