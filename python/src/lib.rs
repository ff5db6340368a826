//! `farm._native`, the native half of farm's Python package (`pip install ./python`): the
//! project's own Rust client (tonic, not grpcio), an in-process master (`farm_master::serve`,
//! as `farm master` runs it) and an in-process worker session that offers the `python`
//! kernel. The pure-Python package `farm` (`python/farm/`) builds the `Executor`, the pickling
//! and the worker supervisor on top of it; docs/python.md is the reference.
//!
//! Every call that waits releases the GIL and wakes at least every 100 ms to run Python's
//! signal handlers, so Ctrl-C raises `KeyboardInterrupt` out of any wait. The module is
//! declared `gil_used = false`: on a free-threaded interpreter its calls run in parallel, and
//! nothing in it is shared without a lock (the tokio runtime is one `OnceLock`, each object's
//! state sits behind a mutex).
//!
//! # Files
//!
//! One entry per source file under `src/` (a test in `tests/tests/docs.rs` fails when one
//! is missing or names a file that is gone):
//!
//! - `client.rs`: `Client`: submit, status, wait, cancel, the streamed `results` and `watch`
//!   iterators, logs, listings and the module store
//! - `errors.rs`: `FarmError` and one subclass per gRPC code, from a `ClientError`
//! - `json.rs`: JSON values and serde types to Python objects, without a round trip through text
//! - `master.rs`: `start_master`: a master serving in this process, stopped by `Master.stop` or
//!   at exit
//! - `runtime.rs`: the module's one tokio runtime, and `wait`: a future run with the GIL
//!   released, interruptible by Ctrl-C
//! - `spec.rs`: a job spec from a Python dict, each key checked

mod client;
mod errors;
mod json;
mod master;
mod runtime;
mod spec;

use pyo3::prelude::*;

/// The python kernel's name: the kind of every job the `Executor` submits.
pub const PYTHON_KIND: &str = "python";
/// The python kernel's param that names its pickled function by SHA-256.
pub const FUNCTION_PARAM: &str = "function";

/// The `python` kernel as the master knows it before any worker connects, so a job submitted
/// to a fresh in-process master queues (and waits visibly) instead of being refused.
pub(crate) fn python_descriptor() -> farm_proto::KernelDescriptor {
    use farm_proto::{KernelDescriptor, OutputShape, ParamSpec};
    KernelDescriptor::new(
        PYTHON_KIND,
        OutputShape::Lines,
        "runs a pickled Python function (python workers started with --allow-python only)",
    )
    .param(ParamSpec::required_text(
        FUNCTION_PARAM,
        "SHA-256 of the pickled function in the master's module store",
    ))
}

/// Logs go to stderr through `tracing`: `FARM_LOG_LEVEL`, else `RUST_LOG`, else `warn`.
fn init_logging() {
    let filter = std::env::var("FARM_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "warn".to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Another library may have installed a subscriber already: then it gets the logs.
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

#[pymodule(gil_used = false)]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    init_logging();
    errors::register(m)?;
    m.add_class::<client::Client>()?;
    m.add_class::<client::Results>()?;
    m.add_class::<client::Watch>()?;
    m.add_class::<master::Master>()?;
    m.add_function(wrap_pyfunction!(master::start_master, m)?)?;
    m.add("PYTHON_KIND", PYTHON_KIND)?;
    m.add("FUNCTION_PARAM", FUNCTION_PARAM)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
