//! `--verify N`: a deterministic sample of N % of a job's shards runs twice, on two different
//! workers. The first accepted output is held, not counted; a copy of the shard waits for any
//! other worker. Equal outputs count the shard once; different ones fail the job naming the
//! shard and both workers. A copy waits as long as no other worker offers the kind.

use super::{JobId, WorkerId};
use farm_proto::Output;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Outputs of a Debug rendering longer than this are cut in the job's error.
const SHOWN: usize = 80;

/// Whether `shard` of `job` is in the sample of `percent` % that is run twice. A hash of both,
/// so the sample is spread over the job and the same on every run of the master.
pub(crate) fn sampled(job: JobId, shard: u64, percent: u32) -> bool {
    if percent == 0 {
        return false;
    }
    // splitmix64's finaliser: cheap, and every input bit reaches every output bit.
    let mut x = job.rotate_left(32) ^ shard;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    x % 100 < u64::from(percent)
}

/// A first output held until a copy of its shard ran elsewhere.
#[derive(Debug)]
struct Held {
    /// The worker that produced it, which must not run the copy.
    worker: WorkerId,
    /// Its name, for the error: it may be gone by the time the copy answers.
    name: String,
    /// The output, compared with the copy's.
    output: Output,
}

/// One job's verification state: the held outputs and the copies waiting for a worker.
#[derive(Debug, Default)]
pub(crate) struct Verify {
    /// Per shard: its first output.
    held: HashMap<u64, Held>,
    /// Copies waiting, keyed by the worker that must not run them.
    waiting: BTreeMap<WorkerId, VecDeque<u64>>,
    /// Copies waiting in all.
    count: usize,
}

/// What a Done outcome of a sampled shard comes to.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Count it: it was the copy and agreed, or the shard is not sampled.
    Accept(Output),
    /// Held: a copy now waits for another worker.
    Held,
    /// The copy disagreed: fail the job with this message.
    Mismatch(String),
}

impl Verify {
    /// Copies waiting for a worker.
    pub fn waiting(&self) -> usize {
        self.count
    }

    /// Whether `shard` has a held output, so a rerun of it is a copy.
    pub fn is_copy(&self, shard: u64) -> bool {
        self.held.contains_key(&shard)
    }

    /// Puts the copy of `shard` (which has a held output) back in the waiting queue.
    pub fn requeue(&mut self, shard: u64) {
        if let Some(h) = self.held.get(&shard) {
            self.waiting.entry(h.worker).or_default().push_back(shard);
            self.count += 1;
        }
    }

    /// A waiting copy that `worker` may run: one whose first output came from another worker.
    pub fn take_for(&mut self, worker: WorkerId) -> Option<u64> {
        let (&key, queue) =
            self.waiting.iter_mut().find(|(k, q)| **k != worker && !q.is_empty())?;
        let shard = queue.pop_front();
        if queue.is_empty() {
            self.waiting.remove(&key);
        }
        self.count -= usize::from(shard.is_some());
        shard
    }

    /// `worker` (called `name`) returned `output` for `shard` (indices `lo..hi`).
    pub fn done(
        &mut self,
        shard: u64,
        (lo, hi): (u64, u64),
        (worker, name): (WorkerId, &str),
        output: Output,
    ) -> Verdict {
        match self.held.remove(&shard) {
            None => {
                let name = name.to_owned();
                self.held.insert(shard, Held { worker, name, output });
                self.requeue(shard);
                Verdict::Held
            }
            // The copy ran where the first did (it cannot be dispatched so): run it again.
            Some(first) if first.worker == worker => {
                self.held.insert(shard, first);
                self.requeue(shard);
                Verdict::Held
            }
            Some(first) if first.output == output => Verdict::Accept(output),
            Some(first) => Verdict::Mismatch(format!(
                "verification failed: shard {shard} (indices {lo}..{hi}) returned {} on worker \
                 {} ({}) but {} on worker {worker} ({name})",
                shown(&first.output),
                first.worker,
                first.name,
                shown(&output),
            )),
        }
    }
}

/// An output for an error message, cut short.
fn shown(output: &Output) -> String {
    let text = format!("{output:?}");
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}
