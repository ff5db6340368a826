//! The master's Prometheus metrics (prometheus-client), served at `/metrics`.
//!
//! Two kinds: counters and histograms updated where things happen (the core's task counts
//! shards through [`ShardTally`], a cached handle per job, so a shard costs two atomic
//! increments and no allocation; session readers and streams count message bytes; the core's
//! task times its batches and the journal's writer its commits), and gauges set from one
//! [`Overview`] of the core at scrape time ([`Metrics::set_gauges`]), so nothing on the core's
//! task keeps them current. `farm_shards_queued{job}` has one series per job not yet ended: its
//! cardinality is bounded by `--max-active-jobs`, and ended jobs' series go at the next scrape.
//! A label value that comes from a worker (a kind) is escaped as the text format requires
//! ([`Escaped`]): prometheus-client writes label values as they are.

use crate::core::{state_index, Counted, JobId, JobState, Overview};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

/// A label value from outside, written with `\\`, `\"` and `\n` escaped, so that no value
/// can end its label or its line and forge a series. Registration already limits kinds to a
/// safe character set; this holds whatever a label is given.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Escaped(pub String);

impl EncodeLabelValue for Escaped {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        for c in self.0.chars() {
            match c {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                c => encoder.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Labels of `farm_shards_completed_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardLabels {
    /// The job's kernel.
    pub kind: Escaped,
    /// `done`, `failed` (a failed run) or `rerun` (handed out again).
    pub outcome: &'static str,
}

/// A label of one word: a job state, a direction.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// The job state.
    pub state: &'static str,
}

/// Labels of the message byte counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    /// `received` (from workers) or `sent` (to workers).
    pub direction: &'static str,
}

/// Labels of `farm_shards_queued`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// The job's id.
    pub job: String,
}

/// Every metric the master exports, and the registry that encodes them.
pub struct Metrics {
    /// What `/metrics` encodes.
    registry: Registry,
    /// Shards by kind and outcome.
    shards: Family<ShardLabels, Counter>,
    /// Accepted completions of every kind (the dashboard's throughput chart samples it).
    pub done: Counter,
    /// Worker sessions that joined.
    pub workers_joined: Counter,
    /// Worker sessions that ended without draining (declared lost, or their stream broke).
    pub workers_lost: Counter,
    /// Encoded bytes of messages from workers.
    pub received_bytes: Counter,
    /// Encoded bytes of messages to workers.
    pub sent_bytes: Counter,
    /// Encoded bytes of result batches (shard outcomes) received from workers.
    pub result_bytes: Counter,
    /// How long the core's task took per batch (commands applied plus one dispatch).
    pub core_batch: Histogram,
    /// Jobs the master holds, by state.
    jobs: Family<StateLabels, Gauge>,
    /// Connected worker sessions.
    workers: Gauge,
    /// Threads of connected workers.
    threads: Gauge,
    /// Threads with a shard to run.
    threads_busy: Gauge,
    /// Shards waiting to be handed out, per job not yet ended.
    queued_by_job: Family<JobLabels, Gauge>,
    /// Shards waiting to be handed out, all jobs.
    queued: Gauge,
    /// Shards held by workers.
    running: Gauge,
    /// Bytes jobs not yet ended hold (inputs, params, list results so far).
    live_bytes: Gauge,
    /// Bytes ended jobs keep (results and errors).
    kept_bytes: Gauge,
}

impl Metrics {
    /// Every metric, registered; `journal_commit` is the journal writer's histogram.
    pub fn new(journal_commit: Histogram) -> Self {
        let mut r = Registry::default();
        let shards = Family::<ShardLabels, Counter>::default();
        r.register(
            "farm_shards_completed",
            "Shard outcomes accepted by the master, by kernel and outcome: done (counted once), \
             failed (a failed run) or rerun (handed out again)",
            shards.clone(),
        );
        let done = Counter::default();
        let workers_joined = Counter::default();
        r.register(
            "farm_workers_joined",
            "Worker sessions that registered",
            workers_joined.clone(),
        );
        let workers_lost = Counter::default();
        r.register(
            "farm_workers_lost",
            "Worker sessions that ended without draining (heartbeat timeout, broken stream)",
            workers_lost.clone(),
        );
        let messages = Family::<DirectionLabels, Counter>::default();
        r.register_with_unit(
            "farm_worker_messages",
            "Encoded bytes of session messages between the master and its workers",
            Unit::Bytes,
            messages.clone(),
        );
        // Each guard must go before the next `get_or_create`, which may take the write lock.
        let received_bytes =
            messages.get_or_create(&DirectionLabels { direction: "received" }).clone();
        let sent_bytes = messages.get_or_create(&DirectionLabels { direction: "sent" }).clone();
        let result_bytes = Counter::default();
        r.register_with_unit(
            "farm_shard_results",
            "Encoded bytes of result batches (shard outcomes) received from workers",
            Unit::Bytes,
            result_bytes.clone(),
        );
        let core_batch = Histogram::new(exponential_buckets(5e-6, 4.0, 10));
        r.register_with_unit(
            "farm_core_batch",
            "Time the core's task took per batch of commands (applying them and one dispatch)",
            Unit::Seconds,
            core_batch.clone(),
        );
        r.register_with_unit(
            "farm_journal_commit",
            "Time the journal's writer took per group commit",
            Unit::Seconds,
            journal_commit,
        );
        let mut m = Metrics {
            registry: r,
            shards,
            done,
            workers_joined,
            workers_lost,
            received_bytes,
            sent_bytes,
            result_bytes,
            core_batch,
            jobs: Family::default(),
            workers: Gauge::default(),
            threads: Gauge::default(),
            threads_busy: Gauge::default(),
            queued_by_job: Family::default(),
            queued: Gauge::default(),
            running: Gauge::default(),
            live_bytes: Gauge::default(),
            kept_bytes: Gauge::default(),
        };
        m.register_gauges();
        m
    }

    fn register_gauges(&mut self) {
        let r = &mut self.registry;
        r.register("farm_jobs", "Jobs the master holds, by state", self.jobs.clone());
        r.register("farm_workers_connected", "Connected worker sessions", self.workers.clone());
        r.register("farm_pool_threads", "Threads of connected workers", self.threads.clone());
        r.register(
            "farm_pool_threads_busy",
            "Threads of connected workers with a shard to run (per worker, at most the shards \
             it holds)",
            self.threads_busy.clone(),
        );
        r.register(
            "farm_shards_queued",
            "Shards waiting to be handed out, per job not yet ended",
            self.queued_by_job.clone(),
        );
        r.register(
            "farm_cluster_shards_queued",
            "Shards waiting to be handed out, all jobs (for autoscalers)",
            self.queued.clone(),
        );
        r.register("farm_shards_running", "Shards held by workers", self.running.clone());
        r.register_with_unit(
            "farm_jobs_live",
            "Bytes that jobs not yet ended hold in the master (inputs, params, list results)",
            Unit::Bytes,
            self.live_bytes.clone(),
        );
        r.register_with_unit(
            "farm_results_kept",
            "Bytes of results and errors that ended jobs keep in the master",
            Unit::Bytes,
            self.kept_bytes.clone(),
        );
    }

    /// The counters of one kind's outcomes: done, failed, rerun.
    fn kind_counters(&self, kind: &str) -> [Counter; 3] {
        let counter = |outcome| {
            let kind = Escaped(kind.to_string());
            self.shards.get_or_create(&ShardLabels { kind, outcome }).clone()
        };
        [counter("done"), counter("failed"), counter("rerun")]
    }

    /// Sets every gauge from `o`; series of jobs that ended go.
    pub fn set_gauges(&self, o: &Overview) {
        for state in [
            JobState::Queued,
            JobState::Running,
            JobState::Succeeded,
            JobState::Failed,
            JobState::Cancelled,
        ] {
            let n = o.states[state_index(state)];
            self.jobs.get_or_create(&StateLabels { state: state.as_str() }).set(gauge(n));
        }
        self.workers.set(gauge(o.workers.len() as u64));
        self.threads.set(gauge(o.workers.iter().map(|w| u64::from(w.view.spec.threads)).sum()));
        self.threads_busy.set(gauge(o.workers.iter().map(|w| w.busy()).sum()));
        self.queued_by_job.clear();
        let mut queued = 0;
        for j in o.jobs.iter().filter(|j| !j.view.state.is_final()) {
            queued += j.queued;
            self.queued_by_job
                .get_or_create(&JobLabels { job: j.view.id.to_string() })
                .set(gauge(j.queued));
        }
        self.queued.set(gauge(queued));
        self.running.set(gauge(o.workers.iter().map(|w| w.view.in_flight).sum()));
        self.live_bytes.set(gauge(o.live_bytes as u64));
        self.kept_bytes.set(gauge(o.kept_bytes as u64));
    }

    /// The registry in the OpenMetrics text format (which Prometheus reads).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The default buckets of the journal's commit histogram: 50 µs to about 3 s.
pub fn commit_histogram() -> Histogram {
    Histogram::new(exponential_buckets(50e-6, 3.0, 11))
}

/// Counts shard outcomes on the core's task: a handle to each live job's counters, the last
/// one used kept at hand, so a batch of one job's shards costs an id comparison and two atomic
/// increments per shard.
pub struct ShardTally {
    /// Where the counters live.
    metrics: Arc<Metrics>,
    /// The job counted last and its counters.
    last: Option<(JobId, [Counter; 3])>,
    /// Each live job's counters (its kind's), dropped when it ends.
    jobs: HashMap<JobId, [Counter; 3]>,
}

impl ShardTally {
    /// A tally counting into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        ShardTally { metrics, last: None, jobs: HashMap::new() }
    }

    /// The metrics it counts into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Counts one shard of job `job` (of kernel `kind`).
    pub fn count(&mut self, job: JobId, kind: &str, what: Counted) {
        let i = match what {
            Counted::Done => {
                self.metrics.done.inc();
                0
            }
            Counted::Failed => 1,
            Counted::Rerun => 2,
        };
        if let Some((id, counters)) = &self.last {
            if *id == job {
                counters[i].inc();
                return;
            }
        }
        let metrics = &self.metrics;
        let counters = self.jobs.entry(job).or_insert_with(|| metrics.kind_counters(kind)).clone();
        counters[i].inc();
        self.last = Some((job, counters));
    }

    /// A job ended: its handles go.
    pub fn ended(&mut self, job: JobId) {
        self.jobs.remove(&job);
        if self.last.as_ref().is_some_and(|(id, _)| *id == job) {
            self.last = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_outcomes_count_by_kind_and_outcome() {
        let m = Arc::new(Metrics::new(commit_histogram()));
        let mut t = ShardTally::new(m.clone());
        for _ in 0..3 {
            t.count(1, "noop", Counted::Done);
        }
        t.count(2, "primes", Counted::Failed);
        t.count(1, "noop", Counted::Rerun);
        t.ended(1);
        t.count(3, "noop", Counted::Done);
        let text = m.encode();
        assert!(
            text.contains(r#"farm_shards_completed_total{kind="noop",outcome="done"} 4"#),
            "{text}"
        );
        assert!(text.contains(r#"farm_shards_completed_total{kind="noop",outcome="rerun"} 1"#));
        assert!(text.contains(r#"farm_shards_completed_total{kind="primes",outcome="failed"} 1"#));
        assert_eq!(m.done.get(), 4);
        assert!(text.contains("# TYPE farm_core_batch_seconds histogram"), "{text}");
        assert!(text.contains("# TYPE farm_journal_commit_seconds histogram"));
    }

    #[test]
    fn a_label_value_cannot_end_its_label_or_its_line() {
        let m = Arc::new(Metrics::new(commit_histogram()));
        let mut t = ShardTally::new(m.clone());
        t.count(1, "x\"} 1\nfarm_injected_total{a=\"\\", Counted::Done);
        let text = m.encode();
        let want = r#"farm_shards_completed_total{kind="x\"} 1\nfarm_injected_total{a=\"\\",outcome="done"} 1"#;
        assert!(text.contains(want), "{text}");
        assert!(!text.lines().any(|l| l.starts_with("farm_injected")), "{text}");
    }
}
