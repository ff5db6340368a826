//! The journal: every submission, accepted shard outcome and job end, in one redb database
//! (`farm master --journal PATH`; without it, a temporary file removed at once, so there is
//! one storage path either way). Tables:
//!
//! - `meta`: `next_job` (job ids never repeat) and `schema` (the layout's version);
//! - `jobs`: job id → the job's record (`codec.rs`: output shape and submit time while the
//!   job goes; its summary once it ended);
//! - `outcomes`: (job id, first shard) → `pb::JournalOutcomes`: the accepted `Done` outputs of
//!   one job in one group commit (one record per job per commit, not per shard: a million
//!   noop shards cost a few hundred inserts), dropped when the job ends (its result is in its
//!   final status then). Count and fraction outputs only;
//! - `list_outputs`: (job id, shard) → `pb::ShardOutput`: each accepted list output (lines,
//!   rows, exec runs), kept after the job ends (a large list result lives only here) and
//!   dropped when retention forgets the job;
//! - `logs`: (job id, shard) → `pb::ShardLog`: each kept shard's last run and log (`logs.rs`
//!   reads them back), dropped when retention forgets the job.
//! - `modules`: SHA-256 (64 hex digits) → a module's bytes (`modules.rs`; the index and
//!   its byte bound are `crate::modules`);
//! - `module_formats`: SHA-256 → the format of a module that is not wasm (a pickle).
//!
//! [`open`] replays the journal into a new core before the master serves; `writer.rs` is the
//! OS thread that group-commits what the core journals; `results.rs` reads list results back;
//! `replay.rs` reads a job's accepted shard outputs for a watcher that asks for them.

mod codec;
mod logs;
mod modules;
mod replay;
mod results;
mod writer;

use crate::clock::unix_ms;
use crate::core::{Core, CoreConfig, JobId, JobView, JournalOp, Outbox, Submission};
use crate::MasterError;
use farm_proto::{pb, Output};
use prost::Message;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
pub use replay::Snapshot;
pub use results::{Store, CHUNK_BYTES, CHUNK_ITEMS};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::info;
pub use writer::{Backlog, Journal, JournalTx, BACKLOG_BYTES};

/// Counters: `next_job`, `schema`.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Job id → a job's record (`codec::JobRecord`).
const JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("jobs");
/// Job id → its spec as submitted (an encoded `pb::JobSpec`, inputs included), while it runs:
/// apart from `jobs`, so a large submission is written once and never decoded again to update
/// its job's record.
const SPECS: TableDefinition<u64, &[u8]> = TableDefinition::new("specs");
/// (job id, shard) → `pb::ShardOutput`.
const OUTCOMES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("outcomes");
/// (job id, shard) → `pb::ShardOutput` of a list output.
const LIST_OUTPUTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("list_outputs");
/// (job id, shard) → `pb::ShardLog`: the shard's last run and what it logged. Added to
/// schema 3 without a bump: `init` creates it in older files.
const LOGS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("logs");
/// SHA-256 (hex) → a module's bytes.
const MODULES: TableDefinition<&str, &[u8]> = TableDefinition::new("modules");
/// SHA-256 (hex) → its `pb::ModuleFormat` number, for modules that are not wasm (no row: wasm).
const MODULE_FORMATS: TableDefinition<&str, u32> = TableDefinition::new("module_formats");
/// Bytes of pages redb caches in the master's memory (its default is 1 GiB): the store holds
/// results of any size, and reading or writing one must not grow the master by its size.
const CACHE_BYTES: usize = 16 << 20;
/// The layout this master writes and reads.
const SCHEMA: u64 = 3;

/// What a replay found, for the log and the benchmarks.
#[derive(Debug, Clone, Default)]
pub struct Replayed {
    /// Ended jobs restored as summaries.
    pub ended: usize,
    /// Jobs not yet ended, queued again.
    pub resumed: usize,
    /// Committed outcomes counted done.
    pub outcomes: u64,
    /// How long opening and replaying took.
    pub took: Duration,
    /// The modules the resumed jobs run (a wasm job's module, a python job's function):
    /// (job, module hash), so none is evicted.
    pub modules: Vec<(JobId, String)>,
}

/// Opens the journal at `path` (created if missing) or, without one, a temporary store;
/// replays it into a core with `config`, and starts the writer thread. Blocking: call it off
/// the async runtime.
pub fn open(
    path: Option<&Path>,
    config: CoreConfig,
) -> Result<(Core, Journal, Replayed), MasterError> {
    let started = Instant::now();
    let db = match path {
        Some(p) => journal_file(p)?,
        None => temporary()?,
    };
    init(&db).map_err(fail)?;
    let mut core = Core::new(config);
    let mut ops = Collect::default();
    let mut replayed = replay(&db, &mut core, &mut ops)?;
    let journal = Journal::start(Arc::new(db), path.is_some());
    journal.sender().send_all(ops.0);
    replayed.took = started.elapsed();
    if let Some(p) = path {
        info!(
            path = %p.display(), ended = replayed.ended, resumed = replayed.resumed,
            outcomes = replayed.outcomes, took_ms = replayed.took.as_millis() as u64,
            "journal replayed"
        );
    }
    Ok((core, journal, replayed))
}

fn fail(e: redb::Error) -> MasterError {
    MasterError::Journal(e.to_string())
}

fn corrupt(what: impl std::fmt::Display) -> MasterError {
    MasterError::Journal(format!("a record does not decode: {what}"))
}

/// The journal at `path`: 0600, never through a symlink, its directory created 0700 if
/// missing (see [`crate::private`]).
fn journal_file(path: &Path) -> Result<Database, MasterError> {
    let io = |e: std::io::Error| MasterError::Journal(format!("journal: {e}"));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        crate::private::private_dir(dir).map_err(io)?;
    }
    with_file(crate::private::open_private(path).map_err(io)?)
}

/// A store no other user can open: a 0600 file created in a fresh 0700 directory and
/// unlinked at once, with its directory, so nothing is left behind, even after a kill.
fn temporary() -> Result<Database, MasterError> {
    let prefix = format!("farm-store-{}-", std::process::id());
    let file = crate::private::scratch_file(&std::env::temp_dir(), &prefix)
        .map_err(|e| MasterError::Journal(format!("temporary store: {e}")))?;
    with_file(file)
}

/// A store in `file` (new or existing).
fn with_file(file: std::fs::File) -> Result<Database, MasterError> {
    let backend = redb::backends::FileBackend::new(file).map_err(|e| fail(e.into()))?;
    redb::Builder::new()
        .set_cache_size(CACHE_BYTES)
        .create_with_backend(backend)
        .map_err(|e| fail(e.into()))
}

/// Creates the tables and checks (or sets) the schema version.
fn init(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        let schema = meta.get("schema")?.map(|v| v.value());
        match schema {
            None => {
                meta.insert("schema", SCHEMA)?;
            }
            Some(SCHEMA) => {}
            Some(other) => {
                let msg = format!("schema version {other}, this master reads {SCHEMA}");
                return Err(redb::Error::Corrupted(msg));
            }
        }
        txn.open_table(JOBS)?;
        txn.open_table(SPECS)?;
        txn.open_table(OUTCOMES)?;
        txn.open_table(LIST_OUTPUTS)?;
        txn.open_table(LOGS)?;
        txn.open_table(MODULES)?;
        txn.open_table(MODULE_FORMATS)?;
    }
    txn.commit()?;
    Ok(())
}

/// Rebuilds the core: the id counter, every job (ended ones as summaries), then every
/// committed outcome in (job, shard) order; jobs that turn out complete end.
fn replay(db: &Database, core: &mut Core, out: &mut Collect) -> Result<Replayed, MasterError> {
    let now = Instant::now();
    let wall = unix_ms();
    let mut replayed = Replayed::default();
    let read = db.begin_read().map_err(|e| fail(e.into()))?;
    let meta = read.open_table(META).map_err(|e| fail(e.into()))?;
    if let Some(next) = meta.get("next_job").map_err(|e| fail(e.into()))? {
        core.restore_next_job(next.value());
    }
    let mut resumed = Vec::new();
    let jobs = read.open_table(JOBS).map_err(|e| fail(e.into()))?;
    let specs = read.open_table(SPECS).map_err(|e| fail(e.into()))?;
    for row in jobs.iter().map_err(|e| fail(e.into()))? {
        let (id, bytes) = row.map_err(|e| fail(e.into()))?;
        let id = id.value();
        let rec = codec::JobRecord::decode(bytes.value())
            .map_err(|e| corrupt(format!("job {id}: {e}")))?;
        if let Some(summary) = rec.ended {
            let view = codec::decode_summary(id, summary, wall).map_err(corrupt)?;
            core.restore_ended(view, now, out);
            replayed.ended += 1;
            continue;
        }
        let spec = specs.get(id).map_err(|e| fail(e.into()))?;
        let spec = spec.as_ref().map_or(&[][..], |s| s.value());
        let spec = codec::decode_spec(spec).map_err(|e| corrupt(format!("job {id}: {e}")))?;
        let output = rec.output().ok_or_else(|| corrupt(format!("job {id}: output shape")))?;
        let age = Duration::from_millis(wall.saturating_sub(rec.submitted_unix_ms));
        let submitted = now.checked_sub(age).unwrap_or(now);
        if let Some(hash) = crate::modules::module_of(&spec.kind, &spec.params) {
            replayed.modules.push((id, hash.to_string()));
        }
        core.restore_job(id, Submission::restored(spec), output, submitted);
        resumed.push(id);
    }
    replayed.resumed = resumed.len();
    replayed.outcomes = replay_outcomes(&read, core, now, out)?;
    replayed.outcomes += replay_lists(&read, &resumed, core, now, out)?;
    core.restore_finish(now, out);
    Ok(replayed)
}

/// Counts done every committed count or fraction outcome of a job still going.
fn replay_outcomes(
    read: &redb::ReadTransaction,
    core: &mut Core,
    now: Instant,
    out: &mut Collect,
) -> Result<u64, MasterError> {
    let mut restored = 0;
    let outcomes = read.open_table(OUTCOMES).map_err(|e| fail(e.into()))?;
    for row in outcomes.iter().map_err(|e| fail(e.into()))? {
        let (key, bytes) = row.map_err(|e| fail(e.into()))?;
        let (job, first) = key.value();
        let bad = |e: String| corrupt(format!("outcomes of job {job} from shard {first}: {e}"));
        let run = pb::JournalOutcomes::decode(bytes.value()).map_err(|e| bad(e.to_string()))?;
        if run.shard_deltas.len() != run.outputs.len() {
            return Err(bad("shards and outputs differ in number".into()));
        }
        let mut shard = first;
        for (delta, output) in run.shard_deltas.into_iter().zip(run.outputs) {
            shard = shard.wrapping_add(delta as u64);
            let output = Output::try_from(output).map_err(|e| bad(e.to_string()))?;
            if core.restore_outcome(job, shard, &output, now, out) {
                restored += 1;
            }
        }
    }
    Ok(restored)
}

/// Counts done every committed list output of the jobs still going (`resumed`); those of
/// ended jobs stay on disk for `Results`, unread.
fn replay_lists(
    read: &redb::ReadTransaction,
    resumed: &[JobId],
    core: &mut Core,
    now: Instant,
    out: &mut Collect,
) -> Result<u64, MasterError> {
    let mut restored = 0;
    let lists = read.open_table(LIST_OUTPUTS).map_err(|e| fail(e.into()))?;
    for &job in resumed {
        for row in lists.range((job, 0)..=(job, u64::MAX)).map_err(|e| fail(e.into()))? {
            let (key, bytes) = row.map_err(|e| fail(e.into()))?;
            let shard = key.value().1;
            let bad = |e: String| corrupt(format!("list output of job {job} shard {shard}: {e}"));
            let output = pb::ShardOutput::decode(bytes.value()).map_err(|e| bad(e.to_string()))?;
            let output = Output::try_from(output).map_err(|e| bad(e.to_string()))?;
            if core.restore_outcome(job, shard, &output, now, out) {
                restored += 1;
            }
        }
    }
    Ok(restored)
}

/// The outbox of a replay: keeps the journal ops it causes (jobs found complete end, ended
/// jobs past retention are forgotten) for the writer; no worker or watcher exists yet.
#[derive(Default)]
struct Collect(Vec<JournalOp>);

impl Outbox for Collect {
    fn journal(&mut self, op: JournalOp) {
        self.0.push(op);
    }
    // No worker is connected during a replay, so nothing goes to one.
    fn assign(
        &mut self,
        _: crate::core::WorkerId,
        _: Vec<crate::core::JobDef>,
        _: Vec<crate::core::ShardTask>,
    ) {
    }
    fn cancel_job(&mut self, _: crate::core::WorkerId, _: JobId) {}
    fn forget_job(&mut self, _: crate::core::WorkerId, _: JobId) {}
    fn drop_worker(&mut self, _: crate::core::WorkerId, _: &str) {}
    fn drain_worker(&mut self, _: crate::core::WorkerId) {}
    // No client watches yet: results are read from the store, views from the core.
    fn shard_output(&mut self, _: JobId, _: u64, _: &Output) {}
    fn job_changed(&mut self, _: &JobView) {}
    // Metrics count the shards of this run only.
    fn counted(&mut self, _: JobId, _: &str, _: crate::core::Counted) {}
}

#[cfg(test)]
mod tests;
