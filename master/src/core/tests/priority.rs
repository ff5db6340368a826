//! Priorities under load: simulated workers that run what they hold highest priority first,
//! as the real pool does, on a simulated clock.

use super::*;
use std::cmp::Reverse;
use std::collections::HashMap;

/// Simulated workers: each thread runs one task at a time, taking the highest-priority one its
/// worker holds (first come first served within a priority); every task of a job costs the
/// same.
pub(super) struct Cluster {
    pub sim: Sim,
    /// Each thread: its worker and what it runs until when.
    threads: Vec<(WorkerId, Option<(Instant, ShardTask)>)>,
    /// Each job's priority and shard cost.
    jobs: HashMap<JobId, (i32, Duration)>,
    /// When each job's first shard started on each worker.
    pub first_start: HashMap<(JobId, WorkerId), Instant>,
    pub now: Instant,
}

impl Cluster {
    fn new(workers: usize, threads: u32, now: Instant) -> Self {
        Cluster::with(CoreConfig::default(), workers, threads, now)
    }

    /// `workers` workers of `threads` threads each, on a core built with `config`.
    pub fn with(config: CoreConfig, workers: usize, threads: u32, now: Instant) -> Self {
        let mut sim = Sim::new(config);
        let mut all = Vec::new();
        for _ in 0..workers {
            let id = sim.join(worker(threads), now);
            all.extend((0..threads).map(|_| (id, None)));
        }
        Cluster { sim, threads: all, jobs: HashMap::new(), first_start: HashMap::new(), now }
    }

    fn submit(&mut self, spec: JobSpec, cost: Duration) -> JobId {
        self.submit_as(spec, Owner::anonymous(), cost).expect("submit")
    }

    /// Submits a job of `owner`'s whose shards each take `cost`.
    pub fn submit_as(
        &mut self,
        spec: JobSpec,
        owner: Owner,
        cost: Duration,
    ) -> Result<JobId, CoreError> {
        let priority = spec.priority;
        let job = self.sim.submit_as(spec, owner, self.now)?;
        self.jobs.insert(job, (priority, cost));
        self.start_free_threads();
        Ok(job)
    }

    /// Every free thread takes its worker's best queued task.
    fn start_free_threads(&mut self) {
        for (w, running) in self.threads.iter_mut().filter(|(_, r)| r.is_none()) {
            let Some(queue) = self.sim.rec.queues.get_mut(w) else { continue };
            let best =
                (0..queue.len()).max_by_key(|&i| (self.jobs[&queue[i].job_id].0, Reverse(i)));
            let Some(task) = best.and_then(|i| queue.remove(i)) else { continue };
            self.first_start.entry((task.job_id, *w)).or_insert(self.now);
            *running = Some((self.now + self.jobs[&task.job_id].1, task));
        }
    }

    /// Runs until `until` or until `job` ended, one finished task at a time, each reported in
    /// its own batch with its cost; the master ticks (and hears every worker) at each.
    pub fn run(&mut self, until: Instant, job: JobId) {
        while self.sim.core.status(job, self.now).is_some_and(|v| !v.state.is_final()) {
            let next = self
                .threads
                .iter()
                .enumerate()
                .filter_map(|(i, (_, r))| r.as_ref().map(|r| (r.0, i)))
                .min();
            let Some((at, i)) = next.filter(|&(at, _)| at <= until) else { break };
            self.now = at;
            let (w, running) = &mut self.threads[i];
            let (_, task) = running.take().expect("running");
            let cost = self.jobs[&task.job_id].1;
            let done = vec![(
                task.job_id,
                task.shard,
                ShardOutcome::Done(Output::Count(task.hi - task.lo)),
            )];
            let costs =
                vec![JobCost { job_id: task.job_id, runs: 1, busy_ns: cost.as_nanos() as u64 }];
            let w = *w;
            self.sim.batch(w, Results { done, costs, ..Results::default() }, at);
            for id in self.sim.core.workers(at).iter().map(|v| v.id).collect::<Vec<_>>() {
                self.sim.core.heartbeat(id, at);
            }
            self.sim.tick(at);
            self.start_free_threads();
        }
    }
}

#[test]
fn a_higher_priority_job_overtakes_the_lower_priority_work_queued_in_every_window() {
    let t0 = Instant::now();
    let mut c = Cluster::new(2, 2, t0);
    // 20 s of 10 ms shards on 2 x 2 threads, each of whose shards may be held 3.2 s at most.
    let mut low = spec("noop", 0, 8000, 1, 0);
    low.limits.shard_timeout_ms = Some(100);
    let low = c.submit(low, 10 * MS);
    c.run(t0 + Duration::from_secs(2), low);
    let held: u64 = c.sim.core.workers(c.now).iter().map(|w| w.in_flight).sum();
    assert!(held > 8, "the low job fills deep windows first: {held}");
    // Then 40 shards of 400 ms at priority 10: ideally 4 s on 4 threads, longer than the low
    // job's shards may be held.
    let submitted = c.now;
    let high = c.submit(spec("primes", 0, 4000, 100, 10), 400 * MS);
    c.run(submitted + Duration::from_secs(10), high);
    let view = c.sim.status(high, c.now);
    assert_eq!(view.state, JobState::Succeeded);
    for w in c.sim.core.workers(c.now) {
        let started = c.first_start[&(high, w.id)] - submitted;
        assert!(started <= 10 * MS, "worker {} started the high job after {started:?}", w.id);
        assert!(w.suspect.is_none(), "overtaken holds are not hoarding: {:?}", w.suspect);
    }
    let took = c.now - submitted;
    let ideal = 4000 * MS;
    assert!(took <= ideal + 10 * MS, "the high job took {took:?}, ideally {ideal:?}");
    assert_eq!(c.sim.status(low, c.now).state, JobState::Running, "the low job still runs");
    // And once it ended, the low job's queued shards run on and it completes.
    c.run(c.now + Duration::from_secs(60), low);
    let view = c.sim.status(low, c.now);
    assert_eq!((view.state, view.reruns), (JobState::Succeeded, 0));
    // Both jobs ran on both workers and ended.
    assert_eq!(take(&mut c.sim.rec.defs).len(), 4);
    assert_eq!(take(&mut c.sim.rec.forgets).len(), 4);
    assert_eq!(take(&mut c.sim.rec.outputs).len(), 8040);
    assert_eq!(take(&mut c.sim.rec.finished).len(), 2);
    c.sim.rec.assert_quiet();
}
