//! What people and scripts see: progress bars, results, tables, the mandelbrot PNG.

use anyhow::{bail, Context, Result};
use farm_client::{JobState, JobStatus, JsonText, Progress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;

/// A progress bar on stderr when it is a terminal and output is for people; hidden otherwise.
pub fn progress_bar(json: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if json || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40.cyan/blue}] {pos}/{len} shards, eta {eta}, {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar
}

/// Moves the bar to a progress event. When the job starts or stops waiting for a worker, says
/// so on stderr too (`last` is what the previous event said), so it shows without a terminal.
pub fn advance(bar: &ProgressBar, p: Progress, last: &mut Option<String>) {
    bar.set_length(p.total);
    bar.set_position(p.done);
    match &p.waiting {
        Some(why) => bar.set_message(format!("waiting: {why}")),
        None => bar.set_message(format!("{} running", p.running)),
    }
    if p.waiting != *last {
        match &p.waiting {
            Some(why) => bar.suspend(|| eprintln!("waiting: {why}")),
            None => bar.suspend(|| eprintln!("a worker for the job is back")),
        }
        *last = p.waiting;
    }
}

/// Prints a finished job: JSON, or the result and timing for people. Fails (non-zero exit) when
/// the job did not succeed.
pub fn finished(
    status: &JobStatus,
    json: bool,
    out: Option<&Path>,
    params: &farm_proto::Params,
) -> Result<()> {
    let png = out.filter(|p| crate::results::is_png(p));
    if let (Some(path), JobState::Succeeded) = (png, status.state) {
        write_png(path, &status.result, params)?;
        if !json {
            eprintln!("wrote {}", path.display());
        }
    }
    if json {
        println!("{}", serde_json::to_string(status)?);
    } else {
        print_result(status);
    }
    match status.state {
        JobState::Succeeded => Ok(()),
        state => bail!(
            "job {} {state}: {}",
            status.job,
            status.error.as_deref().unwrap_or("no reason given")
        ),
    }
}

fn print_result(status: &JobStatus) {
    if status.state != JobState::Succeeded {
        return;
    }
    if status.result_in_store {
        println!(
            "the result is a list too large to print here: farm results {} --out FILE [--ndjson]",
            status.job
        );
    }
    // By the result's shape, not by the kernel's name: rows of numbers (an image), program
    // runs, or a list of values.
    let is_row = |v: &serde_json::Value| v.is_array();
    let is_run = |v: &serde_json::Value| v.get("exit_code").is_some() && v.get("stdout").is_some();
    match status.result.value() {
        Ok(serde_json::Value::Array(items)) if items.first().is_some_and(is_row) => {
            println!("{} rows (write them as an image with --out FILE.png)", items.len());
        }
        Ok(serde_json::Value::Array(items)) if items.first().is_some_and(is_run) => {
            for (index, run) in items.iter().enumerate() {
                print!("{}", run["stdout"].as_str().unwrap_or_default());
                match run["exit_code"].as_i64() {
                    Some(0) => {}
                    code => eprintln!("[input {index} exited with code {}]", code.unwrap_or(-1)),
                }
            }
        }
        Ok(serde_json::Value::Array(items)) => {
            for item in items {
                match item {
                    serde_json::Value::String(s) => println!("{s}"),
                    other => println!("{other}"),
                }
            }
        }
        // A number or an object: its JSON text as the master rendered it.
        _ if status.result_in_store => {}
        _ => println!("{}", status.result),
    }
    eprintln!(
        "job {} ({}): {} shards in {:.3} s",
        status.job,
        status.kind,
        status.shards,
        status.elapsed_ms as f64 / 1000.0
    );
}

/// Prints one status line per job, or the JSON list.
pub fn jobs(jobs: &[JobStatus], json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(jobs)?);
        return Ok(());
    }
    println!(
        "{:>6}  {:<11} {:<10} {:>21}  {:>10}",
        "JOB", "KIND", "STATE", "SHARDS DONE/TOTAL", "ELAPSED"
    );
    for j in jobs {
        let shards = format!("{}/{}", j.done, j.shards);
        println!(
            "{:>6}  {:<11} {:<10} {:>21}  {:>9.1}s",
            j.job,
            j.kind,
            j.state,
            shards,
            j.elapsed_ms as f64 / 1000.0
        );
        if let Some(why) = &j.waiting {
            println!("{:>6}  waiting: {why}", "");
        }
    }
    Ok(())
}

/// Writes mandelbrot rows (iteration counts) as a colour PNG; points inside the set are black.
pub fn write_png(path: &Path, result: &JsonText, params: &farm_proto::Params) -> Result<()> {
    let rows: Vec<Vec<u32>> =
        result.to().context("--out needs a mandelbrot job: its result is not rows of numbers")?;
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
