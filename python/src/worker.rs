//! `run_worker`: the project's Rust worker session in this process (`farm_worker::run`),
//! offering the `python` kernel, until it drains: on Ctrl-C, SIGTERM, or a drain from the
//! master. The process is the worker; `python -m farm worker` supervises several of them.
//!
//! The kernel calls the Python `runner(function_sha, function_bytes, input) -> list[str]` on
//! a pool thread with the GIL (on a free-threaded build, attached to the interpreter: the
//! pool's T threads then run Python in parallel). A shard that is cancelled or passes its
//! timeout gets [`ShardInterrupted`] raised in its thread (an asynchronous exception, which
//! Python delivers between bytecodes); a shard still running 1 s later (stuck in C code, or
//! catching the exception) ends the process with exit code [`INTERRUPT_EXIT`], so that its
//! supervisor restarts it and the master reruns its other shards elsewhere.

use crate::errors;
use crate::runtime::{runtime, wait};
use farm_proto::python::{descriptor as python_descriptor, FUNCTION_PARAM, KIND as PYTHON_KIND};
use farm_worker::sdk::{
    CancelFlag, Kernel, KernelDescriptor, KernelError, Output, Params, Prepared, ShardInput,
    MAX_OUTPUT_BYTES,
};
use farm_worker::{Registry, StopHandle, WorkerConfig};
use pyo3::create_exception;
use pyo3::exceptions::PyBaseException;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyBytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

create_exception!(
    farm,
    ShardInterrupted,
    PyBaseException,
    "Raised in a python shard's thread when its shard is cancelled or timed out; a \
     BaseException, so that `except Exception` around an item does not swallow it."
);

/// How long an interrupted shard may take to return before the process ends.
const INTERRUPT_GRACE: Duration = Duration::from_secs(1);
/// How often the watchdog looks at running shards' cancel flags.
const WATCH_EVERY: Duration = Duration::from_millis(10);
/// The exit code of a process ended because an interrupted shard did not return.
pub const INTERRUPT_EXIT: i32 = 75;
/// Why a worker without `--allow-python` refuses python jobs.
const PYTHON_OFF: &str = "python kernel is off: start the worker with --allow-python";

/// Registers the worker's Python-facing names.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ShardInterrupted", m.py().get_type::<ShardInterrupted>())?;
    m.add("INTERRUPT_EXIT", INTERRUPT_EXIT)?;
    m.add_function(wrap_pyfunction!(run_worker, m)?)?;
    Ok(())
}

/// Runs a worker session in this process until it drains (Ctrl-C, SIGTERM, a drain from the
/// master) or, with `exit_on_disconnect`, loses its master. Offers the `python` kernel, which
/// calls `runner` for each shard; without `allow_python` it refuses python jobs. Ctrl-C
/// drains (running shards get `drain_timeout` seconds, the rest go back to the master) and
/// then raises KeyboardInterrupt; a second Ctrl-C stops at once.
#[pyfunction]
#[pyo3(signature = (master, *, runner, threads=1, token=None, tls_ca=None, name=String::new(),
    labels=BTreeMap::new(), allow_python=false, exit_on_disconnect=false, drain_timeout=30.0,
    restarts=0))]
#[allow(clippy::too_many_arguments)]
pub fn run_worker(
    py: Python<'_>,
    master: &str,
    runner: Py<PyAny>,
    threads: usize,
    token: Option<String>,
    tls_ca: Option<std::path::PathBuf>,
    name: String,
    labels: BTreeMap<String, String>,
    allow_python: bool,
    exit_on_disconnect: bool,
    drain_timeout: f64,
    restarts: u32,
) -> PyResult<()> {
    if threads == 0 || threads > 4096 {
        return Err(errors::invalid(format!("threads must be 1..=4096, got {threads}")));
    }
    if !(drain_timeout.is_finite() && drain_timeout >= 0.0) {
        return Err(errors::invalid(format!(
            "drain_timeout must be seconds >= 0, got {drain_timeout}"
        )));
    }
    farm_proto::labels::check("label", &labels).map_err(|e| errors::invalid(e.to_string()))?;
    let tls = match &tls_ca {
        Some(ca) => {
            Some(farm_net::tls::client(ca, None).map_err(|e| errors::invalid(e.to_string()))?)
        }
        None => None,
    };
    let mut config = WorkerConfig::new(farm_net::tls::dial_url(master, tls.is_some()));
    config.threads = threads;
    config.name = name;
    config.token = token;
    config.tls = tls;
    config.labels = labels;
    config.exit_on_disconnect = exit_on_disconnect;
    config.drain_timeout = Duration::from_secs_f64(drain_timeout.min(1e6));
    config.restarts = restarts;
    let mut registry = Registry::default();
    if allow_python {
        registry.register(Box::new(PythonKernel { runner: Arc::new(runner) }));
    } else {
        registry.register(Box::new(PythonOff));
    }
    let stop = StopHandle::new();
    let mut session = runtime().spawn(farm_worker::run(config, registry, stop.stopped()));
    let term = stop.clone();
    let sigterm = runtime().spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                if s.recv().await.is_some() {
                    tracing::info!("sigterm: draining");
                    term.stop();
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot watch for SIGTERM"),
        }
    });
    let ended = match wait(py, &mut session) {
        Ok(ended) => Ok(ended),
        Err(interrupt) => {
            // Ctrl-C: drain, as `farm worker` does; a second one stops at once.
            tracing::info!("interrupted: draining");
            stop.stop();
            match wait(py, &mut session) {
                Ok(_) => Err(interrupt),
                Err(again) => {
                    session.abort();
                    Err(again)
                }
            }
        }
    };
    sigterm.abort();
    match ended? {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(errors::Unavailable::new_err(e.to_string())),
        Err(join) => Err(errors::Internal::new_err(format!("worker session failed: {join}"))),
    }
}

/// The `python` kernel of a worker started with `--allow-python`.
struct PythonKernel {
    runner: Arc<Py<PyAny>>,
}

impl Kernel for PythonKernel {
    fn name(&self) -> &str {
        PYTHON_KIND
    }

    fn describe(&self) -> KernelDescriptor {
        python_descriptor()
    }

    fn module_param(&self) -> Option<&str> {
        Some(FUNCTION_PARAM)
    }

    fn prepare(&self, _params: &Params) -> Result<Box<dyn Prepared>, KernelError> {
        // Not reached: a kernel with a module param is prepared with its module.
        Err(KernelError::BadParam("the python kernel runs functions from the module store".into()))
    }

    fn prepare_with_module(
        &self,
        params: &Params,
        module: Arc<[u8]>,
    ) -> Result<Box<dyn Prepared>, KernelError> {
        let sha = params.0.get(FUNCTION_PARAM).cloned().ok_or_else(|| {
            KernelError::BadParam(format!("python jobs need the param {FUNCTION_PARAM}"))
        })?;
        Ok(Box::new(PythonJob {
            runner: self.runner.clone(),
            sha,
            module,
            bytes: PyOnceLock::new(),
        }))
    }
}

/// The `python` kernel of a worker without `--allow-python`: it offers the kind, so a python
/// job sent its way fails at once with the reason instead of waiting for nothing.
struct PythonOff;

impl Kernel for PythonOff {
    fn name(&self) -> &str {
        PYTHON_KIND
    }

    fn describe(&self) -> KernelDescriptor {
        python_descriptor()
    }

    fn prepare(&self, _params: &Params) -> Result<Box<dyn Prepared>, KernelError> {
        Err(KernelError::BadParam(PYTHON_OFF.into()))
    }
}

/// One python job on this worker: its function's hash and pickled bytes.
struct PythonJob {
    runner: Arc<Py<PyAny>>,
    sha: String,
    module: Arc<[u8]>,
    /// The bytes as a Python object, made once per job.
    bytes: PyOnceLock<Py<PyBytes>>,
}

impl Prepared for PythonJob {
    fn run(&self, shard: &ShardInput, cancel: &CancelFlag) -> Result<Output, KernelError> {
        let input = shard.input.as_deref().ok_or_else(|| {
            KernelError::BadInput("python jobs take input lines, not a range".into())
        })?;
        cancel.check()?;
        let lines = Python::attach(|py| {
            let bytes = self.bytes.get_or_init(py, || PyBytes::new(py, &self.module).unbind());
            let guard = watchdog().enter(cancel.clone());
            let called = self.runner.call1(py, (self.sha.as_str(), bytes.bind(py), input));
            guard.leave();
            match called {
                Ok(value) => value.extract::<Vec<String>>(py).map_err(|e| {
                    KernelError::Failed(format!("the runner did not return a list of str: {e}"))
                }),
                Err(e) => Err(match cancel.check() {
                    Err(stopped) => stopped,
                    Ok(()) => KernelError::Failed(describe(py, &e)),
                }),
            }
        })?;
        let bytes: usize = lines.iter().map(|l| l.len() + 4).sum();
        if bytes > MAX_OUTPUT_BYTES {
            return Err(KernelError::Failed(format!(
                "the shard's output is {} MiB, over the {} MiB a shard may send: use smaller chunks",
                bytes >> 20,
                MAX_OUTPUT_BYTES >> 20
            )));
        }
        Ok(Output::Lines(lines))
    }
}

/// An exception as `TypeName: message`.
fn describe(py: Python<'_>, e: &PyErr) -> String {
    let name =
        e.get_type(py).qualname().map(|n| n.to_string()).unwrap_or_else(|_| "exception".into());
    format!("runner failed: {name}: {}", e.value(py))
}

/// The shards running Python, watched for their cancel flags.
struct Watchdog {
    running: Mutex<HashMap<u64, Watched>>,
    wake: Condvar,
    next: AtomicU64,
}

/// A running shard as the watchdog sees it.
struct Watched {
    cancel: CancelFlag,
    /// The Python thread running it (`threading.get_ident()`).
    thread: std::os::raw::c_ulong,
    /// When it was told to stop.
    interrupted: Option<Instant>,
    /// Whether its asynchronous exception was set (and may still be pending).
    raised: bool,
}

/// A shard registered with the watchdog; [`Entered::leave`] unregisters it.
struct Entered {
    id: u64,
}

/// The process's watchdog, started on first use.
fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<&'static Watchdog> = OnceLock::new();
    WATCHDOG.get_or_init(|| {
        let dog: &'static Watchdog = Box::leak(Box::new(Watchdog {
            running: Mutex::new(HashMap::new()),
            wake: Condvar::new(),
            next: AtomicU64::new(0),
        }));
        // If the thread cannot start, shards still run; only their interruption is lost.
        if let Err(e) =
            std::thread::Builder::new().name("farm-watchdog".into()).spawn(move || dog.watch())
        {
            tracing::error!(error = %e, "cannot start the python shard watchdog");
        }
        dog
    })
}

impl Watchdog {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Watched>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers the calling thread's shard. Called attached to the interpreter.
    fn enter(&self, cancel: CancelFlag) -> Entered {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        // SAFETY: called attached to the interpreter; reads the current thread's id.
        let thread = unsafe { pyo3::ffi::PyThread_get_thread_ident() };
        self.lock().insert(id, Watched { cancel, thread, interrupted: None, raised: false });
        self.wake.notify_one();
        Entered { id }
    }

    /// Every 10 ms while shards run: interrupts those whose flag is set, and ends the process
    /// if one of them has not returned 1 s later. Never takes the GIL itself, so a shard that
    /// holds it in C code cannot stop the watchdog.
    fn watch(&'static self) {
        let mut running = self.lock();
        loop {
            if running.is_empty() {
                running = self.wake.wait(running).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            let now = Instant::now();
            for (&id, shard) in running.iter_mut() {
                match shard.interrupted {
                    None if shard.cancel.is_cancelled() => {
                        shard.interrupted = Some(now);
                        let dog = self;
                        // The GIL may be held for long: ask for it on a thread of its own.
                        let spawned = std::thread::Builder::new()
                            .name("farm-interrupt".into())
                            .spawn(move || dog.interrupt(id));
                        if let Err(e) = spawned {
                            tracing::warn!(error = %e, "cannot start a thread to interrupt a shard");
                        }
                    }
                    Some(at) if now.duration_since(at) >= INTERRUPT_GRACE => {
                        tracing::error!(
                            grace_ms = INTERRUPT_GRACE.as_millis() as u64,
                            "a cancelled python shard did not return: ending the process"
                        );
                        // SAFETY: ends the process at once, as a crash would; the supervisor
                        // restarts it and the master reruns its shards.
                        unsafe { libc::_exit(INTERRUPT_EXIT) };
                    }
                    _ => {}
                }
            }
            running =
                self.wake.wait_timeout(running, WATCH_EVERY).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Raises ShardInterrupted in the thread running shard `id`, if it still runs it.
    fn interrupt(&self, id: u64) {
        Python::attach(|py| {
            let mut running = self.lock();
            let Some(shard) = running.get_mut(&id) else { return };
            let exc = py.get_type::<ShardInterrupted>();
            // SAFETY: attached; the thread id came from PyThread_get_thread_ident, and the
            // shard is still registered, so that thread is still in its runner call (it
            // unregisters under this lock before it runs anything else).
            unsafe {
                pyo3::ffi::PyThreadState_SetAsyncExc(shard.thread as _, exc.as_ptr());
            }
            shard.raised = true;
        });
    }
}

impl Entered {
    /// Unregisters the shard; clears its asynchronous exception if it was set but has not
    /// fired, so it cannot hit the thread's next shard. Called attached to the interpreter.
    fn leave(self) {
        let dog = watchdog();
        let mut running = dog.lock();
        if let Some(shard) = running.remove(&self.id) {
            if shard.raised {
                // SAFETY: attached; a null exception clears a pending one of this thread.
                unsafe {
                    pyo3::ffi::PyThreadState_SetAsyncExc(shard.thread as _, std::ptr::null_mut());
                }
            }
        }
    }
}
