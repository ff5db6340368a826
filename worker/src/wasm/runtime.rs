//! The worker's wasm runtime: one wasmtime engine, the epoch ticker, the compile thread, and
//! the modules by hash, each compiled at most once per worker (and, with a cache directory,
//! once per machine). The modules held in memory, sources and compiled code alike, stay under
//! [`WasmConfig::memory_bound`] bytes, the least recently used that no job holds dropped first.

use super::cache::DiskCache;
use super::compile::{self, CompileRequest, Slot, Source};
use super::linker::{self, Ctx};
use super::ticker::{Running, Ticker};
use super::WasmConfig;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use wasmtime::{Engine, Linker};

/// One module held: its slot, when it was last used, and the bytes it takes (its source's
/// until compiled, then its compiled code's).
struct Held {
    slot: Arc<Slot>,
    used: u64,
    bytes: usize,
}

/// The modules held, least recently used first out.
#[derive(Default)]
struct Slots {
    map: HashMap<String, Held>,
    bytes: usize,
    clock: u64,
}

/// A worker's wasm runtime. Create one per worker ([`Runtime::new`]).
pub struct Runtime {
    pub(super) engine: Engine,
    pub(super) linker: Linker<Ctx>,
    config: WasmConfig,
    slots: Mutex<Slots>,
    pub(super) compiles: AtomicU64,
    ticker: Ticker,
    /// Names the engine's settings in cache file names: code compiled by another build or
    /// with other settings is never loaded.
    pub(super) compat: String,
    /// The checked cache directory, if any.
    pub(super) disk: Option<DiskCache>,
    /// Hands modules to the compile thread.
    compiler: crossbeam_channel::Sender<CompileRequest>,
}

impl Runtime {
    /// An engine with epoch interruption, the farm imports, the ticker thread (parked while
    /// no module runs) and the compile thread.
    pub fn new(config: WasmConfig) -> Result<Arc<Self>, String> {
        let mut settings = wasmtime::Config::new();
        settings.epoch_interruption(true);
        let engine = Engine::new(&settings).map_err(|e| format!("wasm engine: {e}"))?;
        let linker = linker::linker(&engine).map_err(|e| format!("wasm imports: {e}"))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let compat = format!("{:016x}", hasher.finish());
        let ticker = Ticker::spawn(engine.clone()).map_err(|e| format!("wasm ticker: {e}"))?;
        let disk = config.cache_dir.as_deref().and_then(|d| DiskCache::open(d, config.disk_bound));
        let (compiler, requests) = crossbeam_channel::unbounded();
        let runtime = Arc::new(Runtime {
            engine,
            linker,
            config,
            slots: Mutex::new(Slots::default()),
            compiles: AtomicU64::new(0),
            ticker,
            compat,
            disk,
            compiler,
        });
        compile::spawn(Arc::downgrade(&runtime), requests)
            .map_err(|e| format!("wasm compile thread: {e}"))?;
        Ok(runtime)
    }

    /// Modules compiled by this runtime so far (loads from the disk cache are not counted).
    pub fn compiles(&self) -> u64 {
        self.compiles.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The settings it runs with.
    pub fn config(&self) -> &WasmConfig {
        &self.config
    }

    /// Bytes of module sources and compiled code held in memory.
    pub fn held_bytes(&self) -> usize {
        self.slots().bytes
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the module must be fetched: neither in memory nor in the cache directory.
    pub fn missing(&self, hash: &str) -> bool {
        if self.slots().map.contains_key(hash) {
            return false;
        }
        let Some(disk) = &self.disk else { return true };
        let path = disk.file(hash, &self.compat);
        let Ok(meta) = std::fs::symlink_metadata(&path) else { return true };
        if !meta.is_file() {
            return true;
        }
        disk.touch(&path);
        self.insert(hash, meta.len() as usize, Source::Disk(path));
        false
    }

    /// The bytes of a module fetched from the master.
    pub fn arrived(&self, hash: &str, wasm: Vec<u8>) {
        if !self.slots().map.contains_key(hash) {
            self.insert(hash, wasm.len(), Source::Bytes(wasm));
        }
    }

    fn insert(&self, hash: &str, size: usize, source: Source) {
        let slot = Arc::new(Slot::new(hash, source));
        let mut slots = self.slots();
        slots.clock += 1;
        let used = slots.clock;
        slots.bytes += size;
        if let Some(old) = slots.map.insert(hash.to_string(), Held { slot, used, bytes: size }) {
            slots.bytes -= old.bytes;
        }
        evict(&mut slots, self.config.memory_bound, hash);
    }

    /// A module's size in memory is now `bytes` (its compiled code's), if `slot` is still
    /// the one held for its hash; evicts others while over the bound.
    pub(super) fn resize(&self, slot: &Slot, bytes: usize) {
        let mut slots = self.slots();
        let Some(held) = slots.map.get_mut(slot.hash()) else { return };
        if !std::ptr::eq(held.slot.as_ref(), slot) {
            return;
        }
        let before = std::mem::replace(&mut held.bytes, bytes);
        slots.bytes = slots.bytes - before + bytes;
        evict(&mut slots, self.config.memory_bound, slot.hash());
    }

    /// Forgets `slot` (its module failed to compile or load: fetched afresh for the next job).
    pub(super) fn forget(&self, slot: &Slot) {
        let mut slots = self.slots();
        if slots.map.get(slot.hash()).is_some_and(|h| std::ptr::eq(h.slot.as_ref(), slot)) {
            if let Some(held) = slots.map.remove(slot.hash()) {
                slots.bytes -= held.bytes;
            }
        }
    }

    /// The module's slot, if the worker holds it; counts as a use.
    pub(crate) fn slot(&self, hash: &str) -> Option<Arc<Slot>> {
        let mut slots = self.slots();
        slots.clock += 1;
        let clock = slots.clock;
        let held = slots.map.get_mut(hash)?;
        held.used = clock;
        Some(held.slot.clone())
    }

    /// Hands a module's source to the compile thread.
    pub(super) fn request_compile(&self, request: CompileRequest) -> Result<(), String> {
        self.compiler.send(request).map_err(|_| "the wasm compile thread is gone".to_string())
    }

    /// Marks a module running until the guard drops: the ticker runs while any is.
    pub(crate) fn running(&self) -> Running<'_> {
        self.ticker.enter()
    }

    /// The engine's store limits and settings, for instances.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// Drops the least recently used modules no job holds (and not `keep`) while over `bound`.
fn evict(slots: &mut Slots, bound: usize, keep: &str) {
    while slots.bytes > bound {
        let idle = slots
            .map
            .iter()
            .filter(|(h, held)| Arc::strong_count(&held.slot) == 1 && h.as_str() != keep)
            .min_by_key(|(_, held)| held.used)
            .map(|(h, _)| h.clone());
        let Some(old) = idle else { break };
        if let Some(held) = slots.map.remove(&old) {
            slots.bytes -= held.bytes;
        }
    }
}
