//! Modules: uploaded once, content-addressed by SHA-256 (`PutModule`, `HasModule`): wasm
//! modules and the `wasm` jobs that run them, and pickled functions for `python` jobs
//! ([`Client::put_module_as`]).

use crate::{Client, Result};
use farm_proto::{pb, wasm, JobSpec, ModuleFormat, OutputShape, Submitted};
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
    /// What its bytes are.
    pub format: ModuleFormat,
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
        self.put_module_as(wasm, ModuleFormat::Wasm).await
    }

    /// Stores a module of `format` on the master (idempotent): a wasm module after its checks
    /// (see [`Client::put_module`]), or a pickle as opaque bytes. ResourceExhausted over the
    /// size limit or when the module store is full.
    pub async fn put_module_as(
        &mut self,
        bytes: Vec<u8>,
        format: ModuleFormat,
    ) -> Result<ModuleRef> {
        let request = pb::PutModuleRequest { wasm: bytes, format: format.into() };
        let info = self.farm.put_module(self.req(request)?).await?.into_inner();
        let output = OutputShape::from_wire(info.output, 0.0).unwrap_or(OutputShape::Any);
        let format = ModuleFormat::try_from(info.format)?;
        Ok(ModuleRef { sha256: info.sha256, size: info.size, output, format })
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
