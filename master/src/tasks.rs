//! Every task the master spawns, tracked (mini-redis style): shutdown signals them all with one
//! cancellation token, waits for them with a bound, and names the ones that did not finish.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

/// A set of tracked tasks sharing one stop signal. Cloning gives another handle to the same set.
#[derive(Clone, Default)]
pub struct Tasks {
    /// Waits for every task spawned through it.
    tracker: TaskTracker,
    /// Cancelled once, at shutdown; tasks select on it to stop.
    stop: CancellationToken,
    /// The tasks still running, by a sequence number, so a slow shutdown can name them.
    live: Arc<Mutex<BTreeMap<u64, String>>>,
    /// The next sequence number.
    next: Arc<AtomicU64>,
}

/// Removes a task from `live` when it ends, however it ends (returned, panicked, aborted).
struct Live {
    id: u64,
    live: Arc<Mutex<BTreeMap<u64, String>>>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.live.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

impl Tasks {
    /// Spawns a tracked task; `name` says what it is if it outlives a shutdown.
    pub fn spawn<F>(&self, name: impl Into<String>, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.live.lock().unwrap_or_else(PoisonError::into_inner).insert(id, name.into());
        let guard = Live { id, live: self.live.clone() };
        self.tracker.spawn(async move {
            let _guard = guard;
            task.await
        })
    }

    /// Resolves once shutdown has begun.
    pub async fn stopped(&self) {
        self.stop.cancelled().await
    }

    /// Signals every task to stop, then waits up to `bound` for all of them (and any spawned
    /// meanwhile). Returns the names of those still running, after logging them.
    pub async fn shutdown(&self, bound: Duration) -> Vec<String> {
        self.stop.cancel();
        self.tracker.close();
        if tokio::time::timeout(bound, self.tracker.wait()).await.is_ok() {
            debug!("every task stopped");
            return Vec::new();
        }
        let left: Vec<String> =
            self.live.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
        warn!(tasks = ?left, bound_ms = bound.as_millis() as u64, "tasks did not stop in time");
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn shutdown_waits_for_tasks_that_stop_and_names_those_that_do_not() {
        let tasks = Tasks::default();
        let t = tasks.clone();
        tasks.spawn("polite", async move { t.stopped().await });
        tasks.spawn("stubborn", std::future::pending::<()>());
        let left = tasks.shutdown(Duration::from_secs(1)).await;
        assert_eq!(left, vec!["stubborn".to_string()]);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_returns_at_once_when_every_task_stops() {
        let tasks = Tasks::default();
        let t = tasks.clone();
        tasks.spawn("polite", async move { t.stopped().await });
        let started = tokio::time::Instant::now();
        assert!(tasks.shutdown(Duration::from_secs(5)).await.is_empty());
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
