//! The kernels a worker offers, by name.

use crate::kernels;
use crate::sdk::{Kernel, KernelDescriptor, KernelError, Params, Prepared};
use crate::wasm::{Runtime, WasmConfig, WasmKernel};
use crate::WorkerError;
use farm_proto::wasm::{is_sha256_hex, KIND, MODULE_PARAM};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Kernels by name. Cheap to clone.
#[derive(Clone, Default)]
pub struct Registry {
    kernels: BTreeMap<String, Arc<dyn Kernel>>,
    /// The wasm runtime, once [`Registry::enable_wasm`] added the `wasm` kernel.
    wasm: Option<Arc<Runtime>>,
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
    pub fn enable_wasm(&mut self, config: WasmConfig) -> Result<&mut Self, WorkerError> {
        let runtime = Runtime::new(config).map_err(WorkerError::Wasm)?;
        self.register(Box::new(WasmKernel::new(runtime.clone())));
        self.wasm = Some(runtime);
        Ok(self)
    }

    /// The wasm runtime, if the `wasm` kernel is offered.
    pub fn wasm(&self) -> Option<&Arc<Runtime>> {
        self.wasm.as_ref()
    }

    /// The module a job needs from the master before it can be prepared: a `wasm` job's whose
    /// module this worker holds neither in memory nor in its cache directory.
    pub(crate) fn needs_module(&self, kind: &str, params: &Params) -> Option<String> {
        let runtime = self.wasm.as_ref().filter(|_| kind == KIND)?;
        let hash = params.0.get(MODULE_PARAM).filter(|h| is_sha256_hex(h))?;
        runtime.missing(hash).then(|| hash.clone())
    }

    /// Hands the wasm runtime the bytes of a module fetched from the master.
    pub(crate) fn module_arrived(&self, hash: &str, wasm: Vec<u8>) {
        if let Some(runtime) = &self.wasm {
            runtime.arrived(hash, wasm);
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

    /// Parses a job's parameters for its kernel.
    pub fn prepare(&self, kind: &str, params: &Params) -> Result<Box<dyn Prepared>, KernelError> {
        let kernel = self
            .kernels
            .get(kind)
            .ok_or_else(|| KernelError::BadParam(format!("unknown kind {kind}")))?;
        crate::sdk::prepare_checked(kernel.as_ref(), params)
    }
}
