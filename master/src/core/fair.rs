//! Fair share: within a priority, the principals with shards waiting share each worker's
//! window in proportion to their weights (`dispatch.rs` applies it). [`Contention`] says which
//! priorities have pending jobs of more than one principal: only those pay for the policy, so
//! a farm of one principal dispatches exactly as before.

use super::owner::PrincipalId;
use std::collections::BTreeMap;

/// Per priority, the principals with pending jobs and how many each has.
#[derive(Debug, Default)]
pub(crate) struct Contention(BTreeMap<i32, Vec<(PrincipalId, usize)>>);

impl Contention {
    /// A job of `principal` at `priority` became pending.
    pub fn add(&mut self, priority: i32, principal: PrincipalId) {
        let level = self.0.entry(priority).or_default();
        match level.iter_mut().find(|(p, _)| *p == principal) {
            Some((_, n)) => *n += 1,
            None => level.push((principal, 1)),
        }
    }

    /// A job of `principal` at `priority` is no longer pending.
    pub fn remove(&mut self, priority: i32, principal: PrincipalId) {
        let Some(level) = self.0.get_mut(&priority) else { return };
        if let Some(i) = level.iter().position(|(p, _)| *p == principal) {
            level[i].1 -= 1;
            if level[i].1 == 0 {
                level.swap_remove(i);
            }
        }
        if level.is_empty() {
            self.0.remove(&priority);
        }
    }

    /// Whether pending jobs at `priority` belong to more than one principal.
    pub fn contended(&self, priority: i32) -> bool {
        self.0.get(&priority).is_some_and(|level| level.len() > 1)
    }
}

/// A principal's share of a worker's `capacity` at a priority: `weight` of the `total` weight
/// of the principals with shards waiting there for this worker, rounded up, so each gets at
/// least one shard.
pub(crate) fn share(capacity: usize, weight: u32, total: u64) -> usize {
    let total = total.max(1) as u128;
    let part = (capacity as u128 * u128::from(weight.max(1))).div_ceil(total);
    usize::try_from(part).unwrap_or(usize::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_priority_is_contended_while_two_principals_have_jobs_pending_there() {
        let mut c = Contention::default();
        c.add(0, 1);
        c.add(0, 1);
        assert!(!c.contended(0), "one principal, two jobs");
        c.add(0, 2);
        c.add(5, 3);
        assert!(c.contended(0) && !c.contended(5));
        c.remove(0, 1);
        assert!(c.contended(0), "principal 1 still has a job pending");
        c.remove(0, 1);
        assert!(!c.contended(0));
        c.remove(0, 2);
        c.remove(5, 3);
        assert!(c.0.is_empty());
    }

    #[test]
    fn shares_follow_the_weights_and_nobody_gets_none() {
        assert_eq!(share(32, 1, 2), 16);
        assert_eq!(share(30, 2, 3), 20);
        assert_eq!(share(30, 1, 3), 10);
        assert_eq!(share(4, 1, 3), 2);
        assert_eq!(share(1, 1, 100), 1);
        assert_eq!(share(usize::MAX, u32::MAX, 1), usize::MAX);
    }
}
