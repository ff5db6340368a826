//! The session as a sans-I/O state machine, the master core's pattern: no tokio, no I/O, no
//! clock reads. The driver feeds it [`Event`]s and calls [`Session::poll`] with the time; it
//! answers with [`Action`]s and says when it next needs polling ([`Session::next_wake`]).
//!
//! It owns the welcome timeout, heartbeats both ways, the count of shards in flight, result
//! batching and coalescing, refusing jobs whose params the kernel rejects, the drain and the
//! close handshake.

use super::batch::{self, Batch};
use super::fetch::Fetching;
use crate::pool::{JobEntry, Report};
use crate::registry::Registry;
use crate::sdk::{CancelFlag, ShardInput};
use farm_proto::session::{
    Assign, JobDef, ModuleBytes, ShardOutcome, ShardTask, ToMaster, ToWorker,
};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

mod jobs;

/// A peer that does not welcome the worker within this long is given up on (for a listening
/// worker, it would otherwise hold the worker for nothing).
pub(crate) const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a finished shard's result waits to travel with others while the worker has more
/// work queued than it is running, but not much: the master must hear soon to refill it.
pub(crate) const COALESCE: Duration = Duration::from_millis(1);
/// How long results wait while the shards queued here keep every thread busy for at least as
/// long. Fewer, larger messages leave more of the machine to the kernels; the master keeps
/// more than this much work queued on a worker (its queue target), so none runs dry waiting.
pub(crate) const COALESCE_MAX: Duration = Duration::from_millis(50);
/// How long the master gets to close its side after the worker closed its own, and how long a
/// drain may outlast its timeout while cancelled shards come back.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Heartbeat periods of silence after which the master is declared lost.
const SILENT_PERIODS: u32 = 3;
/// The shortest heartbeat period the worker accepts from a master.
const MIN_HEARTBEAT: Duration = Duration::from_millis(50);

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// The worker was asked to stop (and has drained).
    Shutdown,
    /// The connection to the master was lost; the reason says how.
    Lost(String),
    /// The master refused the worker before welcoming it, for a reason retrying cannot fix.
    Rejected(String),
}

/// What the session needs to know about the worker.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    /// Pool threads: results coalesce only while more shards are in flight than this.
    pub threads: usize,
    /// How long running shards may take to finish once a drain starts.
    pub drain_timeout: Duration,
    /// Drain and leave after no shard in flight for this long.
    pub idle_timeout: Option<Duration>,
    /// Drain and leave then (the allocation the worker runs in ends soon after).
    pub stop_at: Option<Instant>,
}

/// Something that happened, fed to [`Session::handle`].
pub(crate) enum Event {
    /// A message from the master.
    Master(ToWorker),
    /// A message from the master that did not convert: logged, and a sign of life.
    Garbled(String),
    /// A shard started or finished on the pool.
    Pool(Report),
    /// The worker was asked to stop: drain, then leave.
    Shutdown,
    /// The stream ended or failed (either direction); the reason says how.
    Closed(String),
    /// The master refused the session with a status retrying cannot fix.
    Rejected(String),
}

/// What the driver must do, in order.
#[derive(Debug)]
pub(crate) enum Action {
    /// Send a message to the master.
    Send(ToMaster),
    /// Hand a shard to the pool.
    Run(Task),
    /// Set a job's cancel flag: its queued and running shards stop.
    Cancel(CancelFlag),
    /// From now on the pool hands back shards instead of starting them.
    DrainPool,
    /// Close the worker's side of the stream (the close handshake).
    CloseSend,
    /// The session is over.
    End(End),
}

/// A shard for the pool, without the channel its reports go back on (the driver's).
pub(crate) struct Task {
    /// Its job.
    pub job_id: u64,
    /// Its index within the job.
    pub shard: u64,
    /// The prepared job, shared by all its shards.
    pub job: Arc<JobEntry>,
    /// Its indices and input line.
    pub input: ShardInput,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task").field("job_id", &self.job_id).field("shard", &self.shard).finish()
    }
}

/// Where the session is.
enum Phase {
    /// Registered, waiting for the welcome until `deadline`.
    Welcoming { deadline: Instant },
    /// Running shards.
    Running,
    /// Draining: no new shards start; running ones may finish until `cancel_at`, then are
    /// cancelled; the session closes once nothing is in flight, or at `give_up`.
    Draining { cancel_at: Instant, give_up: Instant, cancelled: bool },
    /// The worker closed its side; waiting until `deadline` for the master to close its own.
    Closing { deadline: Instant },
    /// Over; nothing more happens.
    Ended,
}

/// One session with a master, from registration to its end.
pub(crate) struct Session {
    /// The worker's threads and drain timeout.
    config: Config,
    /// Kernels, to prepare each job the master defines.
    registry: Registry,
    /// Where the session is.
    phase: Phase,
    /// Whether the master welcomed the worker (the dialer resets its backoff then).
    welcomed: bool,
    /// The heartbeat period the master asked for.
    heartbeat: Duration,
    /// When the next heartbeat is due.
    next_heartbeat: Instant,
    /// When the master was last heard from: silence for a few periods ends the session.
    last_heard: Instant,
    /// The jobs defined by the master and prepared, by id.
    jobs: HashMap<u64, Arc<JobEntry>>,
    /// Jobs refused (the kernel rejected their params): their tasks are dropped unreported.
    refused: HashSet<u64>,
    /// Jobs waiting for their module from the master, with their tasks.
    fetching: Fetching,
    /// Shards handed to the pool whose outcome has not come back.
    in_flight: usize,
    /// Reports not sent yet.
    batch: Batch,
    /// Since when no shard has been in flight (`None` while some are), for the idle timeout.
    idle_since: Option<Instant>,
    /// What a shard costs the pool, on average lately: with the queue's length, how long the
    /// threads stay busy without a refill.
    shard_cost: Duration,
}

impl Session {
    /// A session whose registration has just been queued at `now`.
    pub fn new(config: Config, registry: Registry, now: Instant) -> Self {
        Session {
            config,
            registry,
            phase: Phase::Welcoming { deadline: now + WELCOME_TIMEOUT },
            welcomed: false,
            heartbeat: MIN_HEARTBEAT,
            next_heartbeat: now,
            last_heard: now,
            jobs: HashMap::new(),
            refused: HashSet::new(),
            fetching: Fetching::default(),
            in_flight: 0,
            batch: Batch::default(),
            idle_since: Some(now),
            shard_cost: Duration::ZERO,
        }
    }

    /// Whether the master welcomed the worker.
    pub fn welcomed(&self) -> bool {
        self.welcomed
    }

    /// Takes in one event. Reports only fill the batch (unless it is full): the driver feeds
    /// every report that is ready, then calls [`Session::poll`], which decides to send.
    pub fn handle(&mut self, now: Instant, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match (&self.phase, event) {
            (Phase::Ended, _) => {}
            (Phase::Welcoming { .. }, event) => self.before_welcome(now, event, &mut out),
            (Phase::Closing { .. }, Event::Closed(_) | Event::Rejected(_)) => {
                self.end(End::Shutdown, &mut out)
            }
            (Phase::Closing { .. }, _) => {}
            (_, Event::Master(msg)) => {
                self.last_heard = now;
                self.message(now, msg, &mut out);
            }
            (_, Event::Garbled(why)) => {
                self.last_heard = now;
                warn!(error = %why, "unreadable message from the master ignored");
            }
            (_, Event::Pool(report)) => self.report(now, report, &mut out),
            (Phase::Running, Event::Shutdown) => self.start_drain(now, &mut out),
            (_, Event::Shutdown) => {}
            (_, Event::Closed(reason)) => self.lose(reason, &mut out),
            (_, Event::Rejected(why)) => self.lose(format!("stream error: {why}"), &mut out),
        }
        out
    }

    /// Does what is due at `now`: the welcome timeout, heartbeats, silence, the drain's steps,
    /// sending the batch, and the close handshake's bound.
    pub fn poll(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match self.phase {
            Phase::Ended => {}
            Phase::Welcoming { deadline } => {
                if now >= deadline {
                    self.end(End::Lost("no welcome from the master in time".into()), &mut out);
                }
            }
            Phase::Closing { deadline } => {
                if now >= deadline {
                    warn!("master did not close the session in time");
                    self.end(End::Shutdown, &mut out);
                }
            }
            Phase::Running | Phase::Draining { .. } => self.poll_running(now, &mut out),
        }
        out
    }

    /// When [`Session::poll`] next has something to do (`None` once the session is over).
    pub fn next_wake(&self) -> Option<Instant> {
        let running = |extra: Option<Instant>| {
            let silence = self.last_heard + self.heartbeat * SILENT_PERIODS;
            let coalesce = self.batch.opened().map(|at| at + self.hold());
            [Some(silence), Some(self.next_heartbeat), coalesce, extra].into_iter().flatten().min()
        };
        match self.phase {
            Phase::Welcoming { deadline } | Phase::Closing { deadline } => Some(deadline),
            Phase::Running => running(self.leave_at()),
            Phase::Draining { cancel_at, give_up, cancelled } => {
                running(Some(if cancelled { give_up } else { cancel_at }))
            }
            Phase::Ended => None,
        }
    }

    /// When the worker leaves on its own while running: the idle timeout or the stop time.
    fn leave_at(&self) -> Option<Instant> {
        let idle = self.idle_since.zip(self.config.idle_timeout).map(|(since, t)| since + t);
        [idle, self.config.stop_at].into_iter().flatten().min()
    }

    fn before_welcome(&mut self, now: Instant, event: Event, out: &mut Vec<Action>) {
        match event {
            Event::Master(ToWorker::Welcome(welcome)) => {
                self.welcomed = true;
                self.phase = Phase::Running;
                self.idle_since = Some(now);
                self.heartbeat = welcome.heartbeat.max(MIN_HEARTBEAT);
                self.last_heard = now;
                self.next_heartbeat = now + self.heartbeat;
                info!(worker = welcome.worker_id, threads = self.config.threads, "registered");
            }
            Event::Master(_) | Event::Garbled(_) => {
                self.end(End::Lost("master did not welcome the worker".into()), out)
            }
            Event::Shutdown => self.end(End::Shutdown, out),
            Event::Closed(reason) => self.end(End::Lost(reason), out),
            Event::Rejected(why) => self.end(End::Rejected(why), out),
            Event::Pool(_) => {}
        }
    }

    fn message(&mut self, now: Instant, msg: ToWorker, out: &mut Vec<Action>) {
        match msg {
            ToWorker::Assign(assign) => self.assign(now, assign, out),
            ToWorker::CancelJob(job_id) => {
                self.refused.remove(&job_id);
                self.fetching.drop_job(job_id);
                if let Some(job) = self.jobs.remove(&job_id) {
                    debug!(job = job_id, "job cancelled");
                    out.push(Action::Cancel(job.cancel.clone()));
                }
            }
            ToWorker::ForgetJob(job_id) => {
                self.refused.remove(&job_id);
                self.fetching.drop_job(job_id);
                self.jobs.remove(&job_id);
            }
            ToWorker::Module(module) => self.module(now, module, out),
            ToWorker::Drain if matches!(self.phase, Phase::Running) => self.start_drain(now, out),
            ToWorker::Drain | ToWorker::Heartbeat | ToWorker::Welcome(_) => {}
        }
    }

    fn report(&mut self, now: Instant, report: Report, out: &mut Vec<Action>) {
        match report {
            Report::Started { job_id, shard } => self.batch.started(now, job_id, shard),
            Report::Finished(mut finished) => {
                self.in_flight = self.in_flight.saturating_sub(1);
                if self.in_flight == 0 {
                    self.idle_since = Some(now);
                }
                let (job_id, shard) = (finished.job_id, finished.shard);
                if !finished.busy.is_zero() {
                    self.batch.cost(job_id, finished.busy);
                    // A moving average over about the last eight shards.
                    self.shard_cost = (self.shard_cost * 7 + finished.busy) / 8;
                }
                if let Some(run) = finished.run.take() {
                    self.batch.run(run);
                }
                self.batch.finished(now, job_id, shard, batch::outcome(finished));
            }
        }
        self.send_if_full(out);
    }

    fn send_if_full(&mut self, out: &mut Vec<Action>) {
        if self.batch.is_full() {
            out.push(Action::Send(ToMaster::Results(self.batch.take())));
        }
    }

    fn poll_running(&mut self, now: Instant, out: &mut Vec<Action>) {
        if now >= self.last_heard + self.heartbeat * SILENT_PERIODS {
            return self.lose("no heartbeat from the master".into(), out);
        }
        if now >= self.next_heartbeat {
            out.push(Action::Send(ToMaster::Heartbeat));
            self.next_heartbeat = now + self.heartbeat;
        }
        // While shards are still queued here beyond the running ones, the master is in no hurry
        // for this batch: wait for more to finish, so short shards cost fewer messages. A
        // worker about to run dry reports at once.
        let due = self.batch.opened().is_some_and(|at| now >= at + self.hold());
        if !self.batch.is_empty() && (due || self.in_flight <= self.config.threads) {
            out.push(Action::Send(ToMaster::Results(self.batch.take())));
        }
        if matches!(self.phase, Phase::Running) && self.leave_at().is_some_and(|at| now >= at) {
            match self.idle_since.filter(|_| self.config.stop_at.is_none_or(|s| now < s)) {
                Some(since) => info!(idle_ms = (now - since).as_millis() as u64, "idle, leaving"),
                None => info!("the allocation ends soon: taking no more shards"),
            }
            self.start_drain(now, out);
        }
        if let Phase::Draining { cancel_at, give_up, cancelled } = &mut self.phase {
            if !*cancelled && now >= *cancel_at {
                warn!("drain timeout: cancelling running shards, the master runs them elsewhere");
                *cancelled = true;
                out.extend(self.jobs.values().map(|job| Action::Cancel(job.cancel.clone())));
            }
            let empty = self.in_flight == 0 && self.batch.is_empty();
            if empty || now >= *give_up {
                info!(in_flight = self.in_flight, "drained, leaving");
                self.close(now, out);
            }
        }
    }

    /// How long the open batch may wait for more reports: [`COALESCE_MAX`] while the shards
    /// queued beyond the running ones keep every thread busy at least that long (at or above
    /// the low-water mark, the one place that rule is computed), else [`COALESCE`]. (With
    /// nothing queued, `poll_running` sends at once.)
    fn hold(&self) -> Duration {
        let queued = self.in_flight.saturating_sub(self.config.threads.max(1));
        if queued >= self.low_water() {
            COALESCE_MAX
        } else {
            COALESCE
        }
    }

    /// Whether reports wait in a batch (the session's timer is set to send it).
    pub fn batch_open(&self) -> bool {
        !self.batch.is_empty()
    }

    /// With this many shards or fewer queued in the pool, the session wants to hear of every
    /// report at once: below it, the queue no longer keeps each thread busy for
    /// [`COALESCE_MAX`], so the master must be told soon. Before any cost is known, always.
    pub fn low_water(&self) -> usize {
        let cost = self.shard_cost.as_nanos();
        if cost == 0 {
            return usize::MAX;
        }
        let busy = COALESCE_MAX.as_nanos() * self.config.threads.max(1) as u128;
        usize::try_from(busy.div_ceil(cost)).unwrap_or(usize::MAX)
    }

    fn start_drain(&mut self, now: Instant, out: &mut Vec<Action>) {
        let timeout = self.config.drain_timeout;
        info!(
            timeout_ms = timeout.as_millis() as u64,
            "draining: finishing running shards, handing back the rest"
        );
        out.push(Action::DrainPool);
        out.push(Action::Send(ToMaster::Draining));
        // Shards held for a module never started: they go back like queued ones.
        for task in self.fetching.take_all() {
            self.batch.finished(now, task.job_id, task.shard, ShardOutcome::Cancelled);
        }
        let cancel_at = now + timeout;
        let give_up = cancel_at + CLOSE_TIMEOUT;
        self.phase = Phase::Draining { cancel_at, give_up, cancelled: false };
    }

    /// Starts the close handshake: the worker closes its side, and the master closes its own
    /// only after taking in every result sent, so none is lost with the process.
    fn close(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.cancel_all(out);
        out.push(Action::CloseSend);
        self.phase = Phase::Closing { deadline: now + CLOSE_TIMEOUT };
    }

    /// The stream is gone. A worker that started draining leaves all the same: it was asked to
    /// stop (and the shutdown signal it may have come from has fired, never to fire again).
    fn lose(&mut self, reason: String, out: &mut Vec<Action>) {
        if matches!(self.phase, Phase::Draining { .. }) {
            warn!(%reason, "session lost while draining, leaving");
            self.end(End::Shutdown, out);
        } else {
            self.end(End::Lost(reason), out);
        }
    }

    fn end(&mut self, end: End, out: &mut Vec<Action>) {
        self.cancel_all(out);
        self.phase = Phase::Ended;
        out.push(Action::End(end));
    }

    fn cancel_all(&mut self, out: &mut Vec<Action>) {
        out.extend(self.jobs.drain().map(|(_, job)| Action::Cancel(job.cancel.clone())));
        self.refused.clear();
        self.fetching.take_all();
    }
}
