//! The worker session's messages as domain types, in both directions ([`ToWorker`] from the
//! master, [`ToMaster`] from the worker), with their conversions from and to the prost types.
//! The master's outbox and the worker's session state machine speak only these; the prost
//! types appear at the stream's edge. Conversions from the wire return [`SpecError`] (never
//! panic) for a missing oneof, an undecodable output or a malformed kernel descriptor.

use crate::domain::{Output, Params, SpecError};
use crate::kernel::KernelDescriptor;
pub use crate::logs::ShardRun;
use crate::pb::{self, master_message::Msg as In, shard_done::Outcome, worker_message::Msg as Out};
use prost::encoding::key_len;
use std::time::Duration;
use wire_len::{delimited, output_len};

/// A message from the master to a worker.
#[derive(Debug, Clone, PartialEq)]
pub enum ToWorker {
    /// The registration is accepted; always the first message of a session.
    Welcome(Welcome),
    /// Jobs to define and shards to run.
    Assign(Assign),
    /// Stop every shard of the job, queued or running; no results are expected for them.
    CancelJob(u64),
    /// The job is over: drop its definition.
    ForgetJob(u64),
    /// Drain and exit.
    Drain,
    /// The master is alive.
    Heartbeat,
    /// The answer to [`ToMaster::FetchModule`].
    Module(ModuleBytes),
}

/// A module's bytes (any format) sent to a worker that asked for them.
#[derive(Clone, PartialEq)]
pub struct ModuleBytes {
    /// The module's SHA-256 (64 lowercase hex digits), as asked for.
    pub sha256: String,
    /// Its bytes, or why the master cannot send them.
    pub wasm: Result<Vec<u8>, String>,
}

impl std::fmt::Debug for ModuleBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let wasm = self.wasm.as_ref().map(Vec::len);
        f.debug_struct("ModuleBytes").field("sha256", &self.sha256).field("bytes", &wasm).finish()
    }
}

/// The master's answer to a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Welcome {
    /// The id the master gave the worker, for logs on both sides.
    pub worker_id: u64,
    /// How often the worker sends heartbeats (and expects the master's).
    pub heartbeat: Duration,
}

/// New job definitions (each sent once per worker), then shards to run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assign {
    /// Jobs the worker has not been told about yet, before any of their tasks.
    pub jobs: Vec<JobDef>,
    /// The shards to run.
    pub tasks: Vec<ShardTask>,
}

/// A job as a worker needs it: which kernel, with which params.
#[derive(Debug, Clone, PartialEq)]
pub struct JobDef {
    /// The job.
    pub job_id: u64,
    /// Its kernel.
    pub kind: String,
    /// Its parameters, for the kernel to parse.
    pub params: Params,
    /// Stop a shard that runs longer and report it failed.
    pub shard_timeout: Option<Duration>,
    /// Report how every shard ran ([`ShardRun`]), not only those that logged or failed.
    pub record_runs: bool,
    /// The job's priority: the worker starts its queued shards before lower-priority ones.
    pub priority: i32,
}

/// One shard to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardTask {
    /// Its job (defined in this or an earlier assignment).
    pub job_id: u64,
    /// Its index within the job: how its outcome is reported.
    pub shard: u64,
    /// First index.
    pub lo: u64,
    /// One past the last index.
    pub hi: u64,
    /// Its input line, for an input job.
    pub input: Option<String>,
}

/// A message from a worker to the master.
#[derive(Debug, Clone, PartialEq)]
pub enum ToMaster {
    /// Who the worker is and what it offers; always the first message of a session.
    Register(Register),
    /// The worker is alive.
    Heartbeat,
    /// Shard outcomes, and shards that started.
    Results(Results),
    /// The worker is draining: send it no more shards.
    Draining,
    /// The worker cannot run this job (its kernel refused the params); sent once per job.
    Refused {
        /// The job.
        job_id: u64,
        /// Why, as the kernel said it.
        reason: String,
    },
    /// The worker needs the bytes of the module with this SHA-256 (one its job names).
    FetchModule(String),
}

/// A worker's registration.
#[derive(Debug, Clone, PartialEq)]
pub struct Register {
    /// The protocol the worker speaks ([`crate::PROTOCOL_VERSION`]); the master refuses
    /// another.
    pub protocol_version: u32,
    /// Shards it runs at once (its thread pool size).
    pub threads: u32,
    /// The kernels it can run, each with its params and output shape.
    pub kernels: Vec<KernelDescriptor>,
    /// Shown in `farm workers`.
    pub name: String,
    /// The host it runs on.
    pub hostname: String,
    /// Its process id on that host.
    pub pid: u32,
    /// Times its supervisor restarted this local worker slot.
    pub restarts: u32,
    /// The scheduler job (allocation) it runs in, if an allocation queue started it; empty
    /// otherwise.
    pub allocation: String,
    /// Its environment as key/value pairs: jobs that require pairs run only on workers that
    /// hold them all.
    pub labels: crate::labels::Labels,
}

/// Shard outcomes and starts, batched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Results {
    /// Finished shards: (job, shard, outcome).
    pub done: Vec<(u64, u64, ShardOutcome)>,
    /// Shards that started since the last batch and are not in `done`: the master needs to
    /// know which shards a worker was running if it dies.
    pub started: Vec<(u64, u64)>,
    /// How shards in `done` ran: those of jobs that record runs, and those that logged
    /// something or failed.
    pub runs: Vec<ShardRun>,
    /// Per job: what its shards in this batch cost the pool.
    pub costs: Vec<JobCost>,
}

impl Results {
    /// A result batch from the wire, each finished shard through `outcome`: strict where a
    /// malformed outcome fails the message, lenient in the master, which fails that shard only.
    pub fn from_wire<E>(
        batch: pb::ResultBatch,
        outcome: impl FnMut(pb::ShardDone) -> Result<(u64, u64, ShardOutcome), E>,
    ) -> Result<Results, E> {
        Ok(Results {
            done: batch.done.into_iter().map(outcome).collect::<Result<_, E>>()?,
            started: batch.started.into_iter().map(|s| (s.job_id, s.shard)).collect(),
            runs: batch.runs.into_iter().map(ShardRun::from).collect(),
            costs: batch.costs.into_iter().map(JobCost::from).collect(),
        })
    }
}

/// What one job's shards cost a worker's pool over one batch: the master sizes windows from it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobCost {
    /// The job.
    pub job_id: u64,
    /// Shards that ran.
    pub runs: u64,
    /// Their pool-thread wall time, summed, in nanoseconds.
    pub busy_ns: u64,
}

impl From<pb::JobCost> for JobCost {
    fn from(c: pb::JobCost) -> Self {
        JobCost { job_id: c.job_id, runs: c.runs, busy_ns: c.busy_ns }
    }
}

impl From<JobCost> for pb::JobCost {
    fn from(c: JobCost) -> Self {
        pb::JobCost { job_id: c.job_id, runs: c.runs, busy_ns: c.busy_ns }
    }
}

/// How one run of a shard ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ShardOutcome {
    /// The kernel returned an output.
    Done(Output),
    /// The kernel failed, panicked or timed out.
    Failed(String),
    /// The kernel failed in a way every rerun would repeat (a bad param, an input it cannot
    /// read): the job fails without retrying the shard.
    Invalid(String),
    /// The shard was stopped by a cancel (or handed back by a draining worker); no result.
    Cancelled,
}

impl ShardOutcome {
    /// Bytes this outcome takes on the wire (the `outcome` field of a `ShardDone`), computed
    /// without building the prost message: a worker sizes its batches with it.
    pub fn encoded_len(&self) -> usize {
        match self {
            ShardOutcome::Done(output) => delimited(3, output_len(output)),
            ShardOutcome::Failed(error) => delimited(4, error.len()),
            ShardOutcome::Invalid(error) => delimited(4, error.len()) + key_len(6) + 1,
            ShardOutcome::Cancelled => key_len(5) + 1,
        }
    }

    /// A `ShardDone` off the wire: its job, shard and outcome (see `TryFrom<Option<Outcome>>`),
    /// an error marked `deterministic` being [`ShardOutcome::Invalid`].
    pub fn of_done(done: pb::ShardDone) -> Result<(u64, u64, ShardOutcome), SpecError> {
        let outcome = match ShardOutcome::try_from(done.outcome)? {
            ShardOutcome::Failed(error) if done.deterministic => ShardOutcome::Invalid(error),
            outcome => outcome,
        };
        Ok((done.job_id, done.shard, outcome))
    }
}

fn invalid(what: &str) -> SpecError {
    SpecError::Invalid(what.to_string())
}

impl From<ToWorker> for pb::MasterMessage {
    fn from(msg: ToWorker) -> Self {
        let msg = match msg {
            ToWorker::Welcome(w) => In::Welcome(pb::Welcome {
                worker_id: w.worker_id,
                heartbeat_ms: u32::try_from(w.heartbeat.as_millis()).unwrap_or(u32::MAX),
            }),
            ToWorker::Assign(a) => In::Assign(pb::AssignBatch {
                jobs: a.jobs.into_iter().map(pb::JobDef::from).collect(),
                tasks: a.tasks.into_iter().map(pb::ShardTask::from).collect(),
            }),
            ToWorker::CancelJob(job_id) => In::Cancel(pb::CancelJob { job_id }),
            ToWorker::ForgetJob(job_id) => In::Forget(pb::ForgetJob { job_id }),
            ToWorker::Drain => In::Drain(pb::Drain {}),
            ToWorker::Heartbeat => In::Heartbeat(pb::Heartbeat {}),
            ToWorker::Module(m) => In::Module(match m.wasm {
                Ok(wasm) => pb::ModuleBytes { sha256: m.sha256, wasm, error: String::new() },
                Err(error) => pb::ModuleBytes { sha256: m.sha256, wasm: Vec::new(), error },
            }),
        };
        pb::MasterMessage { msg: Some(msg) }
    }
}

impl TryFrom<pb::MasterMessage> for ToWorker {
    type Error = SpecError;

    fn try_from(msg: pb::MasterMessage) -> Result<Self, SpecError> {
        Ok(match msg.msg.ok_or_else(|| invalid("master message is empty"))? {
            In::Welcome(w) => ToWorker::Welcome(Welcome {
                worker_id: w.worker_id,
                heartbeat: Duration::from_millis(u64::from(w.heartbeat_ms)),
            }),
            In::Assign(a) => ToWorker::Assign(Assign {
                jobs: a.jobs.into_iter().map(JobDef::from).collect(),
                tasks: a.tasks.into_iter().map(ShardTask::from).collect(),
            }),
            In::Cancel(c) => ToWorker::CancelJob(c.job_id),
            In::Forget(f) => ToWorker::ForgetJob(f.job_id),
            In::Drain(_) => ToWorker::Drain,
            In::Heartbeat(_) => ToWorker::Heartbeat,
            In::Module(m) => ToWorker::Module(ModuleBytes {
                sha256: m.sha256,
                wasm: if m.error.is_empty() { Ok(m.wasm) } else { Err(m.error) },
            }),
        })
    }
}

impl From<JobDef> for pb::JobDef {
    fn from(d: JobDef) -> Self {
        pb::JobDef {
            job_id: d.job_id,
            kind: d.kind,
            params: d.params.0.into_iter().collect(),
            shard_timeout_ms: d
                .shard_timeout
                .map_or(0, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1)),
            record_runs: d.record_runs,
            priority: d.priority,
        }
    }
}

impl From<pb::JobDef> for JobDef {
    fn from(d: pb::JobDef) -> Self {
        JobDef {
            job_id: d.job_id,
            kind: d.kind,
            params: Params(d.params.into_iter().collect()),
            shard_timeout: (d.shard_timeout_ms > 0)
                .then(|| Duration::from_millis(d.shard_timeout_ms)),
            record_runs: d.record_runs,
            priority: d.priority,
        }
    }
}

impl From<ShardTask> for pb::ShardTask {
    fn from(t: ShardTask) -> Self {
        pb::ShardTask { job_id: t.job_id, shard: t.shard, lo: t.lo, hi: t.hi, input: t.input }
    }
}

impl From<pb::ShardTask> for ShardTask {
    fn from(t: pb::ShardTask) -> Self {
        ShardTask { job_id: t.job_id, shard: t.shard, lo: t.lo, hi: t.hi, input: t.input }
    }
}

impl From<ToMaster> for pb::WorkerMessage {
    fn from(msg: ToMaster) -> Self {
        let msg = match msg {
            ToMaster::Register(r) => Out::Register(pb::Register {
                protocol_version: r.protocol_version,
                threads: r.threads,
                kernels: r.kernels.iter().map(pb::KernelDescriptor::from).collect(),
                name: r.name,
                hostname: r.hostname,
                pid: r.pid,
                restarts: r.restarts,
                allocation: r.allocation,
                labels: r.labels.into_iter().collect(),
            }),
            ToMaster::Heartbeat => Out::Heartbeat(pb::Heartbeat {}),
            ToMaster::Results(r) => Out::Results(pb::ResultBatch {
                done: r.done.into_iter().map(shard_done).collect(),
                started: r
                    .started
                    .into_iter()
                    .map(|(job_id, shard)| pb::ShardRef { job_id, shard })
                    .collect(),
                runs: r.runs.into_iter().map(pb::ShardRun::from).collect(),
                costs: r.costs.into_iter().map(pb::JobCost::from).collect(),
            }),
            ToMaster::Draining => Out::Draining(pb::Draining {}),
            ToMaster::Refused { job_id, reason } => Out::Refused(pb::JobRefused { job_id, reason }),
            ToMaster::FetchModule(sha256) => Out::FetchModule(pb::FetchModule { sha256 }),
        };
        pb::WorkerMessage { msg: Some(msg) }
    }
}

fn shard_done((job_id, shard, outcome): (u64, u64, ShardOutcome)) -> pb::ShardDone {
    let deterministic = matches!(outcome, ShardOutcome::Invalid(_));
    let outcome = match outcome {
        ShardOutcome::Done(output) => Outcome::Output(output.into()),
        ShardOutcome::Failed(error) | ShardOutcome::Invalid(error) => Outcome::Error(error),
        ShardOutcome::Cancelled => Outcome::Cancelled(true),
    };
    pb::ShardDone { job_id, shard, outcome: Some(outcome), deterministic }
}

impl TryFrom<pb::WorkerMessage> for ToMaster {
    type Error = SpecError;

    fn try_from(msg: pb::WorkerMessage) -> Result<Self, SpecError> {
        Ok(match msg.msg.ok_or_else(|| invalid("worker message is empty"))? {
            Out::Register(r) => ToMaster::Register(Register {
                protocol_version: r.protocol_version,
                threads: r.threads,
                kernels: r
                    .kernels
                    .into_iter()
                    .map(KernelDescriptor::try_from)
                    .collect::<Result<_, _>>()
                    .map_err(|e| SpecError::Invalid(format!("bad kernel descriptor: {e}")))?,
                name: r.name,
                hostname: r.hostname,
                pid: r.pid,
                restarts: r.restarts,
                allocation: r.allocation,
                labels: r.labels.into_iter().collect(),
            }),
            Out::Heartbeat(_) => ToMaster::Heartbeat,
            Out::Results(batch) => {
                ToMaster::Results(Results::from_wire(batch, ShardOutcome::of_done)?)
            }
            Out::Draining(_) => ToMaster::Draining,
            Out::Refused(r) => ToMaster::Refused { job_id: r.job_id, reason: r.reason },
            Out::FetchModule(f) => ToMaster::FetchModule(f.sha256),
        })
    }
}

/// One shard's outcome off the wire. Public on its own so that a receiver can turn a bad
/// outcome into a failed shard rather than refuse the whole batch.
impl TryFrom<Option<Outcome>> for ShardOutcome {
    type Error = SpecError;

    fn try_from(outcome: Option<Outcome>) -> Result<Self, SpecError> {
        match outcome {
            Some(Outcome::Output(o)) => Output::try_from(o)
                .map(ShardOutcome::Done)
                .map_err(|e| SpecError::Invalid(format!("malformed output: {e}"))),
            Some(Outcome::Error(e)) => Ok(ShardOutcome::Failed(e)),
            Some(Outcome::Cancelled(_)) => Ok(ShardOutcome::Cancelled),
            None => Err(invalid("shard result has no outcome")),
        }
    }
}

mod wire_len;

#[cfg(test)]
mod tests;
