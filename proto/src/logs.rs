//! Per-shard logs as clients see them: one shard's last run (worker, start, duration, outcome,
//! exit code), what it logged and a failed run's error; with serde, the `farm logs --json`
//! shape. Also `ShardRun`, the run record a worker sends beside an outcome (re-exported by
//! `session`). The conversions from and to the prost types are here too.

use crate::pb;
use serde::Serialize;

/// One shard's last run, as the master kept it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ShardLog {
    /// The shard.
    pub shard: u64,
    /// The worker session that ran it.
    pub worker_id: u64,
    /// That worker's name (may be empty).
    pub worker: String,
    /// The host it runs on.
    pub host: String,
    /// When the run started, in ms since the Unix epoch (the worker's clock).
    pub started_unix_ms: u64,
    /// How long it ran.
    pub duration_ms: u64,
    /// The run failed (`error` says why); else it is the shard's accepted result.
    pub failed: bool,
    /// The exec kernel's exit code: the first non-zero one of the shard's runs, else 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why the run failed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// The last 64 KiB of what it logged: exec's stderr, an SDK kernel's log lines.
    pub log: String,
    /// Its log was dropped: the job's logs passed the master's `--shard-log-mib`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub log_dropped: bool,
    /// The shard's earlier runs, oldest first, without their logs (a failed run that was
    /// retried): with this one, every run of the shard, one joblog row each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<ShardLog>,
}

impl ShardLog {
    /// Bytes it holds, about: what the master counts against a job's log budget and what a
    /// reader sizes its chunks with.
    pub fn bytes(&self) -> usize {
        64 + self.worker.len() + self.host.len() + self.error.len() + self.log.len()
    }
}

/// Which of a job's logs to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Only this shard's.
    pub shard: Option<u64>,
    /// Only shards whose last run failed.
    pub failed_only: bool,
}

impl LogQuery {
    /// Whether `log` is one the query asks for.
    pub fn wants(&self, log: &ShardLog) -> bool {
        self.shard.is_none_or(|s| s == log.shard) && (!self.failed_only || log.failed)
    }
}

impl From<ShardLog> for pb::ShardLog {
    fn from(l: ShardLog) -> Self {
        pb::ShardLog {
            shard: l.shard,
            worker_id: l.worker_id,
            worker: l.worker,
            host: l.host,
            started_unix_ms: l.started_unix_ms,
            duration_ms: l.duration_ms,
            failed: l.failed,
            exit_code: l.exit_code,
            error: l.error,
            log: l.log,
            log_dropped: l.log_dropped,
            earlier: l.earlier.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<pb::ShardLog> for ShardLog {
    fn from(l: pb::ShardLog) -> Self {
        ShardLog {
            shard: l.shard,
            worker_id: l.worker_id,
            worker: l.worker,
            host: l.host,
            started_unix_ms: l.started_unix_ms,
            duration_ms: l.duration_ms,
            failed: l.failed,
            exit_code: l.exit_code,
            error: l.error,
            log: l.log,
            log_dropped: l.log_dropped,
            earlier: l.earlier.into_iter().map(Into::into).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_round_trips_and_queries_pick_shards() {
        let log = ShardLog {
            shard: 3,
            worker_id: 2,
            worker: "local-0".into(),
            host: "h".into(),
            started_unix_ms: 1_700_000_000_123,
            duration_ms: 45,
            failed: true,
            exit_code: Some(1),
            error: "boom".into(),
            log: "oops\n".into(),
            log_dropped: false,
            earlier: Vec::new(),
        };
        assert_eq!(ShardLog::from(pb::ShardLog::from(log.clone())), log);
        let json = serde_json::to_value(&log).expect("json");
        assert_eq!((json["exit_code"].as_i64(), json["log"].as_str()), (Some(1), Some("oops\n")));
        assert!(json.get("log_dropped").is_none());
        assert!(LogQuery::default().wants(&log));
        assert!(LogQuery { shard: Some(3), failed_only: true }.wants(&log));
        assert!(!LogQuery { shard: Some(4), failed_only: false }.wants(&log));
        let done = ShardLog { failed: false, earlier: vec![log.clone()], ..log };
        assert_eq!(ShardLog::from(pb::ShardLog::from(done.clone())), done);
        assert!(!LogQuery { shard: None, failed_only: true }.wants(&done));
    }
}

/// How one run of a shard went, beside its outcome: what its log keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardRun {
    /// Its job.
    pub job_id: u64,
    /// The shard.
    pub shard: u64,
    /// When it started on a pool thread, in ms since the Unix epoch (the worker's clock).
    pub started_unix_ms: u64,
    /// How long it ran.
    pub duration_ms: u64,
    /// The exec kernel's exit code: the first non-zero one of the shard's runs, else 0.
    pub exit_code: Option<i32>,
    /// The last bytes of what it logged (exec's stderr, an SDK kernel's log lines).
    pub log: String,
}

impl ShardRun {
    /// Bytes it takes on the wire, about (a worker sizes its batches with it).
    pub fn encoded_len(&self) -> usize {
        48 + self.log.len()
    }
}

impl From<ShardRun> for pb::ShardRun {
    fn from(r: ShardRun) -> Self {
        pb::ShardRun {
            job_id: r.job_id,
            shard: r.shard,
            started_unix_ms: r.started_unix_ms,
            duration_ms: r.duration_ms,
            exit_code: r.exit_code,
            log: r.log,
        }
    }
}

impl From<pb::ShardRun> for ShardRun {
    fn from(r: pb::ShardRun) -> Self {
        ShardRun {
            job_id: r.job_id,
            shard: r.shard,
            started_unix_ms: r.started_unix_ms,
            duration_ms: r.duration_ms,
            exit_code: r.exit_code,
            log: r.log,
        }
    }
}
