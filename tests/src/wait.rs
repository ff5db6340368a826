//! Waiting with a deadline: every wait in a test is bounded, and waits for the condition it
//! needs rather than for a fixed time.

use std::time::{Duration, Instant};

/// Longest any single wait in a test may take.
pub const WAIT: Duration = Duration::from_secs(60);

/// Polls `probe` every 50 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `cond` every 50 ms until it holds (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    wait_for(timeout, || cond().then_some(())).is_some()
}

/// Awaits `fut`, failing the test if it takes longer than WAIT.
pub async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.expect("finished within the wait bound")
}
