//! Rebuilding the core from the journal at start (`master/src/store`): the journal's counter
//! of job ids, the ended jobs' summaries, the jobs not yet ended (queued again), and each of
//! their committed outcomes, which counts the shard done so it never runs again.

use super::{Core, Job, JobId, JobState, JobView, Outbox, OutputShape, Owner, Submission};
use farm_proto::Output;
use std::time::Instant;

impl Core {
    /// The id the next submitted job gets is at least `next`: ids never repeat, even those
    /// of jobs retention dropped.
    pub fn restore_next_job(&mut self, next: JobId) {
        self.next_job = self.next_job.max(next);
    }

    /// Queues again a job that had not ended; none of its shards is handed out yet.
    pub fn restore_job(
        &mut self,
        id: JobId,
        sub: Submission,
        owner: Owner,
        output: OutputShape,
        submitted: Instant,
    ) {
        self.insert_job(id, sub, owner, output, submitted);
    }

    /// Counts a committed outcome of a job restored with [`Core::restore_job`]: done,
    /// reduced, never handed out again. False if it was ignored: no such job still going, a
    /// shard out of range, or one already counted.
    pub fn restore_outcome(
        &mut self,
        job_id: JobId,
        shard: u64,
        output: &Output,
        now: Instant,
        out: &mut impl Outbox,
    ) -> bool {
        let Some(job) = self.jobs.get_mut(&job_id).filter(|j| !j.state.is_final()) else {
            return false;
        };
        if shard >= job.total || !job.skip.insert(shard) {
            return false;
        }
        job.done += 1;
        job.state = JobState::Running;
        if let Err(e) = job.acc.add(shard, output) {
            self.end_job(job_id, JobState::Failed, Some(e), now, out);
        }
        true
    }

    /// Keeps an ended job's summary for `Get` and `List`, within the retention limits (the
    /// oldest past them are forgotten, and the journal told so).
    pub fn restore_ended(&mut self, summary: JobView, now: Instant, out: &mut impl Outbox) {
        let id = summary.id;
        self.next_job = self.next_job.max(id + 1);
        let mut job = Job::ended(summary, now);
        job.principal = self.accounts.id(&job.owner, false);
        self.ended_bytes += job.kept_bytes();
        self.ended.push_back(id);
        self.jobs.insert(id, job);
        self.retain_ended(out);
    }

    /// Ends the restored jobs whose every shard is done: the master stopped after the last
    /// outcome was committed and before the job's end was.
    /// The master starts serving then: workers get the startup grace to connect.
    pub fn restore_finish(&mut self, now: Instant, out: &mut impl Outbox) {
        self.start_quiet(now);
        let complete: Vec<JobId> = self
            .jobs
            .values()
            .filter(|j| !j.state.is_final() && j.done == j.total)
            .map(|j| j.id)
            .collect();
        for id in complete {
            self.end_job(id, JobState::Succeeded, None, now, out);
        }
    }
}
