//! Per-shard logs: for an accepted outcome, the worker's report of how the shard ran (start,
//! duration, exit code, the last 64 KiB it logged) becomes a record journaled in the `logs`
//! table, with the worker's name and host and a failed run's error. Only outcomes the core
//! accepts keep one (a late or duplicate report is dropped with its log), a later run of the
//! shard replaces it, and a job's logs are bounded by `CoreConfig::shard_log_bytes`: past
//! them a record keeps its run but not its log.

use super::{Core, JobId, JournalOp, Outbox, WorkerId};
use farm_proto::session::ShardRun;
use farm_proto::ShardLog;

/// Most bytes of a worker's error message kept in a shard's record.
const MAX_ERROR_BYTES: usize = 4096;

impl Core {
    /// Journals the record of an accepted run of `shard`: `run` is what the worker reported
    /// (if anything), `error` a failed run's reason. Nothing without either.
    pub(super) fn keep_log(
        &mut self,
        worker: WorkerId,
        (job_id, shard): (JobId, u64),
        run: Option<ShardRun>,
        error: Option<&str>,
        out: &mut impl Outbox,
    ) {
        if run.is_none() && error.is_none() {
            return;
        }
        let Some(job) = self.jobs.get_mut(&job_id) else { return };
        let run = run.unwrap_or_default();
        let (name, host) = self.workers.get(&worker).map_or((String::new(), String::new()), |w| {
            (w.spec.name.clone(), w.spec.hostname.clone())
        });
        let mut log = ShardLog {
            shard,
            worker_id: worker,
            worker: name,
            host,
            started_unix_ms: run.started_unix_ms,
            duration_ms: run.duration_ms,
            failed: error.is_some(),
            exit_code: run.exit_code,
            error: error
                .map(|e| farm_proto::kernel::truncate(e, MAX_ERROR_BYTES))
                .unwrap_or_default(),
            log: run.log,
            log_dropped: false,
            earlier: Vec::new(),
        };
        if job.log_bytes + log.bytes() > self.config.shard_log_bytes {
            log.log_dropped = !log.log.is_empty();
            log.log = String::new();
        }
        job.log_bytes += log.bytes();
        out.journal(JournalOp::ShardLog { job: job_id, log });
    }
}

#[cfg(test)]
mod tests {
    use super::super::recording::{take, Recording};
    use super::super::{CoreConfig, OutputShape, ShardOutcome, WorkerSpec};
    use super::*;
    use farm_proto::session::Results;
    use farm_proto::{JobSource, JobSpec, Output, Params};
    use std::time::Instant;

    fn run(shard: u64, log: &str) -> ShardRun {
        let log = log.to_string();
        ShardRun { job_id: 1, shard, started_unix_ms: 1000, duration_ms: 5, exit_code: None, log }
    }

    #[test]
    fn accepted_runs_keep_a_record_and_a_jobs_logs_are_bounded() {
        let config = CoreConfig { shard_log_bytes: 400, ..CoreConfig::default() };
        let mut core = Core::new(config);
        let mut out = Recording::default();
        let now = Instant::now();
        let spec = WorkerSpec {
            threads: 4,
            kinds: vec!["noop".into()],
            name: "w1".into(),
            hostname: "h".into(),
            ..Default::default()
        };
        let w = core.worker_joined(spec, now, &mut out);
        let source = JobSource::Range { start: 0, end: 4, shard_size: 1 };
        let job = JobSpec::new("noop", source, Params::default(), 0).expect("spec");
        let id = core
            .submit(job, crate::core::Owner::anonymous(), OutputShape::Count, now, &mut out)
            .expect("submit");
        core.dispatch(now, &mut out);
        let outcomes = vec![
            (id, 0, ShardOutcome::Done(Output::Count(1))),
            (id, 2, ShardOutcome::Done(Output::Count(1))),
            // Fails the job (no retries).
            (id, 1, ShardOutcome::Failed("boom".into())),
            // Not held by this worker: its run is dropped with it.
            (id, 9, ShardOutcome::Done(Output::Count(1))),
        ];
        let runs = vec![run(0, "hello\n"), run(2, &"x".repeat(500)), run(9, "stray")];
        let batch = Results { done: outcomes, runs, ..Results::default() };
        let dropped = core.batch(w, batch, now, &mut out).expect("results");
        assert_eq!(dropped, 1);
        let shard_logs = out.shard_logs();
        let logs: Vec<(u64, bool, &str, &str, bool)> = shard_logs
            .iter()
            .map(|(_, l)| (l.shard, l.failed, l.error.as_str(), l.log.as_str(), l.log_dropped))
            .collect();
        assert_eq!(
            logs,
            [
                (0, false, "", "hello\n", false),
                // Past the job's 400 bytes: the run is kept, its log is not.
                (2, false, "", "", true),
                // A failure keeps its error even without a run report.
                (1, true, "boom", "", false),
            ]
        );
        assert_eq!((shard_logs[0].1.worker.as_str(), shard_logs[0].1.host.as_str()), ("w1", "h"));
        assert_eq!((shard_logs[0].1.started_unix_ms, shard_logs[0].1.duration_ms), (1000, 5));
        // The failed shard failed its job, which was cancelled on its worker.
        assert_eq!(take(&mut out.defs), vec![(w, id)]);
        assert_eq!(take(&mut out.cancels), vec![(w, id)]);
        assert_eq!(take(&mut out.outputs).len(), 2);
        assert_eq!(take(&mut out.finished).len(), 1);
        out.assert_quiet();
    }
}
