//! Reading a list job's result back from the store: its `list_outputs` rows in shard order
//! (so in index order), item by item from an offset, in chunks well under the message limit.
//! Runs on a blocking thread (never the core's task) and hands each chunk to a callback that
//! may block, so a slow reader holds the stream back instead of filling memory.

use super::{fail, JournalTx, StoreError, LIST_OUTPUTS};
use crate::core::JobId;
use farm_proto::{pb, Output};
use prost::Message;
use redb::{Database, ReadableDatabase};
use std::sync::{Arc, Mutex};

/// The writer's queue as readers hold it: taken away when the journal closes, so a reader
/// never keeps the writer thread alive.
pub(super) type SharedTx = Arc<Mutex<Option<JournalTx>>>;

/// Most items in one chunk.
pub const CHUNK_ITEMS: usize = 4096;

/// A chunk is sent once its items' JSON passes this many bytes (one item may pass it alone).
pub const CHUNK_BYTES: usize = 1 << 20;

/// A read handle on the store, for the `Results` RPC: cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// The database the writer thread commits to; reads run beside it (redb's MVCC).
    db: Arc<Database>,
    /// The writer's queue, for barriers: a read waits until what was journaled is committed.
    journal: SharedTx,
}

impl Store {
    /// A handle on `db`, whose writer takes `journal`.
    pub(super) fn new(db: Arc<Database>, journal: SharedTx) -> Self {
        Store { db, journal }
    }

    /// The database, for the readers beside this file.
    pub(super) fn db(&self) -> &Database {
        &self.db
    }

    /// Resolves once everything journaled before the call is committed (or failed to be).
    pub async fn committed(&self) -> Result<(), StoreError> {
        let barrier = match self.journal.lock() {
            Ok(tx) => tx.as_ref().map(JournalTx::barrier),
            Err(_) => None,
        };
        let gone = || StoreError::Closed("the journal's writer is gone".into());
        barrier.ok_or_else(gone)?.await.map_err(|_| gone())?
    }

    /// Sends job `job`'s list items from item `offset` on, each as JSON, in chunks, to `send`
    /// (false: the reader is gone, stop). `partial` (the job's shard count) also marks each
    /// shard without an output with one item, `{"missing_shard": N}`. Returns the items sent.
    /// Blocking: call it on a blocking thread.
    pub fn read_items(
        &self,
        job: JobId,
        offset: u64,
        partial: Option<u64>,
        send: impl FnMut(pb::ResultsChunk) -> bool,
    ) -> Result<u64, StoreError> {
        let read = self.db.begin_read().map_err(|e| fail(e.into()))?;
        let rows = read.open_table(LIST_OUTPUTS).map_err(|e| fail(e.into()))?;
        let mut chunks = Chunks {
            offset,
            index: 0,
            chunk: pb::ResultsChunk { offset, items_json: Vec::new() },
            bytes: 0,
            sent: 0,
            send,
        };
        // The next shard expected, to mark the ones without an output in a partial read.
        let mut next = 0u64;
        for row in rows.range((job, 0)..=(job, u64::MAX)).map_err(|e| fail(e.into()))? {
            let (key, value) = row.map_err(|e| fail(e.into()))?;
            let shard = key.value().1;
            if partial.is_some() && !chunks.missing(next..shard) {
                return Ok(chunks.sent);
            }
            next = shard + 1;
            let bad = |e: String| StoreError::Corrupt(format!("job {job} shard {shard}: {e}"));
            let output = pb::ShardOutput::decode(value.value()).map_err(|e| bad(e.to_string()))?;
            let output = Output::try_from(output).map_err(|e| bad(e.to_string()))?;
            let n = items(&output);
            if chunks.index + n <= offset {
                chunks.index += n;
                continue;
            }
            if !chunks.push_all(render(&output).map_err(bad)?) {
                return Ok(chunks.sent);
            }
        }
        if let Some(total) = partial {
            if !chunks.missing(next..total) {
                return Ok(chunks.sent);
            }
        }
        Ok(chunks.finish())
    }
}

/// Items on their way to a reader: skipped up to the offset, then gathered into chunks.
struct Chunks<F> {
    /// The first item the reader wants.
    offset: u64,
    /// The index of the next item.
    index: u64,
    /// The chunk being filled.
    chunk: pb::ResultsChunk,
    /// Bytes of JSON in it.
    bytes: usize,
    /// Items handed to `send` so far.
    sent: u64,
    /// Takes a full chunk; false when the reader has gone.
    send: F,
}

impl<F: FnMut(pb::ResultsChunk) -> bool> Chunks<F> {
    /// Adds one item (skipped before the offset); false when the reader has gone.
    fn push(&mut self, item: String) -> bool {
        self.index += 1;
        if self.index <= self.offset {
            return true;
        }
        self.bytes += item.len();
        self.chunk.items_json.push(item);
        if self.chunk.items_json.len() < CHUNK_ITEMS && self.bytes < CHUNK_BYTES {
            return true;
        }
        let next = self.chunk.offset + self.chunk.items_json.len() as u64;
        self.sent += self.chunk.items_json.len() as u64;
        let full = std::mem::replace(
            &mut self.chunk,
            pb::ResultsChunk { offset: next, items_json: Vec::new() },
        );
        self.bytes = 0;
        (self.send)(full)
    }

    /// Adds a shard's items; false when the reader has gone.
    fn push_all(&mut self, items: Vec<String>) -> bool {
        items.into_iter().all(|item| self.push(item))
    }

    /// Marks each shard of `shards` as missing; false when the reader has gone.
    fn missing(&mut self, shards: std::ops::Range<u64>) -> bool {
        shards.into_iter().all(|shard| self.push(format!(r#"{{"missing_shard":{shard}}}"#)))
    }

    /// Sends what is left; the items sent in all.
    fn finish(mut self) -> u64 {
        if !self.chunk.items_json.is_empty() {
            self.sent += self.chunk.items_json.len() as u64;
            (self.send)(self.chunk);
        }
        self.sent
    }
}

/// How many items a list output holds.
fn items(output: &Output) -> u64 {
    match output {
        Output::Lines(v) => v.len() as u64,
        Output::Rows(v) => v.len() as u64,
        Output::Exec(v) => v.len() as u64,
        Output::Count(_) | Output::Fraction { .. } => 0,
    }
}

/// Each item of a list output as JSON.
fn render(output: &Output) -> Result<Vec<String>, String> {
    let each = |r: serde_json::Result<String>| r.map_err(|e| e.to_string());
    match output {
        Output::Lines(v) => v.iter().map(|x| each(serde_json::to_string(x))).collect(),
        Output::Rows(v) => v.iter().map(|x| each(serde_json::to_string(x))).collect(),
        Output::Exec(v) => v.iter().map(|x| each(serde_json::to_string(x))).collect(),
        Output::Count(_) | Output::Fraction { .. } => Ok(Vec::new()),
    }
}
