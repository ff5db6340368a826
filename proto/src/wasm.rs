//! The wasm kernel's ABI as data: the kind's name, its `module` param, the functions a module
//! may import from module `farm` and the one it must export, and the rule that gives a module
//! its output shape. The master checks uploads against this table (with `wasmparser`) and the
//! worker links against it (with wasmtime), so the two cannot disagree. `docs/wasm.md` is the
//! user's account of the same ABI.

use crate::kernel::{clip, KernelDescriptor, OutputShape, ParamSpec};

/// The kind of job that runs a WebAssembly module.
pub const KIND: &str = "wasm";
/// The param that names a job's module by the SHA-256 of its bytes (64 lowercase hex digits).
pub const MODULE_PARAM: &str = "module";
/// The only module a kernel may import from.
pub const IMPORT_MODULE: &str = "farm";
/// The memory a module must export when it imports a function that takes pointers.
pub const MEMORY: &str = "memory";
/// Default largest module the master accepts.
pub const DEFAULT_MAX_MODULE_BYTES: usize = 16 << 20;

/// A WebAssembly value type, as far as the ABI needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValType {
    /// `i32`: a pointer or a length.
    I32,
    /// `i64`: an index or a count (unsigned).
    I64,
}

/// A function of the ABI: its name and its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbiFunc {
    /// Its name (the import's field name, or the export's name).
    pub name: &'static str,
    /// Parameter types, in order.
    pub params: &'static [ValType],
    /// Result types.
    pub results: &'static [ValType],
}

impl AbiFunc {
    /// Whether it takes pointers into the module's memory (then the module must export it).
    pub fn takes_pointers(&self) -> bool {
        self.params.contains(&ValType::I32)
    }

    /// The signature as WAT writes it, for error messages: `(i64, i64) -> i64`.
    pub fn signature(&self) -> String {
        signature(self.params, self.results)
    }
}

/// A signature as WAT writes it: `(i32, i32) -> i32`, `(i32) -> ()`.
pub fn signature(params: &[ValType], results: &[ValType]) -> String {
    let list = |types: &[ValType]| {
        types.iter().map(|t| format!("{t:?}").to_lowercase()).collect::<Vec<_>>().join(", ")
    };
    format!("({}) -> ({})", list(params), list(results))
}

use ValType::{I32, I64};

/// `farm.param(name_ptr, name_len, out_ptr, out_cap) -> len`: copies a job param's value.
pub const PARAM: AbiFunc =
    AbiFunc { name: "param", params: &[I32, I32, I32, I32], results: &[I32] };
/// `farm.emit(ptr, len)`: one item of a list result.
pub const EMIT: AbiFunc = AbiFunc { name: "emit", params: &[I32, I32], results: &[] };
/// `farm.input(out_ptr, out_cap) -> len`: copies the shard's input line.
pub const INPUT: AbiFunc = AbiFunc { name: "input", params: &[I32, I32], results: &[I32] };
/// `farm.fail(ptr, len)`: fails the shard with a message.
pub const FAIL: AbiFunc = AbiFunc { name: "fail", params: &[I32, I32], results: &[] };
/// `farm.samples(n)`: adds `n` samples to the shard's count (a fraction module).
pub const SAMPLES: AbiFunc = AbiFunc { name: "samples", params: &[I64], results: &[] };
/// Every function a module may import from `farm`.
pub const IMPORTS: [AbiFunc; 5] = [PARAM, EMIT, INPUT, FAIL, SAMPLES];
/// The custom section that gives a fraction module's scale (decimal text, default 1).
pub const SCALE_SECTION: &str = "farm_scale";
/// `farm_run(lo, hi) -> count`: the export every module has.
pub const RUN: AbiFunc = AbiFunc { name: "farm_run", params: &[I64, I64], results: &[I64] };

/// The ABI function a module imports as `module.name`, or why it may not.
pub fn import(module: &str, name: &str) -> Result<AbiFunc, String> {
    let allowed = || IMPORTS.iter().map(|f| f.name).collect::<Vec<_>>().join(", ");
    if module != IMPORT_MODULE {
        return Err(format!(
            "import {}.{} is not allowed: a module may import only from {IMPORT_MODULE:?} \
             ({}; no WASI)",
            clip(module),
            clip(name),
            allowed()
        ));
    }
    IMPORTS.iter().find(|f| f.name == name).copied().ok_or_else(|| {
        format!(
            "import {IMPORT_MODULE}.{} is not in the farm ABI (it has {})",
            clip(name),
            allowed()
        )
    })
}

/// How a module's outputs are reduced, from its imports and its `farm_scale` section (if
/// any): a module that imports `farm.emit` gives lists; one that imports `farm.samples`
/// gives fractions (hits from `farm_run`, samples from `farm.samples`) whose estimate is
/// scaled by the section's number (default 1); any other counts.
pub fn shape<'a>(
    imports: impl IntoIterator<Item = &'a str>,
    scale: Option<&[u8]>,
) -> Result<OutputShape, String> {
    let imports: Vec<&str> = imports.into_iter().collect();
    let (emits, samples) = (imports.contains(&EMIT.name), imports.contains(&SAMPLES.name));
    let scale = match scale {
        None => 1.0,
        Some(text) => std::str::from_utf8(text)
            .ok()
            .map(|t| t.trim_end_matches('\0').trim())
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("custom section {SCALE_SECTION} must hold a finite number"))?,
    };
    match (emits, samples) {
        (true, true) => Err("a module imports farm.emit or farm.samples, not both".into()),
        (true, false) => Ok(OutputShape::Lines),
        (false, true) => Ok(OutputShape::Fraction { scale }),
        (false, false) => Ok(OutputShape::Count),
    }
}

/// Whether `hash` is a SHA-256 as the ABI writes it: 64 lowercase hex digits.
pub fn is_sha256_hex(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The descriptor of the `wasm` kernel: a required `module` param; every other param passes
/// through to the module unchecked (the module reads them with `farm.param`).
pub fn descriptor() -> KernelDescriptor {
    let help = "runs a WebAssembly module, sandboxed (farm submit wasm --module FILE.wasm)";
    KernelDescriptor::new(KIND, OutputShape::Any, help)
        .param(ParamSpec::required_text(
            MODULE_PARAM,
            "SHA-256 of the module, uploaded with PutModule (the CLI's --module does both)",
        ))
        .open_params()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Params;

    #[test]
    fn only_farm_abi_functions_may_be_imported() {
        assert_eq!(import("farm", "emit"), Ok(EMIT));
        let wasi = import("wasi_snapshot_preview1", "fd_write").unwrap_err();
        assert!(wasi.contains("wasi_snapshot_preview1.fd_write is not allowed"), "{wasi}");
        let unknown = import("farm", "exec").unwrap_err();
        assert!(unknown.contains("farm.exec is not in the farm ABI"), "{unknown}");
        assert_eq!(RUN.signature(), "(i64, i64) -> (i64)");
    }

    #[test]
    fn the_imports_and_the_scale_section_give_the_shape() {
        assert_eq!(shape(["param", "emit"], None), Ok(OutputShape::Lines));
        assert_eq!(shape(["param"], None), Ok(OutputShape::Count));
        assert_eq!(shape([], None), Ok(OutputShape::Count));
        let pi = shape(["samples"], Some(b"4\0".as_slice()));
        assert_eq!(pi, Ok(OutputShape::Fraction { scale: 4.0 }));
        assert_eq!(shape(["samples"], None), Ok(OutputShape::Fraction { scale: 1.0 }));
        assert!(shape(["samples"], Some(b"inf".as_slice())).is_err());
        assert!(shape(["samples", "emit"], None).unwrap_err().contains("not both"));
    }

    #[test]
    fn the_descriptor_requires_a_module_and_passes_other_params_through() {
        let d = descriptor();
        let hash = "ab".repeat(32);
        let params = Params::from_pairs([format!("module={hash}"), "samples=7".into()]).unwrap();
        let checked = d.check(&params).expect("accepted");
        assert_eq!(checked, params);
        let missing = d.check(&Params::from_pairs(["samples=7"]).unwrap()).unwrap_err();
        assert_eq!(missing.0, "missing param module");
        assert!(is_sha256_hex(&hash));
        assert!(!is_sha256_hex(&hash.to_uppercase()));
        assert!(!is_sha256_hex("abc"));
    }
}
