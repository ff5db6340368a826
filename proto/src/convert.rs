//! Conversions between the prost types of `farm.proto` and the domain types. From a prost type
//! they are `TryFrom` and refuse what the domain cannot hold (an unknown enum value, a missing
//! field) with a `SpecError`; to a prost type they are `From`.

use crate::domain::{ExecRun, JobLimits, JobSource, JobSpec, Output, Params, SpecError};
use crate::pb;
use crate::pb::{job_event::Event, shard_output::Value};
use crate::status::{JobEvent, JobState, JobStatus, JsonText, Progress, Submitted, WorkerInfo};

impl TryFrom<pb::JobSpec> for JobSpec {
    type Error = SpecError;

    fn try_from(spec: pb::JobSpec) -> Result<Self, SpecError> {
        let source = if spec.inputs.is_empty() {
            JobSource::Range { start: spec.start, end: spec.end, shard_size: spec.shard_size }
        } else {
            JobSource::Inputs(spec.inputs)
        };
        let mut checked = JobSpec::new(
            spec.kind,
            source,
            Params(spec.params.into_iter().collect()),
            spec.priority,
        )?;
        checked.limits = JobLimits {
            retries: spec.retries,
            max_crashes: if spec.max_crashes == 0 {
                JobLimits::DEFAULT_MAX_CRASHES
            } else {
                spec.max_crashes
            },
            shard_timeout_ms: (spec.shard_timeout_ms > 0).then_some(spec.shard_timeout_ms),
            verify_percent: spec.verify_percent,
            no_worker_timeout_ms: (spec.no_worker_timeout_ms > 0)
                .then_some(spec.no_worker_timeout_ms),
            record_runs: spec.record_runs,
        };
        checked.limits.check()?;
        checked.with_requires(spec.requires.into_iter().collect())
    }
}

impl From<JobSpec> for pb::JobSpec {
    fn from(spec: JobSpec) -> Self {
        let (start, end, shard_size, inputs) = match spec.source {
            JobSource::Range { start, end, shard_size } => (start, end, shard_size, Vec::new()),
            JobSource::Inputs(lines) => (0, 0, 0, lines),
        };
        pb::JobSpec {
            kind: spec.kind,
            start,
            end,
            shard_size,
            inputs,
            params: spec.params.0.into_iter().collect(),
            priority: spec.priority,
            retries: spec.limits.retries,
            max_crashes: spec.limits.max_crashes,
            shard_timeout_ms: spec.limits.shard_timeout_ms.unwrap_or(0),
            verify_percent: spec.limits.verify_percent,
            no_worker_timeout_ms: spec.limits.no_worker_timeout_ms.unwrap_or(0),
            record_runs: spec.limits.record_runs,
            requires: spec.requires.into_iter().collect(),
        }
    }
}

impl From<Output> for pb::ShardOutput {
    fn from(output: Output) -> Self {
        let value = match output {
            Output::Count(n) => Value::Count(n),
            Output::Fraction { hits, samples } => Value::Fraction(pb::Fraction { hits, samples }),
            Output::Lines(lines) => Value::Lines(pb::LineList { lines }),
            Output::Rows(rows) => Value::Rows(pb::RowList {
                rows: rows.into_iter().map(|values| pb::Row { values }).collect(),
            }),
            Output::Exec(runs) => Value::Exec(pb::ExecList {
                runs: runs
                    .into_iter()
                    .map(|r| pb::ExecRun { exit_code: r.exit_code, stdout: r.stdout })
                    .collect(),
            }),
        };
        pb::ShardOutput { value: Some(value) }
    }
}

impl TryFrom<pb::ShardOutput> for Output {
    type Error = SpecError;

    fn try_from(output: pb::ShardOutput) -> Result<Self, SpecError> {
        Ok(match output.value {
            None => return Err(SpecError::Invalid("shard output has no value".into())),
            Some(Value::Count(n)) => Output::Count(n),
            Some(Value::Fraction(p)) => Output::Fraction { hits: p.hits, samples: p.samples },
            Some(Value::Lines(l)) => Output::Lines(l.lines),
            Some(Value::Rows(r)) => {
                Output::Rows(r.rows.into_iter().map(|row| row.values).collect())
            }
            Some(Value::Exec(e)) => Output::Exec(
                e.runs
                    .into_iter()
                    .map(|r| ExecRun { exit_code: r.exit_code, stdout: r.stdout })
                    .collect(),
            ),
        })
    }
}

impl From<JobState> for pb::JobState {
    fn from(state: JobState) -> Self {
        match state {
            JobState::Queued => pb::JobState::Queued,
            JobState::Running => pb::JobState::Running,
            JobState::Succeeded => pb::JobState::Succeeded,
            JobState::Failed => pb::JobState::Failed,
            JobState::Cancelled => pb::JobState::Cancelled,
        }
    }
}

impl TryFrom<pb::JobState> for JobState {
    type Error = SpecError;

    fn try_from(state: pb::JobState) -> Result<Self, SpecError> {
        Ok(match state {
            pb::JobState::Unspecified => {
                return Err(SpecError::Invalid("job state is unspecified".into()))
            }
            pb::JobState::Queued => JobState::Queued,
            pb::JobState::Running => JobState::Running,
            pb::JobState::Succeeded => JobState::Succeeded,
            pb::JobState::Failed => JobState::Failed,
            pb::JobState::Cancelled => JobState::Cancelled,
        })
    }
}

/// The job state of a prost message, where it is a raw `i32`.
fn job_state(raw: i32) -> Result<JobState, SpecError> {
    pb::JobState::try_from(raw)
        .map_err(|_| SpecError::Invalid(format!("unknown job state {raw}")))?
        .try_into()
}

impl TryFrom<pb::JobStatus> for JobStatus {
    type Error = SpecError;

    /// An empty `result_json` is `null`; any other must be JSON.
    fn try_from(s: pb::JobStatus) -> Result<Self, SpecError> {
        let result = if s.result_json.is_empty() {
            JsonText::null()
        } else {
            JsonText::parse(s.result_json)?
        };
        Ok(JobStatus {
            job: s.job_id,
            kind: s.kind,
            state: job_state(s.state)?,
            shards: s.shards_total,
            done: s.shards_done,
            in_flight: s.shards_running,
            result,
            error: (!s.error.is_empty()).then_some(s.error),
            elapsed_ms: s.elapsed_ms,
            priority: s.priority,
            reruns: s.shards_rerun,
            result_in_store: s.result_in_store,
            submitted_unix_ms: s.submitted_unix_ms,
            result_left_out: s.result_left_out,
            waiting: (!s.waiting.is_empty()).then_some(s.waiting),
        })
    }
}

impl From<JobStatus> for pb::JobStatus {
    /// A `null` result goes on the wire as an empty `result_json` ("not set").
    fn from(s: JobStatus) -> Self {
        pb::JobStatus {
            job_id: s.job,
            kind: s.kind,
            state: pb::JobState::from(s.state) as i32,
            shards_total: s.shards,
            shards_done: s.done,
            shards_running: s.in_flight,
            result_json: if s.result.is_null() { String::new() } else { s.result.into_string() },
            error: s.error.unwrap_or_default(),
            elapsed_ms: s.elapsed_ms,
            priority: s.priority,
            shards_rerun: s.reruns,
            result_in_store: s.result_in_store,
            submitted_unix_ms: s.submitted_unix_ms,
            result_left_out: s.result_left_out,
            waiting: s.waiting.unwrap_or_default(),
        }
    }
}

impl From<pb::SubmitResponse> for Submitted {
    fn from(r: pb::SubmitResponse) -> Self {
        Submitted { job: r.job_id, shards: r.shards }
    }
}

impl From<Submitted> for pb::SubmitResponse {
    fn from(s: Submitted) -> Self {
        pb::SubmitResponse { job_id: s.job, shards: s.shards }
    }
}

impl From<pb::Progress> for Progress {
    fn from(p: pb::Progress) -> Self {
        let waiting = (!p.waiting.is_empty()).then_some(p.waiting);
        Progress { done: p.done, total: p.total, in_flight: p.running, waiting }
    }
}

impl From<Progress> for pb::Progress {
    fn from(p: Progress) -> Self {
        let waiting = p.waiting.unwrap_or_default();
        pb::Progress { done: p.done, total: p.total, running: p.in_flight, waiting }
    }
}

impl TryFrom<pb::JobEvent> for JobEvent {
    type Error = SpecError;

    fn try_from(e: pb::JobEvent) -> Result<Self, SpecError> {
        Ok(match e.event {
            None => return Err(SpecError::Invalid("job event is empty".into())),
            Some(Event::Progress(p)) => JobEvent::Progress(p.into()),
            Some(Event::Shard(s)) => {
                let output = s.output.ok_or_else(|| {
                    SpecError::Invalid(format!("result of shard {} has no output", s.shard))
                })?;
                JobEvent::Shard { shard: s.shard, output: output.try_into()? }
            }
            Some(Event::Finished(status)) => JobEvent::Finished(status.try_into()?),
        })
    }
}

impl From<JobEvent> for pb::JobEvent {
    fn from(e: JobEvent) -> Self {
        let event = match e {
            JobEvent::Progress(p) => Event::Progress(p.into()),
            JobEvent::Shard { shard, output } => {
                Event::Shard(pb::ShardResult { shard, output: Some(output.into()) })
            }
            JobEvent::Finished(status) => Event::Finished(status.into()),
        };
        pb::JobEvent { event: Some(event) }
    }
}

impl TryFrom<pb::WorkerInfo> for WorkerInfo {
    type Error = SpecError;

    fn try_from(w: pb::WorkerInfo) -> Result<Self, SpecError> {
        Ok(WorkerInfo {
            dialed_by: w.dialed_by.parse()?,
            worker: w.worker_id,
            name: w.name,
            hostname: w.hostname,
            pid: w.pid,
            address: w.address,
            threads: w.threads,
            in_flight: w.shards_running,
            done: w.shards_done,
            kinds: w.kinds,
            connected_secs: w.connected_secs,
            restarts: w.restarts,
            draining: w.draining,
            suspect: Some(w.suspect).filter(|s| !s.is_empty()),
            labels: w.labels.into_iter().collect(),
        })
    }
}

impl From<WorkerInfo> for pb::WorkerInfo {
    fn from(w: WorkerInfo) -> Self {
        pb::WorkerInfo {
            worker_id: w.worker,
            name: w.name,
            hostname: w.hostname,
            pid: w.pid,
            threads: w.threads,
            shards_running: w.in_flight,
            shards_done: w.done,
            kinds: w.kinds,
            connected_secs: w.connected_secs,
            address: w.address,
            restarts: w.restarts,
            draining: w.draining,
            dialed_by: w.dialed_by.as_str().into(),
            suspect: w.suspect.unwrap_or_default(),
            labels: w.labels.into_iter().collect(),
        }
    }
}

impl TryFrom<pb::ListResponse> for Vec<JobStatus> {
    type Error = SpecError;

    fn try_from(r: pb::ListResponse) -> Result<Self, SpecError> {
        r.jobs.into_iter().map(JobStatus::try_from).collect()
    }
}

impl From<Vec<JobStatus>> for pb::ListResponse {
    fn from(jobs: Vec<JobStatus>) -> Self {
        pb::ListResponse { jobs: jobs.into_iter().map(Into::into).collect() }
    }
}

impl TryFrom<pb::ListWorkersResponse> for Vec<WorkerInfo> {
    type Error = SpecError;

    fn try_from(r: pb::ListWorkersResponse) -> Result<Self, SpecError> {
        r.workers.into_iter().map(WorkerInfo::try_from).collect()
    }
}

impl From<Vec<WorkerInfo>> for pb::ListWorkersResponse {
    fn from(workers: Vec<WorkerInfo>) -> Self {
        pb::ListWorkersResponse { workers: workers.into_iter().map(Into::into).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_round_trip() {
        let outputs = [
            Output::Count(7),
            Output::Fraction { hits: 3, samples: 4 },
            Output::Lines(vec!["ab".into()]),
            Output::Rows(vec![vec![1, 2], vec![3]]),
            Output::Exec(vec![ExecRun { exit_code: -9, stdout: "x".into() }]),
        ];
        for out in outputs {
            let wire: pb::ShardOutput = out.clone().into();
            assert_eq!(Output::try_from(wire).expect("valid output"), out);
        }
        assert!(Output::try_from(pb::ShardOutput { value: None }).is_err());
    }

    #[test]
    fn spec_round_trips_and_inputs_win_over_range() {
        let spec = JobSpec::new(
            "primes",
            JobSource::Range { start: 0, end: 100, shard_size: 7 },
            Params::from_pairs(["a=b"]).expect("pairs"),
            3,
        )
        .and_then(|s| {
            let requires = crate::labels::from_pairs("req", ["python=CPython 3.12"]);
            s.with_requires(requires.map_err(SpecError::Invalid)?)
        })
        .expect("valid spec");
        let wire: pb::JobSpec = spec.clone().into();
        assert_eq!(wire.requires.get("python").map(String::as_str), Some("CPython 3.12"));
        assert_eq!(JobSpec::try_from(wire).expect("valid"), spec);
        let bad = pb::JobSpec {
            kind: "noop".into(),
            end: 1,
            shard_size: 1,
            requires: [("a b".to_string(), "x".to_string())].into(),
            ..Default::default()
        };
        let err = JobSpec::try_from(bad).expect_err("bad requirement key");
        assert!(err.to_string().starts_with("requirement key \"a b\""), "{err}");
        let wire =
            pb::JobSpec { kind: "exec".into(), inputs: vec!["x".into()], ..Default::default() };
        let spec = JobSpec::try_from(wire).expect("inputs spec");
        assert_eq!(spec.source, JobSource::Inputs(vec!["x".into()]));
    }
}
