//! Where the pool's threads leave their reports for a session, and when they wake it.
//!
//! A wake-up of the session's task costs the machine a context switch and takes a core from a
//! kernel for a moment; with 100 us shards, one per report would cost a fifth of a core. So
//! the threads append to a buffer and wake the session only when it has something to decide:
//! when a report would open a batch (the session then sets its timer), or when the pool's
//! queue is down to the session's low-water mark (its work could run out before the master
//! refills it). Between those, reports wait for the batch's timer.

use crate::pool::Report;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use tokio::sync::Notify;

/// A session's mailbox for its pool's reports.
pub(crate) struct Reports {
    /// Reports not yet taken, in the order they came, and whether the session has a batch
    /// open (then a report into an empty buffer need not wake it).
    buffer: Mutex<Buffer>,
    /// Wakes the session (a permit is kept if it is not waiting yet, so none is lost).
    wake: Notify,
    /// With this many shards or fewer queued in the pool, every report wakes the session.
    low_water: AtomicUsize,
    /// The session is gone: its shards are skipped and their reports dropped.
    closed: AtomicBool,
}

/// The reports waiting, and what the session last said about its batch.
#[derive(Default)]
struct Buffer {
    reports: Vec<Report>,
    batch_open: bool,
}

impl Default for Reports {
    fn default() -> Self {
        Reports {
            buffer: Mutex::default(),
            wake: Notify::new(),
            low_water: AtomicUsize::new(usize::MAX),
            closed: AtomicBool::new(false),
        }
    }
}

impl Reports {
    /// Leaves a report, `queued` shards still waiting in the pool's queue; wakes the session
    /// if it has something to decide.
    pub fn push(&self, report: Report, queued: usize) {
        if self.is_closed() {
            return;
        }
        let opened = {
            let mut buffer = self.lock();
            buffer.reports.push(report);
            buffer.reports.len() == 1 && !buffer.batch_open
        };
        if opened || queued <= self.low_water.load(Ordering::Relaxed) {
            self.wake.notify_one();
        }
    }

    /// Every report left so far, oldest first.
    pub fn take(&self) -> Vec<Report> {
        std::mem::take(&mut self.lock().reports)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until a report wakes the session.
    pub async fn woken(&self) {
        self.wake.notified().await
    }

    /// Says when to wake the session from now on: at every report once `low_water` or fewer
    /// shards are queued, and at a report into an empty buffer unless `batch_open` (the
    /// session's timer is set then). Returns whether reports are already waiting: the session
    /// must take them now, as none of them will wake it.
    pub fn arm(&self, low_water: usize, batch_open: bool) -> bool {
        self.low_water.store(low_water, Ordering::Relaxed);
        let mut buffer = self.lock();
        buffer.batch_open = batch_open;
        !buffer.reports.is_empty()
    }

    /// The session ended.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.take();
    }

    /// Whether the session ended.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// The oldest report, waiting for one; `None` once closed (for tests that read reports one
    /// by one).
    #[cfg(test)]
    pub async fn recv(&self) -> Option<Report> {
        loop {
            {
                let mut buffer = self.lock();
                if !buffer.reports.is_empty() {
                    return Some(buffer.reports.remove(0));
                }
            }
            if self.is_closed() {
                return None;
            }
            self.woken().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn started(shard: u64) -> Report {
        Report::Started { job_id: 1, shard }
    }

    /// Whether the session would be woken now (a stored permit), without waiting long.
    async fn woken(reports: &Reports) -> bool {
        tokio::time::timeout(Duration::from_millis(50), reports.woken()).await.is_ok()
    }

    #[tokio::test]
    async fn only_the_first_report_and_those_near_low_water_wake_the_session() {
        let reports = Arc::new(Reports::default());
        assert!(!reports.arm(2, false));
        reports.push(started(0), 10);
        assert!(woken(&reports).await, "the first report opens a batch");
        // The session took it in: its batch is open, its timer set.
        assert!(reports.arm(2, true), "the report is still there to take");
        // Queue still long: these wait for the session's timer.
        reports.push(started(1), 9);
        reports.push(started(2), 5);
        assert!(!woken(&reports).await, "no wake-up while the queue is long");
        // Queue nearly empty: wake.
        reports.push(started(3), 2);
        assert!(woken(&reports).await);
        let shards: Vec<u64> = reports
            .take()
            .into_iter()
            .map(|r| match r {
                Report::Started { shard, .. } => shard,
                Report::Finished(f) => f.shard,
            })
            .collect();
        assert_eq!(shards, [0, 1, 2, 3]);
        // The batch is still open: a report into the empty buffer waits for its timer.
        reports.push(started(4), 8);
        assert!(!woken(&reports).await);
        // The batch went out: the next report opens the next one.
        assert!(reports.arm(2, false));
        reports.take();
        reports.push(started(5), 8);
        assert!(woken(&reports).await);
        reports.close();
        reports.push(started(6), 0);
        assert!(reports.take().is_empty(), "a closed mailbox keeps nothing");
    }
}
