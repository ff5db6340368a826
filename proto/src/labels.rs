//! Worker labels and job requirements: what a worker says about its environment at
//! registration (`Register.labels`, e.g. `python = "CPython 3.12"`) and the pairs a job needs
//! (`JobSpec.requires`). A job's shards go only to workers whose labels hold every pair it
//! requires. Both are bounded and printable, since they are shown in tables, logs and status
//! messages as they are.

use crate::quote::quote;
use std::collections::BTreeMap;

/// Key/value pairs: a worker's labels, or the labels a job requires.
pub type Labels = BTreeMap<String, String>;

/// Most pairs a worker declares or a job requires.
pub const MAX_LABELS: usize = 32;
/// Longest key: 1 to 64 bytes of letters, digits, `_`, `.`, `:` and `-`.
pub const MAX_LABEL_KEY_BYTES: usize = 64;
/// Longest value: printable text (no control characters).
pub const MAX_LABEL_VALUE_BYTES: usize = 256;

/// Checks `labels` (`what`: "label" for a worker's, "requirement" for a job's): at most
/// [`MAX_LABELS`] pairs, keys of safe characters, values without control characters, all
/// bounded. The message names the offending pair, quoted and clipped.
pub fn check(what: &str, labels: &Labels) -> Result<(), String> {
    if labels.len() > MAX_LABELS {
        return Err(format!("{} {what}s, at most {MAX_LABELS}", labels.len()));
    }
    for (key, value) in labels {
        if key.is_empty() || key.len() > MAX_LABEL_KEY_BYTES || !key.chars().all(is_key_char) {
            return Err(format!(
                "{what} key {} must be 1 to {MAX_LABEL_KEY_BYTES} bytes of letters, digits, \
                 '_', '.', ':' and '-'",
                quote(key)
            ));
        }
        if value.len() > MAX_LABEL_VALUE_BYTES {
            return Err(format!(
                "{what} {key} is over {MAX_LABEL_VALUE_BYTES} bytes ({} bytes)",
                value.len()
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(format!("{what} {key} holds a control character: {}", quote(value)));
        }
    }
    Ok(())
}

/// Parses `key=value` pairs as given on a command line (`--label`, `--require`), then
/// [`check`]s them. A key given twice keeps its last value.
pub fn from_pairs<I, S>(what: &str, pairs: I) -> Result<Labels, String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut labels = Labels::new();
    for pair in pairs {
        let pair = pair.as_ref();
        let (key, value) = pair
            .split_once('=')
            .filter(|(k, _)| !k.trim().is_empty())
            .ok_or_else(|| format!("{what} {} is not KEY=VALUE", quote(pair)))?;
        labels.insert(key.trim().to_string(), value.to_string());
    }
    check(what, &labels)?;
    Ok(labels)
}

/// Whether `c` may appear in a key: an ASCII letter or digit, `_`, `.`, `:` or `-` (as in a
/// kind's name).
fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')
}

/// Whether `labels` hold every pair of `requires`.
pub fn satisfies(labels: &Labels, requires: &Labels) -> bool {
    requires.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_worker_satisfies_a_job_when_it_holds_every_pair() {
        let worker = labels(&[("python", "CPython 3.12"), ("cloudpickle", "3.1")]);
        assert!(satisfies(&worker, &Labels::new()));
        assert!(satisfies(&worker, &labels(&[("python", "CPython 3.12")])));
        assert!(satisfies(&worker, &worker));
        assert!(!satisfies(&worker, &labels(&[("python", "CPython 3.11")])));
        assert!(!satisfies(&worker, &labels(&[("gpu", "a100")])));
        assert!(!satisfies(&Labels::new(), &labels(&[("python", "CPython 3.12")])));
    }

    #[test]
    fn pairs_parse_and_bad_ones_are_named() {
        let parsed = from_pairs("label", ["python=CPython 3.12", "gpu=", "a=b=c"]).expect("valid");
        assert_eq!(parsed, labels(&[("python", "CPython 3.12"), ("gpu", ""), ("a", "b=c")]));
        let err = from_pairs("label", ["nokey"]).expect_err("no =");
        assert_eq!(err, "label \"nokey\" is not KEY=VALUE");
        let err = from_pairs("requirement", ["=v"]).expect_err("empty key");
        assert!(err.contains("not KEY=VALUE"), "{err}");
        let err = from_pairs("label", ["a b=c"]).expect_err("space in key");
        assert!(err.starts_with("label key \"a b\" must be"), "{err}");
        let err = from_pairs("label", ["k=a\nb"]).expect_err("newline in value");
        assert!(err.contains("control character"), "{err}");
        let err = from_pairs("label", [format!("k={}", "v".repeat(300))]).expect_err("long");
        assert!(err.contains("over 256 bytes"), "{err}");
        let many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        let err = from_pairs("requirement", many).expect_err("too many");
        assert_eq!(err, "33 requirements, at most 32");
    }
}
