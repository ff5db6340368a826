//! How many shards of a job a worker may hold: its window, counted against the shards it holds
//! of jobs at that job's priority or above (`dispatch.rs`). A window keeps the worker's threads
//! busy between two of its result messages, no more:
//!
//! - **From what a shard costs.** Workers report the pool time their shards took
//!   ([`JobCost`]), so the master knows a job's cost per shard whatever share of the cluster a
//!   worker gets. A worker holds its running shards plus `queue_target` of that job's work per
//!   thread, at least `threads × (1 + prefetch)` and at most `max_window`. Cheap shards thus
//!   travel by the thousand and a worker's results can wait to travel together; 10 ms shards
//!   queue a few per thread. Before any cost is known, the window is the fixed minimum.
//! - **Guided self-scheduling at the tail.** A worker holds at most its threads' share of
//!   what is left: 1/[`TAIL_SPLIT`] of the job's pending shards per thread of the cluster, so
//!   the windows shrink as the job nears its end and no worker sits on a long queue while
//!   others run dry, whatever the shards' costs.
//! - **Earned.** At most [`SLOW_START`] plus the shards the worker has completed: a window
//!   is earned with accepted answers, not claimed with a thread count or a reported cost.

use super::CoreConfig;
use farm_proto::session::JobCost;
use std::time::Duration;

/// A new worker's window, before it has completed anything: it grows by one per accepted
/// completion (doubling per round trip), so a worker that claims 4,096 threads and never
/// answers holds only this many shards.
pub(crate) const SLOW_START: usize = 4;

/// At the tail, each thread of the cluster may hold 1/`TAIL_SPLIT` of its even share of the
/// pending shards (guided self-scheduling with a factor of 2).
const TAIL_SPLIT: u64 = 2;

/// Past this many runs, the counts are halved, so the average follows a job whose shards get
/// cheaper or dearer as it goes.
const COST_MEMORY: u64 = 4096;

/// What a job's shards cost a pool thread, on average, lately: sums of reported runs and
/// their busy time, halved now and then so old reports fade.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ShardCost {
    runs: u64,
    busy_ns: u64,
}

impl ShardCost {
    /// Counts a worker's report on one batch of the job's shards.
    pub fn observe(&mut self, cost: &JobCost) {
        self.runs = self.runs.saturating_add(cost.runs);
        self.busy_ns = self.busy_ns.saturating_add(cost.busy_ns);
        while self.runs > COST_MEMORY {
            self.runs /= 2;
            self.busy_ns /= 2;
        }
    }

    /// The average time a shard takes, once any was reported.
    pub fn per_shard(&self) -> Option<Duration> {
        (self.runs > 0).then(|| Duration::from_nanos(self.busy_ns / self.runs))
    }
}

/// What a window is computed from, besides the config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizing {
    /// The worker's pool threads.
    pub threads: u32,
    /// Shards the worker has had accepted, all jobs together.
    pub done: u64,
    /// What the job's shards cost, if known.
    pub cost: Option<Duration>,
    /// The job's shards not yet handed out.
    pub pending: u64,
    /// Pool threads of every connected worker.
    pub cluster_threads: u64,
}

/// The most shards of one job a worker may hold (see the module's doc).
pub(crate) fn window(s: Sizing, config: &CoreConfig) -> usize {
    let threads = s.threads.max(1) as usize;
    let fixed = threads.saturating_mul(1 + config.prefetch_per_thread as usize);
    let earned = SLOW_START.saturating_add(usize::try_from(s.done).unwrap_or(usize::MAX));
    let Some(cost) = s.cost else { return fixed.min(earned) };
    let queue = if cost.is_zero() {
        usize::MAX
    } else {
        let per = config.queue_target.as_nanos().div_ceil(cost.as_nanos());
        usize::try_from(per).unwrap_or(usize::MAX)
    };
    let share = s.pending.div_ceil(TAIL_SPLIT.saturating_mul(s.cluster_threads.max(1)));
    let per_thread = queue.min(usize::try_from(share).unwrap_or(usize::MAX));
    let deep = threads.saturating_mul(per_thread.saturating_add(1)).min(config.max_window);
    fixed.max(deep).min(earned)
}

/// These test this part alone, with no core and no outbox: nothing is sent, so no test
/// checks `assert_quiet`.
#[cfg(test)]
mod tests {
    use super::*;

    fn sizing(threads: u32, cost_us: Option<u64>, pending: u64, cluster: u64) -> Sizing {
        let cost = cost_us.map(Duration::from_micros);
        Sizing { threads, done: u64::MAX, cost, pending, cluster_threads: cluster }
    }

    #[test]
    fn a_window_holds_the_queue_target_of_work_per_thread() {
        let config = CoreConfig { queue_target: Duration::from_millis(60), ..Default::default() };
        // Unknown cost: threads x (1 + prefetch).
        assert_eq!(window(sizing(2, None, 1_000_000, 2), &config), 4);
        // 10 ms shards: 6 queued behind each running one.
        assert_eq!(window(sizing(2, Some(10_000), 1_000_000, 2), &config), 14);
        // 100 ms shards: never below the fixed minimum.
        assert_eq!(window(sizing(2, Some(100_000), 1_000_000, 2), &config), 4);
        // 1 us shards: as deep as the limit allows.
        assert_eq!(window(sizing(2, Some(1), 1_000_000, 2), &config), config.max_window);
        assert_eq!(window(sizing(2, Some(0), 1_000_000, 2), &config), config.max_window);
    }

    #[test]
    fn windows_shrink_to_a_share_of_what_is_left_as_the_job_ends() {
        let config = CoreConfig { queue_target: Duration::from_millis(60), ..Default::default() };
        // 500 one-thread workers, a million cheap shards: 1,000 each, not 8,192.
        assert_eq!(window(sizing(1, Some(1), 1_000_000, 500), &config), 1001);
        // 10 ms shards with 20 left on 2 threads: 5 each (plus the running one).
        assert_eq!(window(sizing(1, Some(10_000), 20, 2), &config), 6);
        // Nothing left to hand out: the fixed minimum.
        assert_eq!(window(sizing(1, Some(10_000), 0, 2), &config), 2);
    }

    #[test]
    fn a_window_is_earned_with_accepted_completions() {
        let config = CoreConfig::default();
        let s = Sizing { done: 10, ..sizing(64, Some(1), 1_000_000, 64) };
        assert_eq!(window(s, &config), SLOW_START + 10);
    }

    #[test]
    fn the_cost_follows_recent_reports() {
        let mut cost = ShardCost::default();
        assert_eq!(cost.per_shard(), None);
        cost.observe(&JobCost { job_id: 1, runs: 4, busy_ns: 40_000_000 });
        assert_eq!(cost.per_shard(), Some(Duration::from_millis(10)));
        // Many cheaper shards later, the old ones weigh little.
        for _ in 0..100 {
            cost.observe(&JobCost { job_id: 1, runs: 100, busy_ns: 100_000_000 });
        }
        let now = cost.per_shard().expect("known");
        assert!(now < Duration::from_micros(1010), "{now:?}");
    }
}
