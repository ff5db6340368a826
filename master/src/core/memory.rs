//! What the master's memory holds for jobs, counted in bytes: a job's input lines packed into
//! one buffer ([`Inputs`]), a submission with its inputs packed apart from its spec
//! ([`Submission`]), and the [`Meter`] of bytes held by jobs not yet ended, which submit and
//! every accumulator check against the memory budget.

use farm_proto::{pb, JobSource, JobSpec, Params};
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
#[derive(Debug, Default)]
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
    /// The input lines of an input job; empty for a range job.
    pub(crate) inputs: Inputs,
    /// The spec encoded as on the wire, for the journal's `Submit`; moved into it at submit.
    pub(crate) record: Option<Vec<u8>>,
}

impl Submission {
    /// Packs the input lines, and encodes the spec once for the journal (build it off the
    /// core's task). The lines are moved, never copied: a large submission costs its lines
    /// (until dropped here), their packed text and the encoded record.
    pub fn new(mut spec: JobSpec) -> Self {
        let lines = match &mut spec.source {
            JobSource::Inputs(lines) => std::mem::take(lines),
            JobSource::Range { .. } => Vec::new(),
        };
        let inputs = Inputs::pack(&lines);
        let count = lines.len() as u64;
        drop(lines);
        // The params are moved into the wire form and back, never copied (the rest of the
        // spec is small); the input lines are appended to the record from the packed text, as
        // the repeated field 5 of `JobSpec` (fields of a protobuf message may follow in any
        // order), so no second copy of them is ever made.
        let params = std::mem::take(&mut spec.params);
        let mut wire = pb::JobSpec::from(spec.clone());
        wire.params = params.0.into_iter().collect();
        if count > 0 {
            (wire.start, wire.end, wire.shard_size) = (0, 0, 0);
            spec.source = JobSource::Range { start: 0, end: count, shard_size: 1 };
        }
        let mut record = prost::Message::encode_to_vec(&wire);
        spec.params = Params(wire.params.into_iter().collect());
        record.reserve(inputs.bytes());
        for line in (0..count).filter_map(|i| inputs.line(i)) {
            prost::encoding::encode_key(5, prost::encoding::WireType::LengthDelimited, &mut record);
            prost::encoding::encode_varint(line.len() as u64, &mut record);
            record.extend_from_slice(line.as_bytes());
        }
        Submission { spec, inputs, record: Some(record) }
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
        Submission { spec, inputs, record: None }
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
        JOB_OVERHEAD + self.spec.kind.len() + params_bytes(&self.spec.params) + self.inputs.bytes()
    }
}

impl From<JobSpec> for Submission {
    fn from(spec: JobSpec) -> Self {
        Submission::new(spec)
    }
}

/// The bytes a job's params hold.
fn params_bytes(params: &Params) -> usize {
    params.0.iter().map(|(k, v)| k.len() + v.len() + 2 * ENTRY_OVERHEAD).sum()
}

/// These test this part alone, with no core and no outbox: nothing is sent, so no test
/// checks `assert_quiet`.
#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_journal_record_is_the_spec_as_submitted_inputs_and_params_included() {
        let lines = vec!["x".to_string(), String::new(), "zz".to_string()];
        let params = Params::from_pairs(["k=v", "n=1"]).unwrap();
        let mut spec = JobSpec::new("noop", JobSource::Inputs(lines), params, 3).unwrap();
        spec.limits.retries = 2;
        let sub = Submission::new(spec.clone());
        let record = sub.record.as_deref().expect("a record");
        let back: pb::JobSpec = prost::Message::decode(record).expect("decodes");
        assert_eq!(JobSpec::try_from(back), Ok(spec.clone()));
        assert_eq!(sub.spec().params, spec.params, "the params are moved back");
        let range = JobSpec::new(
            "noop",
            JobSource::Range { start: 5, end: 9, shard_size: 2 },
            Params::default(),
            0,
        )
        .unwrap();
        let record = Submission::new(range.clone()).record.expect("a record");
        let back: pb::JobSpec = prost::Message::decode(record.as_slice()).expect("decodes");
        assert_eq!(JobSpec::try_from(back), Ok(range));
    }
}
