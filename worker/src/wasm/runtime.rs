//! The worker's wasm runtime: one wasmtime engine, the epoch ticker, and the modules by hash,
//! each compiled at most once per worker (and, with a cache directory, once per machine).

use super::linker::{self, Ctx};
use super::WasmConfig;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};
use tracing::{info, warn};
use wasmtime::{Engine, InstancePre, Linker, Module};

/// How often the ticker advances the engine's epoch: how soon a running instance notices a
/// cancel or its deadline.
const TICK: Duration = Duration::from_millis(1);
/// Bytes of module sources the runtime keeps in memory (with their compiled code); past it
/// the least recently used modules no job holds are dropped.
const MEMORY_BOUND: usize = 256 << 20;

/// Where a module's code comes from, until it is compiled.
enum Source {
    /// Its bytes, from the master (checked against the hash before compiling).
    Bytes(Vec<u8>),
    /// Compiled code in the cache directory.
    Disk(PathBuf),
}

/// A module ready to instantiate, and what its imports say about it.
pub(crate) struct Compiled {
    /// The module linked against the farm imports.
    pub pre: InstancePre<Ctx>,
    /// It imports `farm.emit`: its shards' outputs are lists.
    pub emits: bool,
    /// It imports `farm.samples`: its shards' outputs are fractions.
    pub fraction: bool,
    /// It imports `farm.input`: it reads input lines itself.
    pub reads_input: bool,
}

/// One module by hash: its source until compiled, then the compiled module (or why not).
pub(crate) struct Slot {
    hash: String,
    size: usize,
    source: Mutex<Option<Source>>,
    compiled: OnceLock<Result<Arc<Compiled>, String>>,
}

/// The modules held, least recently used first out.
#[derive(Default)]
struct Slots {
    map: HashMap<String, (Arc<Slot>, u64)>,
    bytes: usize,
    clock: u64,
}

/// A worker's wasm runtime. Create one per worker ([`Runtime::new`]).
pub struct Runtime {
    engine: Engine,
    linker: Linker<Ctx>,
    config: WasmConfig,
    slots: Mutex<Slots>,
    compiles: AtomicU64,
    ticker: Ticker,
    /// Names the engine's settings in cache file names: code compiled by another build or
    /// with other settings is never loaded.
    compat: String,
}

impl Runtime {
    /// An engine with epoch interruption, the farm imports and the ticker thread (parked while
    /// no module runs).
    pub fn new(config: WasmConfig) -> Result<Arc<Self>, String> {
        let mut settings = wasmtime::Config::new();
        settings.epoch_interruption(true);
        let engine = Engine::new(&settings).map_err(|e| format!("wasm engine: {e}"))?;
        let linker = linker::linker(&engine).map_err(|e| format!("wasm imports: {e}"))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let compat = format!("{:016x}", hasher.finish());
        let ticker = Ticker::spawn(engine.clone()).map_err(|e| format!("wasm ticker: {e}"))?;
        if let Some(dir) = &config.cache_dir {
            if let Err(e) = std::fs::create_dir_all(dir) {
                warn!(dir = %dir.display(), error = %e, "wasm cache directory unusable");
            }
        }
        let slots = Mutex::new(Slots::default());
        Ok(Arc::new(Runtime {
            engine,
            linker,
            config,
            slots,
            compiles: AtomicU64::new(0),
            ticker,
            compat,
        }))
    }

    /// Modules compiled by this runtime so far (loads from the disk cache are not counted).
    pub fn compiles(&self) -> u64 {
        self.compiles.load(Ordering::Relaxed)
    }

    /// The settings it runs with.
    pub fn config(&self) -> &WasmConfig {
        &self.config
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn cache_file(&self, hash: &str) -> Option<PathBuf> {
        let dir = self.config.cache_dir.as_ref()?;
        Some(dir.join(format!("{hash}-{}.cwasm", self.compat)))
    }

    /// Whether the module must be fetched: neither in memory nor in the cache directory.
    pub fn missing(&self, hash: &str) -> bool {
        if self.slots().map.contains_key(hash) {
            return false;
        }
        let Some(path) = self.cache_file(hash).filter(|p| p.is_file()) else { return true };
        let size = std::fs::metadata(&path).map_or(0, |m| m.len() as usize);
        self.insert(hash, size, Source::Disk(path));
        false
    }

    /// The bytes of a module fetched from the master.
    pub fn arrived(&self, hash: &str, wasm: Vec<u8>) {
        if !self.slots().map.contains_key(hash) {
            self.insert(hash, wasm.len(), Source::Bytes(wasm));
        }
    }

    fn insert(&self, hash: &str, size: usize, source: Source) {
        let slot = Slot {
            hash: hash.to_string(),
            size,
            source: Mutex::new(Some(source)),
            compiled: OnceLock::new(),
        };
        let mut slots = self.slots();
        slots.clock += 1;
        let clock = slots.clock;
        slots.bytes += size;
        slots.map.insert(hash.to_string(), (Arc::new(slot), clock));
        // Drop the least recently used modules no job holds while over the bound.
        while slots.bytes > MEMORY_BOUND {
            let idle = slots
                .map
                .iter()
                .filter(|(h, (s, _))| Arc::strong_count(s) == 1 && h.as_str() != hash)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(h, _)| h.clone());
            let Some(old) = idle else { break };
            if let Some((s, _)) = slots.map.remove(&old) {
                slots.bytes -= s.size;
            }
        }
    }

    /// The module's slot, if the worker holds it; counts as a use.
    pub(crate) fn slot(&self, hash: &str) -> Option<Arc<Slot>> {
        let mut slots = self.slots();
        slots.clock += 1;
        let clock = slots.clock;
        let (slot, used) = slots.map.get_mut(hash)?;
        *used = clock;
        Some(slot.clone())
    }

    /// The compiled module, compiling (or loading) it on the first call; other threads that
    /// need it meanwhile wait for that one. Runs on a pool thread.
    pub(crate) fn compiled(&self, slot: &Slot) -> Result<Arc<Compiled>, String> {
        let result = slot.compiled.get_or_init(|| self.load(slot)).clone();
        if result.is_err() {
            // Fetch it afresh for the next job.
            let mut slots = self.slots();
            if slots.map.get(&slot.hash).is_some_and(|(s, _)| std::ptr::eq(s.as_ref(), slot)) {
                slots.map.remove(&slot.hash);
                slots.bytes -= slot.size;
            }
        }
        result
    }

    fn load(&self, slot: &Slot) -> Result<Arc<Compiled>, String> {
        let source = slot.source.lock().unwrap_or_else(|p| p.into_inner()).take();
        let module = match source {
            Some(Source::Bytes(wasm)) => self.compile(&slot.hash, &wasm)?,
            Some(Source::Disk(path)) => {
                // SAFETY: the cache directory is as trusted as the worker's binary (see
                // `WasmConfig::cache_dir`); the file name carries the engine's settings.
                let loaded = unsafe { Module::deserialize_file(&self.engine, &path) };
                loaded.map_err(|e| {
                    let _ = std::fs::remove_file(&path);
                    format!("cached module {} unreadable (removed): {e}", slot.hash)
                })?
            }
            None => return Err(format!("module {} has no source", slot.hash)),
        };
        let imports: Vec<String> = module.imports().map(|i| i.name().to_string()).collect();
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| format!("module {} does not link: {e}", slot.hash))?;
        let has = |f: farm_proto::wasm::AbiFunc| imports.iter().any(|i| i == f.name);
        let (emits, fraction) = (has(farm_proto::wasm::EMIT), has(farm_proto::wasm::SAMPLES));
        let reads_input = has(farm_proto::wasm::INPUT);
        Ok(Arc::new(Compiled { pre, emits, fraction, reads_input }))
    }

    /// Checks the bytes against their hash, compiles them, and writes the code to the cache.
    fn compile(&self, hash: &str, wasm: &[u8]) -> Result<Module, String> {
        let actual: String = Sha256::digest(wasm).iter().map(|b| format!("{b:02x}")).collect();
        if actual != hash {
            return Err(format!("module {hash}: the bytes received have SHA-256 {actual}"));
        }
        let started = Instant::now();
        let module = Module::new(&self.engine, wasm)
            .map_err(|e| format!("module {hash} does not compile: {e}"))?;
        self.compiles.fetch_add(1, Ordering::Relaxed);
        let ms = started.elapsed().as_millis() as u64;
        info!(module = %hash, ms, bytes = wasm.len(), "wasm module compiled");
        if let Some(path) = self.cache_file(hash) {
            let written = module.serialize().map_err(|e| e.to_string()).and_then(|code| {
                let tmp = path.with_extension(format!("tmp{}", std::process::id()));
                std::fs::write(&tmp, code)
                    .and_then(|()| std::fs::rename(&tmp, &path))
                    .map_err(|e| e.to_string())
            });
            if let Err(e) = written {
                warn!(module = %hash, path = %path.display(), error = %e, "wasm cache not written");
            }
        }
        Ok(module)
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

/// The thread that advances the engine's epoch every [`TICK`] while some instance runs, and
/// sleeps otherwise. It ends when its runtime is dropped.
struct Ticker {
    active: Arc<AtomicUsize>,
    thread: std::thread::Thread,
}

/// An instance running: keeps the ticker going until dropped.
pub(crate) struct Running<'a>(&'a Ticker);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Ticker {
    fn spawn(engine: Engine) -> std::io::Result<Self> {
        let active = Arc::new(AtomicUsize::new(0));
        let weak: Weak<AtomicUsize> = Arc::downgrade(&active);
        let handle =
            std::thread::Builder::new().name("farm-wasm-epoch".into()).spawn(move || {
                loop {
                    let busy = match weak.upgrade() {
                        Some(active) => active.load(Ordering::SeqCst) > 0,
                        None => return,
                    };
                    if busy {
                        std::thread::sleep(TICK);
                        engine.increment_epoch();
                    } else {
                        // Woken by the next instance that starts (or, rarely, to see if the
                        // runtime is gone).
                        std::thread::park_timeout(Duration::from_secs(10));
                    }
                }
            })?;
        Ok(Ticker { active, thread: handle.thread().clone() })
    }

    fn enter(&self) -> Running<'_> {
        if self.active.fetch_add(1, Ordering::SeqCst) == 0 {
            self.thread.unpark();
        }
        Running(self)
    }
}
