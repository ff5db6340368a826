//! The `modules` table: modules by the SHA-256 of their bytes (64 hex digits → bytes), and
//! `module_formats`: the format of each that is not a wasm module (hash → `pb::ModuleFormat`
//! number; a module without a row is wasm, as every module was before formats). Writes are
//! rare (one per upload) and run in their own transaction beside the journal's writer (redb
//! serializes writers); every call blocks, so callers use a blocking thread.

use super::{fail, Store, MODULES, MODULE_FORMATS};
use crate::MasterError;
use farm_proto::ModuleFormat;
use redb::{ReadableDatabase, ReadableTable};

impl Store {
    /// Stores a module's bytes and format under its hash, in one transaction.
    pub fn put_module(
        &self,
        sha256: &str,
        bytes: &[u8],
        format: ModuleFormat,
    ) -> Result<(), MasterError> {
        let txn = self.db().begin_write().map_err(|e| fail(e.into()))?;
        {
            let mut table = txn.open_table(MODULES).map_err(|e| fail(e.into()))?;
            table.insert(sha256, bytes).map_err(|e| fail(e.into()))?;
            let mut formats = txn.open_table(MODULE_FORMATS).map_err(|e| fail(e.into()))?;
            match format {
                ModuleFormat::Wasm => formats.remove(sha256).map(|_| ()),
                other => formats.insert(sha256, i32::from(other) as u32).map(|_| ()),
            }
            .map_err(|e| fail(e.into()))?;
        }
        txn.commit().map_err(|e| fail(e.into()))
    }

    /// A module's bytes, if stored.
    pub fn module(&self, sha256: &str) -> Result<Option<Vec<u8>>, MasterError> {
        let read = self.db().begin_read().map_err(|e| fail(e.into()))?;
        let table = read.open_table(MODULES).map_err(|e| fail(e.into()))?;
        let row = table.get(sha256).map_err(|e| fail(e.into()))?;
        Ok(row.map(|bytes| bytes.value().to_vec()))
    }

    /// Removes modules.
    pub fn delete_modules(&self, hashes: &[String]) -> Result<(), MasterError> {
        let txn = self.db().begin_write().map_err(|e| fail(e.into()))?;
        {
            let mut table = txn.open_table(MODULES).map_err(|e| fail(e.into()))?;
            let mut formats = txn.open_table(MODULE_FORMATS).map_err(|e| fail(e.into()))?;
            for hash in hashes {
                table.remove(hash.as_str()).map_err(|e| fail(e.into()))?;
                formats.remove(hash.as_str()).map_err(|e| fail(e.into()))?;
            }
        }
        txn.commit().map_err(|e| fail(e.into()))
    }

    /// Calls `each` with every stored module's hash, bytes and format, one at a time (so the
    /// master's memory holds one module, not all). A format this master does not know is an
    /// `Err` for `each` to report.
    pub fn each_module(
        &self,
        mut each: impl FnMut(&str, &[u8], Result<ModuleFormat, String>),
    ) -> Result<(), MasterError> {
        let read = self.db().begin_read().map_err(|e| fail(e.into()))?;
        let table = read.open_table(MODULES).map_err(|e| fail(e.into()))?;
        let formats = read.open_table(MODULE_FORMATS).map_err(|e| fail(e.into()))?;
        for row in table.iter().map_err(|e| fail(e.into()))? {
            let (hash, bytes) = row.map_err(|e| fail(e.into()))?;
            let format = formats.get(hash.value()).map_err(|e| fail(e.into()))?;
            let format = match format.map(|f| f.value()) {
                None => Ok(ModuleFormat::Wasm),
                Some(n) => i32::try_from(n)
                    .map_err(|e| e.to_string())
                    .and_then(|n| ModuleFormat::try_from(n).map_err(|e| e.to_string())),
            };
            each(hash.value(), bytes.value(), format);
        }
        Ok(())
    }
}
