//! The byte format of the journal's `jobs` and `specs` tables, owned by the store: a job's
//! record and its summary once it ended, as store-private protobuf messages, and a job's
//! spec as submitted ([`encode_spec`] and [`decode_spec`]: a `pb::JobSpec`, inputs included). A summary is the core's
//! [`JobView`], written and read by [`encode_summary`] and [`decode_summary`] only, so a field
//! added to the view is restored by the same code that writes it. The tags are those schema 3
//! files hold (the record once was `JournalJob` and the summary a `JobStatus` in farm.proto),
//! so journals written before still read; nothing here is sent to another process.

use crate::core::{JobId, JobView, Owner, SubmittedJob, ANONYMOUS};
use farm_proto::{pb, JobSpec, JobState, OutputShape};
use std::sync::Arc;

/// A job's value in the `jobs` table. Tag 1 held the spec before schema 3 (it lives in the
/// `specs` table now) and is never written again.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct JobRecord {
    /// How its outputs are reduced ([`OutputShape::to_wire`]).
    #[prost(int32, tag = "2")]
    pub output: i32,
    /// The scale of a fraction output.
    #[prost(double, tag = "3")]
    pub fraction_scale: f64,
    /// Wall-clock time of the submission (ms since the Unix epoch), for its age after a
    /// restart.
    #[prost(uint64, tag = "4")]
    pub submitted_unix_ms: u64,
    /// Set once the job ended: its summary, what Get and List show after a restart.
    #[prost(message, optional, tag = "5")]
    pub ended: Option<Summary>,
    /// The name of the principal that submitted it (empty in journals from before owners:
    /// [`ANONYMOUS`]).
    #[prost(string, tag = "6")]
    pub owner: String,
}

impl JobRecord {
    /// The record of a job `owner` just submitted at `submitted_unix_ms`.
    pub fn submitted(output: OutputShape, submitted_unix_ms: u64, owner: &str) -> Self {
        let (output, fraction_scale) = output.to_wire();
        JobRecord { output, fraction_scale, submitted_unix_ms, ended: None, owner: owner.into() }
    }

    /// The principal that submitted it.
    pub fn owner(&self) -> Owner {
        Owner::named(owner_or_anonymous(&self.owner))
    }

    /// How its outputs are reduced; `None` for a fraction without a finite scale.
    pub fn output(&self) -> Option<OutputShape> {
        OutputShape::from_wire(self.output, self.fraction_scale)
    }
}

/// An ended job's summary: every field of its [`JobView`]. Tag 14 (a List reply's
/// "result left out") was written as false and is never read.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Summary {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub kind: String,
    /// [`state_code`].
    #[prost(int32, tag = "3")]
    pub state: i32,
    #[prost(uint64, tag = "4")]
    pub total: u64,
    #[prost(uint64, tag = "5")]
    pub done: u64,
    #[prost(uint64, tag = "6")]
    pub in_flight: u64,
    #[prost(string, optional, tag = "7")]
    pub result_json: Option<String>,
    #[prost(string, optional, tag = "8")]
    pub error: Option<String>,
    #[prost(uint64, tag = "9")]
    pub elapsed_ms: u64,
    #[prost(int32, tag = "10")]
    pub priority: i32,
    #[prost(uint64, tag = "11")]
    pub reruns: u64,
    #[prost(bool, tag = "12")]
    pub result_in_store: bool,
    /// Wall-clock time of the submission (ms since the Unix epoch): the view's age is kept
    /// as this, so it keeps growing across a restart.
    #[prost(uint64, tag = "13")]
    pub submitted_unix_ms: u64,
    #[prost(string, optional, tag = "15")]
    pub waiting: Option<String>,
    /// The view's output shape ([`OutputShape::to_wire`]); absent in summaries written before
    /// it was kept ([`decode_summary`] then works it out).
    #[prost(int32, optional, tag = "16")]
    pub output: Option<i32>,
    /// The scale of a fraction output shape.
    #[prost(double, tag = "17")]
    pub output_scale: f64,
    /// Empty in journals from before owners: [`ANONYMOUS`].
    #[prost(string, tag = "18")]
    pub owner: String,
}

/// A journaled owner's name: one written before owners were kept is [`ANONYMOUS`].
fn owner_or_anonymous(name: &str) -> &str {
    if name.is_empty() {
        ANONYMOUS
    } else {
        name
    }
}

/// A job's state as the journal holds it (schema 3's numbers; 0 is none).
fn state_code(state: JobState) -> i32 {
    match state {
        JobState::Queued => 1,
        JobState::Running => 2,
        JobState::Succeeded => 3,
        JobState::Failed => 4,
        JobState::Cancelled => 5,
    }
}

/// The state a code stands for.
fn state_of(code: i32) -> Option<JobState> {
    [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ]
    .into_iter()
    .find(|&s| state_code(s) == code)
}

/// A view as its summary, at wall-clock time `now_unix_ms`.
pub(super) fn encode_summary(v: JobView, now_unix_ms: u64) -> Summary {
    let (output, output_scale) = v.output.to_wire();
    Summary {
        id: v.id,
        kind: v.kind,
        state: state_code(v.state),
        total: v.total,
        done: v.done,
        in_flight: v.in_flight,
        result_json: v.result_json.map(|r| r.to_string()),
        error: v.error,
        elapsed_ms: v.elapsed_ms,
        priority: v.priority,
        reruns: v.reruns,
        result_in_store: v.result_in_store,
        submitted_unix_ms: now_unix_ms.saturating_sub(v.age_ms),
        waiting: v.waiting,
        output: Some(output),
        output_scale,
        owner: v.owner.to_string(),
    }
}

/// The view a summary of job `id` holds, at wall-clock time `now_unix_ms` (its age from its
/// submission time; its elapsed time when that is not known). Its result text is taken as
/// it was rendered, not parsed again. `declared` is the job record's output shape, for a
/// summary written before the summary kept its own.
pub(super) fn decode_summary(
    id: JobId,
    s: Summary,
    declared: OutputShape,
    now_unix_ms: u64,
) -> Result<JobView, String> {
    let state = state_of(s.state).ok_or_else(|| format!("job {id}: state {}", s.state))?;
    let output = match s.output {
        Some(code) => OutputShape::from_wire(code, s.output_scale)
            .ok_or_else(|| format!("job {id}: output scale {}", s.output_scale))?,
        None => older_shape(declared, &s),
    };
    let age_ms = match s.submitted_unix_ms {
        0 => s.elapsed_ms,
        at => now_unix_ms.saturating_sub(at),
    };
    Ok(JobView {
        id,
        kind: s.kind,
        state,
        total: s.total,
        done: s.done,
        in_flight: s.in_flight,
        result_json: s.result_json.map(Arc::from),
        error: s.error,
        elapsed_ms: s.elapsed_ms,
        age_ms,
        priority: s.priority,
        reruns: s.reruns,
        result_in_store: s.result_in_store,
        waiting: s.waiting,
        output,
        owner: Arc::from(owner_or_anonymous(&s.owner)),
    })
}

/// The output shape of a summary written before summaries kept it: the kernel's declared
/// one, or for a kernel that declared none, the form of the result the summary holds (JSON
/// text the master rendered: a list is an array, a fraction an object). Nothing else looks
/// at a result's text to tell its shape.
fn older_shape(declared: OutputShape, s: &Summary) -> OutputShape {
    let result = s.result_json.as_deref().unwrap_or("");
    match declared {
        OutputShape::Any if s.result_in_store || result.starts_with('[') => OutputShape::Lines,
        OutputShape::Any if result.starts_with('{') => OutputShape::Fraction { scale: 1.0 },
        OutputShape::Any => OutputShape::Count,
        declared => declared,
    }
}

/// The tag of `JobSpec.inputs` in farm.proto (a repeated string).
const JOB_SPEC_INPUTS: u32 = 5;

/// A job as submitted, as the `specs` table holds it: an encoded `pb::JobSpec`, inputs
/// included. The input lines are appended from the packed text as the repeated inputs field
/// (the fields of a protobuf message may follow in any order), so no second copy of them is
/// made; everything else goes through the spec's wire conversion.
pub(super) fn encode_spec(job: SubmittedJob) -> Vec<u8> {
    use prost::encoding::{encode_key, encode_varint, WireType};
    let mut wire = pb::JobSpec::from(job.spec);
    let count = job.inputs.len() as u64;
    if count > 0 {
        (wire.start, wire.end, wire.shard_size) = (0, 0, 0);
    }
    let mut record = prost::Message::encode_to_vec(&wire);
    drop(wire);
    record.reserve(job.inputs.bytes());
    for line in (0..count).filter_map(|i| job.inputs.line(i)) {
        encode_key(JOB_SPEC_INPUTS, WireType::LengthDelimited, &mut record);
        encode_varint(line.len() as u64, &mut record);
        record.extend_from_slice(line.as_bytes());
    }
    record
}

/// A spec [`encode_spec`] wrote, as the client sent it.
pub(super) fn decode_spec(bytes: &[u8]) -> Result<JobSpec, String> {
    let wire: pb::JobSpec = prost::Message::decode(bytes).map_err(|e| e.to_string())?;
    JobSpec::try_from(wire).map_err(|e| e.to_string())
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
