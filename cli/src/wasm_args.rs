//! The master's wasm module store flags (`--max-module-mib`, `--module-store-mib`), flattened
//! into `SchedulerArgs` (`farm master`, `farm run`); the worker's wasm flags are the SDK's
//! (`farm_worker::cli::WasmWorkerArgs`).

use clap::Args;

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
