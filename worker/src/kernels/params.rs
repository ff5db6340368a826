//! Shared helpers for the kernels: parsing job parameters (with defaults, range checks and
//! rejection of unknown names) and turning a shard into the index values a kernel works on.

use std::borrow::Cow;

use crate::sdk::{KernelError, Params, ShardInput};

/// Rejects any parameter whose name is not in `known`, so typos are caught at submit time.
pub fn check_known(kernel: &str, params: &Params, known: &[&str]) -> Result<(), KernelError> {
    match params.0.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(name) => {
            let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
            Err(KernelError::BadParam(format!(
                "unknown param {name} for kernel {kernel}; known: {known}"
            )))
        }
    }
}

/// Returns parameter `name` as a u64, or `default` when it is absent.
pub fn u64_or(params: &Params, name: &str, default: u64) -> Result<u64, KernelError> {
    match params.0.get(name) {
        None => Ok(default),
        Some(raw) => raw.trim().parse::<u64>().map_err(|_| {
            KernelError::BadParam(format!("bad param {name}: {raw:?} is not a whole number"))
        }),
    }
}

/// Returns parameter `name` as a finite f64, or `default` when it is absent.
pub fn f64_or(params: &Params, name: &str, default: f64) -> Result<f64, KernelError> {
    match params.0.get(name) {
        None => Ok(default),
        Some(raw) => match raw.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(KernelError::BadParam(format!(
                "bad param {name}: {raw:?} is not a finite number"
            ))),
        },
    }
}

/// Returns the required string parameter `name`; absent or empty is an error.
pub fn required_str<'a>(params: &'a Params, name: &str) -> Result<&'a str, KernelError> {
    match params.0.get(name) {
        None => Err(KernelError::BadParam(format!("missing param {name}"))),
        Some(v) if v.trim().is_empty() => {
            Err(KernelError::BadParam(format!("bad param {name}: must not be empty")))
        }
        Some(v) => Ok(v),
    }
}

/// Fails with BadParam unless `value` lies in `min..=max`.
pub fn check_range(name: &str, value: u64, min: u64, max: u64) -> Result<u64, KernelError> {
    if value < min {
        Err(KernelError::BadParam(format!("bad param {name}: must be at least {min}, got {value}")))
    } else if value > max {
        Err(KernelError::BadParam(format!("bad param {name}: must be at most {max}, got {value}")))
    } else {
        Ok(value)
    }
}

/// The numeric index values of one shard: `lo..hi` for a range shard, or the single value
/// parsed from the trimmed input line of an explicit input shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Indices {
    first: u64,
    count: u64,
}

impl Indices {
    /// Resolves the shard's index values; an input line that is not a whole number fails.
    pub fn of(shard: &ShardInput) -> Result<Self, KernelError> {
        match &shard.input {
            None => Ok(Indices { first: shard.lo, count: shard.hi.saturating_sub(shard.lo) }),
            Some(line) => match line.trim().parse::<u64>() {
                Ok(v) => Ok(Indices { first: v, count: 1 }),
                Err(_) => Err(KernelError::Failed(format!(
                    "input line {}: {line:?} is not a whole number",
                    shard.lo
                ))),
            },
        }
    }

    /// Number of index values.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// True when the shard covers no index.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The index values in order.
    pub fn iter(&self) -> impl Iterator<Item = u64> {
        let first = self.first;
        (0..self.count).map(move |k| first + k)
    }
}

/// The text each index stands for: its decimal value for a range shard, or the raw input line
/// (untrimmed) for an explicit input shard. Used by kernels that substitute text, like exec.
pub fn index_texts(shard: &ShardInput) -> Box<dyn Iterator<Item = Cow<'_, str>> + '_> {
    match &shard.input {
        Some(line) => Box::new(std::iter::once(Cow::Borrowed(line.as_str()))),
        None => Box::new((shard.lo..shard.hi).map(|i| Cow::Owned(i.to_string()))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds Params from key/value pairs.
    pub(crate) fn params(pairs: &[(&str, &str)]) -> Params {
        Params(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    /// A range shard lo..hi.
    pub(crate) fn range(lo: u64, hi: u64) -> ShardInput {
        ShardInput { lo, hi, input: None }
    }

    /// An explicit input shard for line `index`.
    /// Runs `job` on `shard` with its cancel flag already set, then with the flag set 30 ms in;
    /// both runs must return `Cancelled`, the second within 5 s.
    pub(crate) fn assert_stops_when_cancelled(job: &dyn crate::sdk::Prepared, shard: &ShardInput) {
        use crate::sdk::{CancelFlag, KernelError};
        use std::time::{Duration, Instant};
        let cancel = CancelFlag::new();
        cancel.cancel();
        assert_eq!(job.run(shard, &cancel), Err(KernelError::Cancelled));
        let cancel = CancelFlag::new();
        let setter = cancel.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            setter.cancel();
        });
        let start = Instant::now();
        assert_eq!(job.run(shard, &cancel), Err(KernelError::Cancelled));
        assert!(start.elapsed() < Duration::from_secs(5));
        t.join().expect("setter thread");
    }

    pub(crate) fn line(index: u64, text: &str) -> ShardInput {
        ShardInput { lo: index, hi: index + 1, input: Some(text.to_string()) }
    }

    fn bad(e: KernelError) -> String {
        match e {
            KernelError::BadParam(m) => m,
            other => panic!("expected BadParam, got {other:?}"),
        }
    }

    #[test]
    fn u64_parsing() {
        let p = params(&[("rounds", " 7 "), ("x", "abc"), ("neg", "-1")]);
        assert_eq!(u64_or(&p, "rounds", 1), Ok(7));
        assert_eq!(u64_or(&p, "absent", 42), Ok(42));
        assert_eq!(
            bad(u64_or(&p, "x", 1).unwrap_err()),
            r#"bad param x: "abc" is not a whole number"#
        );
        assert!(u64_or(&p, "neg", 1).is_err());
    }

    #[test]
    fn f64_parsing() {
        let p = params(&[("a", "-2.5"), ("b", "nope"), ("c", "NaN"), ("d", "inf")]);
        assert_eq!(f64_or(&p, "a", 0.0), Ok(-2.5));
        assert_eq!(f64_or(&p, "z", 1.5), Ok(1.5));
        assert_eq!(
            bad(f64_or(&p, "b", 0.0).unwrap_err()),
            r#"bad param b: "nope" is not a finite number"#
        );
        assert!(f64_or(&p, "c", 0.0).is_err());
        assert!(f64_or(&p, "d", 0.0).is_err());
    }

    #[test]
    fn required_and_range() {
        let p = params(&[("cmd", "echo"), ("e", "  ")]);
        assert_eq!(required_str(&p, "cmd"), Ok("echo"));
        assert_eq!(bad(required_str(&p, "x").unwrap_err()), "missing param x");
        assert_eq!(bad(required_str(&p, "e").unwrap_err()), "bad param e: must not be empty");
        assert_eq!(check_range("n", 5, 1, 10), Ok(5));
        assert_eq!(
            bad(check_range("n", 0, 1, 10).unwrap_err()),
            "bad param n: must be at least 1, got 0"
        );
        assert_eq!(
            bad(check_range("n", 11, 1, 10).unwrap_err()),
            "bad param n: must be at most 10, got 11"
        );
    }

    #[test]
    fn unknown_params() {
        let p = params(&[("rounds", "1"), ("rouds", "2")]);
        assert_eq!(
            bad(check_known("hashchain", &p, &["rounds"]).unwrap_err()),
            "unknown param rouds for kernel hashchain; known: rounds"
        );
        assert_eq!(
            bad(check_known("primes", &p, &[]).unwrap_err()),
            "unknown param rouds for kernel primes; known: none"
        );
        assert!(check_known("x", &p, &["rounds", "rouds"]).is_ok());
    }

    #[test]
    fn indices_of_shards() {
        let r = Indices::of(&range(5, 9)).unwrap();
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![5, 6, 7, 8]);
        assert_eq!(r.len(), 4);
        assert!(Indices::of(&range(9, 5)).unwrap().is_empty());
        let max = Indices::of(&line(3, " 18446744073709551615\n")).unwrap();
        assert_eq!(max.iter().collect::<Vec<_>>(), vec![u64::MAX]);
        assert_eq!(
            Indices::of(&line(3, "x1")).unwrap_err(),
            KernelError::Failed(r#"input line 3: "x1" is not a whole number"#.to_string())
        );
    }

    #[test]
    fn texts_of_shards() {
        let (r, l) = (range(9, 11), line(0, " a b "));
        assert_eq!(index_texts(&r).collect::<Vec<_>>(), vec!["9", "10"]);
        assert_eq!(index_texts(&l).collect::<Vec<_>>(), vec![" a b "]);
    }
}
