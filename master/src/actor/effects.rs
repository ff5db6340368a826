//! The side effects the core asks for, carried out by the core's task as it asks: messages to
//! worker sessions (through their byte-bounded queues), updates to watchers, journal writes
//! and the metrics' shard counts.

use super::LastHeard;
use crate::core::{Counted, JobDef, JobId, JobView, JournalOp, Outbox, ShardTask, WorkerId};
use crate::error::Error;
use crate::metrics::{Metrics, ShardTally};
use crate::outgoing::{fell_behind, NotSent, WorkerTx};
use crate::store::JournalTx;
use farm_proto::pb;
use farm_proto::session::{Assign, ToWorker};
use farm_proto::Output;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

/// Where one watcher's shard results go, and its fell-behind flag.
pub(super) type ShardSink = (mpsc::Sender<(u64, pb::ShardOutput)>, Arc<AtomicBool>);

/// The watchers of one job.
pub(super) struct JobWatch {
    /// Its latest status, for every watcher.
    pub(super) status: watch::Sender<JobView>,
    /// The watchers that asked for shard results.
    pub(super) shards: Vec<ShardSink>,
}

/// A worker session as the core's task sees it.
pub(super) struct Session {
    /// Its messages (the response stream of its `Connect` call).
    pub(super) tx: WorkerTx,
    /// When its reader last heard from it, read on each tick.
    pub(super) heard: LastHeard,
}

/// The side effects the core asks for, carried out as it asks.
pub(super) struct Effects {
    /// The journal's writer thread.
    pub(super) journal: JournalTx,
    /// What the current batch journaled, sent in one message when it ends
    /// ([`Effects::flush_journal`]).
    pub(super) journaled: Vec<JournalOp>,
    /// Connected worker sessions.
    pub(super) sessions: HashMap<WorkerId, Session>,
    /// Watched jobs not yet ended.
    pub(super) watches: HashMap<JobId, JobWatch>,
    /// Workers declared lost since the core's task last looked (it updates the catalog).
    pub(super) lost: Vec<WorkerId>,
    /// Workers whose queue went over its byte bound since the core's task last looked (it
    /// drops their sessions as lost).
    pub(super) fell_behind: Vec<(WorkerId, &'static str)>,
    /// Shard counts for the metrics.
    pub(super) tally: ShardTally,
}

impl Effects {
    /// No sessions or watchers yet.
    pub(super) fn new(journal: JournalTx, metrics: Arc<Metrics>) -> Self {
        Effects {
            journal,
            journaled: Vec::new(),
            sessions: HashMap::new(),
            watches: HashMap::new(),
            lost: Vec::new(),
            fell_behind: Vec::new(),
            tally: ShardTally::new(metrics),
        }
    }

    /// Sends a message to one worker session, if it is still connected. A session whose queue
    /// is over its byte bound is noted in `fell_behind`, for the core's task to drop.
    pub(super) fn send(&mut self, worker: WorkerId, msg: ToWorker) {
        let Some(s) = self.sessions.get(&worker) else { return };
        if let Err(NotSent::FellBehind { queued }) = s.tx.send(msg.into()) {
            self.fell_behind.push((worker, fell_behind(worker, queued)));
        }
    }
}

impl Effects {
    /// Sends what was journaled since the last flush to the writer, in order, as one message.
    pub(super) fn flush_journal(&mut self) {
        if !self.journaled.is_empty() {
            self.journal.send_all(std::mem::take(&mut self.journaled));
        }
    }

    /// A snapshot of the store holding everything journaled so far (flushed first).
    pub(super) fn journal_snapshot(
        &mut self,
    ) -> tokio::sync::oneshot::Receiver<Result<crate::store::Snapshot, crate::store::StoreError>>
    {
        self.flush_journal();
        self.journal.snapshot()
    }

    /// A barrier behind everything journaled so far (flushed first, so it cannot overtake).
    pub(super) fn journal_barrier(
        &mut self,
    ) -> tokio::sync::oneshot::Receiver<Result<(), crate::store::StoreError>> {
        self.flush_journal();
        self.journal.barrier()
    }
}

impl Outbox for Effects {
    fn assign(&mut self, worker: WorkerId, jobs: Vec<JobDef>, tasks: Vec<ShardTask>) {
        self.send(worker, ToWorker::Assign(Assign { jobs, tasks }));
    }
    fn cancel_job(&mut self, worker: WorkerId, job: JobId) {
        self.send(worker, ToWorker::CancelJob(job));
    }
    fn forget_job(&mut self, worker: WorkerId, job: JobId) {
        self.send(worker, ToWorker::ForgetJob(job));
    }
    fn shard_output(&mut self, job: JobId, shard: u64, output: &Output) {
        let Some(w) = self.watches.get_mut(&job) else { return };
        if w.shards.is_empty() {
            return;
        }
        let wire: pb::ShardOutput = output.clone().into();
        // A watcher that fell behind is dropped and flagged: its stream ends with an error
        // instead of a normal finish with results missing.
        w.shards.retain(|(tx, overflowed)| match tx.try_send((shard, wire.clone())) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                overflowed.store(true, Ordering::Relaxed);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }
    fn job_changed(&mut self, view: &JobView) {
        if view.state.is_final() {
            self.tally.ended(view.id);
            if let Some(w) = self.watches.remove(&view.id) {
                w.status.send_replace(view.clone());
            }
            info!(
                job = view.id,
                state = %view.state,
                elapsed_ms = view.elapsed_ms,
                error = view.error.as_deref(),
                "job ended"
            );
        } else if let Some(w) = self.watches.get(&view.id) {
            w.status.send_replace(view.clone());
        }
    }
    fn drain_worker(&mut self, worker: WorkerId) {
        info!(worker, "asking worker to drain");
        self.send(worker, ToWorker::Drain);
    }
    fn journal(&mut self, op: JournalOp) {
        self.journaled.push(op);
    }
    fn counted(&mut self, job: JobId, kind: &str, what: Counted) {
        self.tally.count(job, kind, what);
    }
    fn drop_worker(&mut self, worker: WorkerId, reason: &str) {
        warn!(worker, reason, "worker declared lost");
        self.tally.metrics().workers_lost.inc();
        self.lost.push(worker);
        if let Some(s) = self.sessions.remove(&worker) {
            s.tx.close(Error::Unavailable(format!("worker declared lost: {reason}")));
        }
    }
}
