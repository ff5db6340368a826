//! The `audit` table: the audit trail's last entries (sequence number → a JSON record), kept
//! bounded: each write removes what falls out of the window. Written in its own transaction
//! beside the journal's writer (redb serializes writers), by the audit's own thread.

use super::{fail, Store, StoreError, AUDIT};
use redb::{ReadableDatabase, ReadableTable};

impl Store {
    /// Appends `entries` (sequence number, record) and drops every entry `keep` or more
    /// behind the last one.
    pub fn put_audit(&self, entries: &[(u64, Vec<u8>)], keep: u64) -> Result<(), StoreError> {
        let Some(&(last, _)) = entries.last() else { return Ok(()) };
        let txn = self.db().begin_write().map_err(|e| fail(e.into()))?;
        {
            let mut table = txn.open_table(AUDIT).map_err(|e| fail(e.into()))?;
            for (seq, record) in entries {
                table.insert(*seq, record.as_slice()).map_err(|e| fail(e.into()))?;
            }
            let cut = last.saturating_add(1).saturating_sub(keep);
            table.retain_in(..cut, |_, _| false).map_err(|e| fail(e.into()))?;
        }
        txn.commit().map_err(|e| fail(e.into()))
    }

    /// Every kept entry, oldest first.
    pub fn audit(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let read = self.db().begin_read().map_err(|e| fail(e.into()))?;
        let table = read.open_table(AUDIT).map_err(|e| fail(e.into()))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| fail(e.into()))? {
            let (seq, record) = row.map_err(|e| fail(e.into()))?;
            out.push((seq.value(), record.value().to_vec()));
        }
        Ok(out)
    }
}
