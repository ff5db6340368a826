//! One `wasm` job on a worker: its module and params, and the instances its shards run on.
//! An instance is made for a shard when none is idle, and (with `reuse_instances`) goes back
//! to the idle list after a shard that succeeded; the idle ones go with the job.

use super::compile::{Compiled, Slot};
use super::linker::{Ctx, ModuleFailed};
use super::runtime::Runtime;
use crate::kernels::params::Indices;
use crate::sdk::{CancelFlag, KernelError, Output, Params, Prepared, ShardInput};
use std::sync::{Arc, Mutex};
use wasmtime::{Store, Trap, TypedFunc, UpdateDeadline};

/// An instance of the job's module, ready to run shards.
struct Instance {
    store: Store<Ctx>,
    run: TypedFunc<(i64, i64), i64>,
}

/// A prepared `wasm` job.
pub(crate) struct WasmJob {
    runtime: Arc<Runtime>,
    slot: Arc<Slot>,
    params: Arc<Params>,
    idle: Mutex<Vec<Instance>>,
}

impl WasmJob {
    /// The job running the module in `slot` with `params`.
    pub fn new(runtime: Arc<Runtime>, slot: Arc<Slot>, params: Params) -> Self {
        WasmJob { runtime, slot, params: Arc::new(params), idle: Mutex::new(Vec::new()) }
    }

    /// A new instance, made under the shard's cancel flag and deadline: a module's start
    /// function runs here, and may loop forever like `farm_run`.
    fn instantiate(
        &self,
        compiled: &Compiled,
        cancel: &CancelFlag,
    ) -> Result<Instance, KernelError> {
        let ctx = Ctx {
            params: self.params.clone(),
            input: None,
            lines: Vec::new(),
            emitted: 0,
            samples: 0,
            cancel: cancel.clone(),
            max_memory: self.runtime.config().max_memory,
            memory: 0,
        };
        let mut store = Store::new(self.runtime.engine(), ctx);
        store.limiter(|ctx| ctx);
        // Each tick, the instance checks its shard's cancel flag and deadline.
        store.epoch_deadline_callback(|ctx| match ctx.data().cancel.check() {
            Ok(()) => Ok(UpdateDeadline::Continue(1)),
            Err(stop) => Err(wasmtime::format_err!("{stop}")),
        });
        store.set_epoch_deadline(1);
        let instance = {
            let _running = self.runtime.running();
            compiled.pre.instantiate(&mut store)
        };
        let instance = instance.map_err(|e| {
            cancel.check().err().unwrap_or_else(|| failure(&e, "cannot instantiate"))
        })?;
        let run = instance
            .get_typed_func::<(i64, i64), i64>(&mut store, farm_proto::wasm::RUN.name)
            .map_err(|e| failure(&e, "no farm_run"))?;
        Ok(Instance { store, run })
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Instance>> {
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The indices `farm_run` gets: a range shard's; for an input shard, the index (the module
/// reads the line with `farm.input`) or, for a module that does not import it, the line as a
/// whole number n, as `n..n+1` (what the numeric built-in kernels do).
fn bounds(shard: &ShardInput, compiled: &Compiled) -> Result<(u64, u64), KernelError> {
    if shard.input.is_none() || compiled.reads_input {
        return Ok((shard.lo, shard.hi));
    }
    let first = Indices::of(shard)?.iter().next().unwrap_or(shard.lo);
    Ok((first, first.wrapping_add(1)))
}

impl Prepared for WasmJob {
    fn run(&self, shard: &ShardInput, cancel: &CancelFlag) -> Result<Output, KernelError> {
        cancel.check()?;
        let compiled = self.runtime.compiled(&self.slot, cancel)?;
        let (lo, hi) = bounds(shard, &compiled)?;
        let pooled = if self.runtime.config().reuse_instances { self.idle().pop() } else { None };
        let mut instance = match pooled {
            Some(instance) => instance,
            None => self.instantiate(&compiled, cancel)?,
        };
        cancel.check()?;
        instance.store.data_mut().start(shard.input.clone(), cancel.clone());
        instance.store.set_epoch_deadline(1);
        let result = {
            let _running = self.runtime.running();
            instance.run.call(&mut instance.store, (lo as i64, hi as i64))
        };
        match result {
            Ok(value) => {
                let ctx = instance.store.data_mut();
                let output = if compiled.emits {
                    Output::Lines(std::mem::take(&mut ctx.lines))
                } else if compiled.fraction {
                    Output::Fraction { hits: value as u64, samples: ctx.samples }
                } else {
                    Output::Count(value as u64)
                };
                if self.runtime.config().reuse_instances {
                    self.idle().push(instance);
                }
                Ok(output)
            }
            // The instance may be half-way through anything: it is dropped.
            Err(e) => Err(cancel.check().err().unwrap_or_else(|| failure(&e, "wasm error"))),
        }
    }
}

/// A shard's failure from a wasmtime error: the module's own message (`farm.fail`), the
/// trap's, or the innermost cause (a memory limit, a bad pointer given to an import).
fn failure(e: &wasmtime::Error, what: &str) -> KernelError {
    if let Some(failed) = e.downcast_ref::<ModuleFailed>() {
        return KernelError::Failed(format!("module failed: {failed}"));
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        // Its text starts "wasm trap: ".
        return KernelError::Failed(trap.to_string());
    }
    KernelError::Failed(format!("{what}: {}", e.root_cause()))
}
