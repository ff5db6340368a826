//! The check of an uploaded module against the farm ABI (`farm_proto::wasm`), with
//! `wasmparser` (a validator, no runtime): the bytes must be a valid core module; every import
//! must be a function of module `farm` in the ABI with its exact signature (anything else, a
//! WASI import above all, is refused by name); it must export `farm_run(i64, i64) -> i64`, and
//! `memory` if it imports a function that takes pointers; and what it declares must be within
//! `farm_proto::wasm_limits` (checked first: counting is cheaper than validating). Gives the
//! module's output shape.

use farm_proto::kernel::clip;
use farm_proto::wasm::{self, AbiFunc, ValType};
use farm_proto::OutputShape;
use wasmparser::types::Types;
use wasmparser::{Encoding, ExternalKind, Parser, Payload, TypeRef, Validator};

/// Checks `wasm` against the ABI; returns its output shape or, in one line, why it is refused.
pub fn check(wasm: &[u8]) -> Result<OutputShape, String> {
    farm_proto::wasm_limits::check_declared(wasm)?;
    let invalid = |e: wasmparser::BinaryReaderError| format!("not a valid WebAssembly module: {e}");
    let types = Validator::new().validate_all(wasm).map_err(invalid)?;
    let mut imports: Vec<&'static str> = Vec::new();
    let mut funcs = 0u32;
    let mut run = false;
    let mut memory = false;
    let mut scale: Option<&[u8]> = None;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(invalid)? {
            Payload::Version { encoding: Encoding::Component, .. } => {
                return Err("a component, not a core WebAssembly module".into());
            }
            Payload::CustomSection(section) if section.name() == wasm::SCALE_SECTION => {
                scale = Some(section.data());
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(invalid)?;
                    let abi = wasm::import(import.module, import.name)?;
                    let TypeRef::Func(_) = import.ty else {
                        return Err(format!(
                            "import {}.{} must be a function",
                            clip(import.module),
                            clip(import.name)
                        ));
                    };
                    matches(&types, funcs, &abi, "import farm.")?;
                    funcs += 1;
                    imports.push(abi.name);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(invalid)?;
                    match (export.name, export.kind) {
                        (name, ExternalKind::Func) if name == wasm::RUN.name => {
                            matches(&types, export.index, &wasm::RUN, "export ")?;
                            run = true;
                        }
                        (wasm::MEMORY, ExternalKind::Memory) => memory = true,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if !run {
        return Err(format!("the module must export {} {}", wasm::RUN.name, wasm::RUN.signature()));
    }
    let mut pointers = wasm::IMPORTS.iter().filter(|f| f.takes_pointers());
    if let Some(f) = pointers.find(|f| imports.contains(&f.name)).filter(|_| !memory) {
        return Err(format!(
            "a module that imports farm.{} must export its memory as {:?}",
            f.name,
            wasm::MEMORY
        ));
    }
    wasm::shape(imports, scale)
}

/// Checks that function `index` has the signature of `abi`.
fn matches(types: &Types, index: u32, abi: &AbiFunc, what: &str) -> Result<(), String> {
    let id = types.as_ref().core_function_at(index);
    let func = types[id].unwrap_func();
    let ours = |t: &wasmparser::ValType| match t {
        wasmparser::ValType::I32 => Some(ValType::I32),
        wasmparser::ValType::I64 => Some(ValType::I64),
        _ => None,
    };
    let params: Option<Vec<ValType>> = func.params().iter().map(ours).collect();
    let results: Option<Vec<ValType>> = func.results().iter().map(ours).collect();
    let same = params.as_deref() == Some(abi.params) && results.as_deref() == Some(abi.results);
    if same {
        return Ok(());
    }
    Err(format!("{what}{} must have the signature {}, not {func}", abi.name, abi.signature()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(wat: &str) -> Vec<u8> {
        wat::parse_str(wat).expect("valid wat")
    }

    const RUN: &str = r#"(func (export "farm_run") (param i64 i64) (result i64) (i64.const 0))"#;

    #[test]
    fn the_examples_pass_with_their_shapes() {
        let primes = std::fs::read("../examples/wasm/primes.wasm").expect("built example");
        assert_eq!(check(&primes), Ok(OutputShape::Count));
        let pi = std::fs::read("../examples/wasm/pi.wasm").expect("built example");
        assert_eq!(check(&pi), Ok(OutputShape::Fraction { scale: 4.0 }));
        let wat = std::fs::read_to_string("../examples/wasm/primes.wat").expect("example");
        assert_eq!(check(&module(&wat)), Ok(OutputShape::Count));
        let lines = format!(
            r#"(module (import "farm" "emit" (func (param i32 i32))) (memory (export "memory") 1) {RUN})"#
        );
        assert_eq!(check(&module(&lines)), Ok(OutputShape::Lines));
        // farm.samples takes no pointer: no memory needed.
        let fraction = format!(r#"(module (import "farm" "samples" (func (param i64))) {RUN})"#);
        assert_eq!(check(&module(&fraction)), Ok(OutputShape::Fraction { scale: 1.0 }));
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let cases = [
            (
                format!(
                    r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))) {RUN})"#
                ),
                "import wasi_snapshot_preview1.fd_write is not allowed",
            ),
            (
                format!(
                    r#"(module (import "farm" "emit" (func (param i64))) (memory (export "memory") 1) {RUN})"#
                ),
                "import farm.emit must have the signature (i32, i32) -> ()",
            ),
            (
                format!(r#"(module (import "farm" "emit" (func (param i32 i32))) {RUN})"#),
                "must export its memory",
            ),
            (
                r#"(module (func (export "farm_run") (param i32) (result i64) (i64.const 0)))"#
                    .into(),
                "export farm_run must have the signature (i64, i64) -> (i64)",
            ),
            ("(module)".into(), "the module must export farm_run"),
            (
                format!("(module {} {RUN})", "(table 1 funcref) ".repeat(100)),
                "the module declares 100 tables, farm allows at most 8",
            ),
            (
                format!(r#"(module (import "farm" "memory" (memory 1)) {RUN})"#),
                "farm.memory is not in the farm ABI",
            ),
        ];
        for (wat, want) in cases {
            let err = check(&module(&wat)).unwrap_err();
            assert!(err.contains(want), "{wat}: {err}");
        }
        let garbage = check(b"not wasm at all").unwrap_err();
        assert!(garbage.starts_with("not a valid WebAssembly module"), "{garbage}");
    }
}
