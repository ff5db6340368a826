//! What a command that waited for a job delivers once it ended (`farm run`, `farm submit
//! --wait`, `farm watch`): the whole result, whatever its size, on stdout or in `--out FILE`.
//! A list too large for a status is streamed from the master's store, a chunk at a time, so
//! memory stays flat; no advice is ever printed in its place. Then the exit status: non-zero
//! when the job did not succeed.
//!
//! With `--json` the shape is the job's status object either way; for a list kept in the
//! store its `result` is the whole list, streamed into the object (and `result_in_store` is
//! true), so a script reads one shape whatever the size. `farm status` sums a long list up.

use crate::fail::JobEnded;
use crate::out;
use crate::results::{self, text_item, Format};
use anyhow::{Context, Result};
use farm_client::{Client, JobState, JobStatus};
use serde_json::Value;
use std::io::Write;
use std::path::Path;

/// Where and how the result goes.
pub struct Delivery<'a> {
    /// `--json`: the status object, its result whole.
    pub json: bool,
    /// `--out FILE`: the result goes there (a PNG for `*.png`), not to stdout.
    pub out: Option<&'a Path>,
    /// `--ndjson` with `--out`: one item a line.
    pub ndjson: bool,
    /// The job's params (the PNG's colours depend on `iterations`).
    pub params: &'a farm_proto::Params,
}

/// Delivers a finished job's result as `how` asks, then fails (non-zero exit) when the job
/// did not succeed. Needs the master: call it before a `farm run` stops its own.
pub async fn deliver(client: &mut Client, status: &JobStatus, how: &Delivery<'_>) -> Result<()> {
    if let Some(path) = how.out {
        results::save(client, status, Some(path), how.ndjson, how.params).await?;
        if how.json {
            out::json(status)?;
        }
    } else if how.json {
        json(client, status).await?;
    } else if status.state == JobState::Succeeded {
        text(client, status).await?;
    }
    match status.state {
        JobState::Succeeded => Ok(()),
        state => Err(JobEnded { job: status.job, state, error: status.error.clone() }.into()),
    }
}

/// The status as JSON; a list kept in the store is streamed in as its `result`.
async fn json(client: &mut Client, status: &JobStatus) -> Result<()> {
    if !(status.result_in_store && status.state == JobState::Succeeded) {
        return out::json(status);
    }
    let text = serde_json::to_string(status)?;
    // The first `"result":null` is the field itself: inside a string value every quote is
    // escaped (`\"`), so none of those can match.
    let (before, after) = text
        .split_once(r#""result":null"#)
        .context("the status has no result field to stream the list into")?;
    let mut stdout = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    stdout.write_all(before.as_bytes()).map_err(out::error)?;
    stdout.write_all(br#""result":"#).map_err(out::error)?;
    let from = results::Items { job: status.job, offset: 0, partial: false };
    results::stream(client, from, &mut stdout, Format::Array).await?;
    stdout.write_all(after.as_bytes()).map_err(out::error)?;
    stdout.write_all(b"\n").and_then(|()| stdout.flush()).map_err(out::error)
}

/// The result for people: each item of a list on its own line (a program's stdout as it
/// wrote it), any other result as its JSON text; then the timing on stderr.
async fn text(client: &mut Client, status: &JobStatus) -> Result<()> {
    let terminal = out::stdout_is_terminal();
    if status.result_in_store {
        let mut stdout = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        let from = results::Items { job: status.job, offset: 0, partial: false };
        results::stream(client, from, &mut stdout, Format::Text { terminal }).await?;
        stdout.flush().map_err(out::error)?;
    } else {
        match status.result.value() {
            Ok(Value::Array(items)) => {
                let mut stdout = std::io::stdout().lock();
                for (index, item) in items.iter().enumerate() {
                    text_item(&mut stdout, index as u64, item, terminal).map_err(out::error)?;
                }
                stdout.flush().map_err(out::error)?;
            }
            // A number or an object: its JSON text as the master rendered it.
            _ => out::line(&status.result)?,
        }
    }
    eprintln!(
        "job {} ({}): {} shards in {:.3} s",
        status.job,
        out::escaped(&status.kind, false),
        status.shards,
        status.elapsed_ms as f64 / 1000.0
    );
    Ok(())
}
