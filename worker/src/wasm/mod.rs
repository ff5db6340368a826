//! The `wasm` kernel: runs a job's own WebAssembly module, sandboxed, on the pool threads.
//!
//! A job names its module by SHA-256 (`module` param); the session fetches the bytes from the
//! master once ([`crate::Registry::needs_module`]), and [`Runtime`] compiles them once per
//! worker with wasmtime (Cranelift) on its compile thread (`compile.rs`; the pool threads that
//! need a module wait with their shard's cancel flag and deadline), after checking what the
//! module declares against `farm_proto::wasm_limits`; it keeps the result in memory by hash
//! and, with a cache directory (`cache.rs`), on disk, so a restarted worker does not compile
//! again; both are bounded in bytes, least recently used out first. The ABI (`farm_proto::wasm`, `docs/wasm.md`): `farm_run(lo, hi) -> count`
//! and the `farm.param`, `farm.emit`, `farm.input`, `farm.fail` and `farm.samples` imports
//! (`linker.rs`).
//!
//! The sandbox: no WASI and no import but those five; memories and tables capped together
//! per instance ([`WasmConfig::max_memory`]), at most 8 of each; one epoch ticker thread per
//! worker (parked while no module runs) lets every running instance, its start function
//! included, check its shard's cancel flag and deadline each millisecond, so a cancel or
//! `--shard-timeout` stops even an infinite loop within a few milliseconds; a trap fails the
//! shard with the trap's message.

mod cache;
mod compile;
mod job;
mod linker;
mod runtime;
mod ticker;

pub use runtime::Runtime;

use crate::sdk::{Kernel, KernelDescriptor, KernelError, Params, Prepared};
use farm_proto::kernel::quote;
use farm_proto::wasm;
use std::path::PathBuf;
use std::sync::Arc;

/// Default cap on one instance's memories and tables.
pub const DEFAULT_MAX_MEMORY: usize = 256 << 20;
/// Default bound on the bytes of module sources and compiled code a worker keeps in memory.
pub const DEFAULT_MEMORY_BOUND: usize = 256 << 20;
/// Default bound on the bytes of compiled code in the cache directory.
pub const DEFAULT_DISK_BOUND: u64 = 1 << 30;

/// How a worker runs wasm modules: built from `farm worker --wasm-max-memory`,
/// `--wasm-cache`; `--no-wasm` leaves the kernel out.
#[derive(Debug, Clone)]
pub struct WasmConfig {
    /// Most bytes one instance's memories and tables may have together (a table element
    /// counts `farm_proto::wasm_limits::TABLE_ELEMENT_BYTES`); growing past it traps.
    pub max_memory: usize,
    /// Where compiled modules are kept across restarts (`None`: in memory only). Anyone who
    /// can write there can run native code as this worker: one owned by another user or
    /// writable by others is refused (created 0700 if missing).
    pub cache_dir: Option<PathBuf>,
    /// Most bytes of compiled code the cache directory may hold.
    pub disk_bound: u64,
    /// Most bytes of module sources and compiled code kept in memory (modules a job holds
    /// are kept whatever their size).
    pub memory_bound: usize,
    /// Run the next shard of a job on an instance an earlier shard of it used (on any thread),
    /// rather than on a new one: a module's globals and memory may then carry over between
    /// its shards. A failed shard's instance is never reused.
    pub reuse_instances: bool,
}

impl Default for WasmConfig {
    fn default() -> Self {
        WasmConfig {
            max_memory: DEFAULT_MAX_MEMORY,
            cache_dir: default_cache_dir(),
            disk_bound: DEFAULT_DISK_BOUND,
            memory_bound: DEFAULT_MEMORY_BOUND,
            reuse_instances: true,
        }
    }
}

/// `$XDG_CACHE_HOME/farm/wasm`, else `$HOME/.cache/farm/wasm`; `None` if neither is set.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("farm").join("wasm"))
}

/// The `wasm` kernel over a worker's [`Runtime`].
pub struct WasmKernel {
    runtime: Arc<Runtime>,
}

impl WasmKernel {
    /// The kernel for `runtime`.
    pub fn new(runtime: Arc<Runtime>) -> Self {
        WasmKernel { runtime }
    }
}

impl Kernel for WasmKernel {
    fn name(&self) -> &str {
        wasm::KIND
    }

    fn describe(&self) -> KernelDescriptor {
        wasm::descriptor()
    }

    fn prepare(&self, params: &Params) -> Result<Box<dyn Prepared>, KernelError> {
        let hash = params.text(wasm::MODULE_PARAM)?;
        if !wasm::is_sha256_hex(hash) {
            return Err(KernelError::BadParam(format!(
                "param module must be a SHA-256 (64 lowercase hex digits), got {}",
                quote(hash)
            )));
        }
        let slot = self
            .runtime
            .slot(hash)
            .ok_or_else(|| KernelError::BadParam(format!("module {hash} is not on this worker")))?;
        Ok(Box::new(job::WasmJob::new(self.runtime.clone(), slot, params.clone())))
    }
}

#[cfg(test)]
mod bound_tests;
#[cfg(test)]
mod tests;
