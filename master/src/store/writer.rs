//! The journal's writer: one OS thread (never the core's task, never a tokio worker) that
//! takes whatever ops are queued (at most [`GROUP`]), applies them in one write transaction
//! and commits: a group commit per burst of result batches, a few milliseconds apart at most
//! under load. With `--journal` each commit is durable (fsync, redb's `Immediate`); the
//! temporary store commits without syncing, with a durable commit now and then so redb can
//! reuse freed pages. Barriers queued behind ops complete once the commit holding those ops
//! is done: a submit is acknowledged only then. A snapshot request ends its group: the ops
//! queued before it are committed, and a read of exactly that state is handed back (a
//! watcher's replay, `replay.rs`).

use super::codec::{encode_spec, encode_summary, JobRecord};
use super::replay::Snapshot;
use super::results::SharedTx;
use super::{unix_ms, Store, StoreError, JOBS, LIST_OUTPUTS, LOGS, META, OUTCOMES, SPECS};
use crate::core::{JobId, JournalOp};
use farm_proto::{pb, Output};
use prost::Message;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, Table, WriteTransaction};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tracing::{debug, error};

/// Most queued messages applied in one transaction, so a commit's latency stays bounded.
const GROUP: usize = 65_536;

/// How often the temporary store commits durably, letting redb reuse the pages it freed.
const TEMP_SYNC: Duration = Duration::from_secs(1);

/// What the writer thread receives.
enum Msg {
    /// Record this; it holds about this many bytes (counted once, by the sender).
    Op(JournalOp, usize),
    /// Record these, in order (what one batch of the core's task journaled), and their bytes.
    Ops(Vec<JournalOp>, usize),
    /// Answer once everything queued before is committed (or failed to be).
    Barrier(oneshot::Sender<Result<(), StoreError>>),
    /// Commit everything queued before, then answer with a read of exactly that state.
    Snapshot(oneshot::Sender<Result<Snapshot, StoreError>>),
}

/// The journal's sending side: cheap to clone, never blocks (the queue is unbounded; the
/// writer drains it in groups). The thread ends, after committing what is queued, when every
/// sender is gone.
#[derive(Clone)]
pub struct JournalTx(Option<mpsc::Sender<Msg>>, Arc<Backlog>);

/// Bytes queued for the writer and not yet committed. The queue itself never blocks (the
/// core's task must not wait), so the bound is applied upstream: session readers wait for
/// room ([`Backlog::room`]) before handing a worker's results to the core, which slows the
/// workers through HTTP/2 flow control when the disk falls behind.
#[derive(Debug)]
pub struct Backlog {
    bytes: std::sync::atomic::AtomicUsize,
    freed: tokio::sync::Notify,
    /// How long each group commit took (the master's metrics export it).
    pub commits: prometheus_client::metrics::histogram::Histogram,
}

impl Default for Backlog {
    fn default() -> Self {
        Backlog {
            bytes: Default::default(),
            freed: Default::default(),
            commits: crate::metrics::commit_histogram(),
        }
    }
}

/// Bytes the writer may have queued before session readers wait.
pub const BACKLOG_BYTES: usize = 32 << 20;

impl Backlog {
    fn add(&self, n: usize) {
        self.bytes.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    fn release(&self, n: usize) {
        self.bytes.fetch_sub(n, std::sync::atomic::Ordering::Relaxed);
        self.freed.notify_waiters();
    }

    /// Bytes queued now.
    pub fn bytes(&self) -> usize {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Resolves once at most [`BACKLOG_BYTES`] are queued.
    pub async fn room(&self) {
        loop {
            let freed = self.freed.notified();
            if self.bytes() <= BACKLOG_BYTES {
                return;
            }
            freed.await;
        }
    }
}

/// About how many bytes an op holds while it waits for the writer.
fn op_bytes(op: &JournalOp) -> usize {
    match op {
        JournalOp::Submit { spec, .. } => spec.bytes(),
        JournalOp::Outcome { output, .. } => match output {
            farm_proto::Output::Lines(lines) => lines.iter().map(|l| l.len() + 24).sum(),
            farm_proto::Output::Rows(rows) => rows.iter().map(|r| r.len() * 4 + 24).sum(),
            farm_proto::Output::Exec(runs) => runs.iter().map(|r| r.stdout.len() + 32).sum(),
            _ => 16,
        },
        JournalOp::End(_) | JournalOp::Forget(_) => 64,
        JournalOp::ShardLog { log, .. } => log.bytes(),
    }
}

impl JournalTx {
    /// Queues an op for the next group commit.
    pub fn send(&self, op: JournalOp) {
        // A writer that is gone (it only ends when the master stops) loses nothing it could
        // have kept: the master is going down.
        if let Some(tx) = &self.0 {
            let bytes = op_bytes(&op);
            self.1.add(bytes);
            let _ = tx.send(Msg::Op(op, bytes));
        }
    }

    /// Queues ops for the next group commit, in order, as one message: the core's task sends
    /// what a whole batch journaled at once rather than a message per shard.
    pub fn send_all(&self, ops: Vec<JournalOp>) {
        if let Some(tx) = &self.0 {
            let bytes = ops.iter().map(op_bytes).sum();
            self.1.add(bytes);
            let _ = tx.send(Msg::Ops(ops, bytes));
        }
    }

    /// What the writer has queued and not yet committed.
    pub fn backlog(&self) -> Arc<Backlog> {
        self.1.clone()
    }

    /// Resolves once every op queued before this call is committed; an error says why the
    /// commit failed (or that the writer is gone).
    pub fn barrier(&self) -> oneshot::Receiver<Result<(), StoreError>> {
        let (tx, rx) = oneshot::channel();
        match &self.0 {
            Some(journal) => {
                let _ = journal.send(Msg::Barrier(tx));
            }
            None => {
                let _ = tx.send(Ok(()));
            }
        }
        rx
    }

    /// Resolves with a read of the store holding every op queued before this call and none
    /// queued after; an error says why there is none.
    pub fn snapshot(&self) -> oneshot::Receiver<Result<Snapshot, StoreError>> {
        let (tx, rx) = oneshot::channel();
        match &self.0 {
            Some(journal) => {
                let _ = journal.send(Msg::Snapshot(tx));
            }
            None => {
                let _ = tx.send(Err(StoreError::Closed("the master keeps no store".into())));
            }
        }
        rx
    }

    /// A journal that keeps nothing and answers barriers at once: for tests of the core's
    /// task under paused time, which a thread's answer would let jump ahead.
    #[cfg(test)]
    pub(crate) fn null() -> Self {
        JournalTx(None, Arc::default())
    }
}

/// The journal: its sender and the writer thread.
pub struct Journal {
    /// Where ops go.
    tx: JournalTx,
    /// The database, shared with readers of list results.
    db: Arc<Database>,
    /// The queue as readers hold it (for barriers), emptied by [`Journal::close`].
    shared: SharedTx,
    /// The writer thread, joined by [`Journal::close`].
    thread: JoinHandle<()>,
}

impl Journal {
    /// Starts the writer thread on `db`; `durable` commits sync to disk.
    pub(super) fn start(db: Arc<Database>, durable: bool) -> Self {
        let (tx, rx) = mpsc::channel();
        let writing = db.clone();
        let backlog = Arc::new(Backlog::default());
        let draining = backlog.clone();
        let thread = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || run(&writing, rx, durable, &draining))
            .unwrap_or_else(|e| panic!("cannot start the journal thread: {e}"));
        let tx = JournalTx(Some(tx), backlog);
        let shared = Arc::new(Mutex::new(Some(tx.clone())));
        Journal { tx, db, shared, thread }
    }

    /// A read handle for the `Results` RPC.
    pub fn store(&self) -> Store {
        Store::new(self.db.clone(), self.shared.clone())
    }

    /// A sender for the core's task.
    pub fn sender(&self) -> JournalTx {
        self.tx.clone()
    }

    /// Queues an op.
    pub fn send(&self, op: JournalOp) {
        self.tx.send(op);
    }

    /// Drops this sender and waits for the thread, which ends once every other sender is
    /// gone and what they queued is committed. Blocking.
    pub fn close(self) {
        drop(self.tx);
        drop(self.db);
        if let Ok(mut shared) = self.shared.lock() {
            shared.take();
        }
        let _ = self.thread.join();
    }
}

/// The writer loop: one group commit per burst of queued messages.
fn run(db: &Database, rx: mpsc::Receiver<Msg>, durable: bool, backlog: &Backlog) {
    let mut synced = Instant::now();
    let mut ops = Vec::new();
    let mut barriers = Vec::new();
    let mut snapshots = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let mut bytes = 0;
        while let Some(msg) = next.take() {
            if let Msg::Snapshot(s) = msg {
                // Nothing queued after it may be in its read: the group ends here.
                snapshots.push(s);
                break;
            }
            match msg {
                Msg::Op(op, n) => {
                    bytes += n;
                    ops.push(op)
                }
                Msg::Ops(more, n) => {
                    bytes += n;
                    ops.extend(more)
                }
                Msg::Barrier(b) => barriers.push(b),
                Msg::Snapshot(_) => {}
            }
            if ops.len() + barriers.len() < GROUP {
                next = rx.try_recv().ok();
            }
        }
        let sync = durable || synced.elapsed() >= TEMP_SYNC;
        let started = Instant::now();
        let result = commit(db, &mut ops, sync).map_err(|e| StoreError::Commit(e.to_string()));
        if sync {
            synced = Instant::now();
        }
        backlog.commits.observe(started.elapsed().as_secs_f64());
        match &result {
            Ok(n) => {
                let took_us = started.elapsed().as_micros() as u64;
                debug!(ops = n, took_us, durable = sync, "journal group committed");
            }
            Err(e) => error!(error = %e, "journal commit failed"),
        }
        backlog.release(bytes);
        for b in barriers.drain(..) {
            let _ = b.send(result.clone().map(|_| ()));
        }
        for s in snapshots.drain(..) {
            let read = db.begin_read().map(Snapshot).map_err(|e| StoreError::Io(e.to_string()));
            let _ = s.send(result.clone().and(read));
        }
        ops.clear();
    }
    debug!("journal writer stopped");
}

/// Applies `ops` in one write transaction and commits it (durably if `sync`).
fn commit(db: &Database, ops: &mut Vec<JournalOp>, sync: bool) -> Result<usize, redb::Error> {
    let n = ops.len();
    let submitted: usize = ops
        .iter()
        .map(|op| match op {
            JournalOp::Submit { spec, .. } => spec.bytes(),
            _ => 0,
        })
        .sum();
    let mut txn = db.begin_write()?;
    txn.set_durability(if sync { Durability::Immediate } else { Durability::None })?;
    apply(&txn, ops.drain(..))?;
    txn.commit()?;
    // A large submission's record and redb's pages for it are freed now; hand the memory
    // back rather than keep this thread's arena at its peak.
    if submitted > 1 << 20 {
        crate::arenas::give_back_freed_memory();
    }
    Ok(n)
}

/// Writes each op into the transaction's tables.
fn apply(txn: &WriteTransaction, ops: impl Iterator<Item = JournalOp>) -> Result<(), redb::Error> {
    let mut meta = txn.open_table(META)?;
    let mut jobs = txn.open_table(JOBS)?;
    let mut specs = txn.open_table(SPECS)?;
    let mut outcomes = txn.open_table(OUTCOMES)?;
    let mut lists = txn.open_table(LIST_OUTPUTS)?;
    let mut logs = txn.open_table(LOGS)?;
    let mut next_job = meta.get("next_job")?.map_or(1, |v| v.value());
    let mut runs: std::collections::BTreeMap<JobId, Vec<_>> = Default::default();
    for op in ops {
        match op {
            JournalOp::Submit { job, spec, output, owner } => {
                specs.insert(job, encode_spec(spec).as_slice())?;
                let rec = JobRecord::submitted(output, unix_ms(), &owner);
                jobs.insert(job, rec.encode_to_vec().as_slice())?;
                next_job = next_job.max(job + 1);
            }
            JournalOp::Outcome { job, shard, output } if is_list(&output) => {
                let output = pb::ShardOutput::from(output);
                lists.insert((job, shard), output.encode_to_vec().as_slice())?;
            }
            JournalOp::Outcome { job, shard, output } => {
                runs.entry(job).or_default().push((shard, output));
            }
            JournalOp::End(view) => {
                let id = view.id;
                // Its counted outcomes go with it (the summary holds their sum); its list
                // outputs stay, for `Results`, until retention forgets the job.
                runs.remove(&id);
                let mut rec = jobs
                    .get(id)?
                    .and_then(|v| JobRecord::decode(v.value()).ok())
                    .unwrap_or_default();
                specs.remove(id)?;
                rec.ended = Some(encode_summary(view, unix_ms()));
                jobs.insert(id, rec.encode_to_vec().as_slice())?;
                drop_job_rows(&mut outcomes, id)?;
            }
            JournalOp::Forget(id) => {
                runs.remove(&id);
                jobs.remove(id)?;
                specs.remove(id)?;
                drop_job_rows(&mut outcomes, id)?;
                drop_job_rows(&mut lists, id)?;
                drop_job_rows(&mut logs, id)?;
            }
            JournalOp::ShardLog { job, log } => {
                let shard = log.shard;
                let mut log = pb::ShardLog::from(log);
                // A later run of the shard replaces its record; the earlier runs stay in it,
                // without their logs, for the joblog's row per run.
                if let Some(old) = logs.get((job, shard))? {
                    if let Ok(old) = pb::ShardLog::decode(old.value()) {
                        log.earlier = earlier_runs(old);
                    }
                }
                logs.insert((job, shard), log.encode_to_vec().as_slice())?;
            }
        }
    }
    for (job, run) in runs {
        let (key, record) = run_record(run);
        outcomes.insert((job, key), record.encode_to_vec().as_slice())?;
    }
    meta.insert("next_job", next_job)?;
    Ok(())
}

/// One commit's outcomes of one job as a record, keyed by its first shard (unique: a shard's
/// outcome is committed at most once).
fn run_record(run: Vec<(u64, farm_proto::Output)>) -> (u64, pb::JournalOutcomes) {
    let first = run.first().map_or(0, |(shard, _)| *shard);
    let mut prev = first;
    let mut record = pb::JournalOutcomes::default();
    for (shard, output) in run {
        record.shard_deltas.push(shard.wrapping_sub(prev) as i64);
        record.outputs.push(output.into());
        prev = shard;
    }
    (first, record)
}

/// Most earlier runs a shard's record keeps (a shard runs at most `MAX_RETRIES` + 1 times
/// for failures, a few more for lost workers and `--verify`); the oldest go first.
const EARLIER_RUNS: usize = 128;
/// Bytes of an earlier run's error kept.
const EARLIER_ERROR_BYTES: usize = 256;

/// The runs a shard's record `old` holds, oldest first, as the earlier runs of its next one:
/// bounded in number and bytes, logs left out.
fn earlier_runs(mut old: pb::ShardLog) -> Vec<pb::ShardLog> {
    let mut earlier = std::mem::take(&mut old.earlier);
    old.log = String::new();
    old.error = farm_proto::kernel::truncate(&old.error, EARLIER_ERROR_BYTES);
    earlier.push(old);
    let extra = earlier.len().saturating_sub(EARLIER_RUNS);
    earlier.drain(..extra);
    earlier
}

/// Whether an output is one of a list (kept in `list_outputs`, by shard).
fn is_list(output: &Output) -> bool {
    matches!(output, Output::Lines(_) | Output::Rows(_) | Output::Exec(_))
}

/// Removes every row of a job from a (job, shard) table: outcomes, list outputs or logs.
fn drop_job_rows(table: &mut Table<(u64, u64), &[u8]>, job: JobId) -> Result<(), redb::Error> {
    table.retain_in((job, 0)..=(job, u64::MAX), |_, _| false)?;
    Ok(())
}
