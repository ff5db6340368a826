//! The dashboard's live feed: once a second, while at least one browser listens, one overview
//! from the core's task becomes one JSON frame (jobs with rate and ETA, workers with rate and
//! busy threads, totals, the throughput history), shared by every browser through a watch
//! channel. The throughput history samples the shards-done counter every second whether or not
//! anyone listens (an atomic load, no command to the core), so a page opened late still shows
//! the last minutes.

use crate::actor::CoreHandle;
use crate::core::{JobId, JobRow, Overview, WorkerId, WorkerRow};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tonic::Status;

/// How often the feed samples and, while someone listens, sends a frame.
const TICK: Duration = Duration::from_secs(1);
/// Throughput samples kept: ten minutes at one a second.
const HISTORY: usize = 600;
/// Ended jobs shown besides the ones still going.
const RECENT: usize = 20;
/// Most jobs in a frame (the oldest still going first), so a frame stays small.
const MAX_JOBS: usize = 300;

/// The feed: the latest frame and what rates are computed from.
pub(super) struct Feed {
    /// The core's task.
    core: CoreHandle,
    /// The latest frame, as JSON; browsers subscribe.
    latest: watch::Sender<Arc<str>>,
    /// The previous frame's counts and the throughput history.
    rates: Mutex<Rates>,
}

/// What rates are computed from.
#[derive(Default)]
struct Rates {
    /// When the previous frame was built.
    last: Option<Instant>,
    /// Per job: shards done at the previous frame, and the smoothed rate.
    jobs: HashMap<JobId, (u64, f64)>,
    /// Per worker: shards done at the previous frame, and the smoothed rate.
    workers: HashMap<WorkerId, (u64, f64)>,
    /// (unix ms, shards/s) samples, oldest first.
    history: VecDeque<(u64, f64)>,
    /// The previous sample of the shards-done counter.
    sampled: Option<(Instant, u64)>,
}

/// One frame of the dashboard.
#[derive(Serialize)]
struct Frame<'a> {
    /// When it was built (unix ms).
    now_ms: u64,
    /// Jobs not yet ended, then the latest ended.
    jobs: Vec<JobOut<'a>>,
    /// Connected workers.
    workers: Vec<WorkerOut<'a>>,
    /// Every job the master holds, counted by state.
    states: HashMap<&'static str, u64>,
    /// The cluster in numbers.
    totals: Totals,
    /// (unix ms, shards/s) samples, oldest first.
    throughput: &'a VecDeque<(u64, f64)>,
}

/// The cluster in numbers.
#[derive(Serialize)]
struct Totals {
    /// Threads of connected workers.
    threads: u64,
    /// Threads with a shard to run.
    busy: u64,
    /// Shards waiting to be handed out.
    queued: u64,
    /// Shards held by workers.
    running: u64,
    /// Shards done since the master started.
    done: u64,
    /// Bytes jobs not yet ended hold.
    live_bytes: usize,
    /// Bytes ended jobs keep.
    kept_bytes: usize,
}

/// A job as the page shows it.
#[derive(Serialize)]
pub(super) struct JobOut<'a> {
    /// Its id.
    id: u64,
    /// Its kernel.
    kind: &'a str,
    /// Its state, as the CLI prints it.
    state: &'static str,
    /// Shards in all.
    total: u64,
    /// Shards done.
    done: u64,
    /// Shards held by workers.
    running: u64,
    /// Shards waiting to be handed out.
    queued: u64,
    /// Shards handed out again.
    reruns: u64,
    /// Its priority.
    priority: i32,
    /// Since submission, until it ended.
    elapsed_ms: u64,
    /// Why it failed or was cancelled.
    error: Option<&'a str>,
    /// Shards per second, smoothed.
    rate: f64,
    /// Seconds left at that rate, while it runs.
    eta_s: Option<f64>,
}

/// A worker as the page shows it.
#[derive(Serialize)]
struct WorkerOut<'a> {
    /// Its session id.
    id: u64,
    /// Its name.
    name: &'a str,
    /// The host it runs on.
    hostname: &'a str,
    /// Its process id there.
    pid: u32,
    /// Its peer address as the master sees it.
    address: &'a str,
    /// Which side opened the session: "worker" or "master".
    dialed_by: &'a str,
    /// Its threads.
    threads: u32,
    /// Threads with a shard to run.
    busy: u64,
    /// Shards it holds.
    running: u64,
    /// Shards it completed.
    done: u64,
    /// Shards per second, smoothed.
    rate: f64,
    /// Milliseconds since it was last heard from.
    heard_ms: u64,
    /// Seconds since it joined.
    connected_secs: u64,
    /// It takes no new shards.
    draining: bool,
    /// Why it gets no new shards although connected.
    suspect: Option<&'a str>,
}

impl<'a> JobOut<'a> {
    /// A job's row with its rate (shards per second).
    pub(super) fn new(j: &'a JobRow, rate: f64) -> Self {
        let v = &j.view;
        let left = v.total.saturating_sub(v.done);
        let eta_s = (!v.state.is_final() && rate > 0.0).then(|| left as f64 / rate);
        JobOut {
            id: v.id,
            kind: &v.kind,
            state: v.state.as_str(),
            total: v.total,
            done: v.done,
            running: v.in_flight,
            queued: j.queued,
            reruns: v.reruns,
            priority: v.priority,
            elapsed_ms: v.elapsed_ms,
            error: v.error.as_deref(),
            rate,
            eta_s,
        }
    }
}

/// A rate from the previous count, smoothed; without one, the average since `since_ms`.
fn rate(prev: Option<(u64, f64)>, done: u64, dt: Option<f64>, since_ms: u64) -> f64 {
    match (prev, dt) {
        (Some((before, smoothed)), Some(dt)) if dt > 0.0 => {
            let now = done.saturating_sub(before) as f64 / dt;
            0.5 * smoothed + 0.5 * now
        }
        _ if since_ms > 0 => done as f64 * 1000.0 / since_ms as f64,
        _ => 0.0,
    }
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Feed {
    /// A feed of `core`, with no frame yet.
    pub(super) fn new(core: CoreHandle) -> Self {
        Feed { core, latest: watch::channel(Arc::from("{}")).0, rates: Mutex::default() }
    }

    /// A receiver of frames, for one browser.
    pub(super) fn subscribe(&self) -> watch::Receiver<Arc<str>> {
        self.latest.subscribe()
    }

    /// Samples throughput every second and, while browsers listen, sends them a frame; ends at
    /// shutdown.
    pub(super) async fn run(self: Arc<Self>) {
        let tasks = self.core.tasks().clone();
        let mut every = tokio::time::interval(TICK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tasks.stopped() => return,
                _ = every.tick() => {}
            }
            self.sample();
            if self.latest.receiver_count() > 0 && self.refresh().await.is_err() {
                return;
            }
        }
    }

    /// Adds a throughput sample from the shards-done counter.
    fn sample(&self) {
        let done = self.core.metrics().done.get();
        let now = Instant::now();
        let mut r = self.rates.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, before)) = r.sampled {
            let dt = now.duration_since(at).as_secs_f64();
            if dt > 0.0 {
                let per_sec = done.saturating_sub(before) as f64 / dt;
                r.history.push_back((unix_ms(), (per_sec * 10.0).round() / 10.0));
                if r.history.len() > HISTORY {
                    r.history.pop_front();
                }
            }
        }
        r.sampled = Some((now, done));
    }

    /// Builds a frame from a fresh overview, sends it to every browser and returns it.
    pub(super) async fn refresh(&self) -> Result<Arc<str>, Status> {
        let overview = self.core.overview(RECENT).await?;
        let frame: Arc<str> = self.frame(&overview).into();
        self.latest.send_replace(frame.clone());
        Ok(frame)
    }

    /// The frame of `o`, updating the rates.
    fn frame(&self, o: &Overview) -> String {
        let now = Instant::now();
        let mut guard = self.rates.lock().unwrap_or_else(PoisonError::into_inner);
        let r = &mut *guard;
        let dt = r.last.map(|at| now.duration_since(at).as_secs_f64());
        r.last = Some(now);
        let mut jobs_seen = HashMap::with_capacity(o.jobs.len());
        let jobs: Vec<JobOut> = o
            .jobs
            .iter()
            .take(MAX_JOBS)
            .map(|j| {
                let v = &j.view;
                // An ended job's rate is its average; a going one's, smoothed over frames.
                let prev = r.jobs.get(&v.id).copied().filter(|_| !v.state.is_final());
                let rate = rate(prev, v.done, dt, v.elapsed_ms);
                jobs_seen.insert(v.id, (v.done, rate));
                JobOut::new(j, (rate * 10.0).round() / 10.0)
            })
            .collect();
        r.jobs = jobs_seen;
        let mut workers_seen = HashMap::with_capacity(o.workers.len());
        let workers: Vec<WorkerOut> = o
            .workers
            .iter()
            .map(|w| {
                let rate = rate(r.workers.get(&w.view.id).copied(), w.view.done, dt, 0);
                workers_seen.insert(w.view.id, (w.view.done, rate));
                worker_out(w, (rate * 10.0).round() / 10.0)
            })
            .collect();
        r.workers = workers_seen;
        let states = ["queued", "running", "succeeded", "failed", "cancelled"]
            .into_iter()
            .zip(o.states)
            .collect();
        let totals = Totals {
            threads: o.workers.iter().map(|w| u64::from(w.view.spec.threads)).sum(),
            busy: o.workers.iter().map(WorkerRow::busy).sum(),
            queued: o.jobs.iter().map(|j| j.queued).sum(),
            running: o.workers.iter().map(|w| w.view.in_flight).sum(),
            done: self.core.metrics().done.get(),
            live_bytes: o.live_bytes,
            kept_bytes: o.kept_bytes,
        };
        let frame =
            Frame { now_ms: unix_ms(), jobs, workers, states, totals, throughput: &r.history };
        serde_json::to_string(&frame).unwrap_or_else(|_| "{}".into())
    }
}

fn worker_out(w: &WorkerRow, rate: f64) -> WorkerOut<'_> {
    let v = &w.view;
    WorkerOut {
        id: v.id,
        name: &v.spec.name,
        hostname: &v.spec.hostname,
        pid: v.spec.pid,
        address: &v.spec.address,
        dialed_by: &v.spec.dialed_by,
        threads: v.spec.threads,
        busy: w.busy(),
        running: v.in_flight,
        done: v.done,
        rate,
        heard_ms: w.heard_ms,
        connected_secs: v.connected_secs,
        draining: v.draining,
        suspect: v.suspect.as_deref(),
    }
}

#[cfg(test)]
mod tests {
    use super::rate;

    #[test]
    fn rates_are_smoothed_over_frames_and_averaged_without_one() {
        // No previous frame: the average since submission.
        assert_eq!(rate(None, 500, Some(1.0), 2000), 250.0);
        assert_eq!(rate(None, 0, None, 0), 0.0);
        // 100 more in 1 s, smoothed with the previous 50/s.
        assert_eq!(rate(Some((400, 50.0)), 500, Some(1.0), 9000), 75.0);
        // A count that went backwards (a restored job) is no negative rate.
        assert_eq!(rate(Some((600, 10.0)), 500, Some(1.0), 9000), 5.0);
    }
}
