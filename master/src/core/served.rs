//! Jobs nothing can run. The core counts which kinds the connected workers offer; a job not
//! yet ended whose kind none offers is waiting, and its status says so (`waiting: no connected
//! worker offers kind X`) instead of sitting at `running 94/1000` in silence. A job that
//! requires labels (`--require`, a python job's interpreter) waits the same way while no
//! worker offering its kind holds them all, and says which pair none holds: `no worker runs
//! CPython 3.12` for the `python` label, `no worker offering kind K has KEY=VALUE` for
//! others. A job with `--no-worker-timeout` fails once it has waited that long. A `--verify`
//! job whose copies need a second worker of its kind, with one connected, says so too.
//!
//! For `startup_grace` after the master starts (`Core::restore_finish`), workers are still
//! (re)connecting: a job of a kind none offers yet waits silently, its wait (and its
//! `--no-worker-timeout`) counted from the end of the grace, when its watchers are told.

use super::worker::Worker;
use super::{view, Core, Job, JobId, JobState, Outbox, WorkerId};
use farm_proto::labels::{satisfies, Labels};
use std::collections::{BTreeMap, HashMap, HashSet};
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

/// What a job waiting for labels says: the first pair it requires (its `python` label
/// first) that no worker offering its kind holds, or, when each is held by some worker but
/// none holds them all, every pair.
pub(crate) fn unmet_reason<'a>(
    kind: &str,
    requires: &Labels,
    offering: impl Iterator<Item = &'a Labels> + Clone,
) -> String {
    let python = farm_proto::python::LABEL;
    let first = requires.get_key_value(python).into_iter();
    let pairs = first.chain(requires.iter().filter(|(k, _)| k.as_str() != python));
    for (key, value) in pairs {
        if !offering.clone().any(|labels| labels.get(key) == Some(value)) {
            return if key == python {
                format!("no worker runs {value}")
            } else {
                format!("no worker offering kind {kind} has {key}={value}")
            };
        }
    }
    let all: Vec<String> = requires.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("no worker offering kind {kind} has all of {}", all.join(", "))
}

/// Why no connected worker can run a job.
#[derive(Debug, PartialEq)]
enum Unmet {
    /// None offers its kind.
    Kind,
    /// None of those that offer it holds every label it requires; what its status says.
    Labels(String),
}

impl Unmet {
    /// What the job keeps as `waiting_why`: the labels' reason (the kind's is made on demand).
    fn why(self) -> Option<String> {
        match self {
            Unmet::Kind => None,
            Unmet::Labels(why) => Some(why),
        }
    }
}

/// Why no connected worker can run `job`, if none can: none offers its kind, or none of those
/// that do holds every label it requires.
fn unmet(
    job: &Job,
    offered: &HashMap<String, usize>,
    workers: &BTreeMap<WorkerId, Worker>,
) -> Option<Unmet> {
    let (kind, requires) = (&job.spec.kind, &job.spec.requires);
    if !offered.contains_key(kind) {
        return Some(Unmet::Kind);
    }
    if requires.is_empty() {
        return None;
    }
    let offering = workers.values().filter(|w| w.kinds.contains(kind)).map(|w| &w.spec.labels);
    if offering.clone().any(|labels| satisfies(labels, requires)) {
        return None;
    }
    Some(Unmet::Labels(unmet_reason(kind, requires, offering)))
}

/// Connected workers that can run `job`: they offer its kind and hold what it requires.
fn able(job: &Job, workers: &BTreeMap<WorkerId, Worker>) -> usize {
    let (kind, requires) = (&job.spec.kind, &job.spec.requires);
    workers
        .values()
        .filter(|w| w.kinds.contains(kind) && satisfies(&w.spec.labels, requires))
        .count()
}

/// Why a job not yet ended waits, if it does: no worker offers its kind, none of those holds
/// the labels it requires, or its `--verify` copies need a second worker of its kind.
pub(crate) fn waiting(job: &Job, now: Instant) -> Option<String> {
    let kind = &job.spec.kind;
    match (job.state.is_final(), job.waiting_since, job.verify_blocked) {
        // A wait that starts later is the startup grace's: not reported yet.
        (false, Some(since), _) if since <= now => {
            Some(job.waiting_why.clone().unwrap_or_else(|| waiting_reason(kind)))
        }
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

    /// Counts a joining worker's kinds (it is connected already); the waiting jobs of its kinds
    /// that it can run stop waiting, and those still waiting whose reason changed (their kind
    /// is offered now, by a worker without their labels) say so; their watchers see each.
    pub(super) fn offer(&mut self, kinds: &HashSet<String>, now: Instant, out: &mut impl Outbox) {
        for kind in kinds {
            *self.offered.entry(kind.clone()).or_default() += 1;
        }
        if self.unserved.is_empty() {
            return;
        }
        let (jobs, offered, workers) = (&mut self.jobs, &self.offered, &self.workers);
        let mut served = Vec::new();
        for id in &self.unserved {
            let Some(job) = jobs.get_mut(id).filter(|j| kinds.contains(&j.spec.kind)) else {
                continue;
            };
            match unmet(job, offered, workers) {
                None => {
                    served.push(*id);
                    job.waiting_since = None;
                    job.waiting_why = None;
                    out.job_changed(&view(job, now));
                }
                Some(unmet) => {
                    let why = unmet.why();
                    if why != job.waiting_why {
                        job.waiting_why = why;
                        out.job_changed(&view(job, now));
                    }
                }
            }
        }
        for id in served {
            self.unserved.remove(&id);
        }
    }

    /// Uncounts a leaving worker's kinds (it is gone already); the jobs not yet ended of its
    /// kinds that no connected worker can run any more start waiting, and those waiting whose
    /// reason changed say so; their watchers see each.
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
        let from = self.wait_from(now);
        let (offered, workers) = (&self.offered, &self.workers);
        for (id, job) in self.jobs.iter_mut() {
            let kind = job.spec.kind.as_str();
            let affected = gone.contains(kind) || !job.spec.requires.is_empty();
            if job.state.is_final() || !affected || !kinds.contains(kind) {
                continue;
            }
            let Some(unmet) = unmet(job, offered, workers) else { continue };
            let why = unmet.why();
            if self.unserved.insert(*id) {
                job.waiting_since = Some(from);
            } else if why == job.waiting_why {
                continue;
            }
            job.waiting_why = why;
            out.job_changed(&view(job, now));
        }
    }

    /// Notes which `--verify` jobs have copies waiting that no connected worker may run (only
    /// one worker offers the kind, so every copy's first run was its own); watchers see each
    /// change. Called after every dispatch.
    pub(super) fn note_verify_blocked(&mut self, now: Instant, out: &mut impl Outbox) {
        for (id, verify) in &self.verifying {
            let Some(job) = self.jobs.get_mut(id) else { continue };
            // An ended job's copies are gone with it (`end_job` drops its `Verify`).
            let blocked = verify.waiting() > 0 && able(job, &self.workers) == 1;
            if blocked != job.verify_blocked {
                job.verify_blocked = blocked;
                out.job_changed(&view(job, now));
            }
        }
    }

    /// A new (or restored) job starts waiting when no connected worker can run it.
    pub(super) fn note_if_unserved(&mut self, id: JobId, now: Instant) {
        let from = self.wait_from(now);
        let Some(job) = self.jobs.get_mut(&id) else { return };
        if let Some(unmet) = unmet(job, &self.offered, &self.workers) {
            job.waiting_since = Some(from);
            job.waiting_why = unmet.why();
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
                    let why = job.waiting_why.clone();
                    let why = why.unwrap_or_else(|| waiting_reason(&job.spec.kind));
                    (*id, format!("{why}, and none joined within {limit:?} (--no-worker-timeout)"))
                })
            })
            .collect();
        for (id, error) in expired {
            self.end_job(id, JobState::Failed, Some(error), now, out);
        }
    }
}
