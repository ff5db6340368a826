//! Capped exponential backoff with jitter, for every retry loop that dials or restarts
//! something: workers dialing their master, masters dialing listening workers, the spawner
//! restarting a local worker.

use rand::Rng;
use std::time::Duration;

/// Waits that start at `first`, double up to `cap`, each varied by ±25 % so that many peers
/// retrying at once spread apart.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    next: Duration,
    cap: Duration,
}

impl Backoff {
    /// Starts at 100 ms and grows to `cap`.
    pub fn new(cap: Duration) -> Self {
        Backoff::starting_at(Duration::from_millis(100), cap)
    }

    /// Starts at `first` and grows to `cap`.
    pub fn starting_at(first: Duration, cap: Duration) -> Self {
        Backoff { first, next: first, cap }
    }

    /// Back to the first, shortest wait (after a success).
    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// The next wait.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Duration {
        let base = self.next.min(self.cap);
        self.next = (self.next * 2).min(self.cap);
        base.mul_f64(rand::rng().random_range(0.75..=1.25))
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;
    use std::time::Duration;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter_and_resets() {
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

    #[test]
    fn waits_are_spread_apart() {
        let waits: std::collections::HashSet<Duration> =
            (0..20).map(|_| Backoff::new(Duration::from_secs(1)).next()).collect();
        assert!(waits.len() > 1, "jitter must vary the waits");
    }
}
