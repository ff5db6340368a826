//! The tests' one outbox: records every effect the core asks for, keeps each simulated
//! worker's queue of assigned tasks, and checks that the journal ops match the events that
//! caused them. A test takes what it expects (`take`, `take_tasks`) and ends with
//! [`Recording::assert_quiet`]: nothing else was sent. Every core and store test uses it, so a
//! new effect is added to the trait, to `actor::Effects` and here, and nowhere else.

use super::{Counted, JobDef, JobId, JobView, JournalOp, Outbox, ShardTask, WorkerId};
use farm_proto::{Output, ShardLog};
use std::collections::{BTreeMap, HashSet, VecDeque};

/// Everything the core sent, by kind, in order (tako's recording comm).
#[derive(Default)]
pub(crate) struct Recording {
    /// Each simulated worker's assigned tasks not yet answered; tests run them or clear them.
    pub(crate) queues: BTreeMap<WorkerId, VecDeque<ShardTask>>,
    /// Job definitions sent, by worker.
    pub(crate) defs: Vec<(WorkerId, JobId)>,
    /// Jobs a worker was told to stop.
    pub(crate) cancels: Vec<(WorkerId, JobId)>,
    /// Jobs a worker was told to forget.
    pub(crate) forgets: Vec<(WorkerId, JobId)>,
    /// Accepted shard outputs.
    pub(crate) outputs: Vec<(JobId, u64, Output)>,
    /// Every view published to watchers (progress, waiting, ended), in order.
    pub(crate) changed: Vec<JobView>,
    /// The published views of ended jobs.
    pub(crate) finished: Vec<JobView>,
    /// The published views of jobs that wait (a `waiting` reason set).
    pub(crate) waited: Vec<JobView>,
    /// Workers declared lost.
    pub(crate) dropped: Vec<WorkerId>,
    /// Workers asked to drain.
    pub(crate) drains: Vec<WorkerId>,
    /// Every journal op, in order (the crash-and-replay test replays a prefix of them).
    pub(crate) journal: Vec<JournalOp>,
    /// Every count for metrics: the job, its kind and what was counted.
    pub(crate) counted: Vec<(JobId, String, Counted)>,
    /// The last output and final status sent, which the next journal op must match.
    last_output: Option<(JobId, u64, Output)>,
    last_end: Option<JobView>,
    /// Shards journaled done, and jobs journaled ended: none twice.
    journaled: HashSet<(JobId, u64)>,
    ended: HashSet<JobId>,
    /// Journal ops that match no event: `assert_quiet` fails on any.
    bad_journal: Vec<String>,
}

impl Outbox for Recording {
    fn assign(&mut self, worker: WorkerId, defs: Vec<JobDef>, tasks: Vec<ShardTask>) {
        assert!(!tasks.is_empty() || !defs.is_empty(), "an empty assignment was sent");
        self.defs.extend(defs.into_iter().map(|d| (worker, d.job_id)));
        self.queues.entry(worker).or_default().extend(tasks);
    }
    fn cancel_job(&mut self, worker: WorkerId, job: JobId) {
        self.cancels.push((worker, job));
        if let Some(q) = self.queues.get_mut(&worker) {
            q.retain(|t| t.job_id != job);
        }
    }
    fn forget_job(&mut self, worker: WorkerId, job: JobId) {
        self.forgets.push((worker, job));
    }
    fn shard_output(&mut self, job: JobId, shard: u64, output: &Output) {
        self.outputs.push((job, shard, output.clone()));
        self.last_output = Some((job, shard, output.clone()));
    }
    fn job_changed(&mut self, view: &JobView) {
        self.changed.push(view.clone());
        if view.waiting.is_some() {
            self.waited.push(view.clone());
        }
        if view.state.is_final() {
            self.finished.push(view.clone());
            self.last_end = Some(view.clone());
        }
    }
    fn drop_worker(&mut self, worker: WorkerId, _reason: &str) {
        self.dropped.push(worker);
    }
    fn drain_worker(&mut self, worker: WorkerId) {
        self.drains.push(worker);
    }
    fn journal(&mut self, op: JournalOp) {
        let ok = match &op {
            JournalOp::Submit { .. } => true,
            JournalOp::Outcome { job, shard, output } => {
                self.last_output.take() == Some((*job, *shard, output.clone()))
                    && self.journaled.insert((*job, *shard))
            }
            JournalOp::End(view) => {
                self.last_end.take().as_ref() == Some(view) && self.ended.insert(view.id)
            }
            JournalOp::Forget(job) => self.ended.contains(job),
            JournalOp::ShardLog { .. } => true,
        };
        if !ok {
            self.bad_journal.push(format!("{op:?}"));
        }
        self.journal.push(op);
    }
    fn counted(&mut self, job: JobId, kind: &str, what: Counted) {
        self.counted.push((job, kind.to_string(), what));
    }
}

impl Recording {
    /// Panics if anything was sent that the test did not take: job definitions, cancels,
    /// forgets, shard outputs, ended jobs, dropped or drained workers, or a journal op that
    /// matches no event (tako's emptiness check). Assigned tasks are the simulated workers'
    /// queues, progress views what watchers see, journal ops what the store commits and
    /// counts what metrics show: tests check those where they matter.
    #[track_caller]
    pub(crate) fn assert_quiet(&self) {
        let mut sent = Vec::new();
        let mut check = |what: &str, len: usize, list: String| {
            if len > 0 {
                sent.push(format!("{len} {what}: {list}"));
            }
        };
        check("job definitions", self.defs.len(), format!("{:?}", self.defs));
        check("cancels", self.cancels.len(), format!("{:?}", self.cancels));
        check("forgets", self.forgets.len(), format!("{:?}", self.forgets));
        let outputs: Vec<_> = self.outputs.iter().map(|(job, shard, _)| (job, shard)).collect();
        check("outputs", outputs.len(), format!("{outputs:?}"));
        check("ended jobs", self.finished.len(), format!("{:?}", self.finished));
        check("dropped workers", self.dropped.len(), format!("{:?}", self.dropped));
        check("drains", self.drains.len(), format!("{:?}", self.drains));
        check("journal ops of no event", self.bad_journal.len(), format!("{:?}", self.bad_journal));
        assert!(sent.is_empty(), "sent and not taken by the test: {}", sent.join("; "));
    }

    /// The shards of a worker's queue, in order.
    pub(crate) fn shards(&self, worker: WorkerId) -> Vec<u64> {
        self.queues.get(&worker).map_or(vec![], |q| q.iter().map(|t| t.shard).collect())
    }

    /// How many tasks a worker has queued.
    pub(crate) fn queued(&self, worker: WorkerId) -> usize {
        self.queues.get(&worker).map_or(0, VecDeque::len)
    }

    /// Empties every worker's queue: its tasks, worker by worker, each in the order assigned.
    pub(crate) fn take_tasks(&mut self) -> Vec<(WorkerId, ShardTask)> {
        let queues = std::mem::take(&mut self.queues);
        queues.into_iter().flat_map(|(w, q)| q.into_iter().map(move |t| (w, t))).collect()
    }

    /// The shard logs journaled, in order.
    pub(crate) fn shard_logs(&self) -> Vec<(JobId, &ShardLog)> {
        let logs = self.journal.iter().filter_map(|op| match op {
            JournalOp::ShardLog { job, log } => Some((*job, log)),
            _ => None,
        });
        logs.collect()
    }
}

/// Takes what a test expected to be sent, leaving the record empty for `assert_quiet`.
pub(crate) fn take<T>(sent: &mut Vec<T>) -> Vec<T> {
    std::mem::take(sent)
}
