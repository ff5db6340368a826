//! A process's resident memory, read from /proc/PID/status, once or sampled for its peak.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A process's resident memory, in KiB, from /proc/PID/status (0 once it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// One KiB figure of /proc/PID/status (`VmRSS:`, `VmHWM:` …); 0 once the process is gone.
pub(crate) fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_default();
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Samples a process's resident memory every 20 ms until stopped; keeps the peak.
pub struct Peak {
    /// The highest sample so far, in KiB.
    peak: Arc<AtomicU64>,
    /// Set to stop the sampling thread.
    stop: Arc<AtomicBool>,
    /// The sampling thread.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Peak {
    /// Starts sampling `pid`.
    pub fn start(pid: u32) -> Peak {
        let (peak, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Peak { peak, stop, thread: Some(thread) }
    }

    /// Stops sampling; the peak in MiB.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("sampler");
        }
        self.peak.load(Ordering::Relaxed) / 1024
    }
}

impl Drop for Peak {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
