//! The one task that owns the scheduler core. gRPC handlers and session readers talk to it over
//! a bounded channel ([`CoreHandle`]), so a busy core slows its clients and workers down rather
//! than queueing without limit. It takes one command, then whatever else is already queued (up
//! to [`BATCH`]), applies them to the core, dispatches once, and carries out the effects the
//! core asked for: messages to worker sessions and updates to watchers. It reads time only from
//! tokio's clock (handing the core `now.into_std()`), so tests can run it under paused time.

mod effects;
mod task;

use crate::catalog::Catalog;
use effects::Effects;
use farm_proto::{KernelDescriptor, KindInfo, OutputShape};
use task::CoreTask;

use crate::core::{
    Core, Demand, JobDetail, JobId, JobView, Overview, Owner, Submission, WorkerId, WorkerSpec,
    WorkerView,
};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
pub use crate::outgoing::WorkerTx;
use crate::store::{JournalTx, StoreError};
use crate::tasks::Tasks;
use farm_proto::pb;
use farm_proto::session::Results;
/// The tests submit specs, through `use super::*`.
#[cfg(test)]
use farm_proto::JobSpec;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// Commands queued for the core's task before senders wait: enough to absorb a burst from
/// many workers, small enough that a core that falls behind pushes back on them.
const MAILBOX: usize = 1024;

/// Most commands applied between two dispatches, so replies and ticks are never held back long.
const BATCH: usize = 256;

/// Shard results buffered per watcher before it counts as fallen behind.
const WATCH_BUFFER: usize = 4096;

/// What a watcher receives: the latest status, and shard results if it asked for them.
pub struct Subscription {
    /// Latest status; the sender is dropped after the final one.
    pub status: watch::Receiver<JobView>,
    /// Shard results as they are accepted.
    pub shards: Option<mpsc::Receiver<(u64, pb::ShardOutput)>>,
    /// Set if shard results were dropped because this watcher fell behind.
    pub overflowed: Arc<AtomicBool>,
    /// If it asked for a replay: the store as it was when it subscribed, holding the shard
    /// results accepted before (`shards` has every one after).
    pub replay: Option<oneshot::Receiver<Result<crate::store::Snapshot, StoreError>>>,
}

/// A submission's reply: its id and shard count, and the barrier that resolves once its
/// journal entry is committed.
type Accepted = (JobId, u64, oneshot::Receiver<Result<(), StoreError>>);

enum Cmd {
    /// A submission, and the output shape that overrides its kernel's (a wasm module's).
    Submit(Box<Submission>, Owner, Option<OutputShape>, oneshot::Sender<Result<Accepted>>),
    Get(JobId, oneshot::Sender<Option<JobView>>),
    List(oneshot::Sender<Vec<JobView>>),
    Cancel(JobId, oneshot::Sender<Result<JobView>>),
    Workers(oneshot::Sender<Vec<WorkerView>>),
    Watch(JobId, bool, bool, oneshot::Sender<Option<Subscription>>),
    Join(WorkerSpec, Vec<KernelDescriptor>, WorkerTx, oneshot::Sender<(WorkerId, LastHeard)>),
    Refused(WorkerId, JobId, String),
    Kinds(oneshot::Sender<Vec<KindInfo>>),
    Results(WorkerId, Results),
    Draining(WorkerId),
    Drain(WorkerId, oneshot::Sender<Result<WorkerView>>),
    Left(WorkerId, String),
    Demand(Arc<HashSet<String>>, oneshot::Sender<Demand>),
    Overview(usize, oneshot::Sender<Overview>),
    Detail(JobId, usize, oneshot::Sender<Option<JobDetail>>),
}

/// When the master last heard from one worker session. Its reader stamps it on every message
/// and the core's task reads it on each tick, so a heartbeat costs an atomic store instead of
/// a command through the mailbox (a thousand workers at 1 s would otherwise queue a thousand
/// commands a second that change nothing but a timestamp), and a heartbeat is seen at once
/// even when the mailbox is full.
#[derive(Clone, Debug)]
pub struct LastHeard {
    /// The core task's start: stamps are milliseconds since then.
    base: Instant,
    /// Milliseconds since `base` at the last message; only grows.
    ms: Arc<AtomicU64>,
}

impl LastHeard {
    fn new(base: Instant) -> Self {
        let heard = LastHeard { base, ms: Arc::new(AtomicU64::new(0)) };
        heard.stamp();
        heard
    }

    /// Notes that the worker was heard from now.
    pub fn stamp(&self) {
        let ms = self.base.elapsed().as_millis().min(u128::from(u64::MAX)) as u64;
        self.ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// When the worker was last heard from.
    fn at(&self) -> Instant {
        self.base + Duration::from_millis(self.ms.load(Ordering::Relaxed))
    }
}

/// A cheap, cloneable handle to the core's task.
#[derive(Clone)]
pub struct CoreHandle {
    /// The core's mailbox.
    tx: mpsc::Sender<Cmd>,
    /// The master's tracked tasks, for the tasks that serve sessions and watchers.
    tasks: Tasks,
    /// What the journal's writer has queued: session readers wait for room before results.
    backlog: Arc<crate::store::Backlog>,
    /// The master's metrics.
    metrics: Arc<Metrics>,
}

impl CoreHandle {
    /// Waits while the journal's writer has more than its bound queued (see
    /// [`crate::store::Backlog`]).
    pub async fn journal_room(&self) {
        self.backlog.room().await
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| Error::ShuttingDown)?;
        rx.await.map_err(|_| Error::ShuttingDown)
    }

    /// Sends a command that needs no answer, waiting while the mailbox is full; a core that is
    /// gone (shutting down) drops it.
    async fn tell(&self, cmd: Cmd) {
        let _ = self.tx.send(cmd).await;
    }

    /// The master's tracked tasks: spawn through them so shutdown waits for the task.
    pub fn tasks(&self) -> &Tasks {
        &self.tasks
    }

    /// The master's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The core now: jobs not yet ended and the `recent` latest ended, workers, counts.
    pub async fn overview(&self, recent: usize) -> Result<Overview> {
        self.ask(|r| Cmd::Overview(recent, r)).await
    }

    /// One job in detail, with at most `limit` troubled shards; `None` if there is no such job.
    pub async fn detail(&self, job: JobId, limit: usize) -> Result<Option<JobDetail>> {
        self.ask(|r| Cmd::Detail(job, limit, r)).await
    }

    /// Queues a job of `owner`'s as its kernel declares (see [`CoreHandle::submit_as`]).
    pub async fn submit(&self, sub: impl Into<Submission>, owner: Owner) -> Result<(JobId, u64)> {
        self.submit_as(sub, owner, None).await
    }

    /// Queues a job; returns its id and shard count once its submission is committed to the
    /// journal. Pack a large job's inputs before ([`Submission::new`], off the async runtime),
    /// so the core's task never does. `shape`, if given, overrides how the kernel declares its
    /// outputs are reduced (a `wasm` job: its module decides).
    pub async fn submit_as(
        &self,
        sub: impl Into<Submission>,
        owner: Owner,
        shape: Option<OutputShape>,
    ) -> Result<(JobId, u64)> {
        let sub = sub.into();
        let (id, shards, committed) =
            self.ask(|r| Cmd::Submit(Box::new(sub), owner, shape, r)).await??;
        // Acknowledged only once the submission is in the journal (this waits here, in the
        // caller's task; the core's task has moved on).
        match committed.await {
            Ok(Ok(())) => Ok((id, shards)),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(Error::ShuttingDown),
        }
    }
    /// One job's status.
    pub async fn get(&self, job: JobId) -> Result<Option<JobView>> {
        self.ask(|r| Cmd::Get(job, r)).await
    }
    /// Every job's status.
    pub async fn list(&self) -> Result<Vec<JobView>> {
        self.ask(Cmd::List).await
    }
    /// Cancels a job.
    pub async fn cancel(&self, job: JobId) -> Result<JobView> {
        self.ask(|r| Cmd::Cancel(job, r)).await?
    }
    /// The connected workers.
    pub async fn workers(&self) -> Result<Vec<WorkerView>> {
        self.ask(Cmd::Workers).await
    }
    /// Subscribes to a job's progress (and shard results, from the first accepted one if
    /// `replay`); `None` if there is no such job.
    pub async fn watch(
        &self,
        job: JobId,
        shards: bool,
        replay: bool,
    ) -> Result<Option<Subscription>> {
        self.ask(|r| Cmd::Watch(job, shards, replay, r)).await
    }
    /// Registers a worker session whose messages go to `tx`; the welcome is sent first. The
    /// session's reader stamps the returned [`LastHeard`] on every message from the worker.
    pub async fn join(
        &self,
        spec: WorkerSpec,
        kernels: Vec<KernelDescriptor>,
        tx: WorkerTx,
    ) -> Result<(WorkerId, LastHeard)> {
        self.ask(|r| Cmd::Join(spec, kernels, tx, r)).await
    }
    /// A worker refused a job (its kernel rejected the params).
    pub async fn refused(&self, worker: WorkerId, job: JobId, reason: String) {
        self.tell(Cmd::Refused(worker, job, reason)).await
    }
    /// The kinds the cluster offers.
    pub async fn kinds(&self) -> Result<Vec<KindInfo>> {
        self.ask(Cmd::Kinds).await
    }
    /// A batch from a worker: shards it started, shard outcomes, how some of them ran and
    /// what they cost.
    pub async fn results(&self, worker: WorkerId, batch: Results) {
        self.tell(Cmd::Results(worker, batch)).await
    }
    /// A worker session ended.
    pub async fn left(&self, worker: WorkerId, reason: String) {
        self.tell(Cmd::Left(worker, reason)).await
    }
    /// A worker said it is draining.
    pub async fn draining(&self, worker: WorkerId) {
        self.tell(Cmd::Draining(worker)).await
    }
    /// The allocator's numbers for workers offering `kinds`.
    pub async fn demand(&self, kinds: Arc<HashSet<String>>) -> Result<Demand> {
        self.ask(|r| Cmd::Demand(kinds, r)).await
    }
    /// Asks a worker to drain.
    pub async fn drain(&self, worker: WorkerId) -> Result<WorkerView> {
        self.ask(|r| Cmd::Drain(worker, r)).await?
    }
}

/// Starts the core's task, owning `core` (new, or replayed from the journal) and journaling
/// through `journal`, counting into `metrics`, as one of `tasks`; it ends when every handle is
/// dropped or shutdown begins, ending every worker session with `Unavailable` and dropping the
/// watch channels.
pub fn spawn(
    core: Core,
    journal: JournalTx,
    heartbeat: Duration,
    known: Vec<KernelDescriptor>,
    tasks: Tasks,
    metrics: Arc<Metrics>,
) -> CoreHandle {
    let (tx, rx) = mpsc::channel(MAILBOX);
    let backlog = journal.backlog();
    let fx = Effects::new(journal, metrics.clone());
    let task = CoreTask::new(core, fx, heartbeat, Catalog::new(known));
    let stopped = tasks.clone();
    tasks.spawn("core", async move { task.run(rx, stopped).await });
    CoreHandle { tx, tasks, backlog, metrics }
}

#[cfg(test)]
mod tests;
