//! A job spec from the Python dict `Client.submit` takes. Every key is optional except `kind`;
//! an unknown key or a value of the wrong type is `InvalidArgument`, naming the key.

use crate::errors::invalid;
use farm_proto::{JobLimits, JobSource, JobSpec, Params};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::collections::BTreeMap;

/// The keys a spec may hold.
const KEYS: &[&str] = &[
    "kind",
    "start",
    "end",
    "shard_size",
    "inputs",
    "params",
    "priority",
    "retries",
    "max_crashes",
    "shard_timeout_ms",
    "verify_percent",
    "no_worker_timeout_ms",
    "record_runs",
    "requires",
];

/// Shards a range job gets when the spec gives no shard size, as `farm submit` chooses.
const DEFAULT_SHARDS: u64 = 1000;

/// The value of `key`, if present and not None, as `T`.
fn get<'py, T: FromPyObjectOwned<'py>>(
    spec: &Bound<'py, PyDict>,
    key: &str,
) -> PyResult<Option<T>> {
    match spec.get_item(key)? {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => v.extract::<T>().map(Some).map_err(|e| {
            let e: PyErr = e.into();
            invalid(format!("spec key {key:?}: {e}"))
        }),
    }
}

/// The spec the dict describes.
pub fn from_dict(spec: &Bound<'_, PyDict>) -> PyResult<JobSpec> {
    for key in spec.keys() {
        let key: String = key.extract().map_err(|_| invalid("spec keys must be strings"))?;
        if !KEYS.contains(&key.as_str()) {
            return Err(invalid(format!("unknown spec key {key:?}; known: {}", KEYS.join(", "))));
        }
    }
    let kind: String = get(spec, "kind")?.ok_or_else(|| invalid("spec needs a kind"))?;
    let source = match get::<Vec<String>>(spec, "inputs")? {
        Some(lines) => {
            if spec.contains("end")? {
                return Err(invalid("a spec has inputs or a range (end), not both"));
            }
            JobSource::Inputs(lines)
        }
        None => {
            let start: u64 = get(spec, "start")?.unwrap_or(0);
            let end: u64 = get(spec, "end")?.ok_or_else(|| invalid("spec needs inputs or end"))?;
            let default = end.saturating_sub(start).div_ceil(DEFAULT_SHARDS).max(1);
            let shard_size = get(spec, "shard_size")?.unwrap_or(default);
            JobSource::Range { start, end, shard_size }
        }
    };
    let params: BTreeMap<String, String> = get(spec, "params")?.unwrap_or_default();
    let priority: i32 = get(spec, "priority")?.unwrap_or(0);
    let mut job =
        JobSpec::new(kind, source, Params(params), priority).map_err(|e| invalid(e.to_string()))?;
    let defaults = JobLimits::default();
    job.limits = JobLimits {
        retries: get(spec, "retries")?.unwrap_or(defaults.retries),
        max_crashes: get(spec, "max_crashes")?.unwrap_or(defaults.max_crashes),
        shard_timeout_ms: get(spec, "shard_timeout_ms")?,
        verify_percent: get(spec, "verify_percent")?.unwrap_or(defaults.verify_percent),
        no_worker_timeout_ms: get(spec, "no_worker_timeout_ms")?,
        record_runs: get(spec, "record_runs")?.unwrap_or(defaults.record_runs),
    };
    job.limits.check().map_err(|e| invalid(e.to_string()))?;
    let requires: BTreeMap<String, String> = get(spec, "requires")?.unwrap_or_default();
    job.with_requires(requires).map_err(|e| invalid(e.to_string()))
}
