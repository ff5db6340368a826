//! `farm logs JOB`: a job's per-shard logs, streamed from the master (`Logs`); and `--joblog
//! FILE` of `submit --wait` and `run`: one line per shard in GNU parallel's joblog format,
//! extended, written from the same stream once the job ended.

use crate::args::LogsArgs;
use crate::conn::{connect, Target};
use anyhow::{Context, Result};
use farm_client::{Client, LogQuery, ShardLog};
use futures::StreamExt;
use std::io::Write;
use std::path::Path;

/// The joblog's header: GNU parallel's columns that apply, plus the worker and the outcome.
const JOBLOG_HEADER: &str = "Seq\tHost\tWorker\tStarttime\tJobRuntime\tExitval\tSignal\tOutcome";

/// `farm logs`.
pub async fn logs(master: &Target, args: LogsArgs) -> Result<()> {
    let mut client = connect(master).await?;
    let query = LogQuery { shard: args.shard, failed_only: args.failed };
    let mut stream = client.logs(args.id, query).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut first = true;
    if args.output.json {
        out.write_all(b"[")?;
    }
    while let Some(chunk) = stream.next().await {
        for log in chunk? {
            if args.output.json {
                out.write_all(if first { b"" } else { b"," })?;
                serde_json::to_writer(&mut out, &log)?;
            } else {
                write_log(&mut out, &log)?;
            }
            first = false;
        }
    }
    if args.output.json {
        out.write_all(b"]\n")?;
    } else if first {
        eprintln!("job {} has no shard logs (shards that log or fail keep one)", args.id);
    }
    out.flush()?;
    Ok(())
}

/// One shard's record for people: a header line, its error, then its log as it was written,
/// its control characters escaped (newlines and tabs kept): `--json` has the exact text.
fn write_log(out: &mut impl Write, log: &ShardLog) -> std::io::Result<()> {
    use crate::out::escaped;
    let outcome = if log.failed { "failed" } else { "done" };
    let name = if log.worker.is_empty() {
        String::new()
    } else {
        format!(" {}", escaped(&log.worker, false))
    };
    let code = log.exit_code.map(|c| format!(", exit code {c}")).unwrap_or_default();
    writeln!(
        out,
        "== shard {} {outcome} on worker {}{name} ({}){code}, {:.3} s ==",
        log.shard,
        log.worker_id,
        escaped(&log.host, false),
        log.duration_ms as f64 / 1000.0
    )?;
    if !log.error.is_empty() {
        writeln!(out, "error: {}", escaped(&log.error, false))?;
    }
    for run in &log.earlier {
        let outcome = if run.failed { "failed" } else { "done" };
        let code = run.exit_code.map(|c| format!(", exit code {c}")).unwrap_or_default();
        let error = if run.error.is_empty() { String::new() } else { format!(": {}", run.error) };
        let line = format!(
            "earlier run: {outcome} on worker {} ({}){code}, {:.3} s{error}",
            run.worker_id,
            run.host,
            run.duration_ms as f64 / 1000.0
        );
        writeln!(out, "{}", escaped(&line, false))?;
    }
    out.write_all(escaped(&log.log, true).as_bytes())?;
    if !log.log.is_empty() && !log.log.ends_with('\n') {
        writeln!(out)?;
    }
    if log.log_dropped {
        writeln!(out, "(log dropped: the job's logs passed the master's --shard-log-mib)")?;
    }
    Ok(())
}

/// Writes the joblog of `job` (of `shards` shards) to `path`: a header, then one line per run
/// of each shard in shard order (earlier runs first), and a `not run` line for each shard
/// that never ran (the job failed or was cancelled first).
pub async fn write_joblog(client: &mut Client, job: u64, shards: u64, path: &Path) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "{JOBLOG_HEADER}")?;
    let mut stream = client.logs(job, LogQuery::default()).await?;
    let mut next = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        // Writing a chunk (up to 1 MiB) is blocking I/O: off the runtime's own threads.
        tokio::task::block_in_place(|| {
            chunk.iter().try_for_each(|log| {
                (next..log.shard).try_for_each(|shard| not_run_line(&mut out, shard))?;
                next = log.shard + 1;
                log.earlier.iter().chain([log]).try_for_each(|run| joblog_line(&mut out, run))
            })
        })?;
    }
    tokio::task::block_in_place(|| (next..shards).try_for_each(|s| not_run_line(&mut out, s)))?;
    out.flush()?;
    Ok(())
}

/// The joblog line of a shard that never ran: no host, no worker, Exitval -1.
fn not_run_line(out: &mut impl Write, shard: u64) -> std::io::Result<()> {
    writeln!(out, "{}\t-\t-\t0.000\t0.000\t-1\t0\tnot run", shard + 1)
}

/// One joblog line, for one run. `Seq` is the shard counted from 1 (an input job's line
/// number). Exitval is the program's exit code for exec, else 0 for a done run and 1 for a
/// failed one; a program killed by a signal has Exitval -1 and the signal's number.
fn joblog_line(out: &mut impl Write, log: &ShardLog) -> std::io::Result<()> {
    let (exitval, signal) = match (log.exit_code, log.failed) {
        (Some(code), _) if code < 0 => (-1, -code),
        (Some(code), _) => (code, 0),
        (None, failed) => (i32::from(failed), 0),
    };
    writeln!(
        out,
        "{}\t{}\t{}\t{:.3}\t{:.3}\t{exitval}\t{signal}\t{}",
        log.shard + 1,
        // A tab or newline in a worker's name would break the columns.
        crate::out::escaped(&log.host, false),
        if log.worker.is_empty() {
            log.worker_id.to_string()
        } else {
            crate::out::escaped(&log.worker, false).into_owned()
        },
        log.started_unix_ms as f64 / 1000.0,
        log.duration_ms as f64 / 1000.0,
        if log.failed { "failed" } else { "done" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joblog_lines_follow_gnu_parallel_columns() {
        let log = ShardLog {
            shard: 4,
            worker_id: 2,
            worker: "local-1".into(),
            host: "h1".into(),
            started_unix_ms: 1_700_000_000_250,
            duration_ms: 1500,
            exit_code: Some(3),
            failed: true,
            ..Default::default()
        };
        let mut out = Vec::new();
        joblog_line(&mut out, &log).expect("write");
        let signal = ShardLog { exit_code: Some(-9), ..log.clone() };
        joblog_line(&mut out, &signal).expect("write");
        let plain = ShardLog { exit_code: None, failed: false, worker: String::new(), ..log };
        joblog_line(&mut out, &plain).expect("write");
        not_run_line(&mut out, 6).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "5\th1\tlocal-1\t1700000000.250\t1.500\t3\t0\tfailed\n\
             5\th1\tlocal-1\t1700000000.250\t1.500\t-1\t9\tfailed\n\
             5\th1\t2\t1700000000.250\t1.500\t0\t0\tdone\n\
             7\t-\t-\t0.000\t0.000\t-1\t0\tnot run\n"
        );
        assert_eq!(JOBLOG_HEADER.split('\t').count(), 8);
    }
}
