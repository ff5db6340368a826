//! The bytes of modules that kernels other than `wasm` need (a `python` job's pickled function,
//! say: any kernel whose [`crate::sdk::Kernel::module_param`] names one), fetched from the
//! master by hash and kept in memory, bounded in bytes, least recently used out first. A job
//! holds its module's bytes from `prepare` on, so an evicted module only costs a fetch for
//! the next job that needs it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Default bound on the bytes of fetched modules a worker keeps (those its jobs hold are kept
/// by the jobs whatever the bound).
pub const DEFAULT_MODULE_BYTES: usize = 256 << 20;

/// Fetched modules by hash. Cheap to clone: clones share the cache.
#[derive(Debug, Clone)]
pub(crate) struct ModuleCache {
    inner: Arc<Mutex<Entries>>,
}

#[derive(Debug)]
struct Entries {
    /// Each module's bytes and when it was last used (a counter).
    by_hash: HashMap<String, (Arc<[u8]>, u64)>,
    /// Bytes held.
    bytes: usize,
    /// Most bytes held; the newest module stays even when it alone is larger.
    bound: usize,
    /// The use counter.
    clock: u64,
}

impl Default for ModuleCache {
    fn default() -> Self {
        ModuleCache::new(DEFAULT_MODULE_BYTES)
    }
}

impl ModuleCache {
    /// An empty cache that holds at most `bound` bytes.
    pub fn new(bound: usize) -> Self {
        let entries = Entries { by_hash: HashMap::new(), bytes: 0, bound, clock: 0 };
        ModuleCache { inner: Arc::new(Mutex::new(entries)) }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the module is held.
    pub fn contains(&self, hash: &str) -> bool {
        self.entries().by_hash.contains_key(hash)
    }

    /// The module's bytes, marked as just used.
    pub fn get(&self, hash: &str) -> Option<Arc<[u8]>> {
        let mut entries = self.entries();
        entries.clock += 1;
        let now = entries.clock;
        let (bytes, used) = entries.by_hash.get_mut(hash)?;
        *used = now;
        Some(bytes.clone())
    }

    /// Keeps a module that arrived, dropping the least recently used others past the bound.
    pub fn insert(&self, hash: &str, bytes: Vec<u8>) {
        let mut entries = self.entries();
        entries.clock += 1;
        let now = entries.clock;
        let size = bytes.len();
        if let Some((old, _)) = entries.by_hash.insert(hash.to_string(), (bytes.into(), now)) {
            entries.bytes -= old.len();
        }
        entries.bytes += size;
        while entries.bytes > entries.bound && entries.by_hash.len() > 1 {
            let oldest = entries
                .by_hash
                .iter()
                .filter(|(h, _)| h.as_str() != hash)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(h, _)| h.clone());
            let Some(oldest) = oldest else { break };
            if let Some((gone, _)) = entries.by_hash.remove(&oldest) {
                entries.bytes -= gone.len();
            }
        }
    }

    /// Bytes held.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.entries().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_goes_first_past_the_bound() {
        let cache = ModuleCache::new(10);
        cache.insert("a", vec![1; 4]);
        cache.insert("b", vec![2; 4]);
        assert!(cache.get("a").is_some(), "a is now the most recent");
        cache.insert("c", vec![3; 4]);
        assert!(cache.contains("a") && cache.contains("c"));
        assert!(!cache.contains("b"), "b was used least recently");
        assert_eq!(cache.bytes(), 8);
        cache.insert("huge", vec![0; 50]);
        assert!(cache.contains("huge"), "the newest stays even alone over the bound");
        assert_eq!(cache.bytes(), 50);
        assert_eq!(cache.get("huge").map(|b| b.len()), Some(50));
        cache.insert("huge", vec![0; 5]);
        assert_eq!(cache.bytes(), 5, "a module stored again is counted once");
    }
}
