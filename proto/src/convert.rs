//! Conversions between the prost types of `farm.proto` and the domain types.

use crate::domain::{ExecRun, JobLimits, JobSource, JobSpec, Output, Params, SpecError};
use crate::pb;
use crate::pb::shard_output::Value;

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
        };
        Ok(checked)
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
        }
    }
}

impl From<Output> for pb::ShardOutput {
    fn from(output: Output) -> Self {
        let value = match output {
            Output::Count(n) => Value::Count(n),
            Output::Pi { hits, samples } => Value::Pi(pb::PiHits { hits, samples }),
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
            Some(Value::Pi(p)) => Output::Pi { hits: p.hits, samples: p.samples },
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

impl Params {
    /// The params as the prost map type.
    pub fn to_pb(&self) -> std::collections::HashMap<String, String> {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_round_trip() {
        let outputs = [
            Output::Count(7),
            Output::Pi { hits: 3, samples: 4 },
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
        .expect("valid spec");
        let wire: pb::JobSpec = spec.clone().into();
        assert_eq!(JobSpec::try_from(wire).expect("valid"), spec);
        let wire =
            pb::JobSpec { kind: "exec".into(), inputs: vec!["x".into()], ..Default::default() };
        let spec = JobSpec::try_from(wire).expect("inputs spec");
        assert_eq!(spec.source, JobSource::Inputs(vec!["x".into()]));
    }
}
