//! What the dashboard and the metrics read of the core at one moment: the jobs not yet ended
//! and the latest ended ones, job counts by state, the workers with when each was last heard,
//! and one job's troubled shards. Built on the core's task in one pass, so one overview serves
//! every browser and every scrape of that moment.

use super::job::Job;
use super::worker::worker_view;
use super::{served, Core, JobId, JobState, JobView, WorkerId, WorkerView};
use std::time::Instant;

/// The core at one moment, as the dashboard and `/metrics` see it.
#[derive(Debug, Clone, Default)]
pub struct Overview {
    /// Jobs not yet ended (oldest first), then up to the asked number of ended ones (latest
    /// ended first).
    pub jobs: Vec<JobRow>,
    /// Every job the master holds, counted by state: queued, running, succeeded, failed,
    /// cancelled.
    pub states: [u64; 5],
    /// The connected workers.
    pub workers: Vec<WorkerRow>,
    /// Bytes jobs not yet ended hold.
    pub live_bytes: usize,
    /// Bytes ended jobs keep.
    pub kept_bytes: usize,
}

/// A job and its queue.
#[derive(Debug, Clone)]
pub struct JobRow {
    /// Its status.
    pub view: JobView,
    /// Shards waiting to be handed out.
    pub queued: u64,
}

/// A worker and when it was last heard from.
#[derive(Debug, Clone)]
pub struct WorkerRow {
    /// Its status.
    pub view: WorkerView,
    /// Milliseconds since the core last noted a message from it (updated on results and at
    /// every tick, so up to a quarter heartbeat period late).
    pub heard_ms: u64,
}

impl WorkerRow {
    /// Threads with a shard to run: its threads, or fewer if it holds fewer shards.
    pub fn busy(&self) -> u64 {
        self.view.in_flight.min(u64::from(self.view.spec.threads))
    }
}

/// A shard of a job still going that failed or whose worker was lost while running it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardTrouble {
    /// The shard.
    pub shard: u64,
    /// Its indices, `lo..hi`.
    pub lo: u64,
    /// The end of its indices (exclusive).
    pub hi: u64,
    /// Failed runs.
    pub failures: u32,
    /// Workers lost (or that held it too long) while it was running on them.
    pub crashes: u32,
}

/// One job in detail: its status, queue and troubled shards.
#[derive(Debug, Clone)]
pub struct JobDetail {
    /// Its status and queue.
    pub row: JobRow,
    /// Its troubled shards, by shard number, at most the number asked for (a job still going;
    /// an ended job keeps only its error, which names the shard that failed it).
    pub troubles: Vec<ShardTrouble>,
    /// How many shards are troubled in all.
    pub troubled: usize,
}

impl Core {
    /// The core now: jobs not yet ended, the `recent` latest ended ones, counts, workers.
    pub fn overview(&self, now: Instant, recent: usize) -> Overview {
        let mut o = Overview::default();
        for job in self.jobs.values() {
            o.states[state_index(job.state)] += 1;
            if !job.state.is_final() {
                o.jobs.push(JobRow { view: view(job, now), queued: job.pending() });
            }
        }
        for id in self.ended.iter().rev().take(recent) {
            if let Some(job) = self.jobs.get(id) {
                o.jobs.push(JobRow { view: view(job, now), queued: 0 });
            }
        }
        o.workers = self
            .workers
            .iter()
            .map(|(id, w)| WorkerRow {
                view: worker_view(*id, w, now),
                heard_ms: now.saturating_duration_since(w.last_seen).as_millis() as u64,
            })
            .collect();
        (o.live_bytes, o.kept_bytes) = self.memory();
        o
    }

    /// One job in detail, with at most `limit` troubled shards; `None` if there is no such job.
    pub fn job_detail(&self, job: JobId, now: Instant, limit: usize) -> Option<JobDetail> {
        let j = self.jobs.get(&job)?;
        let mut shards: Vec<u64> = j.failures.keys().chain(j.crashes.keys()).copied().collect();
        shards.sort_unstable();
        shards.dedup();
        let troubled = shards.len();
        let troubles = shards
            .into_iter()
            .take(limit)
            .map(|shard| {
                let (lo, hi, _) = j.spec.source.shard(shard);
                ShardTrouble {
                    shard,
                    lo,
                    hi,
                    failures: j.failures.get(&shard).copied().unwrap_or(0),
                    crashes: j.crashes.get(&shard).copied().unwrap_or(0),
                }
            })
            .collect();
        let queued = if j.state.is_final() { 0 } else { j.pending() };
        Some(JobDetail { row: JobRow { view: view(j, now), queued }, troubles, troubled })
    }

    /// Whether worker `id` is connected and draining (`None`: not connected).
    pub fn worker_draining(&self, id: WorkerId) -> Option<bool> {
        self.workers.get(&id).map(|w| w.draining)
    }
}

/// The index of a state in [`Overview::states`].
pub fn state_index(state: JobState) -> usize {
    match state {
        JobState::Queued => 0,
        JobState::Running => 1,
        JobState::Succeeded => 2,
        JobState::Failed => 3,
        JobState::Cancelled => 4,
    }
}

/// One job's status as clients see it.
pub(super) fn view(job: &Job, now: Instant) -> JobView {
    JobView {
        id: job.id,
        kind: job.spec.kind.clone(),
        state: job.state,
        total: job.total,
        done: job.done,
        in_flight: job.assigned.len() as u64,
        result_json: job.result_json.clone(),
        result_in_store: job.result_in_store,
        error: job.error.clone(),
        elapsed_ms: job.elapsed_ms(now),
        age_ms: job.age_ms(now),
        priority: job.spec.priority,
        reruns: job.reruns,
        waiting: served::waiting(job, now),
        output: job.output,
        owner: job.owner.name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::recording::{take, Recording};
    use crate::core::{CoreConfig, Counted, ShardOutcome, WorkerSpec};
    use farm_proto::{JobSource, JobSpec, Output, OutputShape, Params};

    #[test]
    fn the_overview_and_the_counts_follow_shards_through_failure_loss_and_cancel() {
        let now = Instant::now();
        let (mut core, mut out) = (Core::new(CoreConfig::default()), Recording::default());
        let source = JobSource::Range { start: 0, end: 10, shard_size: 1 };
        let mut spec = JobSpec::new("noop", source, Params::default(), 0).expect("spec");
        spec.limits.retries = 2;
        let job = core
            .submit(spec, crate::core::Owner::anonymous(), OutputShape::Count, now, &mut out)
            .expect("submit");
        let kinds = vec!["noop".to_string()];
        let w = core.worker_joined(
            WorkerSpec { threads: 2, kinds, ..Default::default() },
            now,
            &mut out,
        );
        core.dispatch(now, &mut out);
        let assigned = out.shards(w);
        let held = assigned.len() as u64;
        assert!(held >= 2, "{:?}", assigned);
        let (a, b) = (assigned[0], assigned[1]);
        let outcomes = vec![
            (job, a, ShardOutcome::Done(Output::Count(1))),
            (job, b, ShardOutcome::Failed("boom".into())),
        ];
        core.results(w, outcomes, now, &mut out).expect("results");
        let counted = |out: &Recording| out.counted.iter().map(|c| c.2).collect::<Vec<_>>();
        assert_eq!(counted(&out), vec![Counted::Done, Counted::Failed]);

        let o = core.overview(now, 5);
        assert_eq!(o.states, [0, 1, 0, 0, 0]);
        assert_eq!((o.jobs.len(), o.jobs[0].view.done), (1, 1));
        assert_eq!(o.jobs[0].queued, 10 - held);
        assert_eq!(o.workers.len(), 1);
        assert_eq!(o.workers[0].busy(), 2.min(held - 2));
        let d = core.job_detail(job, now, 10).expect("detail");
        let trouble = ShardTrouble { shard: b, lo: b, hi: b + 1, failures: 1, crashes: 0 };
        assert_eq!((d.troubles, d.troubled), (vec![trouble], 1));
        assert_eq!(core.worker_draining(w), Some(false));

        // The worker is lost: what it held runs again, each counted as a rerun.
        core.worker_left(w, "gone", now, &mut out);
        let reruns = counted(&out).iter().filter(|c| **c == Counted::Rerun).count() as u64;
        assert_eq!(reruns, held - 2);
        assert!(core.overview(now, 5).workers.is_empty());
        core.cancel(job, now, &mut out).expect("cancel");
        let o = core.overview(now, 5);
        assert_eq!(o.states, [0, 0, 0, 0, 1]);
        assert_eq!((o.jobs.len(), o.jobs[0].queued), (1, 0));
        assert!(core.overview(now, 0).jobs.is_empty(), "no ended job asked for");
        assert_eq!(core.worker_draining(w), None);
        assert!(out.counted.iter().all(|(_, kind, _)| kind == "noop"), "{:?}", out.counted);
        assert_eq!(take(&mut out.defs), vec![(w, job)]);
        assert_eq!(take(&mut out.outputs).len(), 1);
        assert_eq!(take(&mut out.finished).len(), 1, "the cancelled job ended");
        out.assert_quiet();
    }
}
