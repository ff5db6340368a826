//! The worker's wasm flags (`--no-wasm`, `--wasm-max-memory`, `--wasm-cache`,
//! `--wasm-cache-mib`), flattened into
//! `WorkerArgs`, with their conversion to the runtime's config.

use clap::Args;
use std::path::PathBuf;

/// `farm worker`'s wasm flags.
#[derive(Debug, Clone, Args)]
pub struct WasmWorkerArgs {
    /// Do not offer the wasm kernel (jobs that bring their own WebAssembly module).
    #[arg(long, env = "FARM_NO_WASM")]
    pub no_wasm: bool,
    /// MiB one wasm instance's memories and tables may have together (a table element counts
    /// 16 bytes); growing past it fails the shard.
    #[arg(long, default_value_t = 256, value_name = "MIB", env = "FARM_WASM_MAX_MEMORY_MIB",
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub wasm_max_memory: u32,
    /// Keep compiled wasm modules here across restarts [default: ~/.cache/farm/wasm]. Anyone
    /// who can write to it can run code as this worker.
    #[arg(long, value_name = "DIR", env = "FARM_WASM_CACHE")]
    pub wasm_cache: Option<PathBuf>,
    /// MiB of compiled code the wasm cache directory may hold; past it the least recently
    /// used modules are removed.
    #[arg(long, default_value_t = 1024, value_name = "MIB", env = "FARM_WASM_CACHE_MIB")]
    pub wasm_cache_mib: u64,
}

impl WasmWorkerArgs {
    /// The worker's wasm settings, or `None` with `--no-wasm`.
    pub fn config(&self) -> Option<crate::WasmConfig> {
        (!self.no_wasm).then(|| crate::WasmConfig {
            max_memory: (self.wasm_max_memory as usize) << 20,
            cache_dir: self.wasm_cache.clone().or_else(crate::wasm::default_cache_dir),
            disk_bound: self.wasm_cache_mib.saturating_mul(1 << 20),
            ..crate::WasmConfig::default()
        })
    }
}
