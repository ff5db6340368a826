//! End to end: per-shard logs. A shard's stderr and a failed shard's error reach the person
//! who submitted the job through `farm logs JOB [--shard N] [--failed]`, and `--joblog FILE`
//! writes one line per run of each shard in GNU parallel's format, extended (shards that never
//! ran included); `farm results --partial` keeps a failed job's good outputs.

use farm_tests::*;

#[test]
fn farm_logs_shows_each_shards_stderr_and_a_failed_shards_error() {
    let master = Master::start(&[]);
    let _w = master.worker(&["--threads", "1", "--allow-exec"]);
    master.wait_workers(1);
    // One thread: shards run in order, 0..2 succeed, then 3 fails the job.
    let cmd = "cmd=sh -c 'echo note {} >&2; test {} -ne 3'";
    let v = master.submit_wait(&["exec", "--range", "0..4", "--shard-size", "1", "--param", cmd]);
    assert_eq!(v["state"], "failed", "{v}");
    let id = v["job"].to_string();

    let out = master.cli(&["logs", &id]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for shard in 0..3 {
        assert!(text.contains(&format!("== shard {shard} done on worker ")), "{text}");
        assert!(text.contains(&format!("\nnote {shard}\n")), "{text}");
    }
    assert!(text.contains("== shard 3 failed on worker "), "{text}");
    assert!(text.contains(", exit code 1, "), "{text}");
    assert!(text.contains("error: \"sh\" exited with code 1 for {} = \"3\""), "{text}");

    let failed = json(&master.cli(&["logs", &id, "--failed", "--json"]));
    let failed = failed.as_array().expect("a list");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!((failed[0]["shard"].as_u64(), failed[0]["failed"].as_bool()), (Some(3), Some(true)));
    assert_eq!(failed[0]["exit_code"], 1);
    assert_eq!(failed[0]["log"], "note 3\n");
    let one = json(&master.cli(&["logs", &id, "--shard", "1", "--json"]));
    assert_eq!(one.as_array().map(|a| a.len()), Some(1), "{one}");
    assert_eq!(one[0]["log"], "note 1\n");

    // A job that logged nothing has no records; an unknown job is NotFound.
    let quiet = master.submit_wait(&["noop", "--range", "0..10"]);
    let out = master.cli(&["logs", &quiet["job"].to_string(), "--json"]);
    assert_eq!(json(&out), serde_json::json!([]));
    let missing = master.cli(&["logs", "999"]);
    assert!(!missing.status.success());
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(said.contains("not found: no job 999 on this master"), "{said}");
    // Logs and status refuse an unknown job with one and the same message.
    let status = master.cli(&["status", "999"]);
    assert_eq!(said, String::from_utf8_lossy(&status.stderr));
}

/// The joblog's lines after its header, split into columns.
fn joblog(path: &std::path::Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).expect("joblog written");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("Seq\tHost\tWorker\tStarttime\tJobRuntime\tExitval\tSignal\tOutcome")
    );
    lines.map(|l| l.split('\t').map(str::to_string).collect()).collect()
}

#[test]
fn joblog_writes_one_line_per_shard() {
    let tag = tag();
    let path = std::env::temp_dir().join(format!("{tag}-joblog.tsv"));
    let path_arg = path.to_string_lossy().to_string();
    let out = run(
        &[
            "run",
            "exec",
            "--range",
            "0..3",
            "--shard-size",
            "1",
            "--param",
            "cmd=sh -c 'sleep 0.1; exit {}'",
            "--param",
            "allow_fail=true",
            "--joblog",
            &path_arg,
            "--workers",
            "1",
            "--threads",
            "1",
            "--allow-exec",
        ],
        &tag,
    );
    assert!(out.status.success(), "{out:?}");
    let rows = joblog(&path);
    assert_eq!(rows.len(), 3, "{rows:?}");
    for (shard, row) in rows.iter().enumerate() {
        assert_eq!(row[0], (shard + 1).to_string(), "Seq counts from 1");
        assert_eq!(row[2], "local-0", "{row:?}");
        let start: f64 = row[3].parse().expect("start time");
        let runtime: f64 = row[4].parse().expect("runtime");
        assert!(start > 1.6e9 && runtime >= 0.1, "{row:?}");
        assert_eq!((row[5].as_str(), row[6].as_str()), (shard.to_string().as_str(), "0"));
        assert_eq!(row[7], "done");
    }
    let _ = std::fs::remove_file(&path);

    // A failed job still gets its joblog, and --joblog needs --wait on submit.
    let master = Master::start(&[]);
    let _w = master.worker(&["--threads", "1", "--allow-exec"]);
    master.wait_workers(1);
    let cmd = "cmd=sh -c 'exit 4'";
    let job = ["submit", "exec", "--range", "0..1", "--param", cmd, "--joblog", &path_arg];
    let out = master.cli(&[&job[..], &["--wait"]].concat());
    assert!(!out.status.success(), "{out:?}");
    let rows = joblog(&path);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0][5].as_str(), rows[0][7].as_str()), ("4", "failed"));
    let out = master.cli(&job);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--joblog needs --wait"), "{out:?}");
    let _ = std::fs::remove_file(&path);
}

// A failed exec job keeps its good output and its joblog tells the whole story:
// `farm results --partial` gives the outputs of the shards that succeeded and marks the
// others; the joblog has one row per run (a retried failure leaves its own row, with its exit
// code), a `not run` row for each shard that never ran, and input numbers count from 1 as in
// the job's error.

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
