//! Domain types of allocation queues (`farm alloc`): how a queue asks a batch scheduler for
//! workers ([`AllocQueueSpec`], checked here so master and CLI refuse the same settings), and
//! what clients see of a queue and its allocations. Conversions from and to prost are at the
//! end of this file.

use crate::domain::SpecError;
use crate::kernel::quote;
use crate::pb;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// Most workers one queue may keep alive.
pub const MAX_QUEUE_WORKERS: u32 = 10_000;
/// Most arguments passed on to the scheduler's submit command.
pub const MAX_EXTRA_ARGS: usize = 64;
/// Longest argument passed on to the scheduler's submit command.
pub const MAX_EXTRA_ARG_BYTES: usize = 1024;
/// Longest queue name (it names files and scheduler jobs).
pub const MAX_QUEUE_NAME_BYTES: usize = 64;
/// The shortest time limit: Slurm counts wall time in minutes.
pub const MIN_TIME_LIMIT: Duration = Duration::from_secs(60);

/// The batch schedulers an allocation queue can submit to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    /// Slurm: `sbatch`, `squeue`, `scancel`.
    Slurm,
}

impl Scheduler {
    /// The lowercase name the CLI and the wire use.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheduler::Slurm => "slurm",
        }
    }
}

impl std::str::FromStr for Scheduler {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        match s {
            "slurm" => Ok(Scheduler::Slurm),
            other => Err(SpecError::Invalid(format!(
                "unknown scheduler {}: farm allocates workers through slurm",
                quote(other)
            ))),
        }
    }
}

/// How an allocation queue asks its scheduler for workers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllocQueueSpec {
    /// The queue's name; empty in a request: the master picks one.
    pub name: String,
    /// The scheduler it submits to.
    pub scheduler: Scheduler,
    /// Most workers of its allocations alive (queued or running) at once.
    pub max_workers: u32,
    /// Workers each allocation runs.
    pub workers_per_alloc: u32,
    /// Threads per worker; `None`: the cores the worker sees.
    pub threads: Option<u32>,
    /// The allocation's wall-time limit, in ms; `None`: the partition's default.
    pub time_limit_ms: Option<u64>,
    /// A worker idle this long (ms) exits.
    pub idle_timeout_ms: u64,
    /// More arguments for the submit command, e.g. `--partition=short`.
    pub extra_args: Vec<String>,
}

impl AllocQueueSpec {
    /// A Slurm queue with the CLI's defaults: 4 workers, one per allocation, 5 minutes idle.
    pub fn slurm() -> Self {
        AllocQueueSpec {
            name: String::new(),
            scheduler: Scheduler::Slurm,
            max_workers: 4,
            workers_per_alloc: 1,
            threads: None,
            time_limit_ms: None,
            idle_timeout_ms: 300_000,
            extra_args: Vec::new(),
        }
    }

    /// The time limit as a duration.
    pub fn time_limit(&self) -> Option<Duration> {
        self.time_limit_ms.map(Duration::from_millis)
    }

    /// The idle timeout as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// Checks every setting; an empty name is allowed (the master names the queue).
    pub fn check(&self) -> Result<(), SpecError> {
        let bad = |m: String| Err(SpecError::Invalid(m));
        if !self.name.is_empty() {
            check_name(&self.name)?;
        }
        if self.max_workers == 0 || self.max_workers > MAX_QUEUE_WORKERS {
            return bad(format!("max workers must be 1..={MAX_QUEUE_WORKERS}"));
        }
        if self.workers_per_alloc == 0 || self.workers_per_alloc > self.max_workers {
            return bad(format!(
                "workers per allocation must be 1..={} (the queue's max workers)",
                self.max_workers
            ));
        }
        if self.threads.is_some_and(|t| t == 0 || t > 4096) {
            return bad("threads must be 1..=4096".into());
        }
        if self.idle_timeout_ms < 1000 || self.idle_timeout_ms > 7 * 86_400_000 {
            return bad("idle timeout must be 1s..=7d".into());
        }
        let min = MIN_TIME_LIMIT.as_millis() as u64;
        if self.time_limit_ms.is_some_and(|t| !(min..=366 * 86_400_000).contains(&t)) {
            return bad("time limit must be 1m..=366d (Slurm counts wall time in minutes)".into());
        }
        if self.extra_args.len() > MAX_EXTRA_ARGS {
            return bad(format!("at most {MAX_EXTRA_ARGS} extra scheduler arguments"));
        }
        for arg in &self.extra_args {
            if arg.len() > MAX_EXTRA_ARG_BYTES || arg.contains(['\0', '\n', '\r']) {
                return bad(format!(
                    "scheduler argument {} is longer than {MAX_EXTRA_ARG_BYTES} bytes or holds \
                     a line break",
                    quote(arg)
                ));
            }
        }
        Ok(())
    }
}

/// A queue name names files and scheduler jobs: letters, digits, `-`, `_` and `.`, not
/// starting with `-` or `.`.
fn check_name(name: &str) -> Result<(), SpecError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let ok = name.len() <= MAX_QUEUE_NAME_BYTES
        && name.chars().all(ok_char)
        && !name.starts_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(SpecError::Invalid(format!(
            "queue name {} must be 1..={MAX_QUEUE_NAME_BYTES} letters, digits, '-', '_' or '.', \
             not starting with '-' or '.'",
            quote(name)
        )))
    }
}

/// Where an allocation queue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AllocQueueState {
    /// Submits allocations while shards wait.
    Active,
    /// Stopped after repeated submission failures.
    Paused,
    /// Removed; goes once its allocations have ended.
    Removing,
}

/// Where one allocation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AllocationState {
    /// Waiting in the scheduler's queue.
    Queued,
    /// Started.
    Running,
    /// Ended after its workers connected.
    Ended,
    /// Ended before any worker connected, or failed at the scheduler.
    Failed,
}

impl AllocQueueState {
    /// The lowercase word the CLI prints.
    pub fn as_str(self) -> &'static str {
        match self {
            AllocQueueState::Active => "active",
            AllocQueueState::Paused => "paused",
            AllocQueueState::Removing => "removing",
        }
    }
}

impl AllocationState {
    /// The lowercase word the CLI prints.
    pub fn as_str(self) -> &'static str {
        match self {
            AllocationState::Queued => "queued",
            AllocationState::Running => "running",
            AllocationState::Ended => "ended",
            AllocationState::Failed => "failed",
        }
    }

    /// Whether it will not change again.
    pub fn is_final(self) -> bool {
        matches!(self, AllocationState::Ended | AllocationState::Failed)
    }
}

impl fmt::Display for AllocQueueState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl fmt::Display for AllocationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One allocation as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllocationInfo {
    /// The scheduler's job id.
    pub id: String,
    /// Where it is.
    pub state: AllocationState,
    /// Its workers connected now.
    pub workers: u32,
    /// Its workers that ever connected.
    pub workers_seen: u32,
    /// Seconds since it was submitted.
    pub age_secs: u64,
    /// The scheduler's word on how it ended, or why it failed.
    pub detail: String,
}

/// An allocation queue as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllocQueueInfo {
    /// Its settings.
    pub spec: AllocQueueSpec,
    /// Where it is.
    pub state: AllocQueueState,
    /// Why it is paused, or the last submission failure.
    pub error: Option<String>,
    /// Submission failures in a row.
    pub failures: u32,
    /// Its allocations, oldest first.
    pub allocations: Vec<AllocationInfo>,
}

// ------------------------------------------------------------------------ conversions

impl From<AllocQueueSpec> for pb::AllocQueueSpec {
    fn from(s: AllocQueueSpec) -> Self {
        pb::AllocQueueSpec {
            name: s.name,
            scheduler: s.scheduler.as_str().into(),
            max_workers: s.max_workers,
            workers_per_alloc: s.workers_per_alloc,
            threads: s.threads.unwrap_or(0),
            time_limit_ms: s.time_limit_ms.unwrap_or(0),
            idle_timeout_ms: s.idle_timeout_ms,
            extra_args: s.extra_args,
        }
    }
}

impl TryFrom<pb::AllocQueueSpec> for AllocQueueSpec {
    type Error = SpecError;

    /// Converts and checks every setting.
    fn try_from(s: pb::AllocQueueSpec) -> Result<Self, SpecError> {
        let spec = AllocQueueSpec {
            name: s.name,
            scheduler: s.scheduler.parse()?,
            max_workers: s.max_workers,
            workers_per_alloc: s.workers_per_alloc,
            threads: (s.threads != 0).then_some(s.threads),
            time_limit_ms: (s.time_limit_ms != 0).then_some(s.time_limit_ms),
            idle_timeout_ms: s.idle_timeout_ms,
            extra_args: s.extra_args,
        };
        spec.check()?;
        Ok(spec)
    }
}

impl From<AllocationInfo> for pb::AllocationInfo {
    fn from(a: AllocationInfo) -> Self {
        let state = match a.state {
            AllocationState::Queued => pb::AllocationState::Queued,
            AllocationState::Running => pb::AllocationState::Running,
            AllocationState::Ended => pb::AllocationState::Ended,
            AllocationState::Failed => pb::AllocationState::Failed,
        };
        pb::AllocationInfo {
            id: a.id,
            state: state as i32,
            workers: a.workers,
            workers_seen: a.workers_seen,
            age_secs: a.age_secs,
            detail: a.detail,
        }
    }
}

impl TryFrom<pb::AllocationInfo> for AllocationInfo {
    type Error = SpecError;

    fn try_from(a: pb::AllocationInfo) -> Result<Self, SpecError> {
        let state = match pb::AllocationState::try_from(a.state) {
            Ok(pb::AllocationState::Queued) => AllocationState::Queued,
            Ok(pb::AllocationState::Running) => AllocationState::Running,
            Ok(pb::AllocationState::Ended) => AllocationState::Ended,
            Ok(pb::AllocationState::Failed) => AllocationState::Failed,
            _ => return Err(SpecError::Invalid(format!("unknown allocation state {}", a.state))),
        };
        Ok(AllocationInfo {
            id: a.id,
            state,
            workers: a.workers,
            workers_seen: a.workers_seen,
            age_secs: a.age_secs,
            detail: a.detail,
        })
    }
}

impl From<AllocQueueInfo> for pb::AllocQueueInfo {
    fn from(q: AllocQueueInfo) -> Self {
        let state = match q.state {
            AllocQueueState::Active => pb::AllocQueueState::Active,
            AllocQueueState::Paused => pb::AllocQueueState::Paused,
            AllocQueueState::Removing => pb::AllocQueueState::Removing,
        };
        pb::AllocQueueInfo {
            spec: Some(q.spec.into()),
            state: state as i32,
            error: q.error.unwrap_or_default(),
            failures: q.failures,
            allocations: q.allocations.into_iter().map(Into::into).collect(),
        }
    }
}

impl TryFrom<pb::AllocQueueInfo> for AllocQueueInfo {
    type Error = SpecError;

    fn try_from(q: pb::AllocQueueInfo) -> Result<Self, SpecError> {
        let state = match pb::AllocQueueState::try_from(q.state) {
            Ok(pb::AllocQueueState::Active) => AllocQueueState::Active,
            Ok(pb::AllocQueueState::Paused) => AllocQueueState::Paused,
            Ok(pb::AllocQueueState::Removing) => AllocQueueState::Removing,
            _ => return Err(SpecError::Invalid(format!("unknown queue state {}", q.state))),
        };
        let spec = q.spec.ok_or_else(|| SpecError::Invalid("queue spec is missing".into()))?;
        Ok(AllocQueueInfo {
            spec: spec.try_into()?,
            state,
            error: (!q.error.is_empty()).then_some(q.error),
            failures: q.failures,
            allocations: q
                .allocations
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_spec_travels_unchanged() {
        let spec = AllocQueueSpec {
            name: "gpu-1".into(),
            threads: Some(8),
            time_limit_ms: Some(3_600_000),
            extra_args: vec!["--partition=farm".into()],
            ..AllocQueueSpec::slurm()
        };
        let back = AllocQueueSpec::try_from(pb::AllocQueueSpec::from(spec.clone()));
        assert_eq!(back, Ok(spec));
    }

    #[test]
    fn bad_settings_are_refused_with_what_is_wrong() {
        let bad = |f: fn(&mut AllocQueueSpec)| {
            let mut s = AllocQueueSpec::slurm();
            f(&mut s);
            s.check().map_err(|e| e.to_string()).expect_err("refused")
        };
        assert!(bad(|s| s.max_workers = 0).contains("max workers"));
        assert!(bad(|s| s.workers_per_alloc = 5).contains("workers per allocation"));
        assert!(bad(|s| s.name = "../x".into()).contains("queue name"));
        assert!(bad(|s| s.name = "-x".into()).contains("queue name"));
        assert!(bad(|s| s.time_limit_ms = Some(1000)).contains("time limit"));
        assert!(bad(|s| s.idle_timeout_ms = 10).contains("idle timeout"));
        assert!(bad(|s| s.extra_args = vec!["a\nb".into()]).contains("line break"));
        assert!(bad(|s| s.threads = Some(0)).contains("threads"));
        let unknown =
            pb::AllocQueueSpec { scheduler: "pbs".into(), ..AllocQueueSpec::slurm().into() };
        assert!(AllocQueueSpec::try_from(unknown).is_err());
    }

    #[test]
    fn unknown_states_do_not_convert() {
        let a = pb::AllocationInfo { state: 99, ..Default::default() };
        assert!(AllocationInfo::try_from(a).is_err());
        let q = pb::AllocQueueInfo {
            spec: Some(AllocQueueSpec::slurm().into()),
            state: 0,
            ..Default::default()
        };
        assert!(AllocQueueInfo::try_from(q).is_err());
    }
}
