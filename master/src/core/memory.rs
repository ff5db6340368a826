//! What the master's memory holds for jobs, counted in bytes: a job's input lines packed into
//! one buffer ([`Inputs`]), a submission with its inputs packed apart from its spec
//! ([`Submission`]), and the [`Meter`] of bytes held by jobs not yet ended, which submit and
//! every accumulator check against the memory budget.

use farm_proto::{JobSource, JobSpec};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// What one job costs beyond its inputs, params and result: its record, its view, its map
/// entries. Counted so that many tiny jobs weigh something too.
pub(crate) const JOB_OVERHEAD: usize = 1024;

/// Heap bytes one entry of a map or list costs beyond its text (its `String` header and the
/// allocator's rounding), so that a million one-byte entries are not counted as one megabyte.
pub(crate) const ENTRY_OVERHEAD: usize = 48;

/// Bytes as MiB with one decimal, for messages.
pub(crate) fn mib(bytes: usize) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// Bytes held by the jobs not yet ended: their packed inputs, params and accumulated list
/// outputs. The core and each live job's accumulator share it, so an accumulator can refuse an
/// output that would take the master over its budget without a call back into the core. Only
/// the core's task touches it; the atomic is there because the core must be `Send`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Meter(Arc<AtomicUsize>);

impl Meter {
    /// Bytes held now.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts `n` more bytes.
    pub fn add(&self, n: usize) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `n` bytes fewer.
    pub fn sub(&self, n: usize) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(n)));
    }
}

/// A job's input lines in one buffer with their end offsets. As a `Vec<String>`, a short line
/// costs about 56 bytes of heap (its header and an allocation of at least 32 bytes), which made
/// a 15 MB submission of short lines cost 30 times its size while queued; packed, a line costs
/// its text and 8 bytes.
#[derive(Debug, Default, PartialEq)]
pub struct Inputs {
    /// Every line, one after the other.
    text: String,
    /// Where each line ends in `text`.
    ends: Vec<usize>,
}

impl Inputs {
    /// Packs `lines` (the caller drops them, ideally off the core's task).
    pub fn pack(lines: &[String]) -> Self {
        let mut text = String::with_capacity(lines.iter().map(String::len).sum());
        let mut ends = Vec::with_capacity(lines.len());
        for line in lines {
            text.push_str(line);
            ends.push(text.len());
        }
        Inputs { text, ends }
    }

    /// Line `i`, if there is one.
    pub fn line(&self, i: u64) -> Option<&str> {
        let i = usize::try_from(i).ok()?;
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.text.get(start..end)
    }

    /// How many lines.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none (a range job).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Heap bytes held.
    pub fn bytes(&self) -> usize {
        self.text.capacity() + self.ends.capacity() * std::mem::size_of::<usize>()
    }
}

/// A job as the core takes it: the spec, and its input lines packed apart. An input job's
/// source becomes the range `0..n` cut one index per shard, which gives every shard the same
/// `lo..hi` as before; its line comes from `inputs`. The master builds this in the submit
/// handler, off the core's task, so the core never packs or frees millions of strings.
#[derive(Debug)]
pub struct Submission {
    /// Kind, params, priority, limits; the source is a range.
    pub(crate) spec: JobSpec,
    /// The input lines of an input job; empty for a range job. Shared with the journal's
    /// `Submit` until it is written, never copied.
    pub(crate) inputs: Arc<Inputs>,
    /// The spec for the journal's `Submit` (its params copied off the core's task); moved
    /// into it at submit. `None` for a job restored from the journal.
    pub(crate) journal: Option<JobSpec>,
}

/// A job as submitted, as the core hands it to the journal (which encodes it): its spec,
/// an input job's source being the range over its lines, and those lines, shared with the
/// job.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmittedJob {
    /// Kind, params, priority, limits; the source is a range (over `inputs` if any).
    pub spec: JobSpec,
    /// The input lines of an input job; empty for a range job.
    pub inputs: Arc<Inputs>,
}

impl SubmittedJob {
    /// About how many bytes it holds (its inputs, params and required labels).
    pub fn bytes(&self) -> usize {
        self.inputs.bytes() + params_bytes(&self.spec.params.0) + params_bytes(&self.spec.requires)
    }

    /// The spec as the client sent it, input lines copied back into its source.
    pub fn to_spec(&self) -> JobSpec {
        let mut spec = self.spec.clone();
        if !self.inputs.is_empty() {
            let lines = (0..self.inputs.len() as u64).filter_map(|i| self.inputs.line(i));
            spec.source = JobSource::Inputs(lines.map(str::to_string).collect());
        }
        spec
    }
}

impl Submission {
    /// Packs the input lines, and copies the spec (its params) for the journal: build it off
    /// the core's task. The lines are moved, never copied: a large submission costs its lines
    /// (until dropped here) and their packed text, which the journal shares.
    pub fn new(mut spec: JobSpec) -> Self {
        let lines = match &mut spec.source {
            JobSource::Inputs(lines) => std::mem::take(lines),
            JobSource::Range { .. } => Vec::new(),
        };
        let inputs = Inputs::pack(&lines);
        let count = lines.len() as u64;
        drop(lines);
        if count > 0 {
            spec.source = JobSource::Range { start: 0, end: count, shard_size: 1 };
        }
        let journal = Some(spec.clone());
        Submission { spec, inputs: Arc::new(inputs), journal }
    }

    /// What the journal's `Submit` holds, taken once (`None` for a restored job).
    pub(crate) fn take_journal(&mut self) -> Option<SubmittedJob> {
        let spec = self.journal.take()?;
        Some(SubmittedJob { spec, inputs: self.inputs.clone() })
    }

    /// Packs a spec read back from the journal (which needs no second record of it).
    pub fn restored(mut spec: JobSpec) -> Self {
        let inputs = match &spec.source {
            JobSource::Inputs(lines) => {
                let inputs = Inputs::pack(lines);
                spec.source = JobSource::Range { start: 0, end: lines.len() as u64, shard_size: 1 };
                inputs
            }
            JobSource::Range { .. } => Inputs::default(),
        };
        Submission { spec, inputs: Arc::new(inputs), journal: None }
    }

    /// The spec (for an input job, its source is the equivalent range).
    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }

    /// How many shards the job has.
    pub fn shards(&self) -> u64 {
        self.spec.source.shard_count()
    }

    /// The bytes it holds while it is queued or running, as counted against the budget.
    pub fn bytes(&self) -> usize {
        JOB_OVERHEAD
            + self.spec.kind.len()
            + params_bytes(&self.spec.params.0)
            + params_bytes(&self.spec.requires)
            + self.inputs.bytes()
    }
}

impl From<JobSpec> for Submission {
    fn from(spec: JobSpec) -> Self {
        Submission::new(spec)
    }
}

/// The bytes a job's params hold.
fn params_bytes(params: &BTreeMap<String, String>) -> usize {
    params.iter().map(|(k, v)| k.len() + v.len() + 2 * ENTRY_OVERHEAD).sum()
}

/// These test this part alone, with no core and no outbox: nothing is sent, so no test
/// checks `assert_quiet`.
#[cfg(test)]
mod tests {
    use super::*;
    use farm_proto::Params;

    #[test]
    fn packed_lines_read_back_and_cost_their_text_plus_an_offset() {
        let lines: Vec<String> = ["a", "", "ccc"].iter().map(|s| s.to_string()).collect();
        let inputs = Inputs::pack(&lines);
        assert_eq!(inputs.line(0), Some("a"));
        assert_eq!(inputs.line(1), Some(""));
        assert_eq!(inputs.line(2), Some("ccc"));
        assert_eq!(inputs.line(3), None);
        assert_eq!(inputs.bytes(), 4 + 3 * 8);
    }

    #[test]
    fn an_input_job_becomes_a_range_of_one_index_per_shard() {
        let lines = vec!["x".to_string(), "y".to_string()];
        let spec = JobSpec::new("noop", JobSource::Inputs(lines), Params::default(), 0).unwrap();
        let sub = Submission::new(spec);
        assert_eq!(sub.shards(), 2);
        assert_eq!(sub.spec().source.shard(1), (1, 2, None));
        assert_eq!(sub.inputs.line(1), Some("y"));
    }

    #[test]
    fn the_journal_gets_the_spec_as_submitted_inputs_and_params_included() {
        let lines = vec!["x".to_string(), String::new(), "zz".to_string()];
        let params = Params::from_pairs(["k=v", "n=1"]).unwrap();
        let mut spec = JobSpec::new("noop", JobSource::Inputs(lines), params, 3).unwrap();
        spec.limits.retries = 2;
        let mut sub = Submission::new(spec.clone());
        let journal = sub.take_journal().expect("once");
        assert!(Arc::ptr_eq(&journal.inputs, &sub.inputs), "the lines are shared");
        assert_eq!(journal.to_spec(), spec);
        assert_eq!(sub.take_journal(), None);
        let range = JobSpec::new(
            "noop",
            JobSource::Range { start: 5, end: 9, shard_size: 2 },
            Params::default(),
            0,
        )
        .unwrap();
        assert_eq!(Submission::new(range.clone()).take_journal().expect("one").to_spec(), range);
    }
}
