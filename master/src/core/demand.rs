//! What the allocator (`crate::autoalloc`) asks of the core on its tick: how much work waits
//! that workers of the given kinds could run, how much room connected workers have, and which
//! connected workers came from which allocation.

use super::{Core, WorkerId};
use std::collections::HashSet;

/// The core's numbers for the allocator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Demand {
    /// Shards waiting to be handed out, of jobs whose kind is one of the asked kinds.
    pub queued_shards: u64,
    /// Free slots (threads not holding a shard) of connected workers that take shards and
    /// offer one of the asked kinds.
    pub free_slots: u64,
    /// Connected workers that registered with an allocation id: (allocation, worker).
    pub allocated: Vec<(String, WorkerId)>,
}

impl Core {
    /// The allocator's numbers for workers offering `kinds`.
    pub fn demand(&self, kinds: &HashSet<String>) -> Demand {
        let queued_shards = self
            .pending
            .iter()
            .filter_map(|(_, id)| self.jobs.get(id))
            .filter(|j| kinds.contains(&j.spec.kind))
            .map(|j| j.pending())
            .sum();
        let free_slots = self
            .workers
            .values()
            .filter(|w| !w.draining && w.suspect.is_none())
            .filter(|w| w.kinds.iter().any(|k| kinds.contains(k)))
            .map(|w| u64::from(w.spec.threads).saturating_sub(w.assigned.len() as u64))
            .sum();
        let allocated = self
            .workers
            .iter()
            .filter(|(_, w)| !w.spec.allocation.is_empty())
            .map(|(id, w)| (w.spec.allocation.clone(), *id))
            .collect();
        Demand { queued_shards, free_slots, allocated }
    }
}

#[cfg(test)]
mod tests {
    use super::super::recording::{take, Recording};
    use super::super::{CoreConfig, JobSpec, WorkerSpec};
    use super::*;
    use farm_proto::{JobSource, OutputShape, Params};
    use std::time::Instant;

    fn job(kind: &str, shards: u64) -> JobSpec {
        let source = JobSource::Range { start: 0, end: shards, shard_size: 1 };
        JobSpec::new(kind, source, Params::default(), 0).expect("spec")
    }

    #[test]
    fn demand_counts_waiting_shards_of_the_kinds_and_free_slots() {
        let mut core = Core::new(CoreConfig::default());
        let mut out = Recording::default();
        let now = Instant::now();
        let noop = core
            .submit(
                job("noop", 10),
                crate::core::Owner::anonymous(),
                OutputShape::Count,
                now,
                &mut out,
            )
            .expect("submit");
        core.submit(
            job("other", 7),
            crate::core::Owner::anonymous(),
            OutputShape::Count,
            now,
            &mut out,
        )
        .expect("submit");
        let kinds: HashSet<String> = ["noop".to_string()].into();
        assert_eq!(core.demand(&kinds).queued_shards, 10);
        let spec = WorkerSpec {
            threads: 3,
            kinds: vec!["noop".into()],
            allocation: "42".into(),
            ..Default::default()
        };
        let w = core.worker_joined(spec, now, &mut out);
        let d = core.demand(&kinds);
        assert_eq!((d.queued_shards, d.free_slots), (10, 3));
        assert_eq!(d.allocated, vec![("42".to_string(), w)]);
        core.dispatch(now, &mut out);
        let d = core.demand(&kinds);
        assert_eq!((d.queued_shards, d.free_slots), (6, 0), "4 held: 3 threads and 1 prefetch");
        assert_eq!(take(&mut out.defs), vec![(w, noop)], "the dispatch sent the noop job");
        out.assert_quiet();
    }
}
