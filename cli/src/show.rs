//! What people and scripts see: progress bars, results, tables, the mandelbrot PNG.

use crate::out;
use anyhow::{bail, Context, Result};
use farm_client::{JobStatus, Progress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;
use std::time::SystemTime;

/// The progress bar: time, bar, percentage, shards done, rate, time left, shards in flight.
const BAR: &str = "{elapsed_precise} [{bar:40.cyan/blue}] {percent:>3}% {pos}/{len} shards, \
                   {rate}, eta {eta}, {msg}";

/// Shards a second as the bar shows them: rounded, `92.7/s` (indicatif's own `{per_sec}`
/// shows `92.6694/s`), whole from 100 on.
fn rate(per_sec: f64) -> String {
    if per_sec >= 100.0 {
        format!("{per_sec:.0}/s")
    } else {
        format!("{per_sec:.1}/s")
    }
}

/// A progress bar on stderr when it is a terminal and output is for people; hidden otherwise.
/// It shows the percentage and the rate of shards done; `clear` it on the way out, whatever
/// the way, so no half-drawn line stays behind.
pub fn progress_bar(json: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if json || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template(BAR).unwrap_or_else(|_| ProgressStyle::default_bar());
    let style = style.with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = w.write_str(&rate(state.per_sec()));
    });
    bar.set_style(style.progress_chars("=> "));
    bar
}

/// Moves the bar to a progress event. When the job starts or stops waiting for a worker, says
/// so on stderr too (`last` is what the previous event said), so it shows without a terminal.
pub fn advance(bar: &ProgressBar, p: Progress, last: &mut Option<String>) {
    bar.set_length(p.total);
    bar.set_position(p.done);
    let why = p.waiting.as_deref().map(|why| crate::out::escaped(why, false));
    match &why {
        Some(why) => bar.set_message(format!("waiting: {why}")),
        None => bar.set_message(format!("{} in flight", p.in_flight)),
    }
    if p.waiting != *last {
        match &why {
            Some(why) => bar.suspend(|| eprintln!("waiting: {why}")),
            None => bar.suspend(|| eprintln!("a worker for the job is back")),
        }
        *last = p.waiting;
    }
}

/// What to do about a job left running when the waiting command was interrupted.
pub fn still_running(job: u64) -> String {
    format!(
        "interrupted: job {job} is still running on the master; \
         follow it with `farm watch {job}`, or stop it with `farm cancel {job}`"
    )
}

/// List items shown by `farm status` before it sums the rest up.
const STATUS_ITEMS: usize = 5;
/// Bytes of a result `farm status` shows whole.
const STATUS_BYTES: usize = 400;

/// The lines under a job's status row: its result (or a summary of a long one, and where to
/// read all of it) and its error.
pub fn details(status: &JobStatus) -> Vec<String> {
    let mut lines = Vec::new();
    let id = status.job;
    if status.result_in_store {
        lines.push(format!(
            "result: a list too large for a status; read it with `farm results {id} --out FILE`"
        ));
    } else if !status.result.is_null() {
        let text = status.result.as_str();
        match status.result.value() {
            Ok(serde_json::Value::Array(items))
                if items.len() > STATUS_ITEMS || text.len() > STATUS_BYTES =>
            {
                let first: Vec<String> = items
                    .iter()
                    .take(STATUS_ITEMS)
                    .map(|v| crate::tables::clip(&v.to_string(), 80))
                    .collect();
                lines.push(format!("result: a list of {} items; the first:", items.len()));
                lines.extend(first.into_iter().map(|item| format!("  {item}")));
                lines
                    .push(format!("all of it: `farm results {id}` (or `farm status {id} --json`)"));
            }
            _ if text.len() > STATUS_BYTES => lines.push(format!(
                "result: {} (cut; `farm status {id} --json` has all of it)",
                crate::tables::clip(text, STATUS_BYTES)
            )),
            _ => lines.push(format!("result: {text}")),
        }
    }
    // A job's error and wait come from workers and kernels: escaped, each on its line.
    if let Some(error) = &status.error {
        lines.push(format!("error: {}", crate::out::escaped(error, false)));
    }
    if let Some(why) = &status.waiting {
        lines.push(format!("waiting: {}", crate::out::escaped(why, false)));
    }
    lines
}

/// `farm status`/`farm cancel`: the job's row, then its result and error; or its JSON.
pub fn status(status: &JobStatus, json: bool) -> Result<()> {
    if json {
        return out::json(&[status]);
    }
    let mut text = crate::tables::jobs(std::slice::from_ref(status), false, SystemTime::now());
    for line in details(status) {
        text.push_str(&line);
        text.push('\n');
    }
    out::write(&text)
}

/// `farm jobs`: one row per job, or the JSON list.
pub fn jobs(jobs: &[JobStatus], json: bool) -> Result<()> {
    if json {
        return out::json(&jobs);
    }
    out::write(&crate::tables::jobs(jobs, true, SystemTime::now()))
}

/// Writes mandelbrot rows (iteration counts) as a colour PNG; points inside the set are black.
pub fn write_png(path: &Path, rows: &[Vec<u32>], params: &farm_proto::Params) -> Result<()> {
    let height = rows.len();
    let width = rows.first().map_or(0, Vec::len);
    if width == 0 || rows.iter().any(|r| r.len() != width) {
        bail!("cannot write {}: rows are empty or of unequal width", path.display());
    }
    let max: u32 = params.0.get("iterations").and_then(|v| v.parse().ok()).unwrap_or(256);
    let mut pixels = Vec::with_capacity(width * height * 3);
    for &n in rows.iter().flatten() {
        if n >= max {
            pixels.extend([0, 0, 0]);
        } else {
            let t = (n as f64 / max as f64).sqrt();
            let channel = |phase: f64| {
                (255.0 * (0.5 + 0.5 * (std::f64::consts::TAU * (t + phase)).cos())) as u8
            };
            pixels.extend([channel(0.0), channel(0.33), channel(0.67)]);
        }
    }
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width as u32, height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&pixels)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use farm_client::{JobState, JsonText};

    #[test]
    fn the_bar_shows_percentage_and_rate_and_an_interruption_says_what_to_do() {
        assert!(ProgressStyle::with_template(BAR).is_ok());
        assert!(BAR.contains("{percent") && BAR.contains("{rate}"));
        assert_eq!(
            (rate(92.6694), rate(1234.56), rate(0.0)),
            ("92.7/s".into(), "1235/s".into(), "0.0/s".into())
        );
        let said = still_running(7);
        assert!(said.contains("farm watch 7") && said.contains("farm cancel 7"), "{said}");
    }

    #[test]
    fn status_details_sum_up_long_lists_and_show_errors() {
        let items: Vec<String> = (0..12).map(|i| format!("\"d{i}\"")).collect();
        let status = JobStatus {
            job: 3,
            kind: "hashchain".into(),
            state: JobState::Succeeded,
            shards: 12,
            done: 12,
            in_flight: 0,
            result: JsonText::trusted(format!("[{}]", items.join(","))),
            error: None,
            elapsed_ms: 1,
            priority: 0,
            reruns: 0,
            submitted_unix_ms: 0,
            result_in_store: false,
            result_left_out: false,
            waiting: None,
            output: farm_proto::OutputShape::Lines,
            owner: String::new(),
        };
        let lines = details(&status);
        assert_eq!(lines[0], "result: a list of 12 items; the first:");
        assert_eq!(lines.len(), 1 + STATUS_ITEMS + 1, "{lines:?}");
        assert!(lines.last().is_some_and(|l| l.contains("farm results 3")), "{lines:?}");
        let failed = JobStatus {
            state: JobState::Failed,
            result: JsonText::null(),
            error: Some("shard 3 failed".into()),
            ..status
        };
        assert_eq!(details(&failed), ["error: shard 3 failed"]);
    }
}
