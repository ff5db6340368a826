//! What a module sees of the worker: the store data of one instance ([`Ctx`]) and the five
//! `farm` imports, with every pointer checked against the module's memory (a bad one traps).

use crate::sdk::{CancelFlag, Params};
use farm_proto::wasm::{EMIT, FAIL, IMPORT_MODULE, INPUT, MEMORY, PARAM, SAMPLES};
use farm_proto::wasm_limits::{MAX_MEMORIES, MAX_TABLES, TABLE_ELEMENT_BYTES};
use std::sync::Arc;
use wasmtime::{Caller, Engine, Extern, Linker, Memory, ResourceLimiter, Result};

/// Most bytes one shard may emit: the worker refuses larger outputs anyway.
pub(crate) const MAX_EMIT_BYTES: usize = 32 << 20;

/// One instance's state: the job's params, the current shard's input, cancel flag and
/// emitted items, and the memory cap.
pub(crate) struct Ctx {
    /// The job's params (the module reads them with `farm.param`).
    pub params: Arc<Params>,
    /// The current shard's input line.
    pub input: Option<String>,
    /// What the current shard emitted.
    pub lines: Vec<String>,
    /// Their bytes.
    pub emitted: usize,
    /// The samples the current shard reported (`farm.samples`).
    pub samples: u64,
    /// The current shard's cancel flag and deadline, checked each epoch tick.
    pub cancel: CancelFlag,
    /// The most bytes the instance's memories and tables may have, all together.
    pub max_memory: usize,
    /// The bytes its memories and tables have now.
    pub memory: usize,
}

impl Ctx {
    /// Makes the instance ready for another shard.
    pub fn start(&mut self, input: Option<String>, cancel: CancelFlag) {
        self.input = input;
        self.lines.clear();
        self.emitted = 0;
        self.samples = 0;
        self.cancel = cancel;
    }
}

impl Ctx {
    /// One memory or table grows from `current` to `desired` bytes: the instance's memories
    /// and tables together must stay within `max_memory`.
    fn grow(&mut self, current: usize, desired: usize) -> Result<bool> {
        let total = (self.memory - current.min(self.memory)).saturating_add(desired);
        if total > self.max_memory {
            return Err(wasmtime::format_err!(
                "memory limit: the module asked for {total} bytes of memory and tables (a table \
                 element counts {TABLE_ELEMENT_BYTES} bytes), this worker allows {} (farm worker \
                 --wasm-max-memory)",
                self.max_memory
            ));
        }
        self.memory = total;
        Ok(true)
    }
}

/// One cap in bytes for every memory and table of an instance, and at most
/// [`MAX_MEMORIES`] memories and [`MAX_TABLES`] tables (the master refuses modules that
/// declare more; this holds for any module a worker is given).
impl ResourceLimiter for Ctx {
    fn memory_growing(&mut self, current: usize, desired: usize, _: Option<usize>) -> Result<bool> {
        self.grow(current, desired)
    }

    fn table_growing(&mut self, current: usize, desired: usize, _: Option<usize>) -> Result<bool> {
        let bytes = |elements: usize| elements.saturating_mul(TABLE_ELEMENT_BYTES);
        self.grow(bytes(current), bytes(desired))
    }

    fn tables(&self) -> usize {
        MAX_TABLES.max as usize
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES.max as usize
    }

    fn instances(&self) -> usize {
        1
    }
}

/// Why a module failed its shard on purpose (`farm.fail`), as opposed to a trap.
#[derive(Debug)]
pub(crate) struct ModuleFailed(pub String);

impl std::fmt::Display for ModuleFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ModuleFailed {}

/// The `farm` imports.
pub(crate) fn linker(engine: &Engine) -> Result<Linker<Ctx>> {
    let mut linker = Linker::new(engine);
    linker.func_wrap(
        IMPORT_MODULE,
        PARAM.name,
        |mut caller: Caller<'_, Ctx>, name: i32, name_len: i32, out: i32, cap: i32| {
            let memory = memory(&mut caller, PARAM.name)?;
            let name = read(&memory, &caller, name, name_len, PARAM.name)?;
            let value = std::str::from_utf8(&name)
                .ok()
                .and_then(|name| caller.data().params.0.get(name).cloned());
            let Some(value) = value else { return Ok(-1) };
            write(&memory, &mut caller, out, cap, value.as_bytes(), PARAM.name)
        },
    )?;
    linker.func_wrap(
        IMPORT_MODULE,
        EMIT.name,
        |mut caller: Caller<'_, Ctx>, ptr: i32, len: i32| {
            let memory = memory(&mut caller, EMIT.name)?;
            let item = read(&memory, &caller, ptr, len, EMIT.name)?;
            let item = String::from_utf8(item)
                .map_err(|_| wasmtime::format_err!("farm.emit: the item is not UTF-8"))?;
            let ctx = caller.data_mut();
            ctx.emitted += item.len();
            if ctx.emitted > MAX_EMIT_BYTES {
                return Err(wasmtime::format_err!(
                    "farm.emit: the shard emitted over {} MiB",
                    MAX_EMIT_BYTES >> 20
                ));
            }
            ctx.lines.push(item);
            Ok(())
        },
    )?;
    linker.func_wrap(
        IMPORT_MODULE,
        INPUT.name,
        |mut caller: Caller<'_, Ctx>, out: i32, cap: i32| {
            let memory = memory(&mut caller, INPUT.name)?;
            let Some(line) = caller.data().input.clone() else { return Ok(-1) };
            write(&memory, &mut caller, out, cap, line.as_bytes(), INPUT.name)
        },
    )?;
    linker.func_wrap(IMPORT_MODULE, SAMPLES.name, |mut caller: Caller<'_, Ctx>, n: i64| {
        let ctx = caller.data_mut();
        ctx.samples = ctx.samples.checked_add(n as u64).ok_or_else(|| {
            wasmtime::format_err!("farm.samples: the shard's samples overflow a u64")
        })?;
        Ok(())
    })?;
    linker.func_wrap(
        IMPORT_MODULE,
        FAIL.name,
        |mut caller: Caller<'_, Ctx>, ptr: i32, len: i32| -> Result<()> {
            let memory = memory(&mut caller, FAIL.name)?;
            let message = read(&memory, &caller, ptr, len.min(4096), FAIL.name)?;
            let message = String::from_utf8_lossy(&message).into_owned();
            Err(wasmtime::Error::new(ModuleFailed(message)))
        },
    )?;
    Ok(linker)
}

/// The module's exported memory.
fn memory(caller: &mut Caller<'_, Ctx>, import: &str) -> Result<Memory> {
    caller.get_export(MEMORY).and_then(Extern::into_memory).ok_or_else(|| {
        wasmtime::format_err!("farm.{import}: the module exports no memory named {MEMORY:?}")
    })
}

/// Copies `len` bytes at `ptr` out of the module's memory.
fn read(
    memory: &Memory,
    caller: &Caller<'_, Ctx>,
    ptr: i32,
    len: i32,
    import: &str,
) -> Result<Vec<u8>> {
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    memory
        .data(caller)
        .get(start..start.saturating_add(len))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| out_of_bounds(import, start, len))
}

/// Copies at most `cap` bytes of `value` to `out` in the module's memory; returns the whole
/// value's length (so a module can ask again with a larger buffer).
fn write(
    memory: &Memory,
    caller: &mut Caller<'_, Ctx>,
    out: i32,
    cap: i32,
    value: &[u8],
    import: &str,
) -> Result<i32> {
    let (start, cap) = (out as u32 as usize, cap as u32 as usize);
    let n = value.len().min(cap);
    let dest = memory
        .data_mut(caller)
        .get_mut(start..start.saturating_add(n))
        .ok_or_else(|| out_of_bounds(import, start, n))?;
    dest.copy_from_slice(&value[..n]);
    i32::try_from(value.len()).map_err(|_| wasmtime::format_err!("farm.{import}: value over 2 GiB"))
}

fn out_of_bounds(import: &str, start: usize, len: usize) -> wasmtime::Error {
    wasmtime::format_err!(
        "farm.{import}: bytes {start}..{} are outside the module's memory",
        start + len
    )
}
