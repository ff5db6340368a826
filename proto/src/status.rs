//! Domain types of what clients see: a job's state and status, the events of a watched job, an
//! accepted submission, and the connected workers. The CLI prints them with serde, so their
//! field names are the `--json` shapes. Conversions from and to the prost types live in
//! `convert.rs`.

use crate::domain::{Output, SpecError};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Submitted; no shard has been handed out yet.
    Queued,
    /// At least one shard was handed out.
    Running,
    /// Every shard completed; the result is set.
    Succeeded,
    /// A shard failed past its retries, or the result could not be reduced.
    Failed,
    /// Cancelled by a client.
    Cancelled,
}

impl JobState {
    /// Whether the job is over: it will not change again.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    }

    /// The lowercase word the CLI prints and `--json` carries.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so table columns (`{:<10}`) line up.
        f.pad(self.as_str())
    }
}

/// A JSON document kept as the text it travels in. The master renders a job's result once and
/// passes the text on unparsed (a result can be megabytes, and the master's handlers run on the
/// async runtime); whoever reads the result parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonText(String);

impl JsonText {
    /// JSON `null`: no result (yet, or left out of a job list).
    pub fn null() -> Self {
        JsonText("null".into())
    }

    /// Checks that `text` is one JSON document (without building it) and keeps it.
    pub fn parse(text: String) -> Result<Self, SpecError> {
        serde_json::from_str::<IgnoredAny>(&text)
            .map_err(|e| SpecError::Invalid(format!("result is not JSON: {e}")))?;
        Ok(JsonText(text))
    }

    /// Keeps text that serde_json wrote, without checking it again.
    pub fn trusted(text: String) -> Self {
        JsonText(text)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The JSON text, owned.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Whether it is `null`.
    pub fn is_null(&self) -> bool {
        self.0.trim() == "null"
    }

    /// The document as a `serde_json::Value`.
    pub fn value(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_str(&self.0)
    }

    /// The document as a typed value, e.g. mandelbrot rows as `Vec<Vec<u32>>`.
    pub fn to<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(&self.0)
    }
}

impl Default for JsonText {
    fn default() -> Self {
        JsonText::null()
    }
}

impl fmt::Display for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Compares the parsed document, so `status.result == json!(78498)` reads as it should.
impl PartialEq<serde_json::Value> for JsonText {
    fn eq(&self, other: &serde_json::Value) -> bool {
        self.value().is_ok_and(|v| v == *other)
    }
}

/// Serialized as the document itself, not as a string holding it.
impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value().map_err(serde::ser::Error::custom)?.serialize(serializer)
    }
}

/// A job's status; with serde, this is the CLI's stable `--json` shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobStatus {
    /// The job id.
    pub job: u64,
    /// Its kernel.
    pub kind: String,
    /// Where it is.
    pub state: JobState,
    /// Shards in all.
    pub shards: u64,
    /// Shards completed.
    pub done: u64,
    /// Shards in flight: handed to a worker (running there or queued in its window) and not
    /// yet reported done. On the wire, `shards_running`.
    pub in_flight: u64,
    /// The reduced result: `null` until succeeded. Job lists carry it only up to
    /// `LIST_RESULT_BYTES` (`result_left_out` says when it was left out).
    pub result: JsonText,
    /// Why it failed or was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// From submission to the end (or to now).
    pub elapsed_ms: u64,
    /// Its priority.
    pub priority: i32,
    /// Shard runs handed out again: their worker was lost or drained, or their run failed and
    /// is retried (a shard can count more than once). On the wire, `shards_rerun`.
    pub reruns: u64,
    /// When the job was submitted, in milliseconds since the Unix epoch (0: not known).
    pub submitted_unix_ms: u64,
    /// A job list left this succeeded job's result out: it is longer than
    /// `LIST_RESULT_BYTES`; `Get` (`farm status`) has it. Left out of the JSON when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub result_left_out: bool,
    /// The result is a list too large for a status (`result` is `null`): read it with
    /// `Results` (`farm results JOB`). Left out of the JSON when false, so small results keep
    /// their shape.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub result_in_store: bool,
    /// Why the job cannot go on now: `no connected worker offers kind X`. Left out of the JSON
    /// when it is not waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
}

/// A job list carries a succeeded job's result only up to this many bytes of JSON, so that a
/// list stays cheap; `Get` carries it whole (up to the inline limit).
pub const LIST_RESULT_BYTES: usize = 4096;

impl JobStatus {
    /// Whether the job is over.
    pub fn is_final(&self) -> bool {
        self.state.is_final()
    }
}

/// An accepted submission; the `--json` shape of `farm submit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Submitted {
    /// The new job's id.
    pub job: u64,
    /// How many shards it has.
    pub shards: u64,
}

/// Progress of a running job.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Progress {
    /// Shards completed.
    pub done: u64,
    /// Shards in all.
    pub total: u64,
    /// Shards in flight (see `JobStatus::in_flight`).
    pub in_flight: u64,
    /// Why it cannot go on now: `no connected worker offers kind X`.
    pub waiting: Option<String>,
}

/// One event of a watched job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEvent {
    /// Progress changed.
    Progress(Progress),
    /// A shard's output (only when watching with shard results).
    Shard {
        /// The shard's index in the job.
        shard: u64,
        /// What it produced.
        output: Output,
    },
    /// The job ended; the last event.
    Finished(JobStatus),
}

/// Which side opened a worker's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DialedBy {
    /// The worker dialed the master (`WorkerService.Connect`).
    Worker,
    /// The master dialed a listening worker (`--connect`, `WorkerHost.Attach`).
    Master,
}

impl DialedBy {
    /// The lowercase word on the wire and in `--json`.
    pub fn as_str(self) -> &'static str {
        match self {
            DialedBy::Worker => "worker",
            DialedBy::Master => "master",
        }
    }
}

impl fmt::Display for DialedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for DialedBy {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        match s {
            "worker" => Ok(DialedBy::Worker),
            "master" => Ok(DialedBy::Master),
            other => Err(SpecError::Invalid(format!("unknown dialed_by {other:?}"))),
        }
    }
}

/// A connected worker as clients see it; with serde, the `farm workers --json` shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerInfo {
    /// Its session id, for `farm workers drain ID`.
    pub worker: u64,
    /// Display name (may be empty).
    pub name: String,
    /// Host it runs on.
    pub hostname: String,
    /// Its process id on that host.
    pub pid: u32,
    /// The peer address the master sees.
    pub address: String,
    /// Shards it runs at once.
    pub threads: u32,
    /// Shards in flight on it: running on its threads or queued in its window.
    pub in_flight: u64,
    /// Shards it completed.
    pub done: u64,
    /// Kernels it offers.
    pub kinds: Vec<String>,
    /// Seconds since it registered.
    pub connected_secs: u64,
    /// Times its supervisor restarted this local worker slot (0 for remote workers).
    pub restarts: u32,
    /// It takes no new shards and leaves once its shards are done.
    pub draining: bool,
    /// Which side opened the session.
    pub dialed_by: DialedBy,
    /// Why it gets no new shards although connected: it held a shard past its deadline.
    pub suspect: Option<String>,
    /// What it declared about its environment (`farm worker --label`); a job runs only on
    /// workers holding every pair it requires.
    pub labels: crate::labels::Labels,
}
