//! Compiling modules off the pool: one compile thread per worker takes modules in turn
//! (checked against their hash and `farm_proto::wasm_limits` first, so a compile bomb is
//! refused before the compiler sees it) or loads their code from the disk cache. The pool
//! threads whose shards need a module wait for it while checking their shard's cancel flag
//! and deadline, so a cancel or a timeout during a compile fails the shard within
//! [`POLL`], and no wait outlasts [`COMPILE_DEADLINE`]. A compile cannot be stopped half-way;
//! the bounds on what a module declares bound how long one takes.

use super::linker::Ctx;
use super::runtime::Runtime;
use crate::sdk::{CancelFlag, KernelError};
use farm_proto::wasm::{AbiFunc, EMIT, INPUT, SAMPLES};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};
use tracing::{info, warn};
use wasmtime::{InstancePre, Module};

/// How often a waiting pool thread checks its shard's cancel flag and deadline.
const POLL: Duration = Duration::from_millis(5);
/// The longest a shard waits for its module's compile: past it the shard fails.
pub(crate) const COMPILE_DEADLINE: Duration = Duration::from_secs(60);

/// Where a module's code comes from, until it is compiled.
pub(crate) enum Source {
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

/// Where a module is on its way to being compiled.
enum State {
    /// Not asked for yet: its source.
    Waiting(Source),
    /// On the compile thread (or queued for it) since then.
    Compiling(Instant),
    /// Compiled, or why not.
    Ready(Result<Arc<Compiled>, String>),
}

/// One module by hash: its source until compiled, then the compiled module (or why not).
pub(crate) struct Slot {
    hash: String,
    state: Mutex<State>,
    ready: Condvar,
}

/// A module for the compile thread.
pub(crate) struct CompileRequest {
    slot: Arc<Slot>,
    source: Source,
}

impl Slot {
    /// A module not compiled yet.
    pub fn new(hash: &str, source: Source) -> Self {
        Slot {
            hash: hash.to_string(),
            state: Mutex::new(State::Waiting(source)),
            ready: Condvar::new(),
        }
    }

    /// Its SHA-256.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn finish(&self, result: Result<Arc<Compiled>, String>) {
        *self.state() = State::Ready(result);
        self.ready.notify_all();
    }
}

impl Runtime {
    /// The compiled module: asks the compile thread for it on the first call, then waits
    /// (as every other caller meanwhile does) while `cancel` allows, at most
    /// [`COMPILE_DEADLINE`]. Runs on a pool thread.
    pub(crate) fn compiled(
        &self,
        slot: &Arc<Slot>,
        cancel: &CancelFlag,
    ) -> Result<Arc<Compiled>, KernelError> {
        let mut state = slot.state();
        loop {
            match &*state {
                State::Ready(result) => {
                    let result = result.clone();
                    drop(state);
                    if result.is_err() {
                        self.forget(slot);
                    }
                    return result.map_err(KernelError::Failed);
                }
                State::Compiling(since) if since.elapsed() >= COMPILE_DEADLINE => {
                    return Err(KernelError::Failed(format!(
                        "module {} did not compile within {} s",
                        slot.hash,
                        COMPILE_DEADLINE.as_secs()
                    )));
                }
                State::Compiling(_) => {}
                State::Waiting(_) => {
                    let State::Waiting(source) =
                        std::mem::replace(&mut *state, State::Compiling(Instant::now()))
                    else {
                        unreachable!("matched Waiting")
                    };
                    let request = CompileRequest { slot: slot.clone(), source };
                    if let Err(e) = self.request_compile(request) {
                        *state = State::Ready(Err(e));
                        continue;
                    }
                }
            }
            cancel.check()?;
            state = slot.ready.wait_timeout(state, POLL).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Compiles (or loads) a module's source and links it: on the compile thread.
    fn load(&self, slot: &Slot, source: Source) -> Result<Arc<Compiled>, String> {
        let module = match source {
            Source::Bytes(wasm) => self.compile(&slot.hash, &wasm)?,
            Source::Disk(path) => {
                // SAFETY: the cache directory was checked to be this user's alone
                // (`cache::check_dir`), as trusted as the worker's binary; the file name
                // carries the engine's settings.
                let loaded = unsafe { Module::deserialize_file(&self.engine, &path) };
                loaded.map_err(|e| {
                    let _ = std::fs::remove_file(&path);
                    format!("cached module {} unreadable (removed): {e}", slot.hash)
                })?
            }
        };
        let range = module.image_range();
        self.resize(slot, range.end as usize - range.start as usize);
        let imports: Vec<String> = module.imports().map(|i| i.name().to_string()).collect();
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| format!("module {} does not link: {e}", slot.hash))?;
        let has = |f: AbiFunc| imports.iter().any(|i| i == f.name);
        let (emits, fraction, reads_input) = (has(EMIT), has(SAMPLES), has(INPUT));
        Ok(Arc::new(Compiled { pre, emits, fraction, reads_input }))
    }

    /// Checks the bytes against their hash and what they declare against the bounds,
    /// compiles them, and writes the code to the cache.
    fn compile(&self, hash: &str, wasm: &[u8]) -> Result<Module, String> {
        let actual: String = Sha256::digest(wasm).iter().map(|b| format!("{b:02x}")).collect();
        if actual != hash {
            return Err(format!("module {hash}: the bytes received have SHA-256 {actual}"));
        }
        farm_proto::wasm_limits::check_declared(wasm)
            .map_err(|e| format!("module {hash} refused: {e}"))?;
        let started = Instant::now();
        let module = Module::new(&self.engine, wasm)
            .map_err(|e| format!("module {hash} does not compile: {e}"))?;
        self.compiles.fetch_add(1, Ordering::Relaxed);
        let ms = started.elapsed().as_millis() as u64;
        info!(module = %hash, ms, bytes = wasm.len(), "wasm module compiled");
        if let Some(disk) = &self.disk {
            let path = disk.file(hash, &self.compat);
            let written = module
                .serialize()
                .map_err(|e| e.to_string())
                .and_then(|code| disk.write(&path, &code).map_err(|e| e.to_string()));
            if let Err(e) = written {
                warn!(module = %hash, path = %path.display(), error = %e, "wasm cache not written");
            }
        }
        Ok(module)
    }
}

/// Starts the compile thread of `runtime`; it ends when the runtime is dropped.
pub(crate) fn spawn(
    runtime: Weak<Runtime>,
    requests: crossbeam_channel::Receiver<CompileRequest>,
) -> std::io::Result<()> {
    std::thread::Builder::new().name("farm-wasm-compile".into()).spawn(move || {
        while let Ok(CompileRequest { slot, source }) = requests.recv() {
            let Some(runtime) = runtime.upgrade() else { return };
            let result = runtime.load(&slot, source);
            slot.finish(result);
        }
    })?;
    Ok(())
}
