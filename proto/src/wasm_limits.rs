//! What a wasm module may declare, checked before it is compiled: a compile bomb (a module of
//! a million trivial functions, or one huge function) costs the compiler minutes and gigabytes
//! while staying under the size limit, so the counts that drive compile time and memory are
//! bounded. The master checks an upload against [`check_declared`] (InvalidArgument) and the
//! worker checks again before it compiles, with the same function, so the two cannot disagree.
//! Also the number of tables and memories an instance may have, which the worker's resource
//! limiter enforces at instantiation.
//!
//! The bounds are generous for compute kernels: the C and WAT examples declare fewer than 20
//! functions; a Rust or C kernel with its libc rarely passes a few thousand.

/// One bound on what a module declares: its name in messages and the most allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// What is counted, as a message names it ("functions", "locals in one function").
    pub what: &'static str,
    /// The most a module may declare.
    pub max: u64,
}

/// Functions a module may define (imports not counted: the ABI has five).
pub const MAX_FUNCTIONS: Bound = Bound { what: "functions", max: 10_000 };
/// Locals one function may declare (parameters not counted).
pub const MAX_LOCALS: Bound = Bound { what: "locals in one function", max: 5_000 };
/// Bytes of one function's body (locals and code).
pub const MAX_BODY_BYTES: Bound = Bound { what: "bytes in one function body", max: 256 << 10 };
/// Types (signatures) a module may declare.
pub const MAX_TYPES: Bound = Bound { what: "types", max: 10_000 };
/// Globals a module may define.
pub const MAX_GLOBALS: Bound = Bound { what: "globals", max: 1_000 };
/// Data segments.
pub const MAX_DATA_SEGMENTS: Bound = Bound { what: "data segments", max: 1_000 };
/// Element segments.
pub const MAX_ELEMENT_SEGMENTS: Bound = Bound { what: "element segments", max: 1_000 };
/// Exports.
pub const MAX_EXPORTS: Bound = Bound { what: "exports", max: 1_000 };
/// Tables one module (and so one instance) may have.
pub const MAX_TABLES: Bound = Bound { what: "tables", max: 8 };
/// Memories one module (and so one instance) may have.
pub const MAX_MEMORIES: Bound = Bound { what: "memories", max: 8 };
/// Exception tags.
pub const MAX_TAGS: Bound = Bound { what: "tags", max: 1_000 };

/// Bytes one table element counts against an instance's memory cap: a funcref is a pointer
/// in wasmtime's tables (8 bytes), counted twice to cover the bookkeeping around it and
/// lazily initialised entries, so a cap in bytes holds for tables and memories alike.
pub const TABLE_ELEMENT_BYTES: usize = 16;

/// Checks `count` against `bound`: the refusal names both.
fn within(bound: Bound, count: u64) -> Result<(), String> {
    if count <= bound.max {
        return Ok(());
    }
    Err(format!(
        "the module declares {count} {}, farm allows at most {} (a bound on what a module may \
         declare before it is compiled)",
        bound.what, bound.max
    ))
}

/// Checks what `wasm` declares against every bound, without validating it (the master
/// validates after; the worker's compiler does): cheap, linear in the module's size, and
/// stops at the first section over a bound.
pub fn check_declared(wasm: &[u8]) -> Result<(), String> {
    use wasmparser::{Parser, Payload};
    let invalid = |e: wasmparser::BinaryReaderError| format!("not a valid WebAssembly module: {e}");
    // Sections are summed: a module that repeats one (invalid anyway) cannot split a count.
    let mut counts = [0u64; 10];
    let mut add = |slot: usize, bound: Bound, n: u32| {
        counts[slot] += u64::from(n);
        within(bound, counts[slot])
    };
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(invalid)? {
            Payload::TypeSection(r) => add(0, MAX_TYPES, r.count())?,
            Payload::FunctionSection(r) => add(1, MAX_FUNCTIONS, r.count())?,
            Payload::CodeSectionStart { count, .. } => add(2, MAX_FUNCTIONS, count)?,
            Payload::TableSection(r) => add(3, MAX_TABLES, r.count())?,
            Payload::MemorySection(r) => add(4, MAX_MEMORIES, r.count())?,
            Payload::GlobalSection(r) => add(5, MAX_GLOBALS, r.count())?,
            Payload::ExportSection(r) => add(6, MAX_EXPORTS, r.count())?,
            Payload::ElementSection(r) => add(7, MAX_ELEMENT_SEGMENTS, r.count())?,
            Payload::DataSection(r) => add(8, MAX_DATA_SEGMENTS, r.count())?,
            Payload::DataCountSection { count, .. } => within(MAX_DATA_SEGMENTS, count.into())?,
            Payload::TagSection(r) => add(9, MAX_TAGS, r.count())?,
            Payload::CodeSectionEntry(body) => {
                within(MAX_BODY_BYTES, body.range().len() as u64)?;
                let mut locals = 0u64;
                for declared in body.get_locals_reader().map_err(invalid)? {
                    locals += u64::from(declared.map_err(invalid)?.0);
                    within(MAX_LOCALS, locals)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module of `n` trivial functions and a `farm_run`, built as bytes (WAT text for a
    /// million functions would be slow to write here).
    fn functions(n: usize) -> Vec<u8> {
        let mut text = String::from("(module");
        for _ in 0..n {
            text.push_str(" (func)");
        }
        text.push_str(r#" (func (export "farm_run") (param i64 i64) (result i64) (i64.const 0)))"#);
        wat::parse_str(&text).expect("wat")
    }

    #[test]
    fn a_module_just_under_every_bound_passes_and_one_over_is_refused_by_name() {
        let max = MAX_FUNCTIONS.max as usize;
        assert_eq!(check_declared(&functions(max - 1)), Ok(()));
        let err = check_declared(&functions(max)).unwrap_err();
        assert!(err.starts_with("the module declares 10001 functions, farm allows at most 10000"));
        let locals = |n: u64| {
            let text = format!(
                r#"(module (func (export "farm_run") (param i64 i64) (result i64)
                   (local {}) (i64.const 0)))"#,
                "i64 ".repeat(n as usize)
            );
            check_declared(&wat::parse_str(text).expect("wat"))
        };
        assert_eq!(locals(MAX_LOCALS.max), Ok(()));
        assert!(locals(MAX_LOCALS.max + 1).unwrap_err().contains("5001 locals in one function"));
        let tables = |n: usize| {
            let text = format!("(module {})", "(table 1 funcref) ".repeat(n));
            check_declared(&wat::parse_str(text).expect("wat"))
        };
        assert_eq!(tables(MAX_TABLES.max as usize), Ok(()));
        assert!(tables(100).unwrap_err().contains("declares 100 tables, farm allows at most 8"));
        let body = format!(
            r#"(module (func {} ))"#,
            "(drop (i64.const 0)) ".repeat(MAX_BODY_BYTES.max as usize / 2)
        );
        let err = check_declared(&wat::parse_str(body).expect("wat")).unwrap_err();
        assert!(err.contains("bytes in one function body"), "{err}");
        assert!(check_declared(b"\0asm\x01\0\0\0\x03\x05").unwrap_err().starts_with("not a valid"));
    }
}
