//! The modules the master holds, content-addressed by SHA-256: wasm modules for `wasm` jobs
//! and pickled functions for `python` jobs. The check of a wasm upload against the ABI
//! (`check.rs`, with `wasmparser`: the master links no wasm runtime; a pickle is opaque bytes,
//! not checked), the bytes and format in the store's `modules` and `module_formats` tables,
//! and here the in-memory index (size, output shape, format, last use) with its bounds, the
//! same for every format: one module at most `max_module` bytes, all of them at most
//! `max_total`. When an upload does not fit, the least recently used modules that no
//! unfinished job runs are evicted; if that is not enough, the upload is refused.

mod check;

pub use check::check;

use crate::core::JobId;
use crate::store::Store;
use farm_proto::{ModuleFormat, OutputShape, Params};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tracing::{info, warn};

/// Why an upload or a fetch failed; the gRPC adapter maps each to its status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleError {
    /// Not a valid module, or not one of the farm ABI (InvalidArgument).
    #[error("{0}")]
    Invalid(String),
    /// Over the size limit, or the store is full of modules in use (ResourceExhausted).
    #[error("{0}")]
    TooLarge(String),
    /// The master does not hold it (NotFound at fetch; FailedPrecondition at submit).
    #[error("{0}")]
    Missing(String),
    /// The store failed (Internal).
    #[error("module store: {0}")]
    Store(String),
}

/// The bounds of the module store.
#[derive(Debug, Clone, Copy)]
pub struct ModuleLimits {
    /// Largest module accepted, in bytes.
    pub max_module: usize,
    /// Bytes all stored modules may take together.
    pub max_total: usize,
}

impl Default for ModuleLimits {
    fn default() -> Self {
        ModuleLimits {
            max_module: farm_proto::wasm::DEFAULT_MAX_MODULE_BYTES,
            max_total: 256 << 20,
        }
    }
}

/// What the master knows about a stored module.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModuleInfo {
    /// Its size in bytes.
    pub size: usize,
    /// How its jobs' outputs are reduced (lines for a pickle).
    pub shape: OutputShape,
    /// What its bytes are.
    pub format: ModuleFormat,
}

/// The module a job of `kind` runs, named by its params: a `wasm` job's `module`, a `python`
/// job's `function`; `None` for other kinds or when the param is missing.
pub fn module_of<'a>(kind: &str, params: &'a Params) -> Option<&'a str> {
    let param = module_param(kind)?.0;
    params.0.get(param).map(String::as_str)
}

/// The param that names the module of a job of `kind`, and the format that module must have.
pub fn module_param(kind: &str) -> Option<(&'static str, ModuleFormat)> {
    match kind {
        farm_proto::wasm::KIND => Some((farm_proto::wasm::MODULE_PARAM, ModuleFormat::Wasm)),
        farm_proto::python::KIND => {
            Some((farm_proto::python::FUNCTION_PARAM, ModuleFormat::Pickle))
        }
        _ => None,
    }
}

/// One indexed module.
#[derive(Debug, Clone, Copy)]
struct Entry {
    info: ModuleInfo,
    /// Last upload, submit or fetch: eviction takes the oldest first.
    used: Instant,
}

/// The index: what is stored, how much, and which jobs run what.
#[derive(Debug, Default)]
struct Index {
    modules: HashMap<String, Entry>,
    total: usize,
    /// The module each job submitted with one runs; ended jobs are dropped lazily (at the
    /// next eviction).
    pins: HashMap<JobId, String>,
    /// Modules checked by a submission that has no job id yet (it waits for its commit),
    /// with how many such submissions hold each: never evicted ([`Claim`]).
    claims: HashMap<String, usize>,
}

/// A module held for one submission from its check until its job is known: while the
/// submission waits for its journal commit, no upload can evict it. [`Claim::pin`] hands it
/// to the job; dropped without that (the submission failed), it lets go.
pub struct Claim {
    modules: Modules,
    hash: String,
}

impl Claim {
    /// Notes that `job` runs the module (it is not evicted while the job goes on), then lets
    /// the claim go.
    pub fn pin(self, job: JobId) {
        self.modules.pin(job, &self.hash);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut index = self.modules.index();
        if let Some(n) = index.claims.get_mut(&self.hash) {
            *n -= 1;
            if *n == 0 {
                index.claims.remove(&self.hash);
            }
        }
    }
}

/// Module reads for workers at once: each holds up to a module's bytes in memory.
const FETCHES: usize = 4;

/// The module store: cheap to clone.
#[derive(Clone)]
pub struct Modules {
    store: Store,
    limits: ModuleLimits,
    index: Arc<Mutex<Index>>,
    /// Bounds the reads for workers that run at once (see [`FETCHES`]).
    fetches: Arc<tokio::sync::Semaphore>,
    /// One upload at a time makes room and writes, so two cannot both take the last room.
    puts: Arc<Mutex<()>>,
}

/// What the index keeps of a module of `format`: a wasm module's shape from its check (an
/// `Err` says why it is not a module of the farm ABI); a pickle is opaque, its jobs' outputs
/// lines.
fn shape_of(bytes: &[u8], format: ModuleFormat) -> Result<ModuleInfo, String> {
    let shape = match format {
        ModuleFormat::Wasm => check(bytes)?,
        ModuleFormat::Pickle => OutputShape::Lines,
    };
    Ok(ModuleInfo { size: bytes.len(), shape, format })
}

/// The SHA-256 of `bytes` as the ABI writes it: 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

impl Modules {
    /// Indexes the modules already in `store` (a journal from an earlier run); `pins` are the
    /// resumed jobs' modules. Blocking: call it off the async runtime.
    pub fn open(
        store: Store,
        limits: ModuleLimits,
        pins: Vec<(JobId, String)>,
    ) -> Result<Self, ModuleError> {
        let mut index = Index { pins: pins.into_iter().collect(), ..Index::default() };
        let now = Instant::now();
        store
            .each_module(|hash, bytes, format| match format.and_then(|f| shape_of(bytes, f)) {
                Ok(info) => {
                    index.total += bytes.len();
                    index.modules.insert(hash.to_string(), Entry { info, used: now });
                }
                Err(e) => {
                    warn!(module = %hash, error = %e, "stored module no longer valid, ignored")
                }
            })
            .map_err(|e| ModuleError::Store(e.to_string()))?;
        if !index.modules.is_empty() {
            info!(modules = index.modules.len(), bytes = index.total, "modules indexed");
        }
        let fetches = Arc::new(tokio::sync::Semaphore::new(FETCHES));
        let (index, puts) = (Arc::new(Mutex::new(index)), Arc::default());
        Ok(Modules { store, limits, index, fetches, puts })
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        // A panic while holding the lock leaves a consistent index (every update is one step).
        self.index.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The limits this store keeps.
    pub fn limits(&self) -> ModuleLimits {
        self.limits
    }

    /// What the master knows of a module, if it holds it; counts as a use.
    pub fn info(&self, sha256: &str) -> Option<ModuleInfo> {
        let mut index = self.index();
        let entry = index.modules.get_mut(sha256)?;
        entry.used = Instant::now();
        Some(entry.info)
    }

    /// Holds a module for a submission, if the master has it (checked and held in one step,
    /// so no upload evicts it in between); counts as a use.
    pub fn claim(&self, sha256: &str) -> Option<(Claim, ModuleInfo)> {
        let mut index = self.index();
        let entry = index.modules.get_mut(sha256)?;
        entry.used = Instant::now();
        let info = entry.info;
        *index.claims.entry(sha256.to_string()).or_default() += 1;
        Some((Claim { modules: self.clone(), hash: sha256.to_string() }, info))
    }

    /// Notes that `job` runs `sha256`: it is not evicted while the job goes on.
    pub fn pin(&self, job: JobId, sha256: &str) {
        self.index().pins.insert(job, sha256.to_string());
    }

    /// Checks (a wasm module) and stores a module of `format`; returns its hash and info.
    /// Idempotent: bytes already stored keep the format they were stored with. `live` gives
    /// the unfinished jobs, asked only when room must be made; when it fails, every pin is
    /// kept. Blocking: hashing, checking and writing run on the caller's (blocking) thread.
    pub fn put(
        &self,
        wasm: &[u8],
        format: ModuleFormat,
        live: impl FnOnce() -> Result<Vec<JobId>, String>,
    ) -> Result<(String, ModuleInfo), ModuleError> {
        let max = self.limits.max_module;
        if wasm.len() > max {
            return Err(ModuleError::TooLarge(format!(
                "module of {} bytes is over the limit of {max} bytes (farm master --max-module-mib)",
                wasm.len()
            )));
        }
        let hash = sha256_hex(wasm);
        if let Some(info) = self.info(&hash) {
            return Ok((hash, info));
        }
        let info = shape_of(wasm, format).map_err(ModuleError::Invalid)?;
        let _one = self.puts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(info) = self.info(&hash) {
            return Ok((hash, info));
        }
        let evicted = self.make_room(wasm.len(), live)?;
        if !evicted.is_empty() {
            self.store.delete_modules(&evicted).map_err(|e| ModuleError::Store(e.to_string()))?;
            info!(evicted = evicted.len(), "modules evicted to make room");
        }
        let stored = self.store.put_module(&hash, wasm, format);
        stored.map_err(|e| ModuleError::Store(e.to_string()))?;
        let mut index = self.index();
        if index.modules.insert(hash.clone(), Entry { info, used: Instant::now() }).is_none() {
            index.total += info.size;
        }
        let format = format.as_str();
        info!(module = %hash, bytes = info.size, shape = %info.shape, format, "module stored");
        Ok((hash, info))
    }

    /// Takes out of the index the least recently used modules that no unfinished job or
    /// waiting submission runs until `size` more bytes fit; returns them (for the caller to
    /// delete), or refuses. The pins of ended jobs go first, unless the jobs cannot be listed.
    fn make_room(
        &self,
        size: usize,
        live: impl FnOnce() -> Result<Vec<JobId>, String>,
    ) -> Result<Vec<String>, ModuleError> {
        let max = self.limits.max_total;
        if self.index().total + size <= max {
            return Ok(Vec::new());
        }
        let live = live();
        let mut index = self.index();
        match live {
            Ok(live) => {
                let live: std::collections::HashSet<JobId> = live.into_iter().collect();
                index.pins.retain(|job, _| live.contains(job));
            }
            Err(e) => warn!(error = %e, "unfinished jobs not listed, every module pin kept"),
        }
        let pinned: std::collections::HashSet<String> =
            index.pins.values().chain(index.claims.keys()).cloned().collect();
        let mut candidates: Vec<(Instant, String, usize)> = index
            .modules
            .iter()
            .filter(|(hash, _)| !pinned.contains(*hash))
            .map(|(hash, e)| (e.used, hash.clone(), e.info.size))
            .collect();
        candidates.sort();
        let mut freed = 0;
        let need = (index.total + size).saturating_sub(max);
        let take = candidates.iter().take_while(|(_, _, s)| {
            let more = freed < need;
            freed += s;
            more
        });
        let evict: Vec<(String, usize)> = take.map(|(_, h, s)| (h.clone(), *s)).collect();
        let freeing: usize = evict.iter().map(|(_, s)| s).sum();
        if freeing < need {
            return Err(ModuleError::TooLarge(format!(
                "module store full: {} of {max} bytes held by modules of unfinished jobs; a module \
                 of {size} bytes does not fit (farm master --module-store-mib)",
                index.total - freeing
            )));
        }
        for (hash, s) in &evict {
            index.modules.remove(hash);
            index.total -= s;
        }
        Ok(evict.into_iter().map(|(h, _)| h).collect())
    }

    /// A module's bytes for a worker, read on a blocking thread, at most [`FETCHES`] at once.
    pub async fn fetch(&self, sha256: &str) -> Result<Vec<u8>, ModuleError> {
        let gone = |e: String| ModuleError::Store(format!("reading module {sha256}: {e}"));
        let _permit = self.fetches.acquire().await.map_err(|e| gone(e.to_string()))?;
        let (modules, hash) = (self.clone(), sha256.to_string());
        tokio::task::spawn_blocking(move || modules.bytes(&hash))
            .await
            .map_err(|e| gone(e.to_string()))?
    }

    /// A module's bytes, for a worker that asked. Blocking: a read of the store.
    pub fn bytes(&self, sha256: &str) -> Result<Vec<u8>, ModuleError> {
        let missing = || ModuleError::Missing(format!("the master holds no module {sha256}"));
        if self.info(sha256).is_none() {
            return Err(missing());
        }
        let bytes = self.store.module(sha256).map_err(|e| ModuleError::Store(e.to_string()))?;
        bytes.ok_or_else(missing)
    }
}

#[cfg(test)]
mod tests;
