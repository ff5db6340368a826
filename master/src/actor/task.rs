//! The core's task itself: the loop that takes commands in drained batches, applies them to
//! the core, dispatches once per batch, and ticks.

use super::effects::{JobWatch, Session};
use super::{Cmd, Effects, LastHeard, Subscription, WorkerTx, BATCH, WATCH_BUFFER};
use crate::catalog::Catalog;
use crate::core::{Core, JobId, WorkerId, WorkerSpec};
use crate::error::Error;
use crate::tasks::Tasks;
use farm_proto::session::{ToWorker, Welcome};
use farm_proto::KernelDescriptor;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info};

/// The state of the core's task.
pub(super) struct CoreTask {
    /// The scheduler.
    core: Core,
    /// Sessions and watchers: where the core's effects go.
    fx: Effects,
    /// What the cluster offers; checks kinds and params at submit.
    catalog: Catalog,
    /// The heartbeat period: sent to workers in `Welcome`, and the tick's pace.
    heartbeat: Duration,
    /// The base of every [`LastHeard`] stamp.
    base: Instant,
    /// The longest batch so far (commands applied and one dispatch), measured with the real
    /// clock: nothing heavy may run on this task, and this is how we see that nothing does.
    slowest: Duration,
}

impl CoreTask {
    /// The task for `core` (no workers yet), its effects going to `fx`.
    pub(super) fn new(core: Core, fx: Effects, heartbeat: Duration, catalog: Catalog) -> Self {
        CoreTask { core, fx, catalog, heartbeat, base: Instant::now(), slowest: Duration::ZERO }
    }

    /// Applies commands in drained batches and ticks four times per heartbeat period, so a
    /// silent worker is found soon after its timeout; heartbeats to workers go out once per
    /// period. A tick that is due runs after the batch at hand, so a flood of commands cannot
    /// starve it; heartbeats from workers need no command, so none waits behind the tick.
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Cmd>, tasks: Tasks) {
        let tick_every = self.heartbeat / 4;
        let mut next_tick = Instant::now() + tick_every;
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                biased;
                _ = tasks.stopped() => break,
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.batch(cmd, &mut rx),
                    None => break,
                },
                _ = tokio::time::sleep_until(next_tick) => {}
            }
            let now = Instant::now();
            if now >= next_tick {
                next_tick = now + tick_every;
                ticks += 1;
                self.tick(now, ticks.is_multiple_of(4));
            }
        }
        for (_, s) in self.fx.sessions.drain() {
            s.tx.close(Error::ShuttingDown);
        }
        self.fx.flush_journal();
        debug!("core task stopped");
    }

    /// Applies `first` and whatever else is queued (up to [`BATCH`]), then dispatches once.
    /// Logs (at debug) each batch that is the slowest so far.
    fn batch(&mut self, first: Cmd, rx: &mut mpsc::Receiver<Cmd>) {
        let started = std::time::Instant::now();
        let now = Instant::now();
        self.apply(first, now);
        let mut commands = 1;
        for _ in 1..BATCH {
            match rx.try_recv() {
                Ok(cmd) => self.apply(cmd, now),
                Err(_) => break,
            }
            commands += 1;
        }
        self.core.dispatch(now.into_std(), &mut self.fx);
        self.drop_fallen_behind(now);
        self.fx.flush_journal();
        let took = started.elapsed();
        self.fx.tally.metrics().core_batch.observe(took.as_secs_f64());
        if took > self.slowest {
            self.slowest = took;
            let batch_us = took.as_micros() as u64;
            debug!(batch_us, commands, "slowest core batch so far");
        }
    }

    /// Brings each worker's last-heard time into the core, declares the silent ones lost (their
    /// shards go elsewhere), and sends heartbeats if `beat`.
    fn tick(&mut self, now: Instant, beat: bool) {
        for (id, s) in &self.fx.sessions {
            self.core.heartbeat(*id, s.heard.at().into_std());
        }
        self.core.tick(now.into_std(), &mut self.fx);
        for lost in self.fx.lost.drain(..) {
            self.catalog.left(lost);
        }
        if beat {
            let ids: Vec<WorkerId> = self.fx.sessions.keys().copied().collect();
            ids.into_iter().for_each(|id| self.fx.send(id, ToWorker::Heartbeat));
        }
        self.core.dispatch(now.into_std(), &mut self.fx);
        self.drop_fallen_behind(now);
        self.fx.flush_journal();
    }

    /// Drops, as lost, the sessions whose queue went over its byte bound (their shards go
    /// elsewhere, which may in turn find another behind), then dispatches again.
    fn drop_fallen_behind(&mut self, now: Instant) {
        while !self.fx.fell_behind.is_empty() {
            for (worker, why) in std::mem::take(&mut self.fx.fell_behind) {
                self.left(worker, why, now.into_std());
            }
            self.core.dispatch(now.into_std(), &mut self.fx);
        }
    }

    /// Registers a worker session: the welcome goes out before anything the core sends it.
    fn join(
        &mut self,
        spec: WorkerSpec,
        kernels: Vec<KernelDescriptor>,
        tx: WorkerTx,
        now: Instant,
    ) -> (WorkerId, LastHeard) {
        let (name, threads) = (spec.name.clone(), spec.threads);
        let id = self.core.next_worker_id();
        let welcome = ToWorker::Welcome(Welcome { worker_id: id, heartbeat: self.heartbeat });
        // The queue is new and empty: the welcome always fits.
        let _ = tx.send(welcome.into());
        let heard = LastHeard::new(self.base);
        self.fx.sessions.insert(id, Session { tx, heard: heard.clone() });
        let joined = self.core.worker_joined(spec, now.into_std(), &mut self.fx);
        debug_assert_eq!(joined, id);
        self.catalog.joined(id, kernels);
        self.fx.tally.metrics().workers_joined.inc();
        info!(worker = id, %name, threads, "worker joined");
        (id, heard)
    }
    /// Applies one command to the core; replies go out at once, assignments at the dispatch
    /// that ends the batch.
    fn apply(&mut self, cmd: Cmd, now: Instant) {
        let (core, fx) = (&mut self.core, &mut self.fx);
        let now_std = now.into_std();
        match cmd {
            Cmd::Submit(sub, owner, shape, reply) => {
                let (shards, bytes, kind) = (sub.shards(), sub.bytes(), sub.spec().kind.clone());
                let result = self
                    .catalog
                    .check(sub.spec())
                    .map(|declared| shape.unwrap_or(declared))
                    .map_err(Error::from)
                    .and_then(|shape| Ok(core.submit(*sub, owner, shape, now_std, fx)?))
                    .map(|id| (id, shards, fx.journal_barrier()));
                if let Ok((id, ..)) = &result {
                    let (live_bytes, kept_bytes) = core.memory();
                    info!(job = id, %kind, shards, bytes, live_bytes, kept_bytes, "job submitted");
                }
                let _ = reply.send(result);
            }
            Cmd::Get(job, reply) => {
                let _ = reply.send(core.status(job, now_std));
            }
            Cmd::List(reply) => {
                let _ = reply.send(core.jobs(now_std));
            }
            Cmd::Cancel(job, reply) => {
                let _ = reply.send(core.cancel(job, now_std, fx).map_err(Error::from));
            }
            Cmd::Workers(reply) => {
                let _ = reply.send(core.workers(now_std));
            }
            Cmd::Watch(job, want_shards, replay, reply) => {
                let mut sub = self.watch(job, want_shards, now_std);
                if let Some(sub) = sub.as_mut().filter(|_| want_shards && replay) {
                    sub.replay = Some(self.fx.journal_snapshot());
                }
                let _ = reply.send(sub);
            }
            Cmd::Join(spec, kernels, tx, reply) => {
                let _ = reply.send(self.join(spec, kernels, tx, now));
            }
            Cmd::Refused(worker, job, reason) => {
                info!(worker, job, ?reason, "worker refused a job");
                core.job_refused(worker, job, &reason, now_std, fx);
            }
            Cmd::Kinds(reply) => {
                let _ = reply.send(self.catalog.list());
            }
            Cmd::Results(worker, results) => match core.batch(worker, results, now_std, fx) {
                Ok(0) => {}
                Ok(dropped) => {
                    debug!(worker, dropped, "dropped results for shards the worker does not hold")
                }
                Err(e) => debug!(worker, error = %e, "results from a worker that is gone"),
            },
            Cmd::Draining(worker) => {
                if core.drain(worker, false, now_std, fx).is_ok() {
                    info!(worker, "worker is draining");
                }
            }
            Cmd::Drain(worker, reply) => {
                let _ = reply.send(core.drain(worker, true, now_std, fx).map_err(Error::from));
            }
            Cmd::Demand(kinds, reply) => {
                let _ = reply.send(core.demand(&kinds));
            }
            Cmd::Overview(recent, reply) => {
                let _ = reply.send(core.overview(now_std, recent));
            }
            Cmd::Detail(job, limit, reply) => {
                let _ = reply.send(core.job_detail(job, now_std, limit));
            }
            Cmd::Left(worker, reason) => self.left(worker, &reason, now_std),
        }
    }

    /// A worker session ended: its shards go elsewhere; one that was not draining counts as
    /// lost.
    fn left(&mut self, worker: WorkerId, reason: &str, now: std::time::Instant) {
        if self.fx.sessions.remove(&worker).is_some() {
            info!(worker, ?reason, "worker left");
        }
        if self.core.worker_draining(worker) == Some(false) {
            self.fx.tally.metrics().workers_lost.inc();
        }
        self.core.worker_left(worker, reason, now, &mut self.fx);
        self.catalog.left(worker);
    }

    /// Subscribes to a job's status (and shard results if `want_shards`); `None` if there is
    /// no such job.
    fn watch(
        &mut self,
        job: JobId,
        want_shards: bool,
        now: std::time::Instant,
    ) -> Option<Subscription> {
        let view = self.core.status(job, now)?;
        let overflowed = Arc::new(AtomicBool::new(false));
        let (status, shards) = if view.state.is_final() {
            // Already over: a receiver holding the final status, its sender gone.
            (watch::channel(view).1, None)
        } else {
            let w = self
                .fx
                .watches
                .entry(job)
                .or_insert_with(|| JobWatch { status: watch::channel(view).0, shards: Vec::new() });
            let shards = want_shards.then(|| {
                let (tx, rx) = mpsc::channel(WATCH_BUFFER);
                w.shards.push((tx, overflowed.clone()));
                rx
            });
            (w.status.subscribe(), shards)
        };
        Some(Subscription { status, shards, overflowed, replay: None })
    }
}
