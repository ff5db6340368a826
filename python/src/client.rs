//! `Client`: the typed API over the project's Rust client. It connects on first use and
//! reconnects after a failed connect; each call clones the connection (cheap), so threads call
//! it at once without waiting on each other.

use crate::errors::{self, from_client};
use crate::json::{ser_to_py, text_to_py, to_py};
use crate::runtime::wait;
use farm_client::{JobEvent, LogQuery, ResultsChunk};
use farm_proto::{ModuleFormat, Output};
use futures::{Stream, StreamExt};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A stream of the client crate, boxed so an iterator object can hold it.
type Boxed<T> = Pin<Box<dyn Stream<Item = farm_client::Result<T>> + Send>>;

/// How to reach the master, and the connection once made.
struct Conn {
    url: String,
    token: Option<String>,
    tls: Option<tonic::transport::ClientTlsConfig>,
    client: tokio::sync::Mutex<Option<farm_client::Client>>,
}

impl Conn {
    /// The connection, made on first use.
    async fn get(&self) -> farm_client::Result<farm_client::Client> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let client =
            farm_client::Client::connect_with(&self.url, self.token.clone(), self.tls.clone())
                .await?;
        *slot = Some(client.clone());
        Ok(client)
    }
}

/// A connection to a farm master: `Client("http://127.0.0.1:7070", token=None, tls_ca=None)`.
/// A bare `host:port` is dialed with `http://`, or `https://` with `tls_ca` (a PEM file with
/// the CA that signed the master's certificate).
#[pyclass(frozen, module = "farm._native")]
pub struct Client {
    conn: Arc<Conn>,
}

impl Client {
    /// Runs `call` on the connection with the GIL released; its error as a FarmError.
    fn call<'py, T, F, Fut>(&self, py: Python<'py>, call: F) -> PyResult<T>
    where
        F: FnOnce(farm_client::Client) -> Fut + Send,
        Fut: std::future::Future<Output = farm_client::Result<T>> + Send,
        T: Send,
    {
        let conn = self.conn.clone();
        wait(py, async move { call(conn.get().await?).await })?.map_err(from_client)
    }
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (master, token=None, tls_ca=None))]
    fn new(
        master: String,
        token: Option<String>,
        tls_ca: Option<std::path::PathBuf>,
    ) -> PyResult<Self> {
        let tls = match &tls_ca {
            Some(ca) => {
                Some(farm_net::tls::client(ca, None).map_err(|e| errors::invalid(e.to_string()))?)
            }
            None => None,
        };
        let url = farm_net::tls::dial_url(&master, tls.is_some());
        let conn = Conn { url, token, tls, client: tokio::sync::Mutex::new(None) };
        Ok(Client { conn: Arc::new(conn) })
    }

    /// The master's URL as dialed.
    #[getter]
    fn master(&self) -> &str {
        &self.conn.url
    }

    /// Submits a job described by a dict (see docs/python.md); returns `(job_id, shards)`.
    fn submit(&self, py: Python<'_>, spec: &Bound<'_, PyDict>) -> PyResult<(u64, u64)> {
        let spec = crate::spec::from_dict(spec)?;
        let submitted = self.call(py, |mut c| async move { c.submit(spec).await })?;
        Ok((submitted.job, submitted.shards))
    }

    /// The job's status, as `farm status --json` shows it.
    fn get<'py>(&self, py: Python<'py>, job_id: u64) -> PyResult<Bound<'py, PyAny>> {
        let status = self.call(py, |mut c| async move { c.get(job_id).await })?;
        ser_to_py(py, &status)
    }

    /// Waits for the job to end (riding through a master restart) and returns its final
    /// status; with `timeout` (seconds), returns its live status once that is over.
    #[pyo3(signature = (job_id, timeout=None))]
    fn wait<'py>(
        &self,
        py: Python<'py>,
        job_id: u64,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let limit = match timeout {
            Some(t) if !(t.is_finite() && t >= 0.0) => {
                return Err(errors::invalid(format!(
                    "timeout must be a number of seconds >= 0, got {t}"
                )))
            }
            Some(t) => Some(Duration::from_secs_f64(t.min(1e9))),
            None => None,
        };
        let status = self.call(py, |mut c| async move {
            let ended = match limit {
                Some(limit) => tokio::time::timeout(limit, c.wait(job_id, |_| {})).await.ok(),
                None => Some(c.wait(job_id, |_| {}).await),
            };
            match ended {
                Some(status) => status,
                None => c.get(job_id).await,
            }
        })?;
        ser_to_py(py, &status)
    }

    /// Cancels the job; returns its status after the cancel.
    fn cancel<'py>(&self, py: Python<'py>, job_id: u64) -> PyResult<Bound<'py, PyAny>> {
        let status = self.call(py, |mut c| async move { c.cancel(job_id).await })?;
        ser_to_py(py, &status)
    }

    /// The items of a succeeded job's list result from `offset` on, streamed from the master a
    /// chunk at a time; each JSON-decoded (a `str` for a LINES job). With `partial`, also of a
    /// failed or cancelled job (`{"missing_shard": N}` for each shard without an output).
    #[pyo3(signature = (job_id, offset=0, partial=false))]
    fn results(
        &self,
        py: Python<'_>,
        job_id: u64,
        offset: u64,
        partial: bool,
    ) -> PyResult<Results> {
        let stream = self.call(py, |mut c| async move {
            let s = c.results_with(job_id, offset, partial).await?;
            Ok(Box::pin(s) as Boxed<ResultsChunk>)
        })?;
        let state = ResultsState { stream: Some(stream), items: VecDeque::new() };
        Ok(Results { state: Arc::new(tokio::sync::Mutex::new(state)) })
    }

    /// The job's events as dicts: `{"type": "progress", "status": {...}}`, `{"type": "shard",
    /// "shard": N, "output": {"lines": [...]}}` (with `shards`, those accepted before the call
    /// first), and `{"type": "final", "status": {...}}` last.
    #[pyo3(signature = (job_id, shards=true, replay=true))]
    fn watch(&self, py: Python<'_>, job_id: u64, shards: bool, replay: bool) -> PyResult<Watch> {
        if shards && !replay {
            return Err(errors::invalid("watch with shards always replays the earlier shards"));
        }
        let stream = self.call(py, |mut c| async move {
            Ok(Box::pin(c.watch(job_id, shards).await?) as Boxed<JobEvent>)
        })?;
        Ok(Watch { stream: Arc::new(tokio::sync::Mutex::new(Some(stream))) })
    }

    /// The job's per-shard logs: each kept shard's last run and what it logged.
    fn logs<'py>(&self, py: Python<'py>, job_id: u64) -> PyResult<Bound<'py, PyList>> {
        let logs = self.call(py, |mut c| async move {
            let mut stream = c.logs(job_id, LogQuery::default()).await?;
            let mut all = Vec::new();
            while let Some(chunk) = stream.next().await {
                all.extend(chunk?);
            }
            Ok(all)
        })?;
        list(py, &logs)
    }

    /// Every job the master remembers, oldest first (results of more than 4 KiB left out).
    fn jobs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let jobs = self.call(py, |mut c| async move { c.list().await })?;
        list(py, &jobs)
    }

    /// The connected workers.
    fn workers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let workers = self.call(py, |mut c| async move { c.workers().await })?;
        list(py, &workers)
    }

    /// The kernels the cluster offers, with their params.
    fn kinds<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let kinds = self.call(py, |mut c| async move { c.kinds().await })?;
        list(py, &kinds)
    }

    /// Uploads a module to the master's store (once: the master keeps it by content); returns
    /// its SHA-256.
    #[pyo3(signature = (data, format="pickle"))]
    fn put_module(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyBytes>,
        format: &str,
    ) -> PyResult<String> {
        let format = match format {
            "wasm" => ModuleFormat::Wasm,
            "pickle" => ModuleFormat::Pickle,
            other => {
                return Err(errors::invalid(format!(
                    "unknown module format {other:?}: pickle or wasm"
                )))
            }
        };
        let bytes = data.as_bytes().to_vec();
        let module = self.call(py, |mut c| async move { c.put_module_as(bytes, format).await })?;
        Ok(module.sha256)
    }

    /// Whether the master's store holds the module with this SHA-256.
    fn has_module(&self, py: Python<'_>, sha: String) -> PyResult<bool> {
        self.call(py, |mut c| async move { c.has_module(&sha).await })
    }
}

/// Serde values as a list of dicts.
fn list<'py, T: serde::Serialize>(py: Python<'py>, items: &[T]) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for item in items {
        out.append(ser_to_py(py, item)?)?;
    }
    Ok(out)
}

/// What a results iterator holds: the stream, and the items of the chunk being read.
struct ResultsState {
    stream: Option<Boxed<ResultsChunk>>,
    items: VecDeque<String>,
}

/// The items of a job's list result, streamed from the master a chunk at a time.
#[pyclass(frozen, module = "farm._native")]
pub struct Results {
    state: Arc<tokio::sync::Mutex<ResultsState>>,
}

#[pymethods]
impl Results {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        // Most items are already here: no wait, no GIL release.
        let ready = match self.state.try_lock() {
            Ok(mut state) => state.items.pop_front(),
            Err(_) => None,
        };
        let item = match ready {
            Some(item) => Some(item),
            None => {
                let state = self.state.clone();
                wait(py, async move {
                    let mut state = state.lock().await;
                    loop {
                        if let Some(item) = state.items.pop_front() {
                            return Ok(Some(item));
                        }
                        let Some(stream) = state.stream.as_mut() else { return Ok(None) };
                        match stream.next().await {
                            Some(Ok(chunk)) => state.items.extend(chunk.items),
                            Some(Err(e)) => {
                                state.stream = None;
                                return Err(e);
                            }
                            None => state.stream = None,
                        }
                    }
                })?
                .map_err(from_client)?
            }
        };
        item.map(|text| text_to_py(py, &text)).transpose()
    }
}

/// A watched job's events; ends after the final status.
#[pyclass(frozen, module = "farm._native")]
pub struct Watch {
    stream: Arc<tokio::sync::Mutex<Option<Boxed<JobEvent>>>>,
}

#[pymethods]
impl Watch {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let stream = self.stream.clone();
        let event = wait(py, async move {
            let mut slot = stream.lock().await;
            let Some(stream) = slot.as_mut() else { return Ok(None) };
            let event = stream.next().await.transpose();
            if !matches!(event, Ok(Some(JobEvent::Progress(_))) | Ok(Some(JobEvent::Shard { .. })))
            {
                *slot = None;
            }
            event
        })?
        .map_err(from_client)?;
        event.map(|e| event_to_py(py, e)).transpose()
    }
}

/// A job event as the dict `watch` yields.
fn event_to_py(py: Python<'_>, event: JobEvent) -> PyResult<Bound<'_, PyDict>> {
    let dict = PyDict::new(py);
    match event {
        JobEvent::Progress(p) => {
            dict.set_item("type", "progress")?;
            let status = PyDict::new(py);
            status.set_item("done", p.done)?;
            status.set_item("shards", p.total)?;
            status.set_item("in_flight", p.in_flight)?;
            if let Some(waiting) = p.waiting {
                status.set_item("waiting", waiting)?;
            }
            dict.set_item("status", status)?;
        }
        JobEvent::Shard { shard, output } => {
            dict.set_item("type", "shard")?;
            dict.set_item("shard", shard)?;
            dict.set_item("output", output_to_py(py, &output)?)?;
        }
        JobEvent::Finished(status) => {
            dict.set_item("type", "final")?;
            dict.set_item("status", ser_to_py(py, &status)?)?;
        }
    }
    Ok(dict)
}

/// A shard's output as a one-key dict named after its shape: `{"lines": [...]}`.
fn output_to_py<'py>(py: Python<'py>, output: &Output) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    match output {
        Output::Count(n) => dict.set_item("count", n)?,
        Output::Fraction { hits, samples } => {
            let f = PyDict::new(py);
            f.set_item("hits", hits)?;
            f.set_item("samples", samples)?;
            dict.set_item("fraction", f)?;
        }
        Output::Lines(lines) => dict.set_item("lines", PyList::new(py, lines)?)?,
        Output::Rows(rows) => dict.set_item("rows", PyList::new(py, rows)?)?,
        Output::Exec(runs) => {
            dict.set_item("exec", to_py(py, &serde_json::to_value(runs).unwrap_or_default())?)?
        }
    }
    Ok(dict)
}
