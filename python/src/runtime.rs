//! The module's one tokio runtime, started on first use, and [`wait`]: a future run to its end
//! with the GIL released, waking every [`SLICE`] to run Python's signal handlers, so Ctrl-C
//! raises `KeyboardInterrupt` out of any wait and the future is dropped (cancelling its call).

use pyo3::prelude::*;
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

/// How long a wait runs without checking for signals.
pub const SLICE: Duration = Duration::from_millis(100);

/// The runtime every call and the in-process master and worker run on.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("farm-rt")
            .build()
            // Only fails when the OS refuses threads or an epoll instance: nothing can go on.
            .expect("cannot start the tokio runtime")
    })
}

/// Runs `fut` to its end with the GIL released; between slices runs the signal handlers, whose
/// exception (KeyboardInterrupt) ends the wait.
pub fn wait<F>(py: Python<'_>, fut: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let rt = runtime();
    let mut fut = std::pin::pin!(fut);
    loop {
        // The timer is made inside the runtime: it needs its clock.
        let slice =
            py.detach(|| rt.block_on(async { tokio::time::timeout(SLICE, fut.as_mut()).await }));
        match slice {
            Ok(out) => return Ok(out),
            Err(_) => py.check_signals()?,
        }
    }
}
