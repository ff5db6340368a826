//! The allocator's own tracked task: it owns the [`Allocator`], asks the core's task for its
//! numbers on each tick, runs the Slurm commands the allocator asks for concurrently beside
//! it (so neither it nor the core waits on them), feeds their outcomes back, and serves the
//! `Alloc*` calls. At shutdown it cancels the allocations still alive.

use super::machine::{Allocator, AllocatorConfig, Effect, SchedState};
use super::slurm::Slurm;
use super::{AllocError, AllocSettings};
use crate::actor::CoreHandle;
use crate::error::{Error, Result};
use crate::tasks::Tasks;
use farm_proto::{AllocQueueInfo, AllocQueueSpec};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, warn};

/// How long shutdown waits for the cancels of live allocations.
const CANCEL_BOUND: Duration = Duration::from_millis(1500);

type Reply<T> = oneshot::Sender<Result<T, AllocError>>;

enum Cmd {
    Add(AllocQueueSpec, Reply<AllocQueueInfo>),
    List(oneshot::Sender<Vec<AllocQueueInfo>>),
    Remove(String, bool, Reply<AllocQueueInfo>),
}

/// What a finished scheduler command reports.
enum Done {
    Submitted { queue: String, seq: u64, result: Result<String, String> },
    Polled(Result<Vec<(String, SchedState)>, String>),
    Cancelled { id: String, result: Result<(), String> },
}

/// A handle to the allocator's task.
#[derive(Clone)]
pub struct AllocHandle {
    /// Its mailbox.
    tx: mpsc::Sender<Cmd>,
}

impl AllocHandle {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| Error::ShuttingDown)?;
        rx.await.map_err(|_| Error::ShuttingDown)
    }

    /// Registers a queue.
    pub async fn add(&self, spec: AllocQueueSpec) -> Result<AllocQueueInfo> {
        Ok(self.ask(|r| Cmd::Add(spec, r)).await??)
    }

    /// Every queue.
    pub async fn list(&self) -> Result<Vec<AllocQueueInfo>> {
        self.ask(Cmd::List).await
    }

    /// Removes a queue (cancelling its running allocations too if `now`).
    pub async fn remove(&self, name: String, now: bool) -> Result<AllocQueueInfo> {
        Ok(self.ask(|r| Cmd::Remove(name, now, r)).await??)
    }
}

/// Starts the allocator's task among the core's tracked tasks. Without `settings` (a master
/// embedded without an executable to start) every `add` is refused.
pub fn spawn(
    core: CoreHandle,
    settings: Option<AllocSettings>,
    config: AllocatorConfig,
    tick: Duration,
) -> AllocHandle {
    let (tx, rx) = mpsc::channel(64);
    let tasks = core.tasks().clone();
    let runner = Runner {
        machine: Allocator::new(config),
        kinds: Arc::new(settings.iter().flat_map(|s| s.kinds.iter().cloned()).collect()),
        slurm: settings.map(|s| Slurm::new(Arc::new(s))),
        running: JoinSet::new(),
    };
    tasks.clone().spawn("allocator", runner.run(core, rx, tick, tasks));
    AllocHandle { tx }
}

/// The task's state.
struct Runner {
    machine: Allocator,
    /// The kinds allocated workers offer.
    kinds: Arc<HashSet<String>>,
    /// The driver; `None` when this master cannot start workers.
    slurm: Option<Slurm>,
    /// Scheduler commands in flight.
    running: JoinSet<Done>,
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

impl Runner {
    async fn run(
        mut self,
        core: CoreHandle,
        mut rx: mpsc::Receiver<Cmd>,
        tick: Duration,
        tasks: Tasks,
    ) {
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tasks.stopped() => break,
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.apply(cmd),
                    None => break,
                },
                _ = ticker.tick() => {
                    if self.machine.list(now()).is_empty() {
                        continue;
                    }
                    let Ok(demand) = core.demand(self.kinds.clone()).await else { break };
                    let effects = self.machine.tick(now(), &demand);
                    self.start(effects);
                }
                Some(done) = self.running.join_next() => match done {
                    Ok(done) => self.finished(done),
                    Err(e) => warn!(error = %e, "scheduler command task failed"),
                },
            }
        }
        self.stop().await;
    }

    fn apply(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Add(spec, reply) => {
                let _ = reply.send(self.add(spec));
            }
            Cmd::List(reply) => {
                let _ = reply.send(self.machine.list(now()));
            }
            Cmd::Remove(name, now_too, reply) => {
                let result = self.machine.remove(&name, now_too, now()).map(|(info, effects)| {
                    self.start(effects);
                    info
                });
                let _ = reply.send(result);
            }
        }
    }

    /// Registers a queue whose sbatch arguments the operator allows, rewritten in the form
    /// they were checked in.
    fn add(&mut self, mut spec: AllocQueueSpec) -> Result<AllocQueueInfo, AllocError> {
        let Some(slurm) = &self.slurm else {
            return Err(AllocError::Unavailable(
                "this master cannot start workers (no executable or address to give them); \
                 start it with `farm master`"
                    .into(),
            ));
        };
        spec.extra_args = slurm.policy().check(&spec.extra_args)?;
        self.machine.add(spec, now())
    }

    /// Runs each effect's command beside this task; its outcome comes back through `running`.
    fn start(&mut self, effects: Vec<Effect>) {
        let Some(slurm) = &self.slurm else { return };
        for effect in effects {
            let slurm = slurm.clone();
            match effect {
                Effect::Submit { queue, seq, spec } => self.running.spawn(async move {
                    let result = slurm.submit(&spec).await;
                    Done::Submitted { queue, seq, result }
                }),
                Effect::Poll { ids } => {
                    self.running.spawn(async move { Done::Polled(slurm.poll(&ids).await) })
                }
                Effect::Cancel { id } => self.running.spawn(async move {
                    let result = slurm.cancel(&id).await;
                    Done::Cancelled { id, result }
                }),
            };
        }
    }

    fn finished(&mut self, done: Done) {
        match done {
            Done::Submitted { queue, seq, result } => {
                let effects = self.machine.submitted(&queue, seq, result, now());
                self.start(effects);
            }
            Done::Polled(Ok(states)) => self.machine.polled(states, now()),
            Done::Polled(Err(e)) => self.machine.poll_failed(&e),
            Done::Cancelled { id, result: Ok(()) } => {
                debug!(allocation = %id, "allocation cancelled")
            }
            Done::Cancelled { id, result: Err(e) } => {
                warn!(allocation = %id, error = %e, "cancelling an allocation failed")
            }
        }
    }

    /// Cancels every live allocation (their workers would otherwise wait for a master that is
    /// gone until their idle timeout) and removes the token file.
    async fn stop(mut self) {
        self.running.abort_all();
        let Some(slurm) = self.slurm else { return };
        let ids = self.machine.live_ids();
        if !ids.is_empty() {
            let cancels = futures::future::join_all(ids.iter().map(|id| slurm.cancel(id)));
            if tokio::time::timeout(CANCEL_BOUND, cancels).await.is_err() {
                warn!(allocations = ?ids, "cancelling allocations at shutdown timed out");
            } else {
                debug!(allocations = ?ids, "allocations cancelled at shutdown");
            }
        }
        slurm.forget_token();
    }
}
