//! The flags of wasm kernels: the worker's (`--no-wasm`, `--wasm-max-memory`, `--wasm-cache`)
//! and the master's module store (`--max-module-mib`, `--module-store-mib`), flattened into
//! `WorkerArgs` and `SchedulerArgs`, with their conversions to the libraries' configs.

use clap::Args;
use std::path::PathBuf;

/// `farm worker`'s wasm flags.
#[derive(Debug, Args)]
pub struct WasmWorkerArgs {
    /// Do not offer the wasm kernel (jobs that bring their own WebAssembly module).
    #[arg(long, env = "FARM_NO_WASM")]
    pub no_wasm: bool,
    /// MiB of linear memory one wasm instance may have; growing past it fails the shard.
    #[arg(long, default_value_t = 256, value_name = "MIB", env = "FARM_WASM_MAX_MEMORY_MIB",
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub wasm_max_memory: u32,
    /// Keep compiled wasm modules here across restarts [default: ~/.cache/farm/wasm]. Anyone
    /// who can write to it can run code as this worker.
    #[arg(long, value_name = "DIR", env = "FARM_WASM_CACHE")]
    pub wasm_cache: Option<PathBuf>,
}

impl WasmWorkerArgs {
    /// The worker's wasm settings, or `None` with `--no-wasm`.
    pub fn config(&self) -> Option<farm_worker::WasmConfig> {
        (!self.no_wasm).then(|| farm_worker::WasmConfig {
            max_memory: (self.wasm_max_memory as usize) << 20,
            cache_dir: self.wasm_cache.clone().or_else(farm_worker::wasm::default_cache_dir),
            ..farm_worker::WasmConfig::default()
        })
    }
}

/// The master's module store flags (`farm master`, `farm run`).
#[derive(Debug, Args)]
pub struct ModuleStoreArgs {
    /// Largest wasm module the master accepts, in MiB (larger: ResourceExhausted).
    #[arg(long, default_value_t = 16, value_name = "MIB", env = "FARM_MAX_MODULE_MIB",
          value_parser = clap::value_parser!(u16).range(1..=60))]
    pub max_module_mib: u16,
    /// MiB the master's stored wasm modules may take; past it the least recently used ones no
    /// unfinished job runs are dropped.
    #[arg(long, default_value_t = 256, value_name = "MIB", env = "FARM_MODULE_STORE_MIB")]
    pub module_store_mib: usize,
}

impl ModuleStoreArgs {
    /// The store's bounds.
    pub fn limits(&self) -> farm_master::modules::ModuleLimits {
        farm_master::modules::ModuleLimits {
            max_module: usize::from(self.max_module_mib) << 20,
            max_total: self.module_store_mib.saturating_mul(1 << 20),
        }
    }
}
