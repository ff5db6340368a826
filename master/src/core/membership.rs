//! Worker membership in the core: workers joining, heard from, reporting started shards,
//! draining and leaving, and the shards a lost worker held taken back (a crash counted, or a
//! rerun queued).

use super::worker::{worker_view, Worker};
use super::{Core, CoreError, Counted, JobId, JobState, Outbox, WorkerId, WorkerSpec, WorkerView};
use std::time::Instant;

impl Core {
    /// Registers a worker session; the next dispatch fills it with shards. Jobs that waited
    /// for a worker offering their kind stop waiting.
    pub fn worker_joined(
        &mut self,
        spec: WorkerSpec,
        now: Instant,
        out: &mut impl Outbox,
    ) -> WorkerId {
        let id = self.next_worker;
        self.next_worker += 1;
        let worker = Worker::new(spec, now);
        self.cluster_threads += u64::from(worker.spec.threads);
        let kinds = worker.kinds.clone();
        self.workers.insert(id, worker);
        self.offer(&kinds, now, out);
        self.dirty.worker(id);
        id
    }

    /// The id the next worker to join will get.
    pub fn next_worker_id(&self) -> WorkerId {
        self.next_worker
    }

    /// Whether some connected worker can run `kind`.
    pub fn kind_offered(&self, kind: &str) -> bool {
        self.offered.contains_key(kind)
    }

    /// Notes that a worker was heard from at `heard` (an earlier time than one already noted
    /// changes nothing).
    pub fn heartbeat(&mut self, worker: WorkerId, heard: Instant) {
        if let Some(w) = self.workers.get_mut(&worker) {
            w.last_seen = w.last_seen.max(heard);
        }
    }

    /// A worker session ended: its shards go back to the front of their jobs' queues and run
    /// elsewhere. The ones it had started count a crash against themselves; a shard that has
    /// now been started on `max_crashes` workers that died fails its job.
    pub fn worker_left(
        &mut self,
        worker: WorkerId,
        reason: &str,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let Some(w) = self.workers.remove(&worker) else { return };
        self.cluster_threads = self.cluster_threads.saturating_sub(u64::from(w.spec.threads));
        // Gone: a job that ends below must not send it a cancel or a forget.
        for job in self.jobs.values_mut() {
            job.known_by.remove(&worker);
        }
        let suspects = w.suspects();
        for (job_id, shard) in w.assigned_in_order() {
            let Some(job) = self.jobs.get_mut(&job_id) else { continue };
            if job.assigned.remove(&shard).is_some() {
                self.accounts.released(job.principal, 1);
            }
            // A job that ended while we went through this worker's shards (one of them failed
            // it just above) must not get shards back.
            if job.state.is_final() {
                continue;
            }
            if suspects.contains(&(job_id, shard))
                && self.crashed(job_id, shard, worker, reason, now, out)
            {
                continue;
            }
            self.requeue(job_id, shard, out);
        }
        self.withdraw(&w.kinds, now, out);
    }

    /// Counts a crash against a shard taken back from `worker` (lost, or held past its
    /// deadline); true if that was its `max_crashes`-th and its job failed.
    pub(super) fn crashed(
        &mut self,
        job_id: JobId,
        shard: u64,
        worker: WorkerId,
        reason: &str,
        now: Instant,
        out: &mut impl Outbox,
    ) -> bool {
        let Some(job) = self.jobs.get_mut(&job_id) else { return false };
        let crashes = job.crashes.entry(shard).or_insert(0);
        *crashes += 1;
        let crashes = *crashes;
        if crashes < job.spec.limits.max_crashes {
            return false;
        }
        let msg = format!(
            "{} was running on {crashes} workers that were lost or held it too long; the last, \
             worker {worker}: {reason}",
            job.describe(shard)
        );
        self.end_job(job_id, JobState::Failed, Some(msg), now, out);
        true
    }

    /// Puts a shard back to run again (a rerun): a `--verify` copy goes back to wait for
    /// another worker than the first, any other shard to the front of its job's queue.
    pub(super) fn requeue(&mut self, job_id: JobId, shard: u64, out: &mut impl Outbox) {
        let Some(job) = self.jobs.get_mut(&job_id).filter(|j| !j.state.is_final()) else { return };
        out.counted(job_id, &job.spec.kind, Counted::Rerun);
        match self.verifying.get_mut(&job_id).filter(|v| v.is_copy(shard)) {
            Some(v) => {
                v.requeue(shard);
                job.reruns += 1;
            }
            None => job.requeue(shard),
        }
        let priority = job.spec.priority;
        self.mark_pending(job_id, priority);
    }

    /// A worker reports shards it started (assigned ones only count).
    pub fn shards_started(
        &mut self,
        worker: WorkerId,
        started: impl IntoIterator<Item = (JobId, u64)>,
    ) {
        let Some(w) = self.workers.get_mut(&worker) else { return };
        for key in started {
            if w.assigned.contains_key(&key) {
                w.started.insert(key);
            }
        }
    }

    /// A worker asked to drain (or was asked to): it gets no more shards.
    pub fn drain(
        &mut self,
        worker: WorkerId,
        tell_worker: bool,
        now: Instant,
        out: &mut impl Outbox,
    ) -> Result<WorkerView, CoreError> {
        let w = self.workers.get_mut(&worker).ok_or(CoreError::NoSuchWorker(worker))?;
        w.draining = true;
        if tell_worker {
            out.drain_worker(worker);
        }
        Ok(worker_view(worker, w, now))
    }
}
