//! The `modules` table: wasm modules by the SHA-256 of their bytes (64 hex digits → bytes).
//! Writes are rare (one per upload) and run in their own transaction beside the journal's
//! writer (redb serializes writers); every call blocks, so callers use a blocking thread.

use super::{fail, Store, StoreError, MODULES};
use redb::{ReadableDatabase, ReadableTable};

impl Store {
    /// Stores a module's bytes under its hash (replacing nothing if already there).
    pub fn put_module(&self, sha256: &str, wasm: &[u8]) -> Result<(), StoreError> {
        let txn = self.db().begin_write().map_err(|e| fail(e.into()))?;
        {
            let mut table = txn.open_table(MODULES).map_err(|e| fail(e.into()))?;
            table.insert(sha256, wasm).map_err(|e| fail(e.into()))?;
        }
        txn.commit().map_err(|e| fail(e.into()))
    }

    /// A module's bytes, if stored.
    pub fn module(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let read = self.db().begin_read().map_err(|e| fail(e.into()))?;
        let table = read.open_table(MODULES).map_err(|e| fail(e.into()))?;
        let row = table.get(sha256).map_err(|e| fail(e.into()))?;
        Ok(row.map(|bytes| bytes.value().to_vec()))
    }

    /// Removes modules.
    pub fn delete_modules(&self, hashes: &[String]) -> Result<(), StoreError> {
        let txn = self.db().begin_write().map_err(|e| fail(e.into()))?;
        {
            let mut table = txn.open_table(MODULES).map_err(|e| fail(e.into()))?;
            for hash in hashes {
                table.remove(hash.as_str()).map_err(|e| fail(e.into()))?;
            }
        }
        txn.commit().map_err(|e| fail(e.into()))
    }

    /// Calls `each` with every stored module's hash and bytes, one at a time (so the
    /// master's memory holds one module, not all).
    pub fn each_module(&self, mut each: impl FnMut(&str, &[u8])) -> Result<(), StoreError> {
        let read = self.db().begin_read().map_err(|e| fail(e.into()))?;
        let table = read.open_table(MODULES).map_err(|e| fail(e.into()))?;
        for row in table.iter().map_err(|e| fail(e.into()))? {
            let (hash, bytes) = row.map_err(|e| fail(e.into()))?;
            each(hash.value(), bytes.value());
        }
        Ok(())
    }
}
