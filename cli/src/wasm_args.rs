//! The master's wasm module store flags (`--max-module-mib`, `--module-store-mib`), flattened
//! into `SchedulerArgs` (`farm master`, `farm run`); the worker's wasm flags are the SDK's
//! (`farm_worker::cli::WasmWorkerArgs`); and what `--module FILE` may hold.

use anyhow::{anyhow, bail, Result};
use clap::Args;
use std::path::Path;

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

/// A `--module` file's bytes as a binary module: a binary one as it is, WAT text compiled;
/// anything else refused in one line that says what the file is not.
pub fn module_bytes(path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>> {
    match wat::Detect::from_bytes(&bytes) {
        wat::Detect::WasmBinary => Ok(bytes),
        wat::Detect::WasmText => wat::parse_bytes(&bytes).map(|b| b.into_owned()).map_err(|e| {
            // The error's text is a message, then `--> line:column`, then a snippet.
            let text = e.to_string();
            let mut lines = text.lines();
            let message = lines.next().unwrap_or_default();
            let at = lines.next().and_then(|l| l.trim().strip_prefix("--> ")).unwrap_or("");
            let mut parts = at.rsplitn(3, ':');
            let (column, line) = (parts.next().unwrap_or("?"), parts.next().unwrap_or("?"));
            anyhow!(
                "{} is not valid WAT text: {message} (line {line}, column {column})",
                path.display()
            )
        }),
        wat::Detect::Unknown => {
            bail!("{} is not a WebAssembly module (binary or WAT text)", path.display())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_file_may_be_binary_or_wat_and_anything_else_is_named_in_one_line() {
        let path = Path::new("m.wat");
        let wat =
            r#"(module (func (export "farm_run") (param i64 i64) (result i64) (i64.const 0)))"#;
        let binary = module_bytes(path, wat.as_bytes().to_vec()).expect("wat");
        assert!(binary.starts_with(b"\0asm"));
        assert_eq!(module_bytes(Path::new("m.wasm"), binary.clone()).expect("binary"), binary);
        let png = module_bytes(Path::new("x.png"), b"\x89PNG\r\n\x1a\n\0\0".to_vec());
        let err = png.unwrap_err().to_string();
        assert_eq!(err, "x.png is not a WebAssembly module (binary or WAT text)");
        let broken = module_bytes(path, b"(module (func (export \"f\") nope))".to_vec());
        let err = broken.unwrap_err().to_string();
        assert!(err.starts_with("m.wat is not valid WAT text: ") && !err.contains('\n'), "{err}");
        assert!(err.ends_with("(line 1, column 28)"), "{err}");
    }
}
