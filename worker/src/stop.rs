//! [`StopHandle`]: stops a worker that a program runs in-process ([`crate::run`],
//! [`crate::serve`]) from any thread, as Ctrl-C stops `farm worker`: the worker drains (its
//! running shards get the drain timeout, the rest go back to the master) and `run` returns.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// Asks a worker to drain and stop. Cheap to clone, `Send + Sync`: keep one clone, hand
/// [`StopHandle::stopped`] to `run` as its shutdown, and call [`StopHandle::stop`] from any
/// thread (a signal handler's, another runtime's). Stopping before `run` starts stops it at
/// once; stopping twice is the same as once.
#[derive(Debug, Clone, Default)]
pub struct StopHandle {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    stopped: AtomicBool,
    notify: Notify,
}

impl StopHandle {
    /// A handle not yet stopped.
    pub fn new() -> Self {
        StopHandle::default()
    }

    /// Asks every worker waiting on this handle to drain and stop.
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Whether [`StopHandle::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::SeqCst)
    }

    /// Resolves once [`StopHandle::stop`] is called (at once if it was): the `shutdown` of
    /// [`crate::run`] and [`crate::serve`].
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let inner = self.inner.clone();
        async move {
            loop {
                let notified = inner.notify.notified();
                tokio::pin!(notified);
                // Registered before the flag is read, so a stop in between is not missed.
                notified.as_mut().enable();
                if inner.stopped.load(Ordering::SeqCst) {
                    return;
                }
                notified.await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_stop_from_another_thread_ends_the_wait_and_an_early_one_counts() {
        let handle = StopHandle::new();
        let waiting = tokio::spawn(handle.stopped());
        let other = handle.clone();
        std::thread::spawn(move || other.stop()).join().expect("thread");
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("stopped in time")
            .expect("task");
        assert!(handle.is_stopped());
        // Already stopped: a new wait ends at once.
        tokio::time::timeout(Duration::from_secs(5), handle.stopped()).await.expect("at once");
    }

    #[tokio::test]
    async fn an_unstopped_handle_keeps_waiting() {
        let handle = StopHandle::new();
        let wait = tokio::time::timeout(Duration::from_millis(50), handle.stopped()).await;
        assert!(wait.is_err(), "nothing stopped it");
        assert!(!handle.is_stopped());
    }
}
