//! `start_master`: a farm master serving in this process (`farm_master::serve`, as `farm
//! master` runs it, without local workers), on the module's runtime. `Master.stop` ends it;
//! it also runs at interpreter exit.

use crate::errors;
use crate::runtime::{runtime, wait};
use farm_master::{MasterConfig, MasterError};
use pyo3::prelude::*;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long `stop` waits for the master to finish its calls and close its journal.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What a running master is stopped with.
struct Serving {
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), MasterError>>,
}

/// A master serving in this process; `url` is what clients and workers dial.
#[pyclass(frozen, module = "farm._native")]
pub struct Master {
    url: String,
    serving: Mutex<Option<Serving>>,
}

#[pymethods]
impl Master {
    /// The URL clients and workers dial, e.g. `http://127.0.0.1:40123`.
    #[getter]
    fn url(&self) -> &str {
        &self.url
    }

    /// Stops the master: it ends its streams and closes its journal. Idempotent.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let serving = self.serving.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(Serving { stop, server }) = serving else { return Ok(()) };
        let _ = stop.send(());
        match wait(py, async move { tokio::time::timeout(STOP_GRACE, server).await })? {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(errors::Internal::new_err(format!("master stopped with: {e}"))),
            Ok(Err(join)) => Err(errors::Internal::new_err(format!("master task failed: {join}"))),
            Err(_) => {
                tracing::warn!(url = %self.url, "master did not stop within 5 s");
                Ok(())
            }
        }
    }

    /// Whether it still serves.
    #[getter]
    fn running(&self) -> bool {
        let serving = self.serving.lock().unwrap_or_else(|p| p.into_inner());
        serving.as_ref().is_some_and(|s| !s.server.is_finished())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.stop(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("Master(url={:?}, running={})", self.url, self.running())
    }
}

/// Starts a master in this process listening on `bind` (port 0: any free port) and returns
/// it once it listens. `token`: clients and workers must present it. `journal`: a file that
/// keeps jobs across restarts (none: a temporary store). `max_module_mib` and
/// `module_store_mib` bound the module store (functions and wasm modules).
#[pyfunction]
#[pyo3(signature = (bind="127.0.0.1:0", *, token=None, journal=None, max_module_mib=None, module_store_mib=None))]
pub fn start_master(
    py: Python<'_>,
    bind: &str,
    token: Option<String>,
    journal: Option<std::path::PathBuf>,
    max_module_mib: Option<usize>,
    module_store_mib: Option<usize>,
) -> PyResult<Py<Master>> {
    let mut config = MasterConfig {
        client_token: token.clone(),
        worker_token: token,
        known_kinds: vec![farm_proto::python::descriptor()],
        journal,
        ..MasterConfig::default()
    };
    if let Some(mib) = max_module_mib {
        config.modules.max_module = mib << 20;
    }
    if let Some(mib) = module_store_mib {
        config.modules.max_total = mib << 20;
    }
    let bind = bind.to_string();
    let listener =
        wait(py, async move { tokio::net::TcpListener::bind(&bind).await.map_err(|e| (bind, e)) })?
            .map_err(|(bind, e)| {
                errors::Unavailable::new_err(format!("cannot listen on {bind}: {e}"))
            })?;
    let addr = listener.local_addr().map_err(|e| {
        errors::Internal::new_err(format!("cannot read the listening address: {e}"))
    })?;
    let ip = if addr.ip().is_unspecified() { [127, 0, 0, 1].into() } else { addr.ip() };
    let url = format!("http://{}", std::net::SocketAddr::new(ip, addr.port()));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = runtime().spawn(farm_master::serve(listener, config, async {
        let _ = stopped.await;
    }));
    tracing::info!(%url, "master serving in process");
    let master = Py::new(py, Master { url, serving: Mutex::new(Some(Serving { stop, server })) })?;
    // Stopped at exit too, so its journal closes cleanly and no task outlives the interpreter.
    let atexit = py.import("atexit")?;
    atexit.call_method1("register", (master.bind(py).getattr("stop")?,))?;
    Ok(master)
}
