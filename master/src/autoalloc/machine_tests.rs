//! The allocator against a fake scheduler: submissions, bounds, worker mapping, failures,
//! backoff, pausing and removal, with time passed in.

use super::machine::{Allocator, AllocatorConfig, Effect, SchedState};
use super::AllocError;
use crate::core::Demand;
use farm_proto::{AllocQueueSpec, AllocQueueState, AllocationState};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A scheduler in memory: job ids count up; it refuses submissions while `refuse` is set.
#[derive(Default)]
struct Fake {
    next: u32,
    jobs: BTreeMap<String, SchedState>,
    refuse: Option<String>,
    submits: u32,
    cancels: Vec<String>,
}

impl Fake {
    /// Carries out `effects` at once, feeding their outcomes back.
    fn run(&mut self, a: &mut Allocator, effects: Vec<Effect>, now: Instant) {
        let mut queue: Vec<Effect> = effects;
        while let Some(effect) = queue.pop() {
            match effect {
                Effect::Submit { queue: q, seq, .. } => {
                    self.submits += 1;
                    let result = match &self.refuse {
                        Some(e) => Err(e.clone()),
                        None => {
                            self.next += 1;
                            self.jobs.insert(self.next.to_string(), SchedState::Queued);
                            Ok(self.next.to_string())
                        }
                    };
                    queue.extend(a.submitted(&q, seq, result, now));
                }
                Effect::Poll { ids } => {
                    let states = ids
                        .into_iter()
                        .map(|id| {
                            let s = self.jobs.get(&id).cloned();
                            (id, s.unwrap_or(SchedState::Ended { detail: "gone".into() }))
                        })
                        .collect();
                    a.polled(states, now);
                }
                Effect::Cancel { id } => {
                    self.cancels.push(id.clone());
                    self.jobs.insert(id, SchedState::Ended { detail: "CANCELLED".into() });
                }
            }
        }
    }

    fn set(&mut self, id: &str, state: SchedState) {
        self.jobs.insert(id.into(), state);
    }
}

fn spec(name: &str, max_workers: u32, k: u32, threads: u32) -> AllocQueueSpec {
    AllocQueueSpec {
        name: name.into(),
        max_workers,
        workers_per_alloc: k,
        threads: Some(threads),
        ..AllocQueueSpec::slurm()
    }
}

fn demand(queued: u64, free: u64, allocated: &[(&str, u64)]) -> Demand {
    let allocated = allocated.iter().map(|(a, w)| (a.to_string(), *w)).collect();
    Demand { queued_shards: queued, free_slots: free, allocated }
}

fn submits(effects: &[Effect]) -> usize {
    effects.iter().filter(|e| matches!(e, Effect::Submit { .. })).count()
}

fn states(a: &Allocator, now: Instant) -> Vec<AllocationState> {
    a.list(now)[0].allocations.iter().map(|x| x.state).collect()
}

#[test]
fn waiting_shards_get_one_allocation_at_a_time_and_none_once_absorbed() {
    let (mut a, mut fake, t0) =
        (Allocator::new(AllocatorConfig::default()), Fake::default(), Instant::now());
    a.add(spec("q", 8, 1, 2), t0).expect("add");
    // 100 shards wait, nobody runs them: one allocation, not eight (one queued at most).
    let e = a.tick(t0, &demand(100, 0, &[]));
    assert_eq!(submits(&e), 1);
    fake.run(&mut a, e, t0);
    assert_eq!(submits(&a.tick(t0, &demand(100, 0, &[]))), 0, "one is still queued");
    // It starts and its worker connects: a second one may be submitted.
    let e = a.tick(t0, &demand(100, 0, &[("1", 7)]));
    assert_eq!(states(&a, t0), vec![AllocationState::Running]);
    assert_eq!(submits(&e), 1);
    fake.run(&mut a, e, t0);
    // The work fits what is connected and pending: nothing more.
    let e = a.tick(t0, &demand(2, 0, &[("1", 7)]));
    assert_eq!(submits(&e), 0);
    assert_eq!(fake.submits, 2);
}

#[test]
fn free_slots_and_pending_allocations_absorb_waiting_shards() {
    let t0 = Instant::now();
    let config = AllocatorConfig { max_queued: 5, ..Default::default() };
    let (mut a, mut fake) = (Allocator::new(config), Fake::default());
    a.add(spec("q", 100, 2, 4), t0).expect("add");
    assert!(a.tick(t0, &demand(10, 10, &[])).is_empty(), "connected workers have room");
    // 20 wait, 4 fit: 16 more slots needed, 8 per allocation: two allocations, not five.
    let e = a.tick(t0, &demand(20, 4, &[]));
    assert_eq!(submits(&e), 1, "one submission per queue per tick");
    fake.run(&mut a, e, t0);
    let e = a.tick(t0, &demand(20, 4, &[]));
    assert_eq!(submits(&e), 1);
    fake.run(&mut a, e, t0);
    assert_eq!(submits(&a.tick(t0, &demand(20, 4, &[]))), 0, "pending slots cover the rest");
}

#[test]
fn max_workers_bounds_live_allocations() {
    let t0 = Instant::now();
    let config = AllocatorConfig { max_queued: 10, ..Default::default() };
    let (mut a, mut fake) = (Allocator::new(config), Fake::default());
    a.add(spec("q", 5, 2, 1), t0).expect("add");
    for _ in 0..5 {
        let e = a.tick(t0, &demand(1000, 0, &[]));
        fake.run(&mut a, e, t0);
    }
    assert_eq!(fake.submits, 2, "2 × 2 workers fit under 5, a third allocation would not");
    // One ends: room for another.
    fake.set("1", SchedState::Ended { detail: "COMPLETED".into() });
    let later = t0 + Duration::from_secs(5);
    let e = a.tick(later, &demand(1000, 0, &[("1", 5), ("2", 1)]));
    fake.run(&mut a, e, later);
    let e = a.tick(later, &demand(1000, 0, &[("2", 1)]));
    assert_eq!(submits(&e), 1);
}

#[test]
fn refused_submissions_back_off_then_pause_the_queue_with_the_schedulers_message() {
    let t0 = Instant::now();
    let (mut a, mut fake) = (Allocator::new(AllocatorConfig::default()), Fake::default());
    a.add(spec("q", 4, 1, 1), t0).expect("add");
    let msg = "sbatch: error: Batch job submission failed: Invalid partition name specified";
    fake.refuse = Some(msg.into());
    let d = demand(10, 0, &[]);
    let e = a.tick(t0, &d);
    fake.run(&mut a, e, t0);
    assert_eq!(a.list(t0)[0].failures, 1);
    assert_eq!(a.list(t0)[0].error.as_deref(), Some(msg));
    // Backoff: 1 s after the first failure, 2 s after the second.
    assert!(a.tick(t0 + Duration::from_millis(900), &d).is_empty());
    let t1 = t0 + Duration::from_secs(1);
    let e = a.tick(t1, &d);
    assert_eq!(submits(&e), 1);
    fake.run(&mut a, e, t1);
    assert!(a.tick(t1 + Duration::from_millis(1900), &d).is_empty());
    let t2 = t1 + Duration::from_secs(2);
    let e = a.tick(t2, &d);
    fake.run(&mut a, e, t2);
    let q = &a.list(t2)[0];
    assert_eq!((q.state, q.failures, q.error.as_deref()), (AllocQueueState::Paused, 3, Some(msg)));
    // Paused: no more submissions, however long the work waits.
    fake.refuse = None;
    assert!(a.tick(t2 + Duration::from_secs(3600), &d).is_empty());
    assert_eq!(fake.submits, 3);
}

#[test]
fn an_allocation_that_ends_before_its_workers_connect_fails_and_counts_against_the_queue() {
    let t0 = Instant::now();
    let (mut a, mut fake) = (Allocator::new(AllocatorConfig::default()), Fake::default());
    a.add(spec("q", 4, 1, 1), t0).expect("add");
    let e = a.tick(t0, &demand(10, 0, &[]));
    fake.run(&mut a, e, t0);
    fake.set("1", SchedState::Ended { detail: "FAILED".into() });
    let t1 = t0 + Duration::from_secs(2);
    let e = a.tick(t1, &demand(10, 0, &[]));
    assert!(e.contains(&Effect::Poll { ids: vec!["1".into()] }), "{e:?}");
    fake.run(&mut a, e, t1);
    let q = &a.list(t1)[0];
    assert_eq!(q.allocations[0].state, AllocationState::Failed);
    assert!(q.allocations[0].detail.contains("FAILED"), "{}", q.allocations[0].detail);
    assert_eq!(q.failures, 1);
    assert!(q.error.as_deref().is_some_and(|e| e.contains("before any of its workers connected")));
    // It backs off like a refused submission.
    assert_eq!(submits(&a.tick(t1, &demand(10, 0, &[]))), 0);
    assert_eq!(submits(&a.tick(t1 + Duration::from_secs(1), &demand(10, 0, &[]))), 1);
}

#[test]
fn an_allocation_whose_workers_connected_ends_normally_and_resets_nothing() {
    let t0 = Instant::now();
    let (mut a, mut fake) = (Allocator::new(AllocatorConfig::default()), Fake::default());
    a.add(spec("q", 4, 1, 1), t0).expect("add");
    let e = a.tick(t0, &demand(1, 0, &[]));
    fake.run(&mut a, e, t0);
    fake.set("1", SchedState::Running);
    let e = a.tick(t0, &demand(0, 0, &[("1", 3)]));
    fake.run(&mut a, e, t0);
    assert_eq!(a.list(t0)[0].allocations[0].workers, 1);
    // Its worker went idle and left; the scheduler says it completed.
    fake.set("1", SchedState::Ended { detail: "COMPLETED".into() });
    let t1 = t0 + Duration::from_secs(3);
    let e = a.tick(t1, &demand(0, 0, &[]));
    fake.run(&mut a, e, t1);
    let q = &a.list(t1)[0];
    assert_eq!((q.allocations[0].state, q.failures), (AllocationState::Ended, 0));
    assert_eq!(q.allocations[0].detail, "COMPLETED");
    assert!(a.live_ids().is_empty());
}

#[test]
fn polls_are_paced_and_never_overlap() {
    let t0 = Instant::now();
    let (mut a, mut fake) = (Allocator::new(AllocatorConfig::default()), Fake::default());
    a.add(spec("q", 4, 1, 1), t0).expect("add");
    let e = a.tick(t0, &demand(1, 0, &[]));
    fake.run(&mut a, e, t0);
    let polls = |e: &[Effect]| e.iter().filter(|e| matches!(e, Effect::Poll { .. })).count();
    let first = a.tick(t0, &demand(0, 0, &[]));
    assert_eq!(polls(&first), 1);
    assert_eq!(polls(&a.tick(t0 + Duration::from_secs(5), &demand(0, 0, &[]))), 0, "in flight");
    a.poll_failed("squeue did not answer within 30s");
    assert_eq!(polls(&a.tick(t0 + Duration::from_secs(1), &demand(0, 0, &[]))), 0, "too soon");
    assert_eq!(polls(&a.tick(t0 + Duration::from_secs(2), &demand(0, 0, &[]))), 1);
}

#[test]
fn removing_cancels_queued_allocations_and_drains_running_ones_unless_now() {
    let t0 = Instant::now();
    let config = AllocatorConfig { max_queued: 2, ..Default::default() };
    let (mut a, mut fake) = (Allocator::new(config), Fake::default());
    a.add(spec("q", 4, 1, 1), t0).expect("add");
    for _ in 0..2 {
        let e = a.tick(t0, &demand(10, 0, &[]));
        fake.run(&mut a, e, t0);
    }
    // Allocation 1 runs a worker, 2 still waits at the scheduler.
    fake.set("1", SchedState::Running);
    assert_eq!(submits(&a.tick(t0, &demand(1, 0, &[("1", 1)]))), 0);
    let (info, effects) = a.remove("q", false, t0).expect("remove");
    assert_eq!(info.state, AllocQueueState::Removing);
    assert_eq!(effects, vec![Effect::Cancel { id: "2".into() }]);
    fake.run(&mut a, effects, t0);
    let t1 = t0 + Duration::from_secs(2);
    let e = a.tick(t1, &demand(10, 0, &[("1", 1)]));
    assert_eq!(submits(&e), 0);
    fake.run(&mut a, e, t1);
    let q = &a.list(t1)[0];
    assert_eq!(q.allocations[1].state, AllocationState::Ended, "cancelled, not failed");
    assert_eq!(q.failures, 0);
    // Removing again with --now cancels the running one; once the poll sees it ended, the
    // queue is gone.
    let (_, effects) = a.remove("q", true, t1).expect("remove");
    assert_eq!(effects, vec![Effect::Cancel { id: "1".into() }]);
    fake.run(&mut a, effects, t0);
    let t1 = t0 + Duration::from_secs(10);
    let e = a.tick(t1, &demand(10, 0, &[]));
    fake.run(&mut a, e, t1);
    assert!(a.list(t1).is_empty(), "{:?}", a.list(t1));
    assert_eq!(a.remove("q", false, t1).map(|_| ()), Err(AllocError::NoSuchQueue("q".into())));
}

#[test]
fn a_submission_answered_after_its_queue_went_is_cancelled() {
    let t0 = Instant::now();
    let mut a = Allocator::new(AllocatorConfig::default());
    a.add(spec("q", 4, 1, 1), t0).expect("add");
    let e = a.tick(t0, &demand(10, 0, &[]));
    let Some(Effect::Submit { seq, .. }) = e.first().cloned() else { panic!("{e:?}") };
    let (_, effects) = a.remove("q", false, t0).expect("remove");
    assert!(effects.is_empty());
    let effects = a.submitted("q", seq, Ok("77".into()), t0);
    assert_eq!(effects, vec![Effect::Cancel { id: "77".into() }]);
}

#[test]
fn queues_are_named_checked_and_unique() {
    let t0 = Instant::now();
    let mut a = Allocator::new(AllocatorConfig::default());
    let first = a.add(AllocQueueSpec::slurm(), t0).expect("add");
    let second = a.add(AllocQueueSpec::slurm(), t0).expect("add");
    assert_eq!((first.spec.name.as_str(), second.spec.name.as_str()), ("slurm-1", "slurm-2"));
    assert_eq!(
        a.add(spec("slurm-1", 1, 1, 1), t0).map(|_| ()),
        Err(AllocError::Exists("slurm-1".into()))
    );
    let bad = a.add(spec("x", 1, 2, 1), t0).expect_err("k > max");
    assert!(matches!(bad, AllocError::Invalid(m) if m.contains("workers per allocation")));
}

#[test]
fn shards_other_queues_will_absorb_are_not_allocated_twice() {
    let t0 = Instant::now();
    let (mut a, mut fake) = (Allocator::new(AllocatorConfig::default()), Fake::default());
    a.add(spec("a", 10, 1, 4), t0).expect("add");
    a.add(spec("b", 10, 1, 4), t0).expect("add");
    // 4 shards wait: queue a's allocation covers them; b submits nothing.
    let e = a.tick(t0, &demand(4, 0, &[]));
    assert!(matches!(&e[..], [Effect::Submit { queue, .. }] if queue == "a"), "{e:?}");
    fake.run(&mut a, e, t0);
    assert_eq!(submits(&a.tick(t0, &demand(4, 0, &[]))), 0);
    // 8 wait: b takes the other half.
    let e = a.tick(t0, &demand(8, 0, &[]));
    assert!(matches!(&e[..], [Effect::Submit { queue, .. }] if queue == "b"), "{e:?}");
}

#[test]
fn allocations_still_waiting_when_the_work_is_gone_are_cancelled_not_failed() {
    let t0 = Instant::now();
    let (mut a, mut fake) = (Allocator::new(AllocatorConfig::default()), Fake::default());
    a.add(spec("q", 4, 1, 1), t0).expect("add");
    let e = a.tick(t0, &demand(10, 0, &[]));
    fake.run(&mut a, e, t0);
    let e = a.tick(t0, &demand(10, 0, &[("1", 1)]));
    fake.run(&mut a, e, t0);
    fake.set("1", SchedState::Running);
    assert_eq!(states(&a, t0), vec![AllocationState::Running, AllocationState::Queued]);
    // The work is all handed out: the waiting allocation goes, the running one stays.
    let e = a.tick(t0, &demand(0, 0, &[("1", 1)]));
    assert_eq!(e, vec![Effect::Cancel { id: "2".into() }]);
    fake.run(&mut a, e, t0);
    assert!(a.tick(t0, &demand(0, 0, &[("1", 1)])).is_empty(), "cancelled once");
    let t1 = t0 + Duration::from_secs(2);
    let e = a.tick(t1, &demand(0, 0, &[("1", 1)]));
    fake.run(&mut a, e, t1);
    let q = &a.list(t1)[0];
    assert_eq!(states(&a, t1), vec![AllocationState::Running, AllocationState::Ended]);
    assert_eq!((q.failures, q.error.as_deref()), (0, None));
}
