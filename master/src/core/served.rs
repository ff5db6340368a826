//! Jobs nothing can run. The core counts which kinds the connected workers offer; a job not
//! yet ended whose kind none offers is waiting, and its status says so (`waiting: no connected
//! worker offers kind X`) instead of sitting at `running 94/1000` in silence. A job with
//! `--no-worker-timeout` fails once it has waited that long. A `--verify` job whose copies
//! need a second worker of its kind, with one connected, says so too.
//!
//! For `startup_grace` after the master starts (`Core::restore_finish`), workers are still
//! (re)connecting: a job of a kind none offers yet waits silently, its wait (and its
//! `--no-worker-timeout`) counted from the end of the grace, when its watchers are told.

use super::{view, Core, Job, JobId, JobState, Outbox};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// The kind that workers offer only when started with `--allow-exec` (it runs any program).
const EXEC: &str = "exec";

/// What to add when no worker offers `kind`: how to get one that does, for a kind workers
/// offer only when asked to (`exec`); nothing for the others.
pub(crate) fn how_to_offer(kind: &str) -> &'static str {
    if kind == EXEC {
        " (workers offer it only when started with --allow-exec)"
    } else {
        ""
    }
}

/// What a waiting job's status says.
pub(crate) fn waiting_reason(kind: &str) -> String {
    format!("no connected worker offers kind {kind}{}", how_to_offer(kind))
}

/// Why a job not yet ended waits, if it does: no worker offers its kind, or its `--verify`
/// copies need a second worker of its kind.
pub(crate) fn waiting(job: &Job, now: Instant) -> Option<String> {
    let kind = &job.spec.kind;
    match (job.state.is_final(), job.waiting_since, job.verify_blocked) {
        // A wait that starts later is the startup grace's: not reported yet.
        (false, Some(since), _) if since <= now => Some(waiting_reason(kind)),
        (false, Some(_), _) => None,
        (false, None, true) => Some(format!(
            "--verify needs a second worker offering kind {kind}: each sampled shard runs again on another worker"
        )),
        _ => None,
    }
}

impl Core {
    /// The master starts: jobs waiting for a worker wait silently until the grace ends.
    pub(super) fn start_quiet(&mut self, now: Instant) {
        let until = now + self.config.startup_grace;
        self.quiet_until = Some(until);
        for id in &self.unserved {
            if let Some(job) = self.jobs.get_mut(id) {
                job.waiting_since = Some(until);
            }
        }
    }

    /// When a job starts waiting at `now`: at once, or at the end of the startup grace.
    fn wait_from(&self, now: Instant) -> Instant {
        self.quiet_until.map_or(now, |until| until.max(now))
    }

    /// Once the startup grace is over, the watchers of jobs still waiting are told.
    pub(super) fn end_quiet(&mut self, now: Instant, out: &mut impl Outbox) {
        if self.quiet_until.is_none_or(|until| until > now) {
            return;
        }
        self.quiet_until = None;
        for id in &self.unserved {
            if let Some(job) = self.jobs.get(id) {
                out.job_changed(&view(job, now));
            }
        }
    }

    /// Counts a joining worker's kinds; jobs of a kind that no connected worker offered until
    /// now stop waiting, and their watchers see it.
    pub(super) fn offer(&mut self, kinds: &HashSet<String>, now: Instant, out: &mut impl Outbox) {
        let mut newly = HashSet::new();
        for kind in kinds {
            let count = self.offered.entry(kind.clone()).or_default();
            *count += 1;
            if *count == 1 {
                newly.insert(kind.as_str());
            }
        }
        if newly.is_empty() || self.unserved.is_empty() {
            return;
        }
        let jobs = &self.jobs;
        let served: Vec<JobId> = self
            .unserved
            .iter()
            .copied()
            .filter(|id| jobs.get(id).is_some_and(|j| newly.contains(j.spec.kind.as_str())))
            .collect();
        for id in served {
            self.unserved.remove(&id);
            if let Some(job) = self.jobs.get_mut(&id) {
                job.waiting_since = None;
                out.job_changed(&view(job, now));
            }
        }
    }

    /// Uncounts a leaving worker's kinds; the jobs not yet ended of a kind that no connected
    /// worker offers any more start waiting, and their watchers see it.
    pub(super) fn withdraw(
        &mut self,
        kinds: &HashSet<String>,
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let mut gone = HashSet::new();
        for kind in kinds {
            if let Some(count) = self.offered.get_mut(kind) {
                *count -= 1;
                if *count == 0 {
                    self.offered.remove(kind);
                    gone.insert(kind.as_str());
                }
            }
        }
        if gone.is_empty() {
            return;
        }
        let from = self.wait_from(now);
        for (id, job) in self.jobs.iter_mut() {
            if job.state.is_final() || !gone.contains(job.spec.kind.as_str()) {
                continue;
            }
            job.waiting_since = Some(from);
            self.unserved.insert(*id);
            out.job_changed(&view(job, now));
        }
    }

    /// Notes which `--verify` jobs have copies waiting that no connected worker may run (only
    /// one worker offers the kind, so every copy's first run was its own); watchers see each
    /// change. Called after every dispatch.
    pub(super) fn note_verify_blocked(&mut self, now: Instant, out: &mut impl Outbox) {
        for (id, verify) in &self.verifying {
            let Some(job) = self.jobs.get_mut(id) else { continue };
            let offered = self.offered.get(&job.spec.kind).copied().unwrap_or(0);
            // An ended job's copies are gone with it (`end_job` drops its `Verify`).
            let blocked = verify.waiting() > 0 && offered == 1;
            if blocked != job.verify_blocked {
                job.verify_blocked = blocked;
                out.job_changed(&view(job, now));
            }
        }
    }

    /// A new (or restored) job starts waiting when no connected worker offers its kind.
    pub(super) fn note_if_unserved(&mut self, id: JobId, now: Instant) {
        let from = self.wait_from(now);
        let Some(job) = self.jobs.get_mut(&id) else { return };
        if !self.offered.contains_key(&job.spec.kind) {
            job.waiting_since = Some(from);
            self.unserved.insert(id);
        }
    }

    /// Fails every job that has waited for a worker longer than its `--no-worker-timeout`.
    pub(super) fn fail_unserved(&mut self, now: Instant, out: &mut impl Outbox) {
        let expired: Vec<(JobId, String)> = self
            .unserved
            .iter()
            .filter_map(|id| {
                let job = self.jobs.get(id)?;
                let limit = Duration::from_millis(job.spec.limits.no_worker_timeout_ms?);
                let waited = now.saturating_duration_since(job.waiting_since?);
                (waited >= limit).then(|| {
                    let why = waiting_reason(&job.spec.kind);
                    (*id, format!("{why}, and none joined within {limit:?} (--no-worker-timeout)"))
                })
            })
            .collect();
        for (id, error) in expired {
            self.end_job(id, JobState::Failed, Some(error), now, out);
        }
    }
}
