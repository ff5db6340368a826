//! Turns the job flags into a checked job spec.

use crate::args::JobArgs;
use anyhow::{bail, Context, Result};
use farm_proto::{JobSource, JobSpec, Params};
use std::io::Read;

/// Shards a job gets when no --shard-size is given.
const DEFAULT_SHARDS: u64 = 1000;

/// Builds the spec from the flags; errors are one line, naming the flag.
pub fn spec(args: &JobArgs) -> Result<JobSpec> {
    let source = match (&args.range, &args.inputs) {
        (_, Some(path)) => {
            let mut text = String::new();
            if path.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("cannot read inputs from stdin")?;
            } else {
                text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read --inputs {}", path.display()))?;
            }
            JobSource::Inputs(
                text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect(),
            )
        }
        (Some(range), None) => {
            let (start, end) = parse_range(range)?;
            let len = end.saturating_sub(start);
            let shard_size = args.shard_size.unwrap_or_else(|| len.div_ceil(DEFAULT_SHARDS).max(1));
            JobSource::Range { start, end, shard_size }
        }
        (None, None) => bail!("give --range A..B or --inputs FILE"),
    };
    let params = Params::from_pairs(&args.params)?;
    let requires =
        farm_proto::labels::from_pairs("--require", &args.requires).map_err(anyhow::Error::msg)?;
    let mut spec =
        JobSpec::new(args.kind.clone(), source, params, args.priority)?.with_requires(requires)?;
    spec.limits = farm_proto::JobLimits {
        retries: args.retries,
        max_crashes: args.max_crashes,
        shard_timeout_ms: args.shard_timeout.map(|t| t.as_millis() as u64),
        verify_percent: args.verify,
        no_worker_timeout_ms: args.no_worker_timeout.map(|t| t.as_millis() as u64),
        record_runs: args.joblog.is_some(),
    };
    spec.limits.check()?;
    Ok(spec)
}

/// The module of a `wasm` job (`--module FILE`, binary or WAT text), read whole; `None` for
/// other kinds. A wasm
/// job needs one (or a `--param module=SHA256` of a module the master holds).
pub fn module(args: &JobArgs) -> Result<Option<Vec<u8>>> {
    let wasm = args.kind == farm_proto::wasm::KIND;
    let by_hash = args.params.iter().any(|p| p.starts_with("module="));
    match &args.module {
        Some(path) if wasm => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read --module {}", path.display()))?;
            crate::wasm_args::module_bytes(path, bytes).map(Some)
        }
        Some(_) => bail!("--module is for wasm jobs, not {}", args.kind),
        None if wasm && !by_hash => bail!("a wasm job needs --module FILE.wasm"),
        None => Ok(None),
    }
}

/// Parses `A..B` with whole numbers.
pub fn parse_range(s: &str) -> Result<(u64, u64)> {
    let bad =
        || anyhow::anyhow!("bad --range {s:?}: expected A..B with whole numbers, e.g. 0..1000");
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let a: u64 = a.trim().replace('_', "").parse().map_err(|_| bad())?;
    let b: u64 = b.trim().replace('_', "").parse().map_err(|_| bad())?;
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(range: &str, shard_size: Option<u64>) -> JobArgs {
        JobArgs {
            kind: "primes".into(),
            range: Some(range.into()),
            shard_size,
            params: vec!["a=1".into()],
            requires: vec![],
            inputs: None,
            module: None,
            priority: 0,
            out: None,
            ndjson: false,
            retries: 0,
            max_crashes: 3,
            shard_timeout: None,
            verify: 0,
            no_worker_timeout: None,
            joblog: None,
        }
    }

    #[test]
    fn ranges_parse_and_bad_ones_are_named() {
        assert_eq!(parse_range("0..10_000").expect("range"), (0, 10_000));
        let err = parse_range("1..x").expect_err("bad").to_string();
        assert!(err.contains("bad --range \"1..x\""), "{err}");
        assert!(parse_range("5").is_err());
        assert!(parse_range("-1..5").is_err());
    }

    #[test]
    fn default_shard_size_gives_about_a_thousand_shards() {
        let s = spec(&args("0..10000000", None)).expect("spec");
        assert_eq!(s.source.shard_count(), 1000);
        let s = spec(&args("0..10", None)).expect("spec");
        assert_eq!(s.source.shard_count(), 10);
        assert!(spec(&args("10..5", Some(1))).is_err());
        assert!(spec(&args("0..5", Some(0))).is_err());
    }

    #[test]
    fn requirements_become_the_specs_and_bad_ones_are_named() {
        let mut a = args("0..10", None);
        a.requires = vec!["python=CPython 3.12".into(), "gpu=a100".into()];
        let s = spec(&a).expect("spec");
        let pairs: Vec<_> = s.requires.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(pairs, ["gpu=a100", "python=CPython 3.12"]);
        a.requires = vec!["gpu".into()];
        assert_eq!(spec(&a).expect_err("no =").to_string(), "--require \"gpu\" is not KEY=VALUE");
    }
}
