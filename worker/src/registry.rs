//! The kernels a worker offers, by name, and the modules their jobs fetch from the master:
//! the `wasm` kernel's (compiled by its runtime) and those of any kernel that names a module
//! param ([`Kernel::module_param`]), kept as bytes in a bounded cache (`modules.rs`).

use crate::kernels;
use crate::modules::ModuleCache;
use crate::sdk::{Kernel, KernelDescriptor, KernelError, Params, Prepared};
#[cfg(feature = "wasm")]
use crate::wasm::{Runtime, WasmConfig, WasmKernel};
#[cfg(feature = "wasm")]
use crate::WorkerError;
use farm_proto::kernel::quote;
use farm_proto::wasm::is_sha256_hex;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Kernels by name. Cheap to clone.
#[derive(Clone, Default)]
pub struct Registry {
    kernels: BTreeMap<String, Arc<dyn Kernel>>,
    /// The wasm runtime, once [`Registry::enable_wasm`] added the `wasm` kernel.
    #[cfg(feature = "wasm")]
    wasm: Option<Arc<Runtime>>,
    /// Modules fetched for kernels that name a module param (not `wasm`'s).
    modules: ModuleCache,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kernels.keys()).finish()
    }
}

impl Registry {
    /// The built-in kernels, plus `exec` when `allow_exec` is set.
    pub fn builtin(allow_exec: bool) -> Self {
        let mut registry = Registry::default();
        for kernel in kernels::builtin() {
            registry.kernels.insert(kernel.name().to_string(), Arc::from(kernel));
        }
        if allow_exec {
            registry.register(kernels::exec_kernel());
        }
        registry
    }

    /// Adds the `wasm` kernel: jobs that bring their own WebAssembly module, which the
    /// session fetches from the master. `farm worker` does this unless `--no-wasm`.
    #[cfg(feature = "wasm")]
    pub fn enable_wasm(&mut self, config: WasmConfig) -> Result<&mut Self, WorkerError> {
        let runtime = Runtime::new(config).map_err(WorkerError::Wasm)?;
        self.register(Box::new(WasmKernel::new(runtime.clone())));
        self.wasm = Some(runtime);
        Ok(self)
    }

    /// The wasm runtime, if the `wasm` kernel is offered.
    #[cfg(feature = "wasm")]
    pub fn wasm(&self) -> Option<&Arc<Runtime>> {
        self.wasm.as_ref()
    }

    /// The module a job needs from the master before it can be prepared: a `wasm` job's whose
    /// module this worker holds neither in memory nor in its cache directory, or the module
    /// named by the param of a kernel's [`Kernel::module_param`] that is not in the cache.
    pub(crate) fn needs_module(&self, kind: &str, params: &Params) -> Option<String> {
        #[cfg(feature = "wasm")]
        if kind == farm_proto::wasm::KIND {
            let runtime = self.wasm.as_ref()?;
            let hash = params.0.get(farm_proto::wasm::MODULE_PARAM).filter(|h| is_sha256_hex(h))?;
            return runtime.missing(hash).then(|| hash.clone());
        }
        let param = self.kernels.get(kind)?.module_param()?;
        let hash = params.0.get(param).filter(|h| is_sha256_hex(h))?;
        (!self.modules.contains(hash)).then(|| hash.clone())
    }

    /// Keeps the bytes of a module fetched from the master for the jobs of `kinds` that
    /// waited for it: the wasm runtime takes a `wasm` job's, the module cache the others'.
    pub(crate) fn module_arrived(&self, hash: &str, bytes: Vec<u8>, kinds: &[&str]) {
        #[cfg(feature = "wasm")]
        if let Some(runtime) = &self.wasm {
            if kinds.contains(&farm_proto::wasm::KIND) {
                if kinds.iter().all(|k| *k == farm_proto::wasm::KIND) {
                    runtime.arrived(hash, bytes);
                    return;
                }
                runtime.arrived(hash, bytes.clone());
            }
        }
        let named = |k: &&str| self.kernels.get(*k).is_some_and(|k| k.module_param().is_some());
        if kinds.iter().any(named) {
            self.modules.insert(hash, bytes);
        }
    }

    /// Adds (or replaces) a kernel under its name.
    pub fn register(&mut self, kernel: Box<dyn Kernel>) -> &mut Self {
        self.kernels.insert(kernel.name().to_string(), Arc::from(kernel));
        self
    }

    /// The names of the kernels offered.
    pub fn kinds(&self) -> Vec<String> {
        self.kernels.keys().cloned().collect()
    }

    /// What each kernel offered says about itself, in name order.
    pub fn descriptors(&self) -> Vec<KernelDescriptor> {
        self.kernels.values().map(|k| k.describe()).collect()
    }

    /// Whether a kernel of that name is offered.
    pub fn contains(&self, kind: &str) -> bool {
        self.kernels.contains_key(kind)
    }

    /// Parses a job's parameters for its kernel; a kernel that names a module param gets the
    /// module's bytes too ([`Kernel::prepare_with_module`]), which the session fetched first.
    pub fn prepare(&self, kind: &str, params: &Params) -> Result<Box<dyn Prepared>, KernelError> {
        let kernel = self
            .kernels
            .get(kind)
            .ok_or_else(|| KernelError::BadParam(format!("unknown kind {kind}")))?;
        let Some(param) = kernel.module_param() else {
            return crate::sdk::prepare_checked(kernel.as_ref(), params);
        };
        let checked = kernel.describe().check(params)?;
        let hash = checked.text(param)?;
        if !is_sha256_hex(hash) {
            return Err(KernelError::BadParam(format!(
                "param {param} must be a SHA-256 (64 lowercase hex digits), got {}",
                quote(hash)
            )));
        }
        let module = self
            .modules
            .get(hash)
            .ok_or_else(|| KernelError::BadParam(format!("module {hash} is not on this worker")))?;
        kernel.prepare_with_module(&checked, module)
    }
}
