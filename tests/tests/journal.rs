//! The durable master: `kill -9` of a master with `--journal` early in a job, in the middle and
//! during its last shards; restarted each time on the same port with the same journal, the job
//! resumes, ends with the exact result, and only shards in flight at a crash run twice.
//! Finished jobs stay readable and job ids continue.

use farm_tests::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Shards of the job that is interrupted.
const SHARDS: u64 = 160;
/// Shards that may run again per crash: those in flight on two workers of two threads
/// (threads × (1 + prefetch) each), the results on their way back, and one group commit.
const RERUN_PER_CRASH: usize = 24;

/// Kills the master with SIGKILL and starts it again on the same address and journal.
fn crash_and_restart(master: Master, args: &[&str]) -> Master {
    let (tag, listen) = (master.tag.clone(), master.url.trim_start_matches("http://").to_owned());
    let mut master = master;
    master.proc.signal(libc::SIGKILL);
    master.proc.wait(Duration::from_secs(10)).expect("master killed");
    drop(master);
    Master::start_tagged(args, &tag, &listen)
}

/// The lines the shards logged, one per run.
fn runs(log: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

#[test]
fn a_master_killed_at_any_point_resumes_its_jobs_from_the_journal() {
    let tag = tag();
    let dir = std::env::temp_dir().join(format!("{tag}-journal"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let journal: PathBuf = dir.join("farm.redb");
    let log = dir.join("runs.log");
    let journal_arg = journal.display().to_string();
    let args = ["--workers", "0", "--journal", journal_arg.as_str()];
    let mut master = Master::start_tagged(&args, &tag, "127.0.0.1:0");
    let workers = ["--threads", "2", "--allow-exec"];
    let _a = master.worker(&workers);
    let _b = master.worker(&workers);
    master.wait_workers(2);
    let finished = master.submit_wait(&["primes", "--range", "0..1000"]);
    assert_eq!(finished["result"], 168);

    let cmd = format!("cmd=sh -c 'echo {{}} >> {}; sleep 0.02; echo {{}}'", log.display());
    let range = format!("0..{SHARDS}");
    let id = master.submit(&["exec", "--range", &range, "--shard-size", "1", "--param", &cmd]);
    // Early: right after the submit was acknowledged (it is committed by then).
    master = crash_and_restart(master, &args);
    master.wait_done(&id, SHARDS / 2);
    // Mid-job.
    master = crash_and_restart(master, &args);
    master.wait_done(&id, SHARDS - 8);
    // During the last shards.
    master = crash_and_restart(master, &args);
    let v = master.watch(&id);
    assert_eq!(v["state"], "succeeded", "{v}");
    let result = v["result"].as_array().expect("a list result");
    let stdouts: Vec<String> = result.iter().map(|r| r["stdout"].to_string()).collect();
    let expected: Vec<String> = (0..SHARDS).map(|i| format!("\"{i}\\n\"")).collect();
    assert_eq!(stdouts, expected, "every shard's output once, in index order");

    let mut ran = runs(&log);
    let total = ran.len();
    ran.sort();
    ran.dedup();
    assert_eq!(ran.len() as u64, SHARDS, "every shard ran");
    let reruns = total - SHARDS as usize;
    assert!(reruns <= 3 * RERUN_PER_CRASH, "{reruns} shards ran again after 3 crashes");

    // The job finished before the crashes is still there, and ids continue.
    let before = master.status(&finished["job"].to_string());
    assert_eq!(
        (before["state"].clone(), before["result"].clone()),
        ("succeeded".into(), 168.into())
    );
    // Its submit time is the journal's, not the restart's.
    let (then, now) =
        (finished["submitted_unix_ms"].as_u64(), before["submitted_unix_ms"].as_u64());
    let drift = then.zip(now).map(|(a, b)| a.abs_diff(b));
    assert!(drift.is_some_and(|d| d < 1000), "submitted {then:?}, after restarts {now:?}");
    let next: Value = master.submit_wait(&["noop", "--range", "0..10"]);
    assert!(next["job"].as_u64() > id.parse().ok(), "ids continue: {next}");
    let _ = std::fs::remove_dir_all(&dir);
}
