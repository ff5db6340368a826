//! The kernels a worker offers, by name.

use crate::kernels;
use crate::sdk::{Kernel, KernelDescriptor, KernelError, Params, Prepared};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Kernels by name. Cheap to clone.
#[derive(Clone, Default)]
pub struct Registry {
    kernels: BTreeMap<String, Arc<dyn Kernel>>,
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
