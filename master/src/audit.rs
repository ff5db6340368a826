//! The audit trail: every accepted or refused mutating call (submit, cancel, drain, allocation
//! changes, module upload) as one structured log line (target `farm::audit`: principal, action,
//! target, outcome), kept in memory (the last [`KEEP`]) for the `Audit` RPC, and in the store's
//! `audit` table, so with `--journal` it survives a restart. The table is written by a thread
//! of its own, from a bounded queue: a call never waits for the disk, and a flood drops (and
//! counts) entries for the table rather than growing memory; the log line is always written.

use crate::clock::unix_ms;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Mutex;

/// Entries kept, in memory and in the table.
pub const KEEP: u64 = 10_000;

/// Entries queued for the table before new ones are dropped from it.
const QUEUE: usize = 4096;

/// Longest target or reason kept, in bytes (longer ones are cut): the entries hold what
/// callers sent, so each is bounded.
const FIELD_BYTES: usize = 512;

/// One audited call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// When, in ms since the Unix epoch.
    pub unix_ms: u64,
    /// Who called.
    pub principal: String,
    /// What it asked: `submit`, `cancel`, `drain`, `alloc add`, `alloc remove`, `module upload`.
    pub action: String,
    /// What on: `job 7`, `worker 3`, a queue's name, a module's hash; `-` when not known.
    pub target: String,
    /// `accepted` or `refused`.
    pub outcome: String,
    /// Why it was refused; empty when accepted.
    pub reason: String,
}

/// The audit trail.
pub struct Audit {
    /// The last [`KEEP`] entries, with their sequence numbers, oldest first.
    recent: Mutex<VecDeque<(u64, Entry)>>,
    next: AtomicU64,
    /// The queue to the table's writer thread; none in memory only, or once closed.
    tx: Mutex<Option<SyncSender<(u64, Entry)>>>,
    /// The writer thread, joined by [`Audit::close`].
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Entries the table missed because its queue was full.
    dropped: AtomicU64,
}

impl Audit {
    /// A trail restored from `store`'s table, whose new entries a thread writes back to it.
    /// Blocking (it reads the table): call it off the async runtime.
    pub fn open(store: Store) -> Result<Audit, crate::MasterError> {
        let mut recent = VecDeque::new();
        for (seq, record) in store.audit()? {
            match serde_json::from_slice::<Entry>(&record) {
                Ok(entry) => recent.push_back((seq, entry)),
                Err(e) => {
                    tracing::warn!(seq, error = %e, "skipped an audit entry that does not decode")
                }
            }
        }
        let next = recent.back().map_or(0, |(seq, _)| seq + 1);
        let (tx, rx) = sync_channel(QUEUE);
        let writer = std::thread::Builder::new()
            .name("farm-audit".into())
            .spawn(move || write_table(store, rx))
            .map_err(|e| crate::MasterError::Journal(format!("audit writer: {e}")))?;
        Ok(Audit {
            recent: Mutex::new(recent),
            next: AtomicU64::new(next),
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            dropped: AtomicU64::new(0),
        })
    }

    /// A trail in memory only.
    pub fn in_memory() -> Audit {
        Audit {
            recent: Mutex::default(),
            next: AtomicU64::new(0),
            tx: Mutex::default(),
            writer: Mutex::default(),
            dropped: AtomicU64::new(0),
        }
    }

    /// Writes what is queued to the table and stops its thread; later entries are logged and
    /// kept in memory only. Blocking: the master calls it at shutdown, off the runtime.
    pub fn close(&self) {
        drop(self.tx.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let Some(writer) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = writer.join();
        }
    }

    /// Records an accepted call.
    pub fn accepted(&self, principal: &str, action: &str, target: &str) {
        self.record(principal, action, target, None);
    }

    /// Records a refused call and why.
    pub fn refused(&self, principal: &str, action: &str, target: &str, reason: &str) {
        self.record(principal, action, target, Some(reason));
    }

    /// Records an accepted (`Ok`) or refused call.
    pub fn outcome<T, E: std::fmt::Display>(
        &self,
        principal: &str,
        action: &str,
        target: &str,
        result: &Result<T, E>,
    ) {
        match result {
            Ok(_) => self.accepted(principal, action, target),
            Err(e) => self.refused(principal, action, target, &e.to_string()),
        }
    }

    fn record(&self, principal: &str, action: &str, target: &str, reason: Option<&str>) {
        let outcome = if reason.is_some() { "refused" } else { "accepted" };
        let reason = cut(reason.unwrap_or_default());
        let target = cut(target);
        tracing::info!(
            target: "farm::audit",
            principal, action, target = %target, outcome, reason = %reason,
            "audit"
        );
        let entry = Entry {
            unix_ms: unix_ms(),
            principal: principal.to_string(),
            action: action.to_string(),
            target,
            outcome: outcome.to_string(),
            reason,
        };
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            recent.push_back((seq, entry.clone()));
            while recent.len() as u64 > KEEP {
                recent.pop_front();
            }
        }
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = tx.as_ref() {
            if let Err(TrySendError::Full(_)) = tx.try_send((seq, entry)) {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    tracing::warn!(dropped, "audit table behind: entries kept in the log only");
                }
            }
        }
    }

    /// The kept entries since `since_unix_ms`, oldest first, at most `limit` (the newest).
    pub fn since(&self, since_unix_ms: u64, limit: usize) -> Vec<Entry> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let hits: Vec<&Entry> =
            recent.iter().map(|(_, e)| e).filter(|e| e.unix_ms >= since_unix_ms).collect();
        let skip = hits.len().saturating_sub(limit);
        hits.into_iter().skip(skip).cloned().collect()
    }
}

/// `s`, cut to [`FIELD_BYTES`] on a character boundary.
fn cut(s: &str) -> String {
    if s.len() <= FIELD_BYTES {
        return s.to_string();
    }
    let mut end = FIELD_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The table's writer: whatever is queued, in one transaction; ends when the trail is dropped.
fn write_table(store: Store, rx: Receiver<(u64, Entry)>) {
    while let Ok(first) = rx.recv() {
        let batch: Vec<(u64, Entry)> = std::iter::once(first).chain(rx.try_iter()).collect();
        let rows: Vec<(u64, Vec<u8>)> = batch
            .into_iter()
            .filter_map(|(seq, e)| serde_json::to_vec(&e).ok().map(|b| (seq, b)))
            .collect();
        if let Err(e) = store.put_audit(&rows, KEEP) {
            tracing::warn!(error = %e, "audit entries not written to the store");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trail_is_bounded_and_filtered_by_time() {
        let audit = Audit::in_memory();
        for i in 0..(KEEP + 5) {
            audit.accepted("alice", "submit", &format!("job {i}"));
        }
        audit.refused("bob", "cancel", &"x".repeat(4000), "permission denied");
        let all = audit.since(0, usize::MAX);
        assert_eq!(all.len() as u64, KEEP);
        let last = all.last().expect("one");
        assert_eq!((last.principal.as_str(), last.outcome.as_str()), ("bob", "refused"));
        assert!(last.target.len() <= FIELD_BYTES + 3, "targets are cut");
        assert_eq!(audit.since(0, 2).len(), 2);
        assert!(audit.since(u64::MAX, 10).is_empty());
    }
}
