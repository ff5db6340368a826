//! Core tests with simulated workers: a recording outbox, no sockets, no clock.

use super::*;
use farm_proto::{JobSource, Output, Params};
use proptest::prelude::*;
use std::collections::VecDeque;
use std::time::Duration;

/// Records what the core sent; keeps each simulated worker's queue of assigned tasks.
#[derive(Default)]
struct Rec {
    queues: BTreeMap<WorkerId, VecDeque<TaskOut>>,
    defs: Vec<(WorkerId, JobId)>,
    cancels: Vec<(WorkerId, JobId)>,
    forgets: Vec<(WorkerId, JobId)>,
    outputs: Vec<(JobId, u64, Output)>,
    finished: Vec<JobView>,
    dropped: Vec<WorkerId>,
    drains: Vec<WorkerId>,
}

impl Outbox for Rec {
    fn assign(&mut self, worker: WorkerId, defs: Vec<JobDefOut>, tasks: Vec<TaskOut>) {
        self.defs.extend(defs.into_iter().map(|d| (worker, d.job)));
        self.queues.entry(worker).or_default().extend(tasks);
    }
    fn cancel_job(&mut self, worker: WorkerId, job: JobId) {
        self.cancels.push((worker, job));
        if let Some(q) = self.queues.get_mut(&worker) {
            q.retain(|t| t.job != job);
        }
    }
    fn forget_job(&mut self, worker: WorkerId, job: JobId) {
        self.forgets.push((worker, job));
    }
    fn shard_output(&mut self, job: JobId, shard: u64, output: &Output) {
        self.outputs.push((job, shard, output.clone()));
    }
    fn job_changed(&mut self, view: &JobView) {
        if view.state.is_final() {
            self.finished.push(view.clone());
        }
    }
    fn drop_worker(&mut self, worker: WorkerId, _reason: &str) {
        self.dropped.push(worker);
    }
    fn drain_worker(&mut self, worker: WorkerId) {
        self.drains.push(worker);
    }
}

impl Rec {
    /// Completes up to `n` of the worker's queued tasks, each output counting its indices.
    fn complete(&mut self, core: &mut Core, worker: WorkerId, n: usize, now: Instant) -> usize {
        let q = self.queues.entry(worker).or_default();
        let batch: Vec<_> = q.drain(..n.min(q.len())).collect();
        let outcomes = batch
            .iter()
            .map(|t| (t.job, t.shard, ShardOutcome::Done(Output::Count(t.hi - t.lo))))
            .collect::<Vec<_>>();
        core.results(worker, outcomes, now, self).unwrap_or(0)
    }
}

fn spec(kind: &str, start: u64, end: u64, shard_size: u64, priority: i32) -> JobSpec {
    JobSpec::new(kind, JobSource::Range { start, end, shard_size }, Params::default(), priority)
        .expect("valid spec")
}

fn worker(threads: u32) -> WorkerSpec {
    WorkerSpec { threads, kinds: vec!["noop".into(), "primes".into()], ..Default::default() }
}

fn core() -> Core {
    Core::new(CoreConfig::default())
}

#[test]
fn dispatch_fills_each_worker_to_threads_plus_prefetch() {
    let (mut core, mut rec, now) = (core(), Rec::default(), Instant::now());
    let w = core.worker_joined(worker(3), now, &mut rec);
    core.submit(spec("noop", 0, 100, 1, 0), now, &mut rec).expect("submit");
    assert_eq!(rec.queues[&w].len(), 6, "3 threads + 3 prefetch");
    assert_eq!(rec.defs, vec![(w, 1)], "the job definition goes out once");
    rec.complete(&mut core, w, 2, now);
    assert_eq!(rec.queues[&w].len(), 6, "refilled after two results");
    assert_eq!(rec.defs.len(), 1);
}

#[test]
fn a_job_completes_with_the_reduced_result_and_workers_forget_it() {
    let (mut core, mut rec, now) = (core(), Rec::default(), Instant::now());
    let a = core.worker_joined(worker(1), now, &mut rec);
    let b = core.worker_joined(worker(2), now, &mut rec);
    let job = core.submit(spec("noop", 5, 1005, 10, 0), now, &mut rec).expect("submit");
    while rec.finished.is_empty() {
        rec.complete(&mut core, a, 1, now);
        rec.complete(&mut core, b, 3, now);
    }
    let status = core.status(job, now).expect("status");
    assert_eq!(status.state, JobState::Succeeded);
    assert_eq!(status.result_json.as_deref(), Some("1000"));
    assert_eq!((status.done, status.total, status.running), (100, 100, 0));
    assert_eq!(rec.outputs.len(), 100);
    let mut forgot: Vec<_> = rec.forgets.iter().map(|f| f.0).collect();
    forgot.sort();
    assert_eq!(forgot, vec![a, b]);
}

#[test]
fn a_lost_workers_shards_run_elsewhere_and_its_late_results_are_dropped() {
    let (mut core, mut rec, now) = (core(), Rec::default(), Instant::now());
    let a = core.worker_joined(worker(2), now, &mut rec);
    let job = core.submit(spec("noop", 0, 10, 1, 0), now, &mut rec).expect("submit");
    let held: Vec<TaskOut> = rec.queues[&a].iter().cloned().collect();
    assert_eq!(held.len(), 4);
    core.worker_left(a, "gone", now, &mut rec);
    assert_eq!(core.status(job, now).map(|s| s.running), Some(0));
    let b = core.worker_joined(worker(1), now, &mut rec);
    let first: Vec<u64> = rec.queues[&b].iter().map(|t| t.shard).collect();
    assert_eq!(first, vec![held[0].shard, held[1].shard], "re-queued shards go first");
    // The lost worker's session id is gone: its late batch is refused as a whole.
    let late = held.iter().map(|t| (t.job, t.shard, ShardOutcome::Done(Output::Count(1))));
    assert_eq!(core.results(a, late.clone(), now, &mut rec), Err(CoreError::NoSuchWorker(a)));
    // The same results under another worker's id count only for shards that worker holds.
    assert_eq!(core.results(b, late, now, &mut rec), Ok(2));
    while rec.finished.is_empty() {
        rec.complete(&mut core, b, 1, now);
    }
    assert_eq!(core.status(job, now).and_then(|s| s.result_json), Some("10".into()));
    assert_eq!(rec.outputs.len(), 10, "each shard's output is delivered once");
}

#[test]
fn a_worker_that_completes_shards_quickly_gets_a_bigger_window_and_a_slow_one_does_not() {
    let (mut core, mut rec, t0) = (core(), Rec::default(), Instant::now());
    let fast = core.worker_joined(worker(1), t0, &mut rec);
    let slow = core.worker_joined(worker(1), t0, &mut rec);
    core.submit(spec("noop", 0, 100_000_000, 1, 0), t0, &mut rec).expect("submit");
    // The fast worker answers every 100 µs, the slow one every 10 ms, for 40 and 200 ms.
    for i in 1..=400u32 {
        rec.complete(&mut core, fast, usize::MAX, t0 + Duration::from_micros(100) * i);
    }
    for i in 1..=20u32 {
        rec.complete(&mut core, slow, usize::MAX, t0 + Duration::from_millis(10) * i);
    }
    let fast_window = rec.queues[&fast].len();
    let slow_window = rec.queues[&slow].len();
    assert!(fast_window > 50, "fast worker window {fast_window}");
    assert_eq!(slow_window, 2, "slow worker keeps threads + prefetch");
    assert!(fast_window <= CoreConfig::default().max_window);
}

#[test]
fn higher_priority_runs_first_then_submission_order() {
    let (mut core, mut rec, now) = (core(), Rec::default(), Instant::now());
    let low = core.submit(spec("noop", 0, 4, 1, 0), now, &mut rec).expect("submit");
    let later = core.submit(spec("noop", 0, 4, 1, 0), now, &mut rec).expect("submit");
    let high = core.submit(spec("noop", 0, 4, 1, 5), now, &mut rec).expect("submit");
    let w = core.worker_joined(WorkerSpec { threads: 5, ..worker(0) }, now, &mut rec);
    let jobs: Vec<JobId> = rec.queues[&w].iter().map(|t| t.job).collect();
    assert_eq!(jobs, vec![high, high, high, high, low, low, low, low, later, later]);
    assert_eq!(core.status(later, now).map(|s| s.state), Some(JobState::Running));
}

#[test]
fn cancel_stops_shards_on_workers_and_later_results_are_dropped() {
    let (mut core, mut rec, now) = (core(), Rec::default(), Instant::now());
    let w = core.worker_joined(worker(2), now, &mut rec);
    let job = core.submit(spec("noop", 0, 100, 1, 0), now, &mut rec).expect("submit");
    let held: Vec<TaskOut> = rec.queues[&w].iter().cloned().collect();
    let status = core.cancel(job, now, &mut rec).expect("cancel");
    assert_eq!(status.state, JobState::Cancelled);
    assert_eq!(rec.cancels, vec![(w, job)]);
    let late = held.iter().map(|t| (t.job, t.shard, ShardOutcome::Done(Output::Count(1))));
    assert_eq!(core.results(w, late, now, &mut rec), Ok(4));
    assert!(rec.outputs.is_empty());
    assert_eq!(core.cancel(job, now, &mut rec), Err(CoreError::JobEnded(job)));
    assert_eq!(core.cancel(99, now, &mut rec).map(|_| ()), Err(CoreError::NoSuchJob(99)));
    // The worker's slots are free for the next job at once.
    core.submit(spec("noop", 0, 100, 1, 0), now, &mut rec).expect("submit");
    assert_eq!(rec.queues[&w].len(), 4);
}

#[test]
fn a_failed_shard_fails_its_job_with_a_message_naming_it_and_spares_others() {
    let (mut core, mut rec, now) = (core(), Rec::default(), Instant::now());
    let w = core.worker_joined(worker(4), now, &mut rec);
    let bad = core.submit(spec("noop", 0, 40, 10, 1), now, &mut rec).expect("submit");
    let good = core.submit(spec("noop", 0, 2, 1, 0), now, &mut rec).expect("submit");
    let failing = (bad, 2, ShardOutcome::Failed("boom".into()));
    core.results(w, [failing], now, &mut rec).expect("results");
    let status = core.status(bad, now).expect("status");
    assert_eq!(status.state, JobState::Failed);
    assert_eq!(status.error.as_deref(), Some("shard 2 (indices 20..30) failed on worker 1: boom"));
    rec.queues.get_mut(&w).expect("queue").retain(|t| t.job == good);
    rec.complete(&mut core, w, 10, now);
    assert_eq!(core.status(good, now).map(|s| s.state), Some(JobState::Succeeded));
}

#[test]
fn silent_workers_are_declared_lost_on_tick() {
    let (mut core, mut rec, t0) = (core(), Rec::default(), Instant::now());
    let a = core.worker_joined(worker(1), t0, &mut rec);
    let b = core.worker_joined(worker(1), t0, &mut rec);
    core.submit(spec("noop", 0, 10, 1, 0), t0, &mut rec).expect("submit");
    core.heartbeat(b, t0 + Duration::from_secs(2));
    core.tick(t0 + Duration::from_millis(3500), &mut rec);
    assert_eq!(rec.dropped, vec![a]);
    assert_eq!(core.workers(t0).len(), 1);
    assert_eq!(core.holding_total(), 2, "b holds its own two; a's wait for a free slot");
}

#[test]
fn shards_go_only_to_workers_that_offer_the_kind() {
    let (mut core, mut rec, now) = (core(), Rec::default(), Instant::now());
    let w = core.worker_joined(worker(1), now, &mut rec);
    let job = core.submit(spec("exec", 0, 10, 1, 0), now, &mut rec).expect("submit");
    assert!(rec.queues.get(&w).is_none_or(|q| q.is_empty()));
    assert!(!core.kind_offered("exec"));
    let e = core.worker_joined(
        WorkerSpec { threads: 1, kinds: vec!["exec".into()], ..Default::default() },
        now,
        &mut rec,
    );
    assert_eq!(rec.queues[&e].len(), 2);
    assert_eq!(core.status(job, now).map(|s| s.running), Some(2));
}

#[test]
fn jobs_over_the_shard_limit_are_refused_and_huge_range_jobs_stay_lazy() {
    let config = CoreConfig { max_shards_per_job: 1000, ..Default::default() };
    let (mut core, mut rec, now) = (Core::new(config), Rec::default(), Instant::now());
    let err = core.submit(spec("noop", 0, 1001, 1, 0), now, &mut rec);
    assert_eq!(err, Err(CoreError::TooManyShards { shards: 1001, limit: 1000 }));
    let config = CoreConfig { max_shards_per_job: u64::MAX, ..Default::default() };
    let mut core = Core::new(config);
    let job = core.submit(spec("noop", 0, u64::MAX, 1, 0), now, &mut rec).expect("lazy job");
    let w = core.worker_joined(worker(1), now, &mut rec);
    rec.complete(&mut core, w, 1, now);
    let status = core.status(job, now).expect("status");
    assert_eq!((status.total, status.done, status.running), (u64::MAX, 1, 2));
}

#[test]
fn a_shard_that_takes_down_its_workers_fails_the_job_after_max_crashes() {
    let (mut core, mut rec, now) = (core(), Rec::default(), Instant::now());
    let mut spec = spec("noop", 0, 10, 1, 0);
    spec.limits.max_crashes = 2;
    let job = core.submit(spec, now, &mut rec).expect("submit");
    // Each worker has one thread and holds two shards: the first is running, the second waits.
    let a = core.worker_joined(worker(1), now, &mut rec);
    let first: Vec<u64> = rec.queues[&a].iter().map(|t| t.shard).collect();
    assert_eq!(first, vec![0, 1]);
    core.worker_left(a, "stream closed", now, &mut rec);
    let b = core.worker_joined(worker(1), now, &mut rec);
    let second: Vec<u64> = rec.queues[&b].iter().map(|t| t.shard).collect();
    assert_eq!(second, vec![0, 1], "re-queued shards run first, in order");
    core.worker_left(b, "stream closed", now, &mut rec);
    let status = core.status(job, now).expect("status");
    assert_eq!(status.state, JobState::Failed);
    assert_eq!(
        status.error.as_deref(),
        Some("shard 0 (indices 0..1) was running on 2 workers that were lost; the last, worker 2: stream closed")
    );
    // Shard 1 only waited behind it: no crash counted against it, so it did not fail the job.
    // And the failed job gets nothing back: a new worker is handed none of its shards.
    let c = core.worker_joined(worker(1), now, &mut rec);
    assert!(rec.queues.get(&c).is_none_or(|q| q.is_empty()), "{:?}", rec.queues.get(&c));
    assert_eq!(core.status(job, now).map(|s| (s.state, s.running)), Some((JobState::Failed, 0)));
    assert_eq!(rec.finished.len(), 1, "the job ended once");
    // The active-job count is right again: a full quota of new jobs is accepted.
    for _ in 0..10 {
        core.submit(self::spec("noop", 0, 1, 1, 0), now, &mut rec).expect("accepted");
    }
}

#[test]
fn a_crash_is_blamed_on_the_shards_the_worker_said_it_started() {
    let (mut core, mut rec, now) = (core(), Rec::default(), Instant::now());
    let mut spec = spec("noop", 0, 10, 1, 0);
    spec.limits.max_crashes = 1;
    let job = core.submit(spec, now, &mut rec).expect("submit");
    let w = core.worker_joined(worker(1), now, &mut rec);
    // Shard 0 finished (its result lost with the worker), shard 1 started and killed it.
    core.shards_started(w, [(job, 1), (job, 99)]);
    core.worker_left(w, "stream closed", now, &mut rec);
    let error = core.status(job, now).and_then(|s| s.error).unwrap_or_default();
    assert!(error.starts_with("shard 1 (indices 1..2) was running on 1 workers"), "{error}");
}

#[test]
fn failed_runs_are_retried_up_to_the_jobs_retries() {
    let (mut core, mut rec, now) = (core(), Rec::default(), Instant::now());
    let mut spec = spec("noop", 0, 3, 1, 0);
    spec.limits.retries = 1;
    let job = core.submit(spec, now, &mut rec).expect("submit");
    let w = core.worker_joined(worker(3), now, &mut rec);
    rec.queues.get_mut(&w).expect("queue").clear();
    core.results(w, [(job, 1, ShardOutcome::Failed("flaky".into()))], now, &mut rec)
        .expect("results");
    assert_eq!(core.status(job, now).map(|s| s.state), Some(JobState::Running));
    let again: Vec<u64> = rec.queues[&w].iter().map(|t| t.shard).collect();
    assert_eq!(again, vec![1], "the failed shard runs again");
    core.results(w, [(job, 1, ShardOutcome::Failed("flaky".into()))], now, &mut rec)
        .expect("results");
    let status = core.status(job, now).expect("status");
    assert_eq!(status.state, JobState::Failed);
    assert_eq!(
        status.error.as_deref(),
        Some("shard 1 (indices 1..2) failed on worker 1 (run 2): flaky")
    );
}

#[test]
fn a_draining_worker_gets_no_new_shards_and_its_handed_back_shards_run_elsewhere() {
    let (mut core, mut rec, now) = (core(), Rec::default(), Instant::now());
    let job = core.submit(spec("noop", 0, 8, 1, 0), now, &mut rec).expect("submit");
    let a = core.worker_joined(worker(1), now, &mut rec);
    let view = core.drain(a, true, now, &mut rec).expect("drain");
    assert!(view.draining);
    assert_eq!(rec.drains, vec![a]);
    assert_eq!(core.drain(99, true, now, &mut rec).map(|_| ()), Err(CoreError::NoSuchWorker(99)));
    // It finishes its running shard and hands back the one it had not started.
    let q: Vec<TaskOut> = rec.queues.get_mut(&a).expect("queue").drain(..).collect();
    let outcomes = [
        (job, q[0].shard, ShardOutcome::Done(Output::Count(1))),
        (job, q[1].shard, ShardOutcome::Cancelled),
    ];
    core.results(a, outcomes, now, &mut rec).expect("results");
    assert!(rec.queues[&a].is_empty(), "no new shards for a draining worker");
    let b = core.worker_joined(worker(1), now, &mut rec);
    assert_eq!(rec.queues[&b].front().map(|t| t.shard), Some(q[1].shard));
    core.worker_left(a, "drained", now, &mut rec);
    while rec.finished.is_empty() {
        rec.complete(&mut core, b, 1, now);
    }
    assert_eq!(core.status(job, now).and_then(|s| s.result_json), Some("8".into()));
}

#[test]
fn too_many_active_jobs_are_refused() {
    let config = CoreConfig { max_active_jobs: 2, ..Default::default() };
    let (mut core, mut rec, now) = (Core::new(config), Rec::default(), Instant::now());
    let first = core.submit(spec("noop", 0, 1, 1, 0), now, &mut rec).expect("submit");
    core.submit(spec("noop", 0, 1, 1, 0), now, &mut rec).expect("submit");
    let refused = core.submit(spec("noop", 0, 1, 1, 0), now, &mut rec);
    assert_eq!(refused, Err(CoreError::TooManyJobs { active: 2, limit: 2 }));
    core.cancel(first, now, &mut rec).expect("cancel");
    core.submit(spec("noop", 0, 1, 1, 0), now, &mut rec).expect("room again");
}

#[derive(Debug, Clone)]
enum Op {
    Join(u32),
    Leave(usize),
    Complete(usize, usize),
    /// A result for a task of worker `.0` reported by worker `.1` (a stray or late reply).
    Stray(usize, usize),
    Tick(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u32..4).prop_map(Op::Join),
        (0usize..8).prop_map(Op::Leave),
        ((0usize..8), (1usize..6)).prop_map(|(w, n)| Op::Complete(w, n)),
        ((0usize..8), (0usize..8)).prop_map(|(a, b)| Op::Stray(a, b)),
        (0u64..5000).prop_map(Op::Tick),
    ]
}

proptest! {
    /// Whatever the interleaving of joins, leaves, completions, stray replies and timeouts,
    /// every shard of every job is delivered exactly once and each job's result is exact.
    #[test]
    fn every_shard_completes_exactly_once(ops in prop::collection::vec(op(), 1..120)) {
        let (mut core, mut rec, t0) = (core(), Rec::default(), Instant::now());
        let mut now = t0;
        let sizes = [(0u64, 37u64, 5u64), (100, 110, 1), (7, 1000, 97)];
        let jobs: Vec<JobId> = sizes
            .iter()
            .enumerate()
            .map(|(i, &(a, b, s))| {
                // Leaves may hit any shard many times here; crash limits have their own test.
                let mut spec = spec("noop", a, b, s, i as i32 % 2);
                spec.limits.max_crashes = u32::MAX;
                core.submit(spec, now, &mut rec).expect("submit")
            })
            .collect();
        let mut live: Vec<WorkerId> = Vec::new();
        for op in ops {
            match op {
                Op::Join(t) => live.push(core.worker_joined(worker(t), now, &mut rec)),
                Op::Leave(i) if !live.is_empty() => {
                    let w = live.remove(i % live.len());
                    core.worker_left(w, "gone", now, &mut rec);
                }
                Op::Complete(i, n) if !live.is_empty() => {
                    let w = live[i % live.len()];
                    core.heartbeat(w, now);
                    rec.complete(&mut core, w, n, now);
                }
                Op::Stray(a, b) if !live.is_empty() => {
                    let (wa, wb) = (live[a % live.len()], live[b % live.len()]);
                    if let Some(t) = rec.queues.get(&wa).and_then(|q| q.front()).cloned() {
                        let _ = core.results(wb, [(t.job, t.shard, ShardOutcome::Done(Output::Count(t.hi - t.lo)))], now, &mut rec);
                    }
                }
                Op::Tick(ms) => {
                    now += Duration::from_millis(ms);
                    core.tick(now, &mut rec);
                    live.retain(|w| !rec.dropped.contains(w));
                }
                _ => {}
            }
        }
        // Drain: the others fall silent and are declared lost; one fresh worker finishes the rest.
        let w = core.worker_joined(worker(2), now, &mut rec);
        now += Duration::from_secs(10);
        core.heartbeat(w, now);
        core.tick(now, &mut rec);
        for _ in 0..10_000 {
            if rec.finished.len() == jobs.len() { break; }
            if rec.complete(&mut core, w, 4, now) == 0 && rec.queues[&w].is_empty() {
                core.tick(now, &mut rec);
            }
        }
        prop_assert_eq!(rec.finished.len(), jobs.len());
        for (job, &(a, b, _)) in jobs.iter().zip(&sizes) {
            let status = core.status(*job, now).expect("status");
            prop_assert_eq!(status.state, JobState::Succeeded);
            prop_assert_eq!(status.result_json, Some((b - a).to_string()));
            let mut shards: Vec<u64> = rec.outputs.iter().filter(|o| o.0 == *job).map(|o| o.1).collect();
            shards.sort();
            let expected: Vec<u64> = (0..status.total).collect();
            prop_assert_eq!(shards, expected);
        }
        prop_assert_eq!(core.holding_total(), 0);
    }
}
