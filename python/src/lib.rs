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
//! - `worker.rs`: `run_worker`: the worker session in this process, the `python` kernel, and
//!   the watchdog that interrupts cancelled shards

mod client;
mod errors;
mod json;
mod master;
mod runtime;
mod spec;
mod worker;

use pyo3::prelude::*;

/// Logs go to stderr through `tracing`: `FARM_LOG_LEVEL`, else `RUST_LOG`, else `warn`.
fn init_logging() {
    let filter = std::env::var("FARM_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "warn".to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Another library may have installed a subscriber already: then it gets the logs.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
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
    worker::register(m)?;
    m.add("PYTHON_KIND", farm_proto::python::KIND)?;
    m.add("FUNCTION_PARAM", farm_proto::python::FUNCTION_PARAM)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
