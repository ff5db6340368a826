//! Shared helpers for the kernels: turning a shard into the index values (or texts) a kernel
//! works on. Params are declared in each kernel's descriptor and checked before `prepare`.

use std::borrow::Cow;

use crate::sdk::{KernelError, ShardInput};

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
                Err(_) => Err(KernelError::BadInput(format!(
                    "input line {}: {} is not a whole number",
                    shard.lo,
                    farm_proto::kernel::quote(line)
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
    use crate::sdk::Params;

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
            KernelError::BadInput(r#"input line 3: "x1" is not a whole number"#.to_string())
        );
    }

    #[test]
    fn texts_of_shards() {
        let (r, l) = (range(9, 11), line(0, " a b "));
        assert_eq!(index_texts(&r).collect::<Vec<_>>(), vec!["9", "10"]);
        assert_eq!(index_texts(&l).collect::<Vec<_>>(), vec![" a b "]);
    }
}
