//! The one task that owns the scheduler core. gRPC handlers talk to it over a channel
//! ([`CoreHandle`]); it applies each command to the core, then carries out the effects the core
//! asked for: messages to worker sessions and updates to watchers.

use crate::core::{
    Core, CoreConfig, CoreError, JobDefOut, JobId, JobView, Outbox, ShardOutcome, TaskOut,
    WorkerId, WorkerSpec, WorkerView,
};
use farm_proto::pb::{self, master_message::Msg};
use farm_proto::{JobSpec, Output};
use farm_worker::Registry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tonic::Status;
use tracing::{debug, info, warn};

/// Messages to one worker session (the response stream of its `Connect` call).
pub type WorkerTx = mpsc::UnboundedSender<Result<pb::MasterMessage, Status>>;

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
}

/// Why a submission was refused before reaching the core.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The core refused it.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// Bad kind or parameters.
    #[error("{0}")]
    Invalid(String),
    /// The kind exists but no connected worker offers it.
    #[error("{0}")]
    NotOffered(String),
}

enum Cmd {
    Submit(JobSpec, oneshot::Sender<Result<(JobId, u64), SubmitError>>),
    Get(JobId, oneshot::Sender<Option<JobView>>),
    List(oneshot::Sender<Vec<JobView>>),
    Cancel(JobId, oneshot::Sender<Result<JobView, CoreError>>),
    Workers(oneshot::Sender<Vec<WorkerView>>),
    Watch(JobId, bool, oneshot::Sender<Option<Subscription>>),
    Join(WorkerSpec, WorkerTx, oneshot::Sender<WorkerId>),
    Results(WorkerId, Vec<(JobId, u64)>, Vec<(JobId, u64, ShardOutcome)>),
    Heartbeat(WorkerId),
    Draining(WorkerId),
    Drain(WorkerId, oneshot::Sender<Result<WorkerView, CoreError>>),
    Left(WorkerId, String),
}

/// A cheap, cloneable handle to the core's task.
#[derive(Clone)]
pub struct CoreHandle {
    tx: mpsc::UnboundedSender<Cmd>,
}

fn gone() -> Status {
    Status::unavailable("master is shutting down")
}

impl CoreHandle {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Result<T, Status> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }

    /// Queues a job; returns its id and shard count.
    pub async fn submit(&self, spec: JobSpec) -> Result<Result<(JobId, u64), SubmitError>, Status> {
        self.ask(|r| Cmd::Submit(spec, r)).await
    }
    /// One job's status.
    pub async fn get(&self, job: JobId) -> Result<Option<JobView>, Status> {
        self.ask(|r| Cmd::Get(job, r)).await
    }
    /// Every job's status.
    pub async fn list(&self) -> Result<Vec<JobView>, Status> {
        self.ask(Cmd::List).await
    }
    /// Cancels a job.
    pub async fn cancel(&self, job: JobId) -> Result<Result<JobView, CoreError>, Status> {
        self.ask(|r| Cmd::Cancel(job, r)).await
    }
    /// The connected workers.
    pub async fn workers(&self) -> Result<Vec<WorkerView>, Status> {
        self.ask(Cmd::Workers).await
    }
    /// Subscribes to a job's progress (and shard results); `None` if there is no such job.
    pub async fn watch(&self, job: JobId, shards: bool) -> Result<Option<Subscription>, Status> {
        self.ask(|r| Cmd::Watch(job, shards, r)).await
    }
    /// Registers a worker session whose messages go to `tx`; the welcome is sent first.
    pub async fn join(&self, spec: WorkerSpec, tx: WorkerTx) -> Result<WorkerId, Status> {
        self.ask(|r| Cmd::Join(spec, tx, r)).await
    }
    /// A batch from a worker: shards it started, and shard outcomes.
    pub fn results(
        &self,
        worker: WorkerId,
        started: Vec<(JobId, u64)>,
        batch: Vec<(JobId, u64, ShardOutcome)>,
    ) {
        let _ = self.tx.send(Cmd::Results(worker, started, batch));
    }
    /// A worker is alive.
    pub fn heartbeat(&self, worker: WorkerId) {
        let _ = self.tx.send(Cmd::Heartbeat(worker));
    }
    /// A worker session ended.
    pub fn left(&self, worker: WorkerId, reason: String) {
        let _ = self.tx.send(Cmd::Left(worker, reason));
    }
    /// A worker said it is draining.
    pub fn draining(&self, worker: WorkerId) {
        let _ = self.tx.send(Cmd::Draining(worker));
    }
    /// Asks a worker to drain.
    pub async fn drain(&self, worker: WorkerId) -> Result<Result<WorkerView, CoreError>, Status> {
        self.ask(|r| Cmd::Drain(worker, r)).await
    }
}

/// Where one watcher's shard results go, and its fell-behind flag.
type ShardSink = (mpsc::Sender<(u64, pb::ShardOutput)>, Arc<AtomicBool>);

struct JobWatch {
    status: watch::Sender<JobView>,
    shards: Vec<ShardSink>,
}

/// The side effects of one command, carried out after the core returns.
#[derive(Default)]
struct Effects {
    sessions: HashMap<WorkerId, WorkerTx>,
    watches: HashMap<JobId, JobWatch>,
}

impl Effects {
    fn send(&mut self, worker: WorkerId, msg: Msg) {
        if let Some(tx) = self.sessions.get(&worker) {
            let _ = tx.send(Ok(pb::MasterMessage { msg: Some(msg) }));
        }
    }
}

impl Outbox for Effects {
    fn assign(&mut self, worker: WorkerId, defs: Vec<JobDefOut>, tasks: Vec<TaskOut>) {
        let jobs = defs
            .into_iter()
            .map(|d| pb::JobDef {
                job_id: d.job,
                kind: d.kind,
                params: d.params.to_pb(),
                shard_timeout_ms: d.shard_timeout_ms.unwrap_or(0),
            })
            .collect();
        let tasks = tasks
            .into_iter()
            .map(|t| pb::ShardTask {
                job_id: t.job,
                shard: t.shard,
                lo: t.lo,
                hi: t.hi,
                input: t.input,
            })
            .collect();
        self.send(worker, Msg::Assign(pb::AssignBatch { jobs, tasks }));
    }
    fn cancel_job(&mut self, worker: WorkerId, job: JobId) {
        self.send(worker, Msg::Cancel(pb::CancelJob { job_id: job }));
    }
    fn forget_job(&mut self, worker: WorkerId, job: JobId) {
        self.send(worker, Msg::Forget(pb::ForgetJob { job_id: job }));
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
            if let Some(w) = self.watches.remove(&view.id) {
                w.status.send_replace(view.clone());
            }
            info!(job = view.id, state = ?view.state, elapsed_ms = view.elapsed_ms, error = ?view.error, "job ended");
        } else if let Some(w) = self.watches.get(&view.id) {
            w.status.send_replace(view.clone());
        }
    }
    fn drain_worker(&mut self, worker: WorkerId) {
        info!(worker, "asking worker to drain");
        self.send(worker, Msg::Drain(pb::Drain {}));
    }
    fn drop_worker(&mut self, worker: WorkerId, reason: &str) {
        warn!(worker, reason, "worker declared lost");
        if let Some(tx) = self.sessions.remove(&worker) {
            let _ = tx.send(Err(Status::unavailable(format!("worker declared lost: {reason}"))));
        }
    }
}

/// Starts the core's task; it ends when every handle is dropped or `shutdown` fires.
pub fn spawn(
    config: CoreConfig,
    heartbeat: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> CoreHandle {
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut core = Core::new(config);
        let mut fx = Effects::default();
        let validator = Registry::builtin(true);
        // Ticks four times per heartbeat period, so a silent worker is found soon after its
        // timeout; heartbeats to workers go out once per period. Commands come first (a
        // heartbeat waiting in the queue must be seen before a tick could declare its worker
        // lost), but a tick that is due runs after the command at hand, so a flood of commands
        // cannot starve it.
        let tick_every = heartbeat / 4;
        let mut next_tick = tokio::time::Instant::now() + tick_every;
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                biased;
                cmd = rx.recv() => match cmd {
                    Some(cmd) => apply(&mut core, &mut fx, &validator, cmd, heartbeat),
                    None => break,
                },
                _ = tokio::time::sleep_until(next_tick) => {}
                _ = shutdown.changed() => break,
            }
            if tokio::time::Instant::now() >= next_tick {
                next_tick = tokio::time::Instant::now() + tick_every;
                core.tick(Instant::now(), &mut fx);
                ticks += 1;
                if ticks.is_multiple_of(4) {
                    let beat =
                        || Ok(pb::MasterMessage { msg: Some(Msg::Heartbeat(pb::Heartbeat {})) });
                    for tx in fx.sessions.values() {
                        let _ = tx.send(beat());
                    }
                }
            }
        }
        for (_, tx) in fx.sessions.drain() {
            let _ = tx.send(Err(gone()));
        }
        debug!("core task stopped");
    });
    CoreHandle { tx }
}

fn apply(core: &mut Core, fx: &mut Effects, validator: &Registry, cmd: Cmd, heartbeat: Duration) {
    let now = Instant::now();
    match cmd {
        Cmd::Submit(spec, reply) => {
            let result = check_kind(core, validator, &spec)
                .and_then(|()| Ok(core.submit(spec.clone(), now, fx)?))
                .map(|id| (id, spec.source.shard_count()));
            if let Ok((id, shards)) = &result {
                info!(job = id, kind = %spec.kind, shards, "job submitted");
            }
            let _ = reply.send(result);
        }
        Cmd::Get(job, reply) => {
            let _ = reply.send(core.status(job, now));
        }
        Cmd::List(reply) => {
            let _ = reply.send(core.jobs(now));
        }
        Cmd::Cancel(job, reply) => {
            let _ = reply.send(core.cancel(job, now, fx));
        }
        Cmd::Workers(reply) => {
            let _ = reply.send(core.workers(now));
        }
        Cmd::Watch(job, want_shards, reply) => {
            let Some(view) = core.status(job, now) else {
                let _ = reply.send(None);
                return;
            };
            let overflowed = Arc::new(AtomicBool::new(false));
            let (status, shards) = if view.state.is_final() {
                // Already over: a receiver holding the final status, its sender gone.
                (watch::channel(view).1, None)
            } else {
                let w = fx.watches.entry(job).or_insert_with(|| JobWatch {
                    status: watch::channel(view).0,
                    shards: Vec::new(),
                });
                let shards = want_shards.then(|| {
                    let (tx, rx) = mpsc::channel(WATCH_BUFFER);
                    w.shards.push((tx, overflowed.clone()));
                    rx
                });
                (w.status.subscribe(), shards)
            };
            let _ = reply.send(Some(Subscription { status, shards, overflowed }));
        }
        Cmd::Join(spec, tx, reply) => {
            let (name, threads) = (spec.name.clone(), spec.threads);
            // Reserve the session first so the welcome precedes the first assignment.
            let id = core.next_worker_id();
            let welcome = pb::Welcome {
                worker_id: id,
                heartbeat_ms: heartbeat.as_millis().min(u128::from(u32::MAX)) as u32,
            };
            let _ = tx.send(Ok(pb::MasterMessage { msg: Some(Msg::Welcome(welcome)) }));
            fx.sessions.insert(id, tx);
            let joined = core.worker_joined(spec, now, fx);
            debug_assert_eq!(joined, id);
            info!(worker = id, %name, threads, "worker joined");
            let _ = reply.send(id);
        }
        Cmd::Results(worker, started, batch) => {
            core.shards_started(worker, started);
            match core.results(worker, batch, now, fx) {
                Ok(0) => {}
                Ok(dropped) => {
                    debug!(worker, dropped, "dropped results for shards the worker does not hold")
                }
                Err(e) => debug!(worker, error = %e, "results from a worker that is gone"),
            }
        }
        Cmd::Heartbeat(worker) => core.heartbeat(worker, now),
        Cmd::Draining(worker) => {
            if core.drain(worker, false, now, fx).is_ok() {
                info!(worker, "worker is draining");
            }
        }
        Cmd::Drain(worker, reply) => {
            let _ = reply.send(core.drain(worker, true, now, fx));
        }
        Cmd::Left(worker, reason) => {
            if fx.sessions.remove(&worker).is_some() {
                info!(worker, %reason, "worker left");
            }
            core.worker_left(worker, &reason, now, fx);
        }
    }
}

/// Built-in kinds must have valid parameters; other kinds (exec, user kernels) must be offered
/// by a connected worker.
fn check_kind(core: &Core, validator: &Registry, spec: &JobSpec) -> Result<(), SubmitError> {
    if validator.contains(&spec.kind) {
        validator
            .prepare(&spec.kind, &spec.params)
            .map_err(|e| SubmitError::Invalid(format!("{}: {e}", spec.kind)))?;
        if spec.kind == "exec" && !core.kind_offered("exec") {
            return Err(SubmitError::NotOffered(
                "no connected worker allows exec (start workers with --allow-exec)".into(),
            ));
        }
        return Ok(());
    }
    if core.kind_offered(&spec.kind) {
        return Ok(());
    }
    Err(SubmitError::Invalid(format!(
        "unknown kind {}; known: {}",
        spec.kind,
        validator.kinds().join(", ")
    )))
}
