//! Capped exponential backoff with jitter, for reconnecting in either direction.

use std::time::Duration;

/// Capped exponential backoff with jitter: 100 ms, 200 ms, … up to the cap, each ±25 %.
/// Used by workers dialing their master and by masters dialing their workers.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    /// Starts at 100 ms and grows to `cap`.
    pub fn new(cap: Duration) -> Self {
        Backoff { next: Duration::from_millis(100), cap }
    }

    /// Back to the first, shortest wait (after a success).
    pub fn reset(&mut self) {
        self.next = Duration::from_millis(100);
    }

    /// The next wait.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Duration {
        let base = self.next.min(self.cap);
        self.next = (self.next * 2).min(self.cap);
        // Jitter from the clock's nanoseconds: enough to spread reconnecting workers apart.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let factor = 0.75 + f64::from(nanos % 1000) / 2000.0;
        base.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;
    use std::time::Duration;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_secs(2));
        let first = b.next();
        assert!(first >= Duration::from_millis(75) && first <= Duration::from_millis(125));
        for _ in 0..10 {
            b.next();
        }
        let capped = b.next();
        assert!(capped >= Duration::from_millis(1500) && capped <= Duration::from_millis(2500));
        b.reset();
        assert!(b.next() <= Duration::from_millis(125));
    }
}
