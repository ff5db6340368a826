//! `farm results JOB`, and `--out FILE` of `farm submit --wait` and `farm run`: a job's list
//! result streamed from the master (`Results`) into a file or stdout, as one JSON array or as
//! NDJSON (one item a line), holding one chunk at a time whatever the result's size.

use crate::args::ResultsArgs;
use crate::conn::{connect, Target};
use crate::out;
use anyhow::{Context, Result};
use farm_client::{Client, JobState, JobStatus};
use futures::StreamExt;
use serde_json::Value;
use std::io::Write;
use std::path::Path;

/// How a stream of result items is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON array (`[` … `]`, no newline after it).
    Array,
    /// One JSON item a line.
    Ndjson,
    /// For people: each item as [`text_item`] shows it; `terminal` escapes
    /// control characters in what the job wrote.
    Text {
        /// Standard output is a terminal.
        terminal: bool,
    },
}

impl Format {
    /// `--ndjson` or one array.
    pub fn json(ndjson: bool) -> Format {
        if ndjson {
            Format::Ndjson
        } else {
            Format::Array
        }
    }
}

/// `farm results`.
pub async fn results(master: &Target, args: ResultsArgs) -> Result<()> {
    let mut client = connect(master).await?;
    let status = client.get(args.id).await?;
    if status.state == JobState::Succeeded && !status.is_list() {
        // A count, a sum or an estimate: its JSON text, as the status has it.
        let text = format!("{}\n", status.result.as_str());
        return match &args.out {
            Some(path) => {
                let mut file = create(path)?;
                file.write_all(text.as_bytes())?;
                file.flush()?;
                eprintln!("wrote {}", path.display());
                Ok(())
            }
            None => crate::out::write(&text),
        };
    }
    let format = Format::json(args.ndjson);
    let from = Items { job: args.id, offset: args.offset, partial: args.partial };
    let n = match &args.out {
        Some(path) => write(&mut client, from, &mut create(path)?, format).await?,
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            write(&mut client, from, &mut out, format).await?
        }
    };
    if let Some(path) = &args.out {
        eprintln!("wrote {n} items to {}", path.display());
    }
    Ok(())
}

/// Whether `--out` names an image (mandelbrot rows as a PNG) rather than a results file.
pub fn is_png(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"))
}

/// After `submit --wait` or `run`: writes a succeeded job's result to `out`. A `*.png` is the
/// image of its rows (`params` give the iteration limit, which colours them), read from the
/// status or, for a result too large to be inline, from the master's store; a list is streamed
/// from the master; any other result is its JSON text.
pub async fn save(
    client: &mut Client,
    status: &JobStatus,
    out: Option<&Path>,
    ndjson: bool,
    params: &farm_proto::Params,
) -> Result<()> {
    let Some(path) = out else { return Ok(()) };
    if status.state != JobState::Succeeded {
        return Ok(());
    }
    if is_png(path) {
        let rows = rows(client, status).await?;
        crate::show::write_png(path, &rows, params)?;
        eprintln!("wrote {}", path.display());
        return Ok(());
    }
    if status.is_list() {
        let from = Items { job: status.job, offset: 0, partial: false };
        let n = write(client, from, &mut create(path)?, Format::json(ndjson)).await?;
        eprintln!("wrote {n} items to {}", path.display());
    } else {
        let mut file = create(path)?;
        writeln!(file, "{}", status.result.as_str())?;
        file.flush()?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// A finished job's result as rows of numbers (mandelbrot's image): from its status when
/// the result is inline, else streamed from the master's store, a row per item.
async fn rows(client: &mut Client, status: &JobStatus) -> Result<Vec<Vec<u32>>> {
    let not_rows = "--out FILE.png needs rows of numbers, as mandelbrot makes";
    if !status.result_in_store {
        return status.result.to().context(not_rows);
    }
    let mut stream = client.results(status.job, 0).await?;
    let mut rows = Vec::new();
    while let Some(chunk) = stream.next().await {
        for item in &chunk?.items {
            rows.push(serde_json::from_str(item).context(not_rows)?);
        }
    }
    Ok(rows)
}

fn create(path: &Path) -> Result<std::io::BufWriter<std::fs::File>> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(std::io::BufWriter::with_capacity(1 << 20, file))
}

/// Which items to read.
#[derive(Debug, Clone, Copy)]
pub struct Items {
    /// The job.
    pub job: u64,
    /// The first item.
    pub offset: u64,
    /// Also of a job that failed or was cancelled, its missing shards marked.
    pub partial: bool,
}

/// Streams the items `from` asks for into `out` in `format` (an array ends with a newline);
/// returns how many were written.
pub async fn write(
    client: &mut Client,
    from: Items,
    out: &mut impl Write,
    format: Format,
) -> Result<u64> {
    let n = stream(client, from, out, format).await?;
    if format == Format::Array {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(n)
}

/// Streams the items `from` asks for into `out` in `format`, holding one chunk at a time;
/// returns how many were written.
pub async fn stream(
    client: &mut Client,
    from: Items,
    out: &mut impl Write,
    format: Format,
) -> Result<u64> {
    let mut stream = client.results_with(from.job, from.offset, from.partial).await?;
    let mut n = 0u64;
    if format == Format::Array {
        out.write_all(b"[")?;
    }
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        // Writing a chunk (up to 1 MiB) is blocking I/O: off the runtime's own threads.
        tokio::task::block_in_place(|| -> Result<()> {
            for item in &chunk.items {
                match format {
                    Format::Array if n > 0 => out.write_all(b",")?,
                    _ => {}
                }
                match format {
                    Format::Array => out.write_all(item.as_bytes())?,
                    Format::Ndjson => {
                        out.write_all(item.as_bytes())?;
                        out.write_all(b"\n")?;
                    }
                    Format::Text { terminal } => {
                        let value = serde_json::from_str(item)
                            .with_context(|| format!("item {} of the result is not JSON", n + 1))?;
                        text_item(out, from.offset + n, &value, terminal)?;
                    }
                }
                n += 1;
            }
            Ok(())
        })?;
    }
    if format == Format::Array {
        out.write_all(b"]")?;
    }
    Ok(n)
}

/// One item of a list result for people, by its shape rather than by the kernel's name: a
/// string as its text, a program run as its stdout (a non-zero exit said on stderr, counting
/// inputs from 1 as people count lines), anything else (a row of numbers) as its JSON text.
/// `index` counts from 0; `terminal` escapes control characters in what the job wrote.
pub fn text_item(
    out: &mut impl Write,
    index: u64,
    item: &Value,
    terminal: bool,
) -> std::io::Result<()> {
    match item {
        Value::String(s) => writeln!(out, "{}", out::data(s, terminal)),
        Value::Object(run) if run.contains_key("exit_code") && run.contains_key("stdout") => {
            out.write_all(
                out::data(run["stdout"].as_str().unwrap_or_default(), terminal).as_bytes(),
            )?;
            match run["exit_code"].as_i64() {
                Some(0) => {}
                code => {
                    out.flush()?;
                    eprintln!("[input {} exited with code {}]", index + 1, code.unwrap_or(-1));
                }
            }
            Ok(())
        }
        other => writeln!(out, "{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_show_their_text_and_runs_their_stdout_escaped_on_a_terminal() {
        let mut shown = Vec::new();
        let items = [
            serde_json::json!("d1"),
            serde_json::json!({"exit_code": 0, "stdout": "out\u{1b}[2J\n"}),
            serde_json::json!([1, 2]),
        ];
        for (i, item) in items.iter().enumerate() {
            text_item(&mut shown, i as u64, item, true).expect("write");
        }
        assert_eq!(String::from_utf8(shown).expect("utf-8"), "d1\nout\\u{1b}[2J\n[1,2]\n");
        let mut exact = Vec::new();
        text_item(&mut exact, 1, &items[1], false).expect("write");
        assert_eq!(exact, b"out\x1b[2J\n");
    }
}
