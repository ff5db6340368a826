//! Core tests with simulated workers: a recording outbox, no sockets, no clock. Each event is
//! followed by a dispatch, as the master's task does after every drained batch.

use super::recording::{take, Recording};
use super::*;
use farm_proto::session::{JobCost, Results};
use farm_proto::{JobSource, Output, Params};
use proptest::prelude::*;
use std::time::Duration;

/// One millisecond.
const MS: Duration = Duration::from_millis(1);

/// The core and a recording outbox, driven the way the master's task drives them: every event
/// is followed by a dispatch, as if each came alone in its batch.
struct Sim {
    core: Core,
    rec: Recording,
    /// The latest time of an event: dispatches start holds then.
    now: Instant,
    /// What the core was built with, to rebuild it after a crash.
    config: CoreConfig,
    /// Journal ops committed by the cores that crashed, in order.
    history: Vec<JournalOp>,
}

impl Sim {
    fn new(config: CoreConfig) -> Self {
        let core = Core::new(config.clone());
        Sim { core, rec: Recording::default(), now: Instant::now(), config, history: Vec::new() }
    }
    /// The master dies with every worker session: the journal ops after the first
    /// `len - lost` were not committed (a submit's never is lost: its reply waited for the
    /// commit). The core is rebuilt from the committed ones, as the store replays them.
    fn crash(&mut self, lost: usize, now: Instant) {
        let ops = std::mem::take(&mut self.rec.journal);
        let last_submit = ops.iter().rposition(|op| matches!(op, JournalOp::Submit { .. }));
        let keep = ops.len().saturating_sub(lost).max(last_submit.map_or(0, |i| i + 1));
        self.history.extend(ops.into_iter().take(keep));
        self.rec = Recording::default();
        self.core = replay(&self.history, self.config.clone(), now, &mut self.rec);
        self.now = self.now.max(now);
    }
    fn dispatched<T>(&mut self, result: T) -> T {
        self.core.dispatch(self.now, &mut self.rec);
        result
    }
    fn submit(&mut self, spec: JobSpec, now: Instant) -> Result<JobId, CoreError> {
        self.submit_as(spec, Owner::anonymous(), now)
    }
    fn submit_as(&mut self, spec: JobSpec, owner: Owner, now: Instant) -> Result<JobId, CoreError> {
        self.now = self.now.max(now);
        let r = self.core.submit(spec, owner, OutputShape::Any, now, &mut self.rec);
        self.dispatched(r)
    }
    fn join(&mut self, spec: WorkerSpec, now: Instant) -> WorkerId {
        self.now = self.now.max(now);
        let r = self.core.worker_joined(spec, now, &mut self.rec);
        self.dispatched(r)
    }
    fn leave(&mut self, worker: WorkerId, reason: &str, now: Instant) {
        self.now = self.now.max(now);
        self.core.worker_left(worker, reason, now, &mut self.rec);
        self.dispatched(())
    }
    fn results(
        &mut self,
        worker: WorkerId,
        outcomes: impl IntoIterator<Item = (JobId, u64, ShardOutcome)>,
        now: Instant,
    ) -> Result<usize, CoreError> {
        self.now = self.now.max(now);
        let r = self.core.results(worker, outcomes, now, &mut self.rec);
        self.dispatched(r)
    }
    fn cancel(&mut self, job: JobId, now: Instant) -> Result<JobView, CoreError> {
        self.now = self.now.max(now);
        let r = self.core.cancel(job, now, &mut self.rec);
        self.dispatched(r)
    }
    fn drain(&mut self, worker: WorkerId, now: Instant) -> Result<WorkerView, CoreError> {
        self.now = self.now.max(now);
        let r = self.core.drain(worker, true, now, &mut self.rec);
        self.dispatched(r)
    }
    fn tick(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.core.tick(now, &mut self.rec);
        self.dispatched(())
    }
    /// Completes up to `n` of the worker's queued tasks, each output counting its indices.
    fn complete(&mut self, worker: WorkerId, n: usize, now: Instant) -> usize {
        let q = self.rec.queues.entry(worker).or_default();
        let batch: Vec<_> = q.drain(..n.min(q.len())).collect();
        let outcomes = batch
            .iter()
            .map(|t| (t.job_id, t.shard, ShardOutcome::Done(Output::Count(t.hi - t.lo))))
            .collect::<Vec<_>>();
        self.results(worker, outcomes, now).unwrap_or(0)
    }
    /// A whole batch from a worker, with its costs.
    fn batch(&mut self, worker: WorkerId, results: Results, now: Instant) -> usize {
        self.now = self.now.max(now);
        let r = self.core.batch(worker, results, now, &mut self.rec).expect("batch");
        self.dispatched(r)
    }
    /// Like `complete`, reporting that each shard cost `cost`.
    fn complete_costing(&mut self, worker: WorkerId, n: usize, cost: Duration, now: Instant) {
        let q = self.rec.queues.entry(worker).or_default();
        let tasks: Vec<_> = q.drain(..n.min(q.len())).collect();
        let busy_ns = cost.as_nanos() as u64 * tasks.len() as u64;
        let costs = tasks
            .first()
            .map(|t| JobCost { job_id: t.job_id, runs: tasks.len() as u64, busy_ns })
            .into_iter()
            .collect();
        let done = tasks
            .iter()
            .map(|t| (t.job_id, t.shard, ShardOutcome::Done(Output::Count(t.hi - t.lo))))
            .collect();
        self.batch(worker, Results { done, costs, ..Results::default() }, now);
    }
    fn status(&self, job: JobId, now: Instant) -> JobView {
        self.core.status(job, now).expect("job exists")
    }
}

/// A core rebuilt from committed journal ops the way `store::open` rebuilds it from its
/// tables: the id counter, every job in id order (ended ones as summaries), then every
/// outcome of a job still going in (job, shard) order.
fn replay(ops: &[JournalOp], config: CoreConfig, now: Instant, out: &mut Recording) -> Core {
    let mut live = BTreeMap::new();
    let mut ended = BTreeMap::new();
    let mut outcomes = BTreeMap::new();
    let mut next = 1;
    for op in ops.iter().cloned() {
        match op {
            JournalOp::Submit { job, spec, output, owner } => {
                next = next.max(job + 1);
                live.insert(job, (spec, output, owner));
            }
            JournalOp::Outcome { job, shard, output } => {
                outcomes.insert((job, shard), output);
            }
            JournalOp::End(view) => {
                live.remove(&view.id);
                outcomes.retain(|&(j, _), _| j != view.id);
                ended.insert(view.id, view);
            }
            JournalOp::Forget(job) => {
                ended.remove(&job);
            }
            JournalOp::ShardLog { .. } => {}
        }
    }
    let mut core = Core::new(config);
    core.restore_next_job(next);
    ended.into_values().for_each(|v| core.restore_ended(v, now, out));
    for (id, (spec, output, owner)) in live {
        let owner = Owner::named(&owner);
        core.restore_job(id, Submission::restored(spec.to_spec()), owner, output, now);
    }
    for ((job, shard), output) in outcomes {
        assert!(core.restore_outcome(job, shard, &output, now, out));
    }
    core.restore_finish(now, out);
    core
}

fn spec(kind: &str, start: u64, end: u64, shard_size: u64, priority: i32) -> JobSpec {
    JobSpec::new(kind, JobSource::Range { start, end, shard_size }, Params::default(), priority)
        .expect("valid spec")
}

fn worker(threads: u32) -> WorkerSpec {
    WorkerSpec { threads, kinds: vec!["noop".into(), "primes".into()], ..Default::default() }
}

fn sim() -> (Sim, Instant) {
    (Sim::new(CoreConfig::default()), Instant::now())
}

#[test]
fn dispatch_fills_each_worker_to_threads_plus_prefetch() {
    let (mut sim, now) = sim();
    let w = sim.join(worker(3), now);
    sim.submit(spec("noop", 0, 100, 1, 0), now).expect("submit");
    assert_eq!(sim.rec.queued(w), 4, "a new worker's window starts at 4");
    assert_eq!(take(&mut sim.rec.defs), vec![(w, 1)], "the job definition goes out once");
    sim.complete(w, 2, now);
    assert_eq!(sim.rec.queued(w), 6, "refilled after two results: 3 threads + 3 prefetch");
    assert_eq!(take(&mut sim.rec.outputs).len(), 2);
    sim.rec.assert_quiet();
}

#[test]
fn events_only_mark_and_one_dispatch_sends_one_assignment_per_worker() {
    let (mut sim, now) = sim();
    let w = sim.core.worker_joined(worker(2), now, &mut sim.rec);
    let job = sim.core.submit(
        spec("noop", 0, 100, 1, 0),
        Owner::anonymous(),
        OutputShape::Any,
        now,
        &mut sim.rec,
    );
    let job = job.expect("submit");
    assert!(sim.rec.queues.is_empty(), "nothing goes out before the dispatch");
    sim.core.dispatch(now, &mut sim.rec);
    assert_eq!(sim.rec.shards(w), vec![0, 1, 2, 3]);
    // Two result batches in one drained batch of commands: one refill, in one assignment.
    let done = |shard| [(job, shard, ShardOutcome::Done(Output::Count(1)))];
    sim.core.results(w, done(0), now, &mut sim.rec).expect("results");
    sim.core.results(w, done(1), now, &mut sim.rec).expect("results");
    sim.rec.queues.clear();
    sim.core.dispatch(now, &mut sim.rec);
    assert_eq!(sim.rec.shards(w), vec![4, 5]);
    sim.core.dispatch(now, &mut sim.rec);
    assert_eq!(sim.rec.shards(w), vec![4, 5], "a second dispatch has nothing to do");
    assert_eq!(take(&mut sim.rec.defs), vec![(w, job)]);
    assert_eq!(take(&mut sim.rec.outputs).len(), 2);
    sim.rec.assert_quiet();
}

#[test]
fn a_job_completes_with_the_reduced_result_and_workers_forget_it() {
    let (mut sim, now) = sim();
    let a = sim.join(worker(1), now);
    let b = sim.join(worker(2), now);
    let job = sim.submit(spec("noop", 5, 1005, 10, 0), now).expect("submit");
    while sim.rec.finished.is_empty() {
        sim.complete(a, 1, now);
        sim.complete(b, 3, now);
    }
    let status = sim.status(job, now);
    assert_eq!(status.state, JobState::Succeeded);
    assert_eq!(status.result_json.as_deref(), Some("1000"));
    assert_eq!((status.done, status.total, status.in_flight), (100, 100, 0));
    assert_eq!(take(&mut sim.rec.outputs).len(), 100);
    assert_eq!(take(&mut sim.rec.finished).len(), 1);
    assert_eq!(take(&mut sim.rec.defs).len(), 2);
    let mut forgot: Vec<_> = take(&mut sim.rec.forgets).into_iter().map(|f| f.0).collect();
    forgot.sort();
    assert_eq!(forgot, vec![a, b]);
    sim.rec.assert_quiet();
}

#[test]
fn a_lost_workers_shards_run_elsewhere_and_its_late_results_are_dropped() {
    let (mut sim, now) = sim();
    let a = sim.join(worker(2), now);
    let job = sim.submit(spec("noop", 0, 10, 1, 0), now).expect("submit");
    let held: Vec<ShardTask> = sim.rec.queues[&a].iter().cloned().collect();
    assert_eq!(held.len(), 4);
    sim.leave(a, "gone", now);
    assert_eq!(sim.status(job, now).in_flight, 0);
    let b = sim.join(worker(1), now);
    assert_eq!(sim.rec.shards(b), vec![held[0].shard, held[1].shard], "re-queued shards first");
    // The lost worker's session id is gone: its late batch is refused as a whole.
    let late = held.iter().map(|t| (t.job_id, t.shard, ShardOutcome::Done(Output::Count(1))));
    assert_eq!(sim.results(a, late.clone(), now), Err(CoreError::NoSuchWorker(a)));
    // The same results under another worker's id count only for shards that worker holds.
    assert_eq!(sim.results(b, late, now), Ok(2));
    while sim.rec.finished.is_empty() {
        sim.complete(b, 1, now);
    }
    assert_eq!(sim.status(job, now).result_json, Some("10".into()));
    assert_eq!(take(&mut sim.rec.outputs).len(), 10, "each shard's output is delivered once");
    assert_eq!(take(&mut sim.rec.finished).len(), 1);
    assert_eq!(take(&mut sim.rec.defs), vec![(a, job), (b, job)]);
    assert_eq!(take(&mut sim.rec.forgets), vec![(b, job)]);
    sim.rec.assert_quiet();
}

#[test]
fn a_job_of_cheap_shards_gets_deep_windows_and_a_job_of_costly_ones_does_not() {
    let (mut sim, t0) = sim();
    let w = sim.join(worker(1), t0);
    let cheap = sim.submit(spec("noop", 0, 100_000_000, 1, 0), t0).expect("submit");
    // Shards of 100 us, answered as they run, for 40 ms.
    for i in 1..=400u32 {
        sim.complete_costing(w, usize::MAX, Duration::from_micros(100), t0 + i * MS / 10);
    }
    let window = sim.rec.queued(w);
    let target = CoreConfig::default().queue_target.as_micros() as usize / 100;
    assert_eq!(window, target + 1, "the queue target of work plus the running shard");
    sim.cancel(cheap, t0 + 50 * MS).expect("cancel");
    sim.rec.queues.clear();
    // A job of shards longer than the queue target keeps threads + prefetch.
    let w = sim.join(worker(1), t0 + 50 * MS);
    sim.submit(spec("noop", 0, 1000, 1, 0), t0 + 50 * MS).expect("submit");
    for i in 1..=20u32 {
        sim.complete_costing(w, usize::MAX, 200 * MS, t0 + 50 * MS + i * 200 * MS);
    }
    assert_eq!(sim.rec.queued(w), 2, "a costly job keeps threads + prefetch");
    // Both jobs' definitions, the cheap one's outputs, its cancel and its end were asked for.
    assert_eq!(take(&mut sim.rec.defs).len(), 3, "the cheap job to one, the costly to both");
    assert_eq!(take(&mut sim.rec.cancels).len(), 1);
    take(&mut sim.rec.outputs);
    assert_eq!(take(&mut sim.rec.finished).len(), 1, "the cancelled job ended");
    sim.rec.assert_quiet();
}

#[test]
fn only_accepted_completions_grow_a_window() {
    let (mut sim, t0) = sim();
    let w = sim.join(worker(1), t0);
    let other = sim.join(worker(1), t0);
    let job = sim.submit(spec("noop", 0, 100_000_000, 1, 0), t0).expect("submit");
    let theirs: Vec<ShardTask> = sim.rec.queues[&other].iter().cloned().collect();
    // Every 100 µs for 50 ms: a stray reply for the other worker's shard, a duplicate of a
    // shard already done, and its own two shards handed back unfinished.
    let done = (job, 0, ShardOutcome::Done(Output::Count(1)));
    sim.complete(w, 1, t0);
    for i in 1..=500u32 {
        let mut batch: Vec<_> = theirs
            .iter()
            .map(|t| (t.job_id, t.shard, ShardOutcome::Done(Output::Count(1))))
            .chain([done.clone()])
            .collect();
        let mine = sim.rec.queues.get_mut(&w).expect("queue").drain(..);
        batch
            .extend(mine.map(|t| (t.job_id, t.shard, ShardOutcome::Cancelled)).collect::<Vec<_>>());
        // It also claims they cost next to nothing, which would deepen an earned window.
        let costs = vec![JobCost { job_id: job, runs: batch.len() as u64, busy_ns: 1 }];
        let results = Results { done: batch, costs, ..Results::default() };
        sim.batch(w, results, t0 + Duration::from_micros(100) * i);
    }
    assert_eq!(sim.rec.queued(w), 2, "the window stays at threads + prefetch");
    assert_eq!(sim.status(job, t0).done, 1);
    // Each worker got the job's definition; only the first completion was accepted.
    assert_eq!(take(&mut sim.rec.defs), vec![(w, job), (other, job)]);
    assert_eq!(take(&mut sim.rec.outputs).len(), 1);
    sim.rec.assert_quiet();
}

#[test]
fn higher_priority_runs_first_then_submission_order() {
    let (mut sim, now) = sim();
    let low = sim.submit(spec("noop", 0, 4, 1, 0), now).expect("submit");
    let later = sim.submit(spec("noop", 0, 4, 1, 0), now).expect("submit");
    let high = sim.submit(spec("noop", 0, 4, 1, 5), now).expect("submit");
    let w = sim.join(WorkerSpec { threads: 5, ..worker(0) }, now);
    let jobs: Vec<JobId> = sim.rec.queues[&w].iter().map(|t| t.job_id).collect();
    assert_eq!(jobs, vec![high, high, high, high], "the new worker's window starts at 4");
    sim.complete(w, 4, now);
    let jobs: Vec<JobId> = sim.rec.queues[&w].iter().map(|t| t.job_id).collect();
    assert_eq!(jobs, vec![low, low, low, low, later, later, later, later]);
    assert_eq!(sim.status(later, now).state, JobState::Running);
    assert_eq!(take(&mut sim.rec.defs), vec![(w, high), (w, low), (w, later)]);
    assert_eq!(take(&mut sim.rec.outputs).len(), 4);
    assert_eq!(take(&mut sim.rec.finished).len(), 1, "the high-priority job is done");
    take(&mut sim.rec.forgets);
    sim.rec.assert_quiet();
}

#[test]
fn cancel_stops_shards_on_workers_and_later_results_are_dropped() {
    let (mut sim, now) = sim();
    let w = sim.join(worker(2), now);
    let job = sim.submit(spec("noop", 0, 100, 1, 0), now).expect("submit");
    let held: Vec<ShardTask> = sim.rec.queues[&w].iter().cloned().collect();
    let status = sim.cancel(job, now).expect("cancel");
    assert_eq!(status.state, JobState::Cancelled);
    assert_eq!(take(&mut sim.rec.cancels), vec![(w, job)]);
    assert_eq!(take(&mut sim.rec.finished).len(), 1);
    let late = held.iter().map(|t| (t.job_id, t.shard, ShardOutcome::Done(Output::Count(1))));
    assert_eq!(sim.results(w, late, now), Ok(4));
    assert_eq!(sim.cancel(job, now), Err(CoreError::JobEnded(job)));
    assert_eq!(sim.cancel(99, now).map(|_| ()), Err(CoreError::NoSuchJob(99)));
    // The worker's slots are free for the next job at once.
    let next = sim.submit(spec("noop", 0, 100, 1, 0), now).expect("submit");
    assert_eq!(sim.rec.queued(w), 4);
    assert_eq!(take(&mut sim.rec.defs), vec![(w, job), (w, next)]);
    sim.rec.assert_quiet();
}

#[test]
fn a_failed_shard_fails_its_job_with_a_message_naming_it_and_spares_others() {
    let (mut sim, now) = sim();
    let w = sim.join(worker(4), now);
    let bad = sim.submit(spec("noop", 0, 40, 10, 1), now).expect("submit");
    let good = sim.submit(spec("noop", 0, 2, 1, 0), now).expect("submit");
    let failing = (bad, 2, ShardOutcome::Failed("boom".into()));
    sim.results(w, [failing], now).expect("results");
    let status = sim.status(bad, now);
    assert_eq!(status.state, JobState::Failed);
    assert_eq!(status.error.as_deref(), Some("shard 2 (indices 20..30) failed on worker 1: boom"));
    assert_eq!(take(&mut sim.rec.cancels), vec![(w, bad)]);
    sim.complete(w, 10, now);
    assert_eq!(sim.status(good, now).state, JobState::Succeeded);
    assert_eq!(take(&mut sim.rec.finished).len(), 2);
    assert_eq!(take(&mut sim.rec.outputs).len(), 2);
    assert_eq!(take(&mut sim.rec.defs), vec![(w, bad), (w, good)]);
    assert_eq!(take(&mut sim.rec.forgets), vec![(w, good)]);
    sim.rec.assert_quiet();
}

#[test]
fn silent_workers_are_declared_lost_on_tick() {
    let (mut sim, t0) = sim();
    let a = sim.join(worker(1), t0);
    let b = sim.join(worker(1), t0);
    sim.submit(spec("noop", 0, 10, 1, 0), t0).expect("submit");
    sim.core.heartbeat(b, t0 + Duration::from_secs(2));
    sim.core.heartbeat(b, t0 + Duration::from_secs(1));
    sim.tick(t0 + Duration::from_millis(3500));
    assert_eq!(take(&mut sim.rec.dropped), vec![a]);
    assert_eq!(sim.core.workers(t0).len(), 1);
    assert_eq!(sim.core.assigned_total(), 2, "b holds its own two; a's wait for a free slot");
    assert_eq!(take(&mut sim.rec.defs).len(), 2);
    sim.rec.assert_quiet();
}

#[test]
fn a_refused_job_fails_once_with_the_workers_reason() {
    let (mut sim, now) = sim();
    let w = sim.join(worker(2), now);
    let other = sim.submit(spec("noop", 0, 1, 1, 0), now).expect("submit");
    let job = sim.submit(spec("noop", 0, 100, 1, 0), now).expect("submit");
    take(&mut sim.rec.defs);
    // A worker that never got the job cannot refuse it.
    sim.core.job_refused(99, job, "nope", now, &mut sim.rec);
    sim.rec.assert_quiet();
    sim.core.job_refused(w, job, "x0 must be below x1", now, &mut sim.rec);
    let ended = take(&mut sim.rec.finished);
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].state, JobState::Failed);
    let error = ended[0].error.clone().unwrap_or_default();
    assert!(error.contains("refused the job: x0 must be below x1"), "{error}");
    assert_eq!(take(&mut sim.rec.cancels), vec![(w, job)]);
    // The other job is untouched, and a second refusal changes nothing.
    assert!(!sim.status(other, now).state.is_final());
    sim.core.job_refused(w, job, "again", now, &mut sim.rec);
    sim.rec.assert_quiet();
}

#[test]
fn shards_go_only_to_workers_that_offer_the_kind() {
    let (mut sim, now) = sim();
    let w = sim.join(worker(1), now);
    let job = sim.submit(spec("exec", 0, 10, 1, 0), now).expect("submit");
    assert_eq!(sim.rec.queued(w), 0);
    assert!(!sim.core.kind_offered("exec"));
    let exec = WorkerSpec { threads: 1, kinds: vec!["exec".into()], ..Default::default() };
    let e = sim.join(exec, now);
    assert_eq!(sim.rec.queued(e), 2);
    assert_eq!(sim.status(job, now).in_flight, 2);
    assert_eq!(take(&mut sim.rec.defs), vec![(e, job)]);
    sim.rec.assert_quiet();
}

#[test]
fn jobs_over_the_shard_limit_are_refused_and_huge_range_jobs_stay_lazy() {
    let config = CoreConfig { max_shards_per_job: 1000, ..Default::default() };
    let (mut sim, now) = (Sim::new(config), Instant::now());
    let err = sim.submit(spec("noop", 0, 1001, 1, 0), now);
    assert_eq!(err, Err(CoreError::TooManyShards { shards: 1001, limit: 1000 }));
    let config = CoreConfig { max_shards_per_job: u64::MAX, ..Default::default() };
    let mut sim = Sim::new(config);
    let job = sim.submit(spec("noop", 0, u64::MAX, 1, 0), now).expect("lazy job");
    let w = sim.join(worker(1), now);
    sim.complete(w, 1, now);
    let status = sim.status(job, now);
    assert_eq!((status.total, status.done, status.in_flight), (u64::MAX, 1, 2));
    assert_eq!(take(&mut sim.rec.defs), vec![(w, job)]);
    assert_eq!(take(&mut sim.rec.outputs).len(), 1, "the one completed shard");
    sim.rec.assert_quiet();
}

#[test]
fn a_shard_that_takes_down_its_workers_fails_the_job_after_max_crashes() {
    let (mut sim, now) = sim();
    let mut spec = spec("noop", 0, 10, 1, 0);
    spec.limits.max_crashes = 2;
    let job = sim.submit(spec, now).expect("submit");
    // Each worker has one thread and holds two shards: the first is started, the second waits.
    let a = sim.join(worker(1), now);
    assert_eq!(sim.rec.shards(a), vec![0, 1]);
    sim.leave(a, "stream closed", now);
    let b = sim.join(worker(1), now);
    assert_eq!(sim.rec.shards(b), vec![0, 1], "re-queued shards run first, in order");
    sim.leave(b, "stream closed", now);
    let status = sim.status(job, now);
    assert_eq!(status.state, JobState::Failed);
    assert_eq!(
        status.error.as_deref(),
        Some("shard 0 (indices 0..1) was running on 2 workers that were lost or held it too long; the last, worker 2: stream closed")
    );
    // Shard 1 only waited behind it: no crash counted against it, so it did not fail the job.
    // And the failed job gets nothing back: a new worker is handed none of its shards.
    let c = sim.join(worker(1), now);
    assert_eq!(sim.rec.queued(c), 0, "{:?}", sim.rec.queues.get(&c));
    assert_eq!((sim.status(job, now).state, sim.status(job, now).in_flight), (JobState::Failed, 0));
    assert_eq!(take(&mut sim.rec.finished).len(), 1, "the job ended once");
    assert_eq!(take(&mut sim.rec.defs), vec![(a, job), (b, job)]);
    sim.rec.assert_quiet();
    // The active-job count is right again: a full quota of new jobs is accepted.
    for _ in 0..10 {
        sim.submit(self::spec("noop", 0, 1, 1, 0), now).expect("accepted");
    }
    // The first two new jobs fill the third worker's window (one thread plus prefetch).
    assert_eq!(take(&mut sim.rec.defs), vec![(c, 2), (c, 3)]);
    sim.rec.assert_quiet();
}

#[test]
fn a_crash_is_blamed_on_the_shards_the_worker_said_it_started() {
    let (mut sim, now) = sim();
    let mut spec = spec("noop", 0, 10, 1, 0);
    spec.limits.max_crashes = 1;
    let job = sim.submit(spec, now).expect("submit");
    let w = sim.join(worker(1), now);
    // Shard 0 finished (its result lost with the worker), shard 1 started and killed it.
    sim.core.shards_started(w, [(job, 1), (job, 99)]);
    sim.leave(w, "stream closed", now);
    let error = sim.status(job, now).error.unwrap_or_default();
    assert!(error.starts_with("shard 1 (indices 1..2) was running on 1 workers"), "{error}");
    assert_eq!(take(&mut sim.rec.defs).len(), 1);
    assert_eq!(take(&mut sim.rec.finished).len(), 1, "the job failed once");
    sim.rec.assert_quiet();
}

#[test]
fn failed_runs_are_retried_up_to_the_jobs_retries() {
    let (mut sim, now) = sim();
    let mut spec = spec("noop", 0, 3, 1, 0);
    spec.limits.retries = 1;
    let job = sim.submit(spec, now).expect("submit");
    let w = sim.join(worker(3), now);
    sim.rec.queues.get_mut(&w).expect("queue").clear();
    sim.results(w, [(job, 1, ShardOutcome::Failed("flaky".into()))], now).expect("results");
    assert_eq!(sim.status(job, now).state, JobState::Running);
    sim.tick(now + Duration::from_millis(100));
    assert_eq!(sim.rec.shards(w), vec![1], "the failed shard runs again after its backoff");
    let now = now + Duration::from_millis(100);
    sim.results(w, [(job, 1, ShardOutcome::Failed("flaky".into()))], now).expect("results");
    let status = sim.status(job, now);
    assert_eq!(status.state, JobState::Failed);
    assert_eq!(
        status.error.as_deref(),
        Some("shard 1 (indices 1..2) failed on worker 1 (run 2): flaky")
    );
    assert_eq!(take(&mut sim.rec.cancels), vec![(w, job)]);
    assert_eq!(take(&mut sim.rec.finished).len(), 1);
    assert_eq!(take(&mut sim.rec.defs), vec![(w, job)]);
    sim.rec.assert_quiet();
}

#[test]
fn a_deterministic_failure_fails_the_job_at_once_whatever_its_retries() {
    let (mut sim, now) = sim();
    let mut spec = spec("noop", 0, 3, 1, 0);
    spec.limits.retries = 5;
    let job = sim.submit(spec, now).expect("submit");
    let w = sim.join(worker(3), now);
    sim.rec.queues.get_mut(&w).expect("queue").clear();
    let bad = ShardOutcome::Invalid("input line 1: \"x\" is not a whole number".into());
    sim.results(w, [(job, 1, bad)], now).expect("results");
    let status = sim.status(job, now);
    assert_eq!((status.state, status.reruns), (JobState::Failed, 0));
    assert_eq!(
        status.error.as_deref(),
        Some(
            "shard 1 (indices 1..2) failed on worker 1: input line 1: \"x\" is not a whole number"
        )
    );
    sim.core.heartbeat(w, now + Duration::from_secs(1));
    sim.tick(now + Duration::from_secs(1));
    assert_eq!(sim.rec.queued(w), 0, "nothing runs again");
    assert_eq!(take(&mut sim.rec.cancels), vec![(w, job)]);
    assert_eq!(take(&mut sim.rec.finished).len(), 1);
    assert_eq!(take(&mut sim.rec.defs), vec![(w, job)]);
    sim.rec.assert_quiet();
}

#[test]
fn ended_jobs_are_forgotten_after_keep_finished_for() {
    let keep = Duration::from_secs(60);
    let mut sim = Sim::new(CoreConfig { keep_finished_for: keep, ..Default::default() });
    let now = Instant::now();
    let job = sim.submit(spec("noop", 0, 2, 1, 0), now).expect("submit");
    let w = sim.join(worker(2), now);
    sim.complete(w, 2, now);
    assert_eq!(sim.status(job, now).state, JobState::Succeeded);
    sim.tick(now + keep - Duration::from_secs(1));
    assert!(sim.core.status(job, now).is_some(), "kept until its time is up");
    sim.tick(now + keep);
    assert!(sim.core.status(job, now).is_none(), "forgotten after keep_finished_for");
    let forgot = sim.rec.journal.iter().any(|op| matches!(op, JournalOp::Forget(j) if *j == job));
    assert!(forgot, "the journal is told, so its rows go too");
    // The job ran and ended; its worker, silent past the heartbeat timeout, was dropped.
    assert_eq!(take(&mut sim.rec.defs).len(), 1);
    assert_eq!(take(&mut sim.rec.outputs).len(), 2);
    assert_eq!(take(&mut sim.rec.finished).len(), 1);
    assert_eq!(take(&mut sim.rec.forgets).len(), 1);
    assert_eq!(take(&mut sim.rec.dropped).len(), 1);
    sim.rec.assert_quiet();
}

#[test]
fn a_workers_huge_error_is_kept_short_in_the_jobs_error() {
    let (mut sim, now) = sim();
    let job = sim.submit(spec("noop", 0, 1, 1, 0), now).expect("submit");
    let w = sim.join(worker(1), now);
    let huge = "e".repeat(10 << 20);
    sim.results(w, [(job, 0, ShardOutcome::Failed(huge))], now).expect("results");
    let error = sim.status(job, now).error.unwrap_or_default();
    assert!(error.len() < 2048, "{} bytes", error.len());
    assert!(error.ends_with("(10485760 bytes)"), "{}", &error[error.len() - 40..]);
    // The job ended on its only shard: the worker forgets it, nothing else is sent.
    assert_eq!(take(&mut sim.rec.forgets), vec![(w, job)]);
    assert_eq!(take(&mut sim.rec.finished).len(), 1);
    assert_eq!(take(&mut sim.rec.defs), vec![(w, job)]);
    sim.rec.assert_quiet();
}

#[test]
fn a_draining_worker_gets_no_new_shards_and_its_handed_back_shards_run_elsewhere() {
    let (mut sim, now) = sim();
    let job = sim.submit(spec("noop", 0, 8, 1, 0), now).expect("submit");
    let a = sim.join(worker(1), now);
    let view = sim.drain(a, now).expect("drain");
    assert!(view.draining);
    assert_eq!(take(&mut sim.rec.drains), vec![a]);
    assert_eq!(sim.drain(99, now).map(|_| ()), Err(CoreError::NoSuchWorker(99)));
    // It finishes its started shard and hands back the one it had not started.
    let q: Vec<ShardTask> = sim.rec.queues.get_mut(&a).expect("queue").drain(..).collect();
    let outcomes = [
        (job, q[0].shard, ShardOutcome::Done(Output::Count(1))),
        (job, q[1].shard, ShardOutcome::Cancelled),
    ];
    sim.results(a, outcomes, now).expect("results");
    assert_eq!(sim.rec.queued(a), 0, "no new shards for a draining worker");
    let b = sim.join(worker(1), now);
    assert_eq!(sim.rec.queues[&b].front().map(|t| t.shard), Some(q[1].shard));
    sim.leave(a, "drained", now);
    while sim.rec.finished.is_empty() {
        sim.complete(b, 1, now);
    }
    assert_eq!(sim.status(job, now).result_json, Some("8".into()));
    assert_eq!(take(&mut sim.rec.outputs).len(), 8);
    assert_eq!(take(&mut sim.rec.finished).len(), 1);
    assert_eq!(take(&mut sim.rec.defs), vec![(a, job), (b, job)]);
    assert_eq!(take(&mut sim.rec.forgets), vec![(b, job)]);
    sim.rec.assert_quiet();
}

#[test]
fn too_many_active_jobs_are_refused() {
    let config = CoreConfig { max_active_jobs: 2, ..Default::default() };
    let (mut sim, now) = (Sim::new(config), Instant::now());
    let first = sim.submit(spec("noop", 0, 1, 1, 0), now).expect("submit");
    sim.submit(spec("noop", 0, 1, 1, 0), now).expect("submit");
    let refused = sim.submit(spec("noop", 0, 1, 1, 0), now);
    assert_eq!(refused, Err(CoreError::TooManyJobs { active: 2, limit: 2 }));
    sim.cancel(first, now).expect("cancel");
    sim.submit(spec("noop", 0, 1, 1, 0), now).expect("room again");
    assert_eq!(take(&mut sim.rec.finished).len(), 1);
    sim.rec.assert_quiet();
}

#[test]
fn a_worker_that_hoards_holds_a_handful_and_its_shards_are_reclaimed_after_the_deadline() {
    let (mut sim, t0) = sim();
    let mut spec = spec("noop", 0, 2000, 1, 0);
    spec.limits.shard_timeout_ms = Some(1000);
    let job = sim.submit(spec, t0).expect("submit");
    let hoarder = sim.join(worker(4096), t0);
    assert_eq!(sim.rec.queued(hoarder), 4, "a new worker holds a handful, whatever its threads");
    let honest = sim.join(worker(1), t0);
    // It heartbeats but never answers. Deadline: twice the shard timeout plus the grace (3 s).
    let held: Vec<u64> = sim.rec.shards(hoarder);
    sim.core.heartbeat(hoarder, t0 + Duration::from_millis(4900));
    sim.complete(honest, usize::MAX, t0 + Duration::from_millis(4900));
    sim.tick(t0 + Duration::from_millis(4900));
    assert!(sim.core.workers(t0)[0].suspect.is_none(), "not before the deadline");
    sim.core.heartbeat(hoarder, t0 + Duration::from_secs(5));
    sim.core.heartbeat(honest, t0 + Duration::from_secs(5));
    sim.tick(t0 + Duration::from_secs(5));
    let views = sim.core.workers(t0);
    let why = views[0].suspect.clone().unwrap_or_default();
    assert!(why.starts_with("held shard 0 of job 1 for over"), "{why}");
    assert_eq!((views[0].in_flight, views[1].suspect.clone()), (0, None));
    assert_eq!(sim.status(job, t0).reruns, 4, "the reclaimed shards run again");
    // The honest worker finishes the job; the suspect one gets nothing more.
    sim.rec.queues.remove(&hoarder);
    let now = t0 + Duration::from_secs(5);
    while sim.rec.finished.is_empty() {
        sim.complete(honest, usize::MAX, now);
    }
    assert_eq!(sim.rec.queued(hoarder), 0);
    assert_eq!(sim.status(job, now).result_json.as_deref(), Some("2000"));
    let mut outputs: Vec<u64> = take(&mut sim.rec.outputs).into_iter().map(|o| o.1).collect();
    outputs.sort();
    assert_eq!(outputs, (0..2000).collect::<Vec<_>>(), "every shard once");
    // Its late answers for the reclaimed shards are dropped.
    let late = held.iter().map(|&s| (job, s, ShardOutcome::Done(Output::Count(1))));
    assert_eq!(sim.results(hoarder, late, now), Ok(4));
    // Both workers held the job, so both are told to forget it when it ends.
    assert_eq!(take(&mut sim.rec.defs), vec![(hoarder, job), (honest, job)]);
    let mut forgets = take(&mut sim.rec.forgets);
    forgets.sort();
    assert_eq!(forgets, vec![(hoarder, job), (honest, job)]);
    assert_eq!(take(&mut sim.rec.finished).len(), 1);
    sim.rec.assert_quiet();
}

#[test]
fn a_started_shard_held_past_twice_its_timeout_is_a_failed_run_not_handed_on() {
    let (mut sim, t0) = sim();
    let mut spec = spec("noop", 0, 1, 1, 0);
    spec.limits.shard_timeout_ms = Some(1000);
    let job = sim.submit(spec, t0).expect("submit");
    let stuck = sim.join(worker(1), t0);
    let other = sim.join(worker(1), t0);
    assert_eq!((sim.rec.queued(stuck), sim.rec.queued(other)), (1, 0));
    // It started and escaped its timeout on `stuck` (a wasm start function did, before the fix).
    sim.core.shards_started(stuck, [(job, 0)]);
    let later = t0 + Duration::from_secs(5);
    sim.core.heartbeat(stuck, later);
    sim.core.heartbeat(other, later);
    sim.tick(later);
    let ended = take(&mut sim.rec.finished);
    assert_eq!(ended.len(), 1, "--retries 0: the job fails");
    let error = ended[0].error.clone().unwrap_or_default();
    assert!(
        error.starts_with("shard 0 (indices 0..1) failed on worker 1: timed out: held shard 0"),
        "{error}"
    );
    assert_eq!(sim.rec.queued(other), 0, "not handed to the next worker");
    assert_eq!(sim.status(job, later).reruns, 0);
    assert_eq!(take(&mut sim.rec.defs), vec![(stuck, job)]);
    assert_eq!(take(&mut sim.rec.forgets), vec![(stuck, job)], "the failed job is forgotten");
    sim.rec.assert_quiet();
}

#[test]
fn jobs_without_a_shard_timeout_use_the_hold_timeout() {
    let config = CoreConfig { hold_timeout: Duration::from_secs(60), ..Default::default() };
    let (mut sim, t0) = (Sim::new(config), Instant::now());
    let job = sim.submit(spec("noop", 0, 10, 1, 0), t0).expect("submit");
    let w = sim.join(worker(1), t0);
    let later = |s| t0 + Duration::from_secs(s);
    sim.core.heartbeat(w, later(59));
    sim.tick(later(59));
    assert_eq!(sim.status(job, t0).reruns, 0);
    sim.core.heartbeat(w, later(60));
    sim.tick(later(60));
    assert_eq!(sim.status(job, t0).reruns, 2);
    assert!(sim.core.workers(t0)[0].suspect.is_some());
    assert_eq!(take(&mut sim.rec.defs), vec![(w, job)]);
    sim.rec.assert_quiet();
}

#[test]
fn a_window_grows_only_with_accepted_completions() {
    let (mut sim, t0) = sim();
    let job = sim.submit(spec("noop", 0, 1000, 1, 0), t0).expect("submit");
    let w = sim.join(worker(64), t0);
    let mut windows = vec![sim.rec.queued(w)];
    // Answers with stray and handed-back outcomes earn nothing.
    let stray = [(job, 999, ShardOutcome::Done(Output::Count(1)))];
    sim.results(w, stray, t0).expect("results");
    windows.push(sim.rec.queued(w));
    for _ in 0..4 {
        sim.complete(w, usize::MAX, t0);
        windows.push(sim.rec.queued(w));
    }
    // Slow start: 4, then doubling per round of answers, up to 64 threads x 2.
    assert_eq!(windows, vec![4, 4, 8, 16, 32, 64]);
    assert_eq!(take(&mut sim.rec.defs), vec![(w, job)]);
    assert_eq!(take(&mut sim.rec.outputs).len(), 4 + 8 + 16 + 32, "every shard answered");
    sim.rec.assert_quiet();
}

#[test]
fn a_failed_shard_backs_off_exponentially_before_it_runs_again() {
    let (mut sim, t0) = sim();
    let mut spec = spec("noop", 0, 1, 1, 0);
    spec.limits.retries = 10;
    let job = sim.submit(spec, t0).expect("submit");
    let w = sim.join(worker(1), t0);
    let mut now = t0;
    for wait_ms in [100u64, 200, 400, 800, 1600] {
        let fail = [(job, 0, ShardOutcome::Failed("boom".into()))];
        sim.rec.queues.clear();
        sim.results(w, fail, now).expect("results");
        sim.core.heartbeat(w, now + Duration::from_millis(wait_ms));
        sim.tick(now + Duration::from_millis(wait_ms - 1));
        assert_eq!(sim.rec.queued(w), 0, "not before {wait_ms} ms");
        now += Duration::from_millis(wait_ms);
        sim.tick(now);
        assert_eq!(sim.rec.shards(w), vec![0], "again after {wait_ms} ms");
    }
    assert_eq!(sim.status(job, now).reruns, 5);
    assert_eq!(timers::backoff(30), Duration::from_secs(10), "capped");
    // A job cancelled during a backoff gets nothing back.
    sim.rec.queues.clear();
    sim.results(w, [(job, 0, ShardOutcome::Failed("boom".into()))], now).expect("results");
    sim.cancel(job, now).expect("cancel");
    sim.tick(now + Duration::from_secs(10));
    assert_eq!(sim.rec.queued(w), 0);
    // The cancelled job ends and is forgotten; the worker, silent for 10 s, is dropped.
    assert_eq!(take(&mut sim.rec.defs), vec![(w, job)]);
    assert_eq!(take(&mut sim.rec.forgets), vec![(w, job)]);
    assert_eq!(take(&mut sim.rec.finished).len(), 1);
    assert_eq!(take(&mut sim.rec.dropped), vec![w]);
    sim.rec.assert_quiet();
}

fn verify_spec(percent: u32) -> JobSpec {
    let mut spec = spec("noop", 0, 20, 1, 0);
    spec.limits.verify_percent = percent;
    spec
}

#[test]
fn verify_runs_each_sampled_shard_on_a_second_worker_and_counts_it_once() {
    let (mut sim, now) = sim();
    let job = sim.submit(verify_spec(100), now).expect("submit");
    let a = sim.join(worker(1), now);
    // Alone, a worker runs each shard once; the copies wait for another worker.
    for _ in 0..40 {
        sim.complete(a, usize::MAX, now);
    }
    let status = sim.status(job, now);
    assert_eq!((status.done, status.state), (0, JobState::Running), "nothing counted yet");
    // Its status says why it waits, and watchers heard it.
    let why = status.waiting.unwrap_or_default();
    assert!(why.starts_with("--verify needs a second worker offering kind noop"), "{why}");
    assert_eq!(sim.rec.waited.len(), 1, "watchers saw it start waiting, once");
    let b = sim.join(worker(1), now);
    assert_eq!(sim.status(job, now).waiting, None, "a second worker ends the wait");
    while sim.rec.finished.is_empty() {
        sim.complete(a, usize::MAX, now);
        sim.complete(b, usize::MAX, now);
    }
    let status = sim.status(job, now);
    assert_eq!((status.state, status.result_json.as_deref()), (JobState::Succeeded, Some("20")));
    let mut outputs: Vec<u64> = sim.rec.outputs.iter().map(|o| o.1).collect();
    outputs.sort();
    assert_eq!(outputs, (0..20).collect::<Vec<_>>(), "every shard counted once");
    assert_eq!(take(&mut sim.rec.defs), vec![(a, job), (b, job)]);
    assert_eq!(take(&mut sim.rec.forgets).len(), 2);
    take(&mut sim.rec.outputs);
    assert_eq!(take(&mut sim.rec.finished).len(), 1);
    sim.rec.assert_quiet();
}

#[test]
fn verify_fails_the_job_naming_the_shard_and_both_workers_when_outputs_differ() {
    let (mut sim, now) = sim();
    let job = sim.submit(verify_spec(100), now).expect("submit");
    let liar = sim.join(WorkerSpec { name: "liar".into(), ..worker(1) }, now);
    let honest = sim.join(WorkerSpec { name: "honest".into(), ..worker(1) }, now);
    let lies: Vec<_> = sim.rec.queues[&liar].iter().map(|t| (t.job_id, t.shard)).collect();
    let outcomes = lies.iter().map(|&(j, s)| (j, s, ShardOutcome::Done(Output::Count(0))));
    sim.results(liar, outcomes, now).expect("results");
    while sim.rec.finished.is_empty() {
        sim.complete(honest, usize::MAX, now);
    }
    let error = sim.status(job, now).error.unwrap_or_default();
    assert!(error.starts_with("verification failed: shard "), "{error}");
    assert!(error.contains("worker 1 (liar)") && error.contains("worker 2 (honest)"), "{error}");
    assert!(sim.rec.outputs.is_empty(), "no disputed output was counted");
    // The failed job is cancelled on both workers.
    assert_eq!(take(&mut sim.rec.defs), vec![(liar, job), (honest, job)]);
    let mut cancels = take(&mut sim.rec.cancels);
    cancels.sort();
    assert_eq!(cancels, vec![(liar, job), (honest, job)]);
    assert_eq!(take(&mut sim.rec.finished).len(), 1);
    sim.rec.assert_quiet();
}

#[test]
fn verify_samples_about_the_given_share_of_shards() {
    // The sampling function alone: no core, nothing sent, no quiet to check.
    let hits = (0..10_000).filter(|&s| verify::sampled(7, s, 10)).count();
    assert!((800..1200).contains(&hits), "{hits} of 10000 at 10 %");
    assert!((0..100).all(|s| verify::sampled(1, s, 100) && !verify::sampled(1, s, 0)));
}

#[derive(Debug, Clone)]
enum Op {
    Join(u32),
    Leave(usize),
    Complete(usize, usize),
    /// A result for a task of worker `.0` reported by worker `.1` (a stray or late reply).
    Stray(usize, usize),
    /// Worker `.0` reports its oldest task failed.
    Fail(usize),
    /// Worker `.0` heartbeats without answering, so its holds may expire.
    Beat(usize),
    Tick(u64),
    /// The master is killed; the last `.0` journal ops were not committed yet.
    Crash(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u32..4).prop_map(Op::Join),
        (0usize..8).prop_map(Op::Leave),
        ((0usize..8), (1usize..6)).prop_map(|(w, n)| Op::Complete(w, n)),
        ((0usize..8), (0usize..8)).prop_map(|(a, b)| Op::Stray(a, b)),
        (0usize..8).prop_map(Op::Fail),
        (0usize..8).prop_map(Op::Beat),
        (0u64..5000).prop_map(Op::Tick),
        (0usize..6).prop_map(Op::Crash),
    ]
}

/// The property test's drain: the workers it left fall silent and are declared lost; two fresh
/// workers (verification copies need a second one) finish the rest, waiting out backoffs when
/// idle. Returns the time it ends at.
fn finish_with_fresh_workers(sim: &mut Sim, jobs: &[JobId], mut now: Instant) -> Instant {
    now += Duration::from_secs(10);
    sim.tick(now);
    let fresh = [sim.join(worker(2), now), sim.join(worker(2), now)];
    for _ in 0..10_000 {
        if jobs.iter().all(|&j| sim.status(j, now).state.is_final()) {
            break;
        }
        let answered: usize = fresh.iter().map(|&w| sim.complete(w, 4, now)).sum();
        if answered == 0 && fresh.iter().all(|&w| sim.rec.queued(w) == 0) {
            now += Duration::from_millis(500);
            fresh.iter().for_each(|&w| sim.core.heartbeat(w, now));
            sim.tick(now);
        }
    }
    now
}

proptest! {
    /// Whatever the interleaving of joins, leaves, completions, stray replies, failures (with
    /// their backoff), holds past their deadline and timeouts, every shard of every job is
    /// delivered exactly once and each job's result is exact, with or without `--verify`;
    /// and so across master crashes that lose the journal's uncommitted ops, each followed by
    /// a replay of the committed ones.
    #[test]
    fn every_shard_completes_exactly_once(ops in prop::collection::vec(op(), 1..120)) {
        let config = CoreConfig { hold_timeout: Duration::from_secs(2), ..Default::default() };
        let (mut sim, t0) = (Sim::new(config), Instant::now());
        let mut now = t0;
        let sizes = [(0u64, 37u64, 5u64), (100, 110, 1), (7, 1000, 97)];
        let jobs: Vec<JobId> = sizes
            .iter()
            .enumerate()
            .map(|(i, &(a, b, s))| {
                // Leaves may hit any shard many times here; crash limits have their own test.
                let mut spec = spec("noop", a, b, s, i as i32 % 2);
                spec.limits.max_crashes = farm_proto::JobLimits::MAX_CRASHES;
                spec.limits.retries = farm_proto::JobLimits::MAX_RETRIES;
                spec.limits.verify_percent = [0, 50, 100][i];
                sim.submit(spec, now).expect("submit")
            })
            .collect();
        let mut live: Vec<WorkerId> = Vec::new();
        for op in ops {
            match op {
                Op::Join(t) => live.push(sim.join(worker(t), now)),
                Op::Leave(i) if !live.is_empty() => {
                    let w = live.remove(i % live.len());
                    sim.leave(w, "gone", now);
                }
                Op::Complete(i, n) if !live.is_empty() => {
                    let w = live[i % live.len()];
                    sim.core.heartbeat(w, now);
                    sim.complete(w, n, now);
                }
                Op::Stray(a, b) if !live.is_empty() => {
                    let (wa, wb) = (live[a % live.len()], live[b % live.len()]);
                    if let Some(t) = sim.rec.queues.get(&wa).and_then(|q| q.front()).cloned() {
                        let _ = sim.results(wb, [(t.job_id, t.shard, ShardOutcome::Done(Output::Count(t.hi - t.lo)))], now);
                    }
                }
                Op::Fail(i) if !live.is_empty() => {
                    let w = live[i % live.len()];
                    if let Some(t) = sim.rec.queues.get_mut(&w).and_then(|q| q.pop_front()) {
                        let _ = sim.results(w, [(t.job_id, t.shard, ShardOutcome::Failed("x".into()))], now);
                    }
                }
                Op::Beat(i) if !live.is_empty() => sim.core.heartbeat(live[i % live.len()], now),
                Op::Tick(ms) => {
                    now += Duration::from_millis(ms);
                    sim.tick(now);
                    live.retain(|w| !sim.rec.dropped.contains(w));
                }
                Op::Crash(lost) => {
                    sim.crash(lost, now);
                    live.clear();
                }
                _ => {}
            }
        }
        now = finish_with_fresh_workers(&mut sim, &jobs, now);
        let crashed = !sim.history.is_empty();
        sim.history.append(&mut sim.rec.journal);
        for (job, &(a, b, _)) in jobs.iter().zip(&sizes) {
            let status = sim.status(*job, now);
            prop_assert_eq!(status.state, JobState::Succeeded);
            prop_assert_eq!(status.result_json.as_deref().map(str::to_owned), Some((b - a).to_string()));
            let expected: Vec<u64> = (0..status.total).collect();
            // Every shard committed done exactly once, across every crash.
            let mut journaled: Vec<u64> = sim.history.iter().filter_map(|op| match op {
                JournalOp::Outcome { job: j, shard, .. } if j == job => Some(*shard),
                _ => None,
            }).collect();
            journaled.sort();
            prop_assert_eq!(&journaled, &expected);
            if !crashed {
                let mut shards: Vec<u64> = sim.rec.outputs.iter().filter(|o| o.0 == *job).map(|o| o.1).collect();
                shards.sort();
                prop_assert_eq!(shards, expected);
            }
        }
        prop_assert_eq!(sim.core.assigned_total(), 0);
        // Random interleavings send every kind of message, checked above by their outcome;
        // quiet here checks that every journal op since the last crash matched its event.
        for sent in [&mut sim.rec.defs, &mut sim.rec.cancels, &mut sim.rec.forgets] {
            take(sent);
        }
        take(&mut sim.rec.outputs);
        take(&mut sim.rec.finished);
        take(&mut sim.rec.dropped);
        sim.rec.assert_quiet();
    }
}

mod fair;
mod priority;
