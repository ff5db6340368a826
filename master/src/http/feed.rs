//! The dashboard's live feed: once a second, while at least one browser listens, one overview
//! from the core's task becomes one JSON frame (jobs with rate and ETA, workers with rate and
//! busy threads, totals, the throughput history), shared by every browser through a watch
//! channel. The throughput history samples the shards-done counter every second whether or not
//! anyone listens (an atomic load, no command to the core), so a page opened late still shows
//! the last minutes. Jobs are listed newest first; rates are shards done over the last few
//! seconds of frames ([`Window`]), the average until a window spans long enough.

use crate::access::Principal;
use crate::actor::CoreHandle;
use crate::clock::unix_ms;
use crate::core::{JobId, JobRow, Overview, WorkerId, WorkerRow};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the feed samples and, while someone listens, sends a frame.
const TICK: Duration = Duration::from_secs(1);
/// Throughput samples kept: ten minutes at one a second.
const HISTORY: usize = 600;
/// Ended jobs shown besides the ones still going.
const RECENT: usize = 20;
/// Most jobs in a frame (the newest first), so a frame stays small.
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
    /// Per job still going: its recent counts of shards done.
    jobs: HashMap<JobId, Window>,
    /// Per worker: its recent counts of shards done.
    workers: HashMap<WorkerId, Window>,
    /// (unix ms, shards/s) samples, oldest first.
    history: VecDeque<(u64, f64)>,
    /// The previous sample of the shards-done counter.
    sampled: Option<(Instant, u64)>,
}

/// The span a rate is measured over: long enough to smooth shards that end in bursts, short
/// enough that a worker that stops shows 0 within it.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// The shortest span a rate is measured over (frames built closer together, for a browser
/// that just connected, measure from an earlier one).
const MIN_SPAN: Duration = Duration::from_millis(500);
/// Frames closer together than this add no sample, so a window holds a bounded number.
const SAMPLE_GAP: Duration = Duration::from_millis(200);

/// Recent (when, shards done) samples of one job or worker, oldest first, spanning about
/// [`RATE_WINDOW`].
#[derive(Default)]
struct Window(VecDeque<(Instant, u64)>);

impl Window {
    /// Notes `done` at `now`; the rate since the oldest sample, in shards per second, or
    /// `None` while there is no sample at least [`MIN_SPAN`] old.
    fn rate(&mut self, now: Instant, done: u64) -> Option<f64> {
        while self.0.len() > 1 && now.saturating_duration_since(self.0[1].0) >= RATE_WINDOW {
            self.0.pop_front();
        }
        let rate = self.0.front().and_then(|&(at, before)| {
            let span = now.saturating_duration_since(at);
            (span >= MIN_SPAN).then(|| done.saturating_sub(before) as f64 / span.as_secs_f64())
        });
        if self.0.back().is_none_or(|&(at, _)| now.saturating_duration_since(at) >= SAMPLE_GAP) {
            self.0.push_back((now, done));
        }
        rate
    }
}

/// `frame` as `who` may see it: whole for a principal that sees every job; otherwise with
/// only its own jobs. Frames hold at most [`MAX_JOBS`] jobs, so the filter is small work.
pub(super) fn seen_by(frame: &Arc<str>, who: &Principal) -> Arc<str> {
    if who.sees_all() {
        return frame.clone();
    }
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(frame) else {
        return "{}".into();
    };
    if let Some(jobs) = value.get_mut("jobs").and_then(|j| j.as_array_mut()) {
        jobs.retain(|j| j.get("owner").and_then(|o| o.as_str()) == Some(&*who.name));
    }
    value.to_string().into()
}

/// One frame of the dashboard.
#[derive(Serialize)]
struct Frame<'a> {
    /// When it was built (unix ms).
    now_ms: u64,
    /// Jobs not yet ended and the latest ended, newest first.
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
    /// The principal that submitted it.
    owner: &'a str,
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
    /// Shards per second over the last few seconds (an ended job's: its average).
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
    /// Shards per second over the last few seconds.
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
            owner: &v.owner,
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

/// The average rate of `done` shards over `ms` milliseconds (0 without time).
pub(super) fn average(done: u64, ms: u64) -> f64 {
    if ms == 0 {
        return 0.0;
    }
    done as f64 * 1000.0 / ms as f64
}

/// A rate rounded to a tenth, as the page shows it.
pub(super) fn tenth(rate: f64) -> f64 {
    (rate * 10.0).round() / 10.0
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
                r.history.push_back((unix_ms(), tenth(per_sec)));
                if r.history.len() > HISTORY {
                    r.history.pop_front();
                }
            }
        }
        r.sampled = Some((now, done));
    }

    /// Builds a frame from a fresh overview, sends it to every browser and returns it.
    pub(super) async fn refresh(&self) -> crate::Result<Arc<str>> {
        let overview = self.core.overview(RECENT).await?;
        let frame: Arc<str> = self.frame(&overview).into();
        self.latest.send_replace(frame.clone());
        Ok(frame)
    }

    /// The frame of `o`, updating the rates. Jobs come newest first (by id, so a job keeps
    /// its place whatever happens to the others).
    fn frame(&self, o: &Overview) -> String {
        let now = Instant::now();
        let mut guard = self.rates.lock().unwrap_or_else(PoisonError::into_inner);
        let r = &mut *guard;
        let mut rows: Vec<&JobRow> = o.jobs.iter().collect();
        rows.sort_unstable_by_key(|j| std::cmp::Reverse(j.view.id));
        let mut jobs_seen = HashMap::with_capacity(o.jobs.len());
        let jobs: Vec<JobOut> = rows
            .into_iter()
            .take(MAX_JOBS)
            .map(|j| {
                let v = &j.view;
                // An ended job's rate is its average; a going one's, over the recent window
                // (the average until it has one).
                let rate = if v.state.is_final() {
                    average(v.done, v.elapsed_ms)
                } else {
                    let mut window = r.jobs.remove(&v.id).unwrap_or_default();
                    let rate = window.rate(now, v.done);
                    jobs_seen.insert(v.id, window);
                    rate.unwrap_or_else(|| average(v.done, v.elapsed_ms))
                };
                JobOut::new(j, tenth(rate))
            })
            .collect();
        r.jobs = jobs_seen;
        let mut workers_seen = HashMap::with_capacity(o.workers.len());
        let workers: Vec<WorkerOut> = o
            .workers
            .iter()
            .map(|w| {
                let v = &w.view;
                let mut window = r.workers.remove(&v.id).unwrap_or_default();
                // Until the window spans long enough, the average since it connected.
                let since_ms = v.connected_secs.max(1) * 1000;
                let rate = window.rate(now, v.done).unwrap_or_else(|| average(v.done, since_ms));
                workers_seen.insert(v.id, window);
                worker_out(w, tenth(rate))
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
    use super::*;

    #[test]
    fn a_rate_is_measured_over_the_recent_window() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut w = Window::default();
        // No earlier sample, or one too recent: no rate yet (the caller averages).
        assert_eq!(w.rate(at(0), 100), None);
        assert_eq!(w.rate(at(100), 110), None);
        // A busy worker shows its rate from the second frame on.
        assert_eq!(w.rate(at(1000), 150), Some(50.0));
        for s in 2..=5 {
            w.rate(at(s * 1000), 100 + 50 * s);
        }
        assert_eq!(w.rate(at(6000), 400), Some(50.0));
        // Stopped: the rate falls to 0 once the window has passed, not after a slow decay.
        w.rate(at(8000), 400);
        assert_eq!(w.rate(at(11_000), 400), Some(0.0));
        // A count that went backwards (a restored job) is no negative rate.
        assert_eq!(w.rate(at(12_000), 10), Some(0.0));
    }

    #[test]
    fn frames_close_together_keep_the_window_bounded() {
        let t0 = Instant::now();
        let mut w = Window::default();
        for ms in 0..10_000 {
            w.rate(t0 + Duration::from_millis(ms), ms);
        }
        assert!(w.0.len() <= 27, "{}", w.0.len());
        let rate = w.rate(t0 + Duration::from_millis(10_000), 10_000).expect("a rate");
        assert!((rate - 1000.0).abs() < 1.0, "{rate}");
    }

    #[test]
    fn averages_need_time() {
        assert_eq!(average(500, 2000), 250.0);
        assert_eq!(average(5, 0), 0.0);
        assert_eq!(tenth(92.6694), 92.7);
    }
}
