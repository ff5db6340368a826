//! Shards already done ahead of a job's cursor, as a sorted set of ranges. After a replay a
//! job resumes with the shards whose outcomes the journal holds: they are mostly one run from
//! shard 0 plus a few stragglers, so a million of them cost a handful of ranges, not a
//! million entries.

use std::collections::BTreeMap;

/// A set of shard numbers kept as disjoint, non-adjacent ranges `start..end`.
#[derive(Debug, Default)]
pub(crate) struct Ranges {
    /// Each range's end, by its start.
    ranges: BTreeMap<u64, u64>,
    /// Shards in the set.
    len: u64,
}

impl Ranges {
    /// Adds `shard`; false if it was already in the set.
    pub fn insert(&mut self, shard: u64) -> bool {
        let below = self.ranges.range(..=shard).next_back().map(|(&s, &e)| (s, e));
        if below.is_some_and(|(_, e)| shard < e) {
            return false;
        }
        let mut start = shard;
        let mut end = shard + 1;
        if let Some((s, e)) = below.filter(|&(_, e)| e == shard) {
            self.ranges.remove(&s);
            start = s;
            end = e + 1;
        }
        if let Some(e) = self.ranges.remove(&end) {
            end = e;
        }
        self.ranges.insert(start, end);
        self.len += 1;
        true
    }

    /// Shards in the set.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// If `at` starts a range, removes the range and returns its end: the cursor jumps there.
    pub fn skip(&mut self, at: u64) -> Option<u64> {
        let (&start, &end) = self.ranges.first_key_value()?;
        if start != at {
            return None;
        }
        self.ranges.remove(&start);
        self.len -= end - start;
        Some(end)
    }

    /// The number of ranges (memory use).
    #[cfg(test)]
    pub fn ranges(&self) -> usize {
        self.ranges.len()
    }
}

/// These test this part alone, with no core and no outbox: nothing is sent, so no test
/// checks `assert_quiet`.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_merge_into_ranges_and_the_cursor_skips_them() {
        let mut r = Ranges::default();
        for s in (0..1000).chain([2000, 2002, 2001]) {
            assert!(r.insert(s));
        }
        assert!(!r.insert(5));
        assert!(!r.insert(2001));
        assert_eq!((r.len(), r.ranges()), (1003, 2));
        assert_eq!(r.skip(0), Some(1000));
        assert_eq!(r.skip(1000), None);
        assert_eq!(r.skip(2000), Some(2003));
        assert_eq!(r.len(), 0);
    }
}
