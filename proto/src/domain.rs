//! Domain types shared by master, worker and client: a job's spec and a shard's output.
//! Conversions from and to the prost types live in `convert.rs`.

use crate::labels::Labels;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Job parameters as the user gave them (`--param key=value`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params(pub BTreeMap<String, String>);

impl Params {
    /// Parses `key=value` pairs as given on a command line.
    pub fn from_pairs<I, S>(pairs: I) -> Result<Self, SpecError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut map = BTreeMap::new();
        for pair in pairs {
            let pair = pair.as_ref();
            let (key, value) = pair
                .split_once('=')
                .filter(|(k, _)| !k.trim().is_empty())
                .ok_or_else(|| SpecError::Invalid(format!("param {pair:?} is not key=value")))?;
            map.insert(key.trim().to_string(), value.to_string());
        }
        Ok(Params(map))
    }
}

/// Most params one job may carry.
pub const MAX_PARAMS: usize = 256;
/// Longest param name, of a job's params and of those a kernel declares.
pub const MAX_NAME_BYTES: usize = 128;
/// Longest param value (a command line, say); names are bounded like kernel names.
pub const MAX_PARAM_VALUE_BYTES: usize = 64 * 1024;

impl Params {
    /// Refuses params no kernel could take (too many, a name over 128 bytes, a value over
    /// 64 KiB), before anything copies them; the message quotes at most a few dozen bytes.
    pub fn check_size(&self) -> Result<(), SpecError> {
        use crate::quote::clip;
        if self.0.len() > MAX_PARAMS {
            return Err(SpecError::Invalid(format!(
                "{} params, at most {MAX_PARAMS}",
                self.0.len()
            )));
        }
        for (name, value) in &self.0 {
            if name.len() > MAX_NAME_BYTES {
                return Err(SpecError::Invalid(format!(
                    "param name {} is over {MAX_NAME_BYTES} bytes",
                    clip(name)
                )));
            }
            if value.len() > MAX_PARAM_VALUE_BYTES {
                return Err(SpecError::Invalid(format!(
                    "param {} is over {} KiB ({} bytes)",
                    clip(name),
                    MAX_PARAM_VALUE_BYTES / 1024,
                    value.len()
                )));
            }
        }
        Ok(())
    }
}

/// What one shard produced; the master reduces outputs by variant.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A count; the job result is the sum.
    Count(u64),
    /// Hits out of samples (a Monte Carlo estimate); summed, and the job result is
    /// {"hits","samples","estimate"} with the estimate scaled as the kernel declares.
    Fraction {
        /// Points inside the unit quarter circle.
        hits: u64,
        /// Points drawn.
        samples: u64,
    },
    /// One string per index (e.g. lowercase hex digests); the job result is the list in index order.
    Lines(Vec<String>),
    /// One row of numbers per index (mandelbrot iteration counts); the job result is the rows in order.
    Rows(Vec<Vec<u32>>),
    /// One program run per index.
    Exec(Vec<ExecRun>),
}

/// One run of the `exec` kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRun {
    /// The program's exit code; minus the signal number when a signal ended it.
    pub exit_code: i32,
    /// What it wrote to stdout (lossy UTF-8).
    pub stdout: String,
}

/// Where a job's shards come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobSource {
    /// Indices `start..end` cut into shards of `shard_size` (the last may be shorter).
    Range {
        /// First index.
        start: u64,
        /// One past the last index.
        end: u64,
        /// Indices per shard, at least 1.
        shard_size: u64,
    },
    /// One shard per input line; the shard's index is the line's position.
    Inputs(Vec<String>),
}

impl JobSource {
    /// How many shards the job has.
    pub fn shard_count(&self) -> u64 {
        match self {
            JobSource::Range { start, end, shard_size } => (end - start).div_ceil(*shard_size),
            JobSource::Inputs(lines) => lines.len() as u64,
        }
    }

    /// The indices `lo..hi` of shard `shard` and its input line, if any.
    pub fn shard(&self, shard: u64) -> (u64, u64, Option<&str>) {
        match self {
            JobSource::Range { start, end, shard_size } => {
                let lo = start + shard * shard_size;
                (lo, lo.saturating_add(*shard_size).min(*end), None)
            }
            JobSource::Inputs(lines) => (shard, shard + 1, Some(lines[shard as usize].as_str())),
        }
    }
}

/// A checked job specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    /// Kernel name.
    pub kind: String,
    /// The shards.
    pub source: JobSource,
    /// Kernel parameters.
    pub params: Params,
    /// Higher runs first.
    pub priority: i32,
    /// How failures and hangs of its shards are handled.
    pub limits: JobLimits,
    /// Labels a worker must hold (every pair) to be handed the job's shards.
    pub requires: Labels,
}

/// How a job treats shards that fail, hang or take their workers down, and what it keeps of
/// their runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobLimits {
    /// Failed runs of a shard (kernel error, panic, timeout) retried before the job fails.
    pub retries: u32,
    /// A shard that was running on this many workers when they died fails the job.
    pub max_crashes: u32,
    /// A shard running longer is stopped and counts as a failed run.
    pub shard_timeout_ms: Option<u64>,
    /// Percentage of shards (0-100) rerun on a different worker to check the outputs agree.
    pub verify_percent: u32,
    /// Fail the job once no connected worker has offered its kind for this long.
    pub no_worker_timeout_ms: Option<u64>,
    /// Keep a run record of every shard (for `--joblog`), not only of those that logged or
    /// failed.
    pub record_runs: bool,
}

impl JobLimits {
    /// Crashes a shard may cause before its job fails, unless the job says otherwise.
    pub const DEFAULT_MAX_CRASHES: u32 = 3;
    /// Most retries of a failing shard: with backoff between runs, more only burns CPU.
    pub const MAX_RETRIES: u32 = 100;
    /// Most crashes a shard may cause.
    pub const MAX_CRASHES: u32 = 100;

    /// Checks the bounds; the message names the limit.
    pub fn check(&self) -> Result<(), SpecError> {
        if self.retries > Self::MAX_RETRIES {
            return Err(SpecError::Invalid(format!(
                "retries must be at most {}, got {}",
                Self::MAX_RETRIES,
                self.retries
            )));
        }
        if self.max_crashes == 0 || self.max_crashes > Self::MAX_CRASHES {
            return Err(SpecError::Invalid(format!(
                "max crashes must be 1..={}, got {}",
                Self::MAX_CRASHES,
                self.max_crashes
            )));
        }
        if self.verify_percent > 100 {
            return Err(SpecError::Invalid(format!(
                "verify must be a percentage 0..=100, got {}",
                self.verify_percent
            )));
        }
        Ok(())
    }
}

impl Default for JobLimits {
    fn default() -> Self {
        JobLimits {
            retries: 0,
            max_crashes: Self::DEFAULT_MAX_CRASHES,
            shard_timeout_ms: None,
            verify_percent: 0,
            no_worker_timeout_ms: None,
            record_runs: false,
        }
    }
}

/// Why a job spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The spec is malformed (maps to InvalidArgument).
    #[error("{0}")]
    Invalid(String),
}

impl JobSpec {
    /// Checks the parts every job needs: a kind, a non-empty range and a shard size of at least 1.
    pub fn new(
        kind: impl Into<String>,
        source: JobSource,
        params: Params,
        priority: i32,
    ) -> Result<Self, SpecError> {
        let kind = kind.into();
        if kind.trim().is_empty() {
            return Err(SpecError::Invalid("kind is empty".into()));
        }
        if kind.len() > MAX_NAME_BYTES {
            let kind = crate::quote::clip(&kind);
            return Err(SpecError::Invalid(format!("kind {kind} is over 128 bytes")));
        }
        params.check_size()?;
        match &source {
            JobSource::Range { start, end, shard_size } => {
                if *shard_size == 0 {
                    return Err(SpecError::Invalid("shard size must be at least 1".into()));
                }
                if start >= end {
                    return Err(SpecError::Invalid(format!(
                        "range {start}..{end} is empty or reversed"
                    )));
                }
            }
            JobSource::Inputs(lines) if lines.is_empty() => {
                return Err(SpecError::Invalid("inputs are empty".into()));
            }
            JobSource::Inputs(_) => {}
        }
        Ok(JobSpec {
            kind,
            source,
            params,
            priority,
            limits: JobLimits::default(),
            requires: Labels::new(),
        })
    }

    /// Sets the labels a worker must hold to run the job's shards, after their checks.
    pub fn with_requires(mut self, requires: Labels) -> Result<Self, SpecError> {
        crate::labels::check("requirement", &requires).map_err(SpecError::Invalid)?;
        self.requires = requires;
        Ok(self)
    }
}

/// What a stored module's bytes are (`PutModule`'s `format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModuleFormat {
    /// A WebAssembly module of the farm ABI, checked at upload: a `wasm` job's `module`.
    #[default]
    Wasm,
    /// A pickled Python function, opaque to the master: a `python` job's `function`.
    Pickle,
}

impl ModuleFormat {
    /// Its name in messages and the CLI's `--json` (`wasm`, `pickle`).
    pub fn as_str(self) -> &'static str {
        match self {
            ModuleFormat::Wasm => "wasm",
            ModuleFormat::Pickle => "pickle",
        }
    }
}

impl TryFrom<i32> for ModuleFormat {
    type Error = SpecError;

    fn try_from(value: i32) -> Result<Self, SpecError> {
        match crate::pb::ModuleFormat::try_from(value) {
            Ok(crate::pb::ModuleFormat::Wasm) => Ok(ModuleFormat::Wasm),
            Ok(crate::pb::ModuleFormat::Pickle) => Ok(ModuleFormat::Pickle),
            Err(_) => Err(SpecError::Invalid(format!("unknown module format {value}"))),
        }
    }
}

impl From<ModuleFormat> for i32 {
    fn from(format: ModuleFormat) -> i32 {
        match format {
            ModuleFormat::Wasm => crate::pb::ModuleFormat::Wasm as i32,
            ModuleFormat::Pickle => crate::pb::ModuleFormat::Pickle as i32,
        }
    }
}

impl std::str::FromStr for ModuleFormat {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        match s {
            "wasm" => Ok(ModuleFormat::Wasm),
            "pickle" => Ok(ModuleFormat::Pickle),
            other => Err(SpecError::Invalid(format!(
                "unknown module format {}: wasm or pickle",
                crate::quote::quote(other)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: u64, end: u64, shard_size: u64) -> JobSource {
        JobSource::Range { start, end, shard_size }
    }

    #[test]
    fn shard_count_and_bounds_cover_the_range() {
        let src = range(10, 105, 10);
        assert_eq!(src.shard_count(), 10);
        assert_eq!(src.shard(0), (10, 20, None));
        assert_eq!(src.shard(9), (100, 105, None));
        let edge = range(u64::MAX - 5, u64::MAX, 4);
        assert_eq!(edge.shard_count(), 2);
        assert_eq!(edge.shard(1), (u64::MAX - 1, u64::MAX, None));
    }

    #[test]
    fn bad_specs_are_refused() {
        let p = Params::default();
        assert!(JobSpec::new("noop", range(5, 5, 1), p.clone(), 0).is_err());
        assert!(JobSpec::new("noop", range(6, 5, 1), p.clone(), 0).is_err());
        assert!(JobSpec::new("noop", range(0, 5, 0), p.clone(), 0).is_err());
        assert!(JobSpec::new(" ", range(0, 5, 1), p.clone(), 0).is_err());
        assert!(JobSpec::new("noop", JobSource::Inputs(vec![]), p, 0).is_err());
    }

    #[test]
    fn params_no_kernel_could_take_are_refused_at_the_door() {
        let src = || range(0, 5, 1);
        let one = |k: String, v: String| Params([(k, v)].into_iter().collect());
        let long_name = JobSpec::new("k", src(), one("n".repeat(200), "1".into()), 0);
        assert!(long_name.unwrap_err().to_string().contains("(200 bytes) is over 128 bytes"));
        let long_value = JobSpec::new("k", src(), one("n".into(), "v".repeat(70_000)), 0);
        assert!(long_value.unwrap_err().to_string().contains("over 64 KiB (70000 bytes)"));
        let many = Params((0..300).map(|i| (i.to_string(), String::new())).collect());
        assert!(JobSpec::new("k", src(), many, 0).is_err());
        assert!(JobSpec::new("k".repeat(200), src(), Params::default(), 0).is_err());
    }

    #[test]
    fn params_parse_pairs() {
        let p = Params::from_pairs(["a=1", "b=x=y"]).expect("valid pairs");
        assert_eq!(p.0["a"], "1");
        assert_eq!(p.0["b"], "x=y");
        assert!(Params::from_pairs(["novalue"]).is_err());
        assert!(Params::from_pairs(["=1"]).is_err());
    }
}
