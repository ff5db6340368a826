//! When a worker leaves on its own: after a while with no work (`--idle-timeout`), and before
//! the end of the allocation it runs in (`--time-limit`, or the end time the batch script reads
//! from the scheduler), so that no shard is cut off when the scheduler kills the allocation.
//! Both end in a drain: the worker stops taking shards, finishes or hands back what it holds,
//! and exits.

use std::time::{Duration, Instant, SystemTime};

/// Room left after a drain's timeout before the end: the close handshake and some slack.
pub const END_SLACK: Duration = Duration::from_secs(10);

/// A worker's own limits; the default has none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lifetime {
    /// Leave after no work for this long (also while no master answers).
    pub idle_timeout: Option<Duration>,
    /// The allocation ends then: stop taking shards early enough to drain before it.
    pub end_at: Option<SystemTime>,
}

impl Lifetime {
    /// Sets the end to the earlier of the one set and `end`.
    pub fn end_no_later_than(&mut self, end: SystemTime) {
        self.end_at = Some(self.end_at.map_or(end, |e| e.min(end)));
    }

    /// When to start draining, on the clock `now` reads at `wall` (the same moment): the end
    /// minus `drain` and [`END_SLACK`], or halfway to the end if there is less time than that.
    pub fn stop_at(&self, now: Instant, wall: SystemTime, drain: Duration) -> Option<Instant> {
        let left = self.end_at?.duration_since(wall).unwrap_or(Duration::ZERO);
        let margin = drain + END_SLACK;
        let run_for = if left > margin * 2 { left - margin } else { left / 2 };
        Some(now + run_for)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_stops_a_drain_ahead_of_its_end() {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let drain = Duration::from_secs(30);
        let mut life = Lifetime::default();
        assert_eq!(life.stop_at(now, wall, drain), None);
        life.end_no_later_than(wall + Duration::from_secs(3600));
        assert_eq!(life.stop_at(now, wall, drain), Some(now + Duration::from_secs(3560)));
        // An earlier end wins; a later one does not.
        life.end_no_later_than(wall + Duration::from_secs(60));
        life.end_no_later_than(wall + Duration::from_secs(7200));
        assert_eq!(life.stop_at(now, wall, drain), Some(now + Duration::from_secs(30)));
        life.end_at = Some(wall - Duration::from_secs(5));
        assert_eq!(life.stop_at(now, wall, drain), Some(now), "past its end: stop at once");
    }
}
