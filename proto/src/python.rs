//! The names the `python` kernel, its jobs and its workers agree on: the kind, the param that
//! names a job's pickled function by the SHA-256 of its bytes (stored with PutModule, format
//! PICKLE), the label a Python worker states its interpreter under, and the kernel's
//! descriptor. The kernel itself lives in the Python package (`python/`); the master knows it
//! only from these names, to check at submit that a job's function is in its module store and
//! to say which interpreter a waiting job needs.

use crate::kernel::{KernelDescriptor, OutputShape, ParamSpec};

/// The kind of job that runs a pickled Python function.
pub const KIND: &str = "python";
/// The param that names a job's function: the SHA-256 of its pickle (64 lowercase hex digits).
pub const FUNCTION_PARAM: &str = "function";
/// The label a Python worker states its interpreter under (e.g. `CPython 3.12`), and that a
/// python job requires: a job that waits for it says `no worker runs CPython 3.12`.
pub const LABEL: &str = "python";

/// The descriptor of the `python` kernel: a required `function` param; its output is lines,
/// one per item of the shard's chunk.
pub fn descriptor() -> KernelDescriptor {
    let help = "runs a pickled Python function over chunks of pickled arguments (farm.Executor)";
    KernelDescriptor::new(KIND, OutputShape::Lines, help).param(ParamSpec::required_text(
        FUNCTION_PARAM,
        "SHA-256 of the pickled function, uploaded with PutModule (format PICKLE)",
    ))
}
