//! The result batch a session is filling: the pool's reports since the last one went out,
//! bounded in entries and in bytes so that a message always fits the transport.

use crate::pool::Finished;
use crate::sdk::KernelError;
use farm_proto::session::{JobCost, Results, ShardOutcome, ShardRun};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Most entries (outcomes and starts) sent in one result message.
pub(super) const MAX_BATCH: usize = 4096;
/// A result message stops growing past this many bytes; with each output at most twice this,
/// a message stays under the transport's limit.
pub(super) const BATCH_BYTES: usize = farm_proto::MAX_MESSAGE_BYTES / 4;
/// A shard whose output is larger fails instead (it could not be sent).
pub(super) const MAX_OUTPUT_BYTES: usize = crate::sdk::MAX_OUTPUT_BYTES;
/// An upper bound on what an entry costs beside its outcome: its key, length, job and shard.
const ENTRY_BYTES: usize = 24;

/// Reports not yet sent.
#[derive(Debug, Default)]
pub(super) struct Batch {
    /// Finished shards, in the order they finished.
    done: Vec<(u64, u64, ShardOutcome)>,
    /// Shards that started; those that also finish before the batch goes out are dropped.
    started: Vec<(u64, u64)>,
    /// How finished shards ran, for their logs.
    runs: Vec<ShardRun>,
    /// Per job, what the finished shards cost the pool (few jobs at a time: a short list).
    costs: Vec<JobCost>,
    /// Bytes the batch will take on the wire, about.
    bytes: usize,
    /// When the oldest report in it arrived: it waits at most the coalescing delay from then.
    opened: Option<Instant>,
}

impl Batch {
    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.opened.is_none()
    }

    /// When the oldest waiting report arrived.
    pub fn opened(&self) -> Option<Instant> {
        self.opened
    }

    /// Whether the batch must go out now, however much work is queued.
    pub fn is_full(&self) -> bool {
        self.done.len() + self.started.len() >= MAX_BATCH || self.bytes >= BATCH_BYTES
    }

    /// A shard started running.
    pub fn started(&mut self, now: Instant, job_id: u64, shard: u64) {
        self.opened.get_or_insert(now);
        self.started.push((job_id, shard));
        self.bytes += ENTRY_BYTES;
    }

    /// A shard ran for `busy` on a pool thread (reported before it is [`Batch::finished`]).
    pub fn cost(&mut self, job_id: u64, busy: Duration) {
        let busy_ns = u64::try_from(busy.as_nanos()).unwrap_or(u64::MAX);
        match self.costs.iter_mut().find(|c| c.job_id == job_id) {
            Some(c) => {
                c.runs += 1;
                c.busy_ns = c.busy_ns.saturating_add(busy_ns);
            }
            None => {
                self.bytes += ENTRY_BYTES;
                self.costs.push(JobCost { job_id, runs: 1, busy_ns });
            }
        }
    }

    /// A shard ended (or was never run).
    pub fn finished(&mut self, now: Instant, job_id: u64, shard: u64, outcome: ShardOutcome) {
        self.opened.get_or_insert(now);
        self.bytes += ENTRY_BYTES + outcome.encoded_len();
        self.done.push((job_id, shard, outcome));
    }

    /// How a shard that finishes (reported next with [`Batch::finished`]) ran.
    pub fn run(&mut self, run: ShardRun) {
        self.bytes += run.encoded_len();
        self.runs.push(run);
    }

    /// Everything waiting, as one message; the batch is empty again. A shard that started and
    /// finished within the batch is reported done only, so short shards cost nothing extra.
    pub fn take(&mut self) -> Results {
        let Batch { done, mut started, runs, costs, .. } = std::mem::take(self);
        if !started.is_empty() && !done.is_empty() {
            let finished: HashSet<(u64, u64)> = done.iter().map(|d| (d.0, d.1)).collect();
            started.retain(|s| !finished.contains(s));
        }
        Results { done, started, runs, costs }
    }
}

/// What the master is told about a shard the pool ran: an output too large to send fails it.
pub(super) fn outcome(finished: Finished) -> ShardOutcome {
    match finished.outcome {
        Ok(output) => {
            let outcome = ShardOutcome::Done(output);
            let size = outcome.encoded_len();
            if size > MAX_OUTPUT_BYTES {
                ShardOutcome::Failed(format!(
                    "output of {size} bytes is over the {MAX_OUTPUT_BYTES}-byte limit for one shard; use smaller shards"
                ))
            } else {
                outcome
            }
        }
        Err(KernelError::Cancelled) => ShardOutcome::Cancelled,
        Err(KernelError::BadParam(e) | KernelError::BadInput(e)) => ShardOutcome::Invalid(e),
        Err(e) => ShardOutcome::Failed(e.to_string()),
    }
}
