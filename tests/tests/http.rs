//! The master's HTTP endpoint: `/metrics` during a job (shards completed rising to the job's
//! shard count), the token on the dashboard's API and on `/metrics` (open only with
//! `--metrics-open`), actions, `--http off`, and `farm run` naming its dashboard.

use farm_tests::*;

/// The ports process `pid` listens on (TCP, IPv4 and IPv6), from /proc.
fn listening_ports(pid: u32) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().to_string();
                    Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table).unwrap_or_default().lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local address, state 0A (LISTEN), inode
            if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
                let port = f[1].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
                ports.extend(port);
            }
        }
    }
    ports.sort_unstable();
    ports
}

#[test]
fn a_scrape_during_a_job_sees_shards_completed_rise_to_its_shard_count() {
    let master = Master::start(&[
        "--workers",
        "1",
        "--threads",
        "2",
        "--http",
        "127.0.0.1:0",
        "--metrics-open",
    ]);
    let dash = master.http.clone().expect("dashboard address");
    master.wait_workers(1);
    // 200 shards of 20 ms on 2 threads: about 2 s, scraped every 50 ms.
    let id = master.submit(&["spin", "--range", "0..200", "--shard-size", "1", "--param", "ms=20"]);
    let done = r#"farm_shards_completed_total{kind="spin",outcome="done"}"#;
    let queued = format!(r#"farm_shards_queued{{job="{id}"}}"#);
    let (mut seen, mut saw_queue) = (Vec::new(), false);
    let reached = wait_until(WAIT, || {
        let m = get(&dash, "/metrics", None);
        assert_eq!(m.status, 200, "{m:?}");
        saw_queue |= sample(&m.body, &queued).is_some_and(|q| q > 0.0);
        let n = sample(&m.body, done).unwrap_or(0.0);
        seen.push(n);
        n >= 200.0
    });
    assert!(reached, "never reached 200 done: {seen:?}");
    assert_eq!(seen.last(), Some(&200.0), "counted once per shard: {seen:?}");
    assert!(seen.iter().any(|n| *n > 0.0 && *n < 200.0), "no scrape during the job: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "a counter never falls: {seen:?}");
    assert!(saw_queue, "farm_shards_queued of the job was never positive");
    let end = wait_for(WAIT, || {
        let m = get(&dash, "/metrics", None).body;
        (sample(&m, r#"farm_jobs{state="succeeded"}"#) == Some(1.0)).then_some(m)
    })
    .expect("the job counted as succeeded");
    assert_eq!(sample(&end, "farm_workers_connected"), Some(1.0));
    assert_eq!(sample(&end, "farm_pool_threads"), Some(2.0));
    assert_eq!(sample(&end, "farm_cluster_shards_queued"), Some(0.0));
    // The ended job's series is gone: only jobs not yet ended have one.
    assert_eq!(sample(&end, &queued), None);
    assert!(sample(&end, "farm_core_batch_seconds_count").is_some_and(|n| n > 0.0));
    assert!(sample(&end, "farm_journal_commit_seconds_count").is_some_and(|n| n > 0.0));
    assert!(sample(&end, "farm_shard_results_bytes_total").is_some_and(|n| n > 0.0));
}

#[test]
fn the_api_and_metrics_need_the_token_unless_metrics_are_open() {
    let master = Master::start(&["--token", "s3cret", "--http", "127.0.0.1:0"]);
    let dash = master.http.clone().expect("dashboard address");
    // The page holds no data: it is open, and asks for the token itself.
    let page = get(&dash, "/", None);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>farm</title>"), "{}", page.body);
    for path in ["/api/state", "/api/jobs/1", "/metrics"] {
        assert_eq!(get(&dash, path, None).status, 401, "{path} without a token");
        assert_eq!(get(&dash, path, Some("s3cres")).status, 401, "{path} with a wrong token");
    }
    let state = get(&dash, "/api/state", Some("s3cret"));
    assert_eq!(state.status, 200);
    let v: serde_json::Value = serde_json::from_str(&state.body).expect("state is JSON");
    assert!(v["jobs"].as_array().is_some_and(|j| j.is_empty()), "{v}");
    assert_eq!(get(&dash, "/metrics", Some("s3cret")).status, 200);
    assert_eq!(get(&dash, "/api/jobs/99", Some("s3cret")).status, 404);

    let open = Master::start(&["--token", "s3cret", "--http", "127.0.0.1:0", "--metrics-open"]);
    let open_http = open.http.clone().expect("dashboard address");
    let m = get(&open_http, "/metrics", None);
    assert_eq!(m.status, 200);
    assert!(m.body.contains("# TYPE farm_workers_connected gauge"), "{}", m.body);
    assert_eq!(get(&open_http, "/api/state", None).status, 401, "only /metrics opens");
}

#[test]
fn actions_cancel_jobs_and_drain_workers_with_the_token_and_the_action_header() {
    let master = Master::start(&[
        "--token",
        "t",
        "--workers",
        "1",
        "--threads",
        "1",
        "--http",
        "127.0.0.1:0",
    ]);
    let dash = master.http.clone().expect("dashboard address");
    let out =
        master.cli(&["--token", "t", "submit", "spin", "--range", "0..100000", "--param", "ms=5"]);
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(id.parse::<u64>().is_ok(), "{out:?}");
    let auth = "Authorization: Bearer t";
    let cancel = format!("/api/jobs/{id}/cancel");
    // A form on another site cannot set the action header.
    let forged = http("POST", &dash, &cancel, &[auth]).expect("post");
    assert_eq!(forged.status, 409, "{forged:?}");
    let refused = http("POST", &dash, &cancel, &["x-farm-action: 1"]).expect("post");
    assert_eq!(refused.status, 401);
    let done = http("POST", &dash, &cancel, &[auth, "x-farm-action: 1"]).expect("post");
    assert_eq!(done.status, 200, "{done:?}");
    let v: serde_json::Value = serde_json::from_str(&done.body).expect("JSON");
    assert_eq!(v["state"], "cancelled");
    let again = http("POST", &dash, &cancel, &[auth, "x-farm-action: 1"]).expect("post");
    assert_eq!(again.status, 409, "an ended job: {again:?}");
    let missing = http("POST", &dash, "/api/workers/99/drain", &[auth, "x-farm-action: 1"]);
    assert_eq!(missing.expect("post").status, 404);
    let drained = http("POST", &dash, "/api/workers/1/drain", &[auth, "x-farm-action: 1"]);
    let drained = drained.expect("post");
    assert_eq!(drained.status, 200, "{drained:?}");
    assert!(drained.body.contains(r#""draining":true"#), "{drained:?}");
}

#[test]
fn http_off_listens_on_the_grpc_port_only_and_on_serves_a_second() {
    let off = Master::start(&["--http", "off"]);
    let grpc: u16 = off.url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
    assert_eq!(listening_ports(off.proc.pid()), vec![grpc]);
    let on = Master::start(&["--http", "127.0.0.1:0"]);
    assert_eq!(listening_ports(on.proc.pid()).len(), 2);
    // An address given with --http must be free: the master refuses to start.
    let taken =
        on.http.clone().expect("dashboard address").trim_start_matches("http://").to_string();
    let out = run(&["master", "--listen", "127.0.0.1:0", "--http", &taken], &on.tag);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {taken} (--http)")), "{err}");
}

#[test]
fn a_jobs_detail_shows_its_shard_logs_failed_runs_first() {
    let master = Master::start(&["--http", "127.0.0.1:0"]);
    let dash = master.http.clone().expect("dashboard address");
    let _w = master.worker(&["--threads", "1", "--allow-exec"]);
    master.wait_workers(1);
    // One thread: shards 0..2 log and succeed, then shard 3 logs and fails the job.
    let cmd = "cmd=sh -c 'echo note {} >&2; test {} -ne 3'";
    let v = master.submit_wait(&["exec", "--range", "0..4", "--shard-size", "1", "--param", cmd]);
    assert_eq!(v["state"], "failed", "{v}");
    let detail = get(&dash, &format!("/api/jobs/{}", v["job"]), None);
    assert_eq!(detail.status, 200, "{detail:?}");
    let detail: serde_json::Value = serde_json::from_str(&detail.body).expect("JSON");
    let logs: Vec<&str> = detail["logs"]
        .as_array()
        .expect("logs are kept")
        .iter()
        .map(|l| l.as_str().expect("a text block"))
        .collect();
    assert_eq!(logs.len(), 4, "{logs:?}");
    assert!(logs[0].starts_with("shard 3 on ") && logs[0].contains("failed, exit 1"), "{logs:?}");
    assert!(logs[0].contains("exited with code 1") && logs[0].ends_with("note 3"), "{logs:?}");
    assert!(logs[1].starts_with("shard 0 on ") && logs[1].ends_with("note 0"), "{logs:?}");
}
