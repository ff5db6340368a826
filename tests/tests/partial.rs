//! End to end: a failed exec job keeps its good output and its joblog tells the whole story.
//! `farm results --partial` gives the outputs of the shards that succeeded and marks the
//! others; the joblog has one row per run (a retried failure leaves its own row, with its
//! exit code), a `not run` row for each shard that never ran, and input numbers count from 1
//! as in the job's error.

use farm_tests::*;

/// Rows of a joblog file after its header, split into columns.
fn joblog(path: &std::path::Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).expect("joblog written");
    let mut lines = text.lines();
    assert!(lines.next().is_some_and(|h| h.starts_with("Seq\tHost")), "{text}");
    lines.map(|l| l.split('\t').map(String::from).collect()).collect()
}

#[test]
fn a_failed_jobs_good_outputs_and_every_shard_are_reported() {
    let master = Master::start(&["--http", "off"]);
    let _w = master.worker(&["--threads", "1", "--allow-exec"]);
    master.wait_workers(1);
    let dir = std::env::temp_dir().join(format!("{}-partial", master.tag));
    std::fs::create_dir_all(&dir).expect("dir");
    let inputs = dir.join("inputs");
    // Line 3 fails; the shards after it may or may not run before the job fails.
    let lines: Vec<String> = (1..=40).map(|i| i.to_string()).collect();
    std::fs::write(&inputs, lines.join("\n")).expect("inputs");
    let log = dir.join("joblog");
    let cmd = "cmd=sh -c 'test {} != 3 || exit 5; echo {}'";
    let out = master.cli(&[
        "submit",
        "exec",
        "--inputs",
        inputs.to_str().expect("path"),
        "--param",
        cmd,
        "--joblog",
        log.to_str().expect("path"),
        "--wait",
    ]);
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("shard 2 (input line 3) failed"), "1-based: {stderr}");

    let refused = master.cli(&["results", "1"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--partial"), "{refused:?}");
    let out = master.cli(&["results", "1", "--partial", "--ndjson"]);
    assert!(out.status.success(), "{out:?}");
    let items: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("an item a line"))
        .collect();
    assert_eq!(items.len(), 40, "an item per input line: {items:?}");
    assert_eq!(items[0]["stdout"], "1\n", "{items:?}");
    assert_eq!(items[1]["stdout"], "2\n", "{items:?}");
    assert_eq!(items[2], serde_json::json!({"missing_shard": 2}), "the failed line is marked");
    for (i, item) in items.iter().enumerate().skip(3) {
        let ran = item["stdout"] == format!("{}\n", i + 1);
        assert!(ran || item["missing_shard"] == i, "item {i}: {item}");
    }

    let rows = joblog(&log);
    let seqs: std::collections::BTreeSet<u64> =
        rows.iter().map(|r| r[0].parse().expect("seq")).collect();
    assert_eq!(seqs, (1..=40).collect(), "every shard has a row, counted from 1: {rows:?}");
    let third = rows.iter().find(|r| r[0] == "3").expect("line 3's row");
    assert_eq!((third[5].as_str(), third[7].as_str()), ("5", "failed"), "{third:?}");
    let ran = items.iter().filter(|i| i.get("stdout").is_some()).count();
    let not_run = rows.iter().filter(|r| r[7] == "not run").count();
    assert!(not_run > 0 || ran == 39, "{rows:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn each_run_of_a_retried_shard_has_its_own_joblog_row() {
    let master = Master::start(&["--http", "off"]);
    let _w = master.worker(&["--threads", "2", "--allow-exec"]);
    master.wait_workers(1);
    let dir = std::env::temp_dir().join(format!("{}-flaky", master.tag));
    std::fs::create_dir_all(&dir).expect("dir");
    let log = dir.join("joblog");
    // Each index fails with exit code 3 the first time, then succeeds.
    let marker = dir.join("ran-");
    let cmd = format!(
        "cmd=sh -c 'if [ -e {m}{{}} ]; then echo ok; else touch {m}{{}}; exit 3; fi'",
        m = marker.display()
    );
    let args = ["submit", "exec", "--range", "0..2", "--shard-size", "1", "--retries", "2"];
    let log_arg = log.to_str().expect("path");
    let out = master.cli(&[&args[..], &["--param", &cmd, "--joblog", log_arg, "--wait"]].concat());
    assert!(out.status.success(), "{out:?}");
    let rows = joblog(&log);
    let shown: Vec<(&str, &str, &str)> =
        rows.iter().map(|r| (r[0].as_str(), r[5].as_str(), r[7].as_str())).collect();
    assert_eq!(
        shown,
        [("1", "3", "failed"), ("1", "0", "done"), ("2", "3", "failed"), ("2", "0", "done")],
        "{rows:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
