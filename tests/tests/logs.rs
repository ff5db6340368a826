//! End to end: per-shard logs. A shard's stderr and a failed shard's error reach the person
//! who submitted the job through `farm logs JOB [--shard N] [--failed]`, and `--joblog FILE`
//! writes one line per shard in GNU parallel's format, extended.

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
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found: no job 999"));
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
        assert_eq!(row[0], shard.to_string());
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
