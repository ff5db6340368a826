//! The master's HTTP endpoint: `/metrics` during a job (shards completed rising to the job's
//! shard count), the token on the dashboard's API and on `/metrics` (open only with
//! `--metrics-open`), actions, `--http off`, `farm run` naming its dashboard, the refusal of
//! other hosts and cross-origin actions, the security headers, and the feed's rates and order.

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
fn farm_run_names_its_dashboard_on_stderr() {
    let tag = tag();
    let args = ["run", "noop", "--range", "0..100", "--workers", "1", "--threads", "1"];
    let out = run(&[&args[..], &["--http", "127.0.0.1:0", "--json"]].concat(), &tag);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out)["result"], 100);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("farm: dashboard at http://127.0.0.1:"), "{err}");
    let off = run(&[&args[..], &["--http", "off", "--json"]].concat(), &tag);
    assert!(!String::from_utf8_lossy(&off.stderr).contains("dashboard"), "{off:?}");
    assert_none_left(&tag);
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

/// A DNS-rebound page names its own host; a cross-site page sends its own origin.
#[test]
fn requests_for_other_hosts_and_cross_origin_actions_are_refused() {
    let master = Master::start(&[
        "--workers",
        "1",
        "--threads",
        "1",
        "--http",
        "127.0.0.1:0",
        "--http-allow-host",
        "farm.example",
    ]);
    let dash = master.http.clone().expect("dashboard address");
    let addr = dash.trim_start_matches("http://").to_string();
    let port = addr.rsplit(':').next().expect("port").to_string();
    for host in
        ["evil.example".to_string(), format!("evil.example:{port}"), "127.0.0.1.evil".into()]
    {
        let h = format!("Host: {host}");
        for (method, path) in [("GET", "/api/state"), ("GET", "/"), ("POST", "/api/jobs/1/cancel")]
        {
            let r = http(method, &dash, path, &[&h, "x-farm-action: 1"]).expect("request");
            assert_eq!(r.status, 403, "{host} {path}: {r:?}");
            assert_eq!(r.body.lines().count(), 1, "{r:?}");
            assert!(r.body.contains("is not this dashboard's"), "{r:?}");
        }
    }
    let allowed = [addr.clone(), format!("localhost:{port}"), format!("farm.example:{port}")];
    for host in allowed.iter().map(String::as_str).chain(["FARM.example"]) {
        let r = http("GET", &dash, "/api/state", &[&format!("Host: {host}")]).expect("get");
        assert_eq!(r.status, 200, "{host}: {r:?}");
    }

    master.wait_workers(1);
    let out = master.cli(&["submit", "spin", "--range", "0..100000", "--param", "ms=5"]);
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let cancel = format!("/api/jobs/{id}/cancel");
    let other_port: u16 = port.parse::<u16>().expect("port").wrapping_add(1);
    for origin in ["http://evil.example", "null", &format!("http://127.0.0.1:{other_port}")] {
        let o = format!("Origin: {origin}");
        let r = http("POST", &dash, &cancel, &[&o, "x-farm-action: 1"]).expect("post");
        assert_eq!(r.status, 403, "{origin}: {r:?}");
        assert_eq!(r.body.trim(), "actions are taken from the dashboard's own page only");
    }
    let drain = http("POST", &dash, "/api/workers/1/drain", &["Origin: http://evil.example"]);
    assert_eq!(drain.expect("post").status, 403);
    // Both were refused, not lost: the job still runs, the worker still takes shards, and the
    // same request from the page's own origin cancels.
    let status = json(&master.cli(&["status", &id, "--json"]))[0].clone();
    assert_eq!(status["state"], "running", "{status}");
    let workers = json(&master.cli(&["workers", "--json"]));
    assert_eq!(workers[0]["draining"], false, "{workers}");
    let own = format!("Origin: http://{addr}");
    let r = http("POST", &dash, &cancel, &[&own, "x-farm-action: 1"]).expect("post");
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn every_response_carries_the_security_headers() {
    let master = Master::start(&["--token", "t", "--http", "127.0.0.1:0"]);
    let dash = master.http.clone().expect("dashboard address");
    let auth = "Authorization: Bearer t";
    let replies = [
        http("GET", &dash, "/", &[]),
        http("GET", &dash, "/app.js", &[]),
        http("GET", &dash, "/style.css", &[]),
        http("GET", &dash, "/api/state", &[auth]),
        http("GET", &dash, "/api/state", &[]),
        http("GET", &dash, "/no-such-page", &[]),
        http("GET", &dash, "/", &["Host: evil.example"]),
    ];
    for r in replies {
        let r = r.expect("request");
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("default-src 'self'"), "{r:?}");
        assert!(csp.contains("frame-ancestors 'none'"), "{r:?}");
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{r:?}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{r:?}");
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{r:?}");
    }
    // The page runs under that policy: its only script and style are its own files.
    let page = get(&dash, "/", None).body;
    assert_eq!(page.matches("<script").count(), 1, "{page}");
    assert!(page.contains(r#"<script src="/app.js"></script>"#), "{page}");
    assert!(!page.contains("<style") && !page.contains("style="), "{page}");
    let handlers = page.split_whitespace().filter(|w| w.starts_with("on") && w.contains("=\""));
    assert_eq!(handlers.count(), 0, "no inline event handlers: {page}");
}

#[test]
fn a_busy_workers_rate_shows_at_once_and_jobs_come_newest_first() {
    let master = Master::start(&["--workers", "1", "--threads", "2", "--http", "127.0.0.1:0"]);
    let dash = master.http.clone().expect("dashboard address");
    master.wait_workers(1);
    let spin = ["spin", "--range", "0..100000", "--shard-size", "1", "--param", "ms=5"];
    let older: u64 = master.submit(&spin).parse().expect("job id");
    let newer: u64 = master.submit(&spin).parse().expect("job id");
    assert!(master.cli(&["cancel", &newer.to_string()]).status.success());
    let busy = wait_until(WAIT, || {
        json(&master.cli(&["workers", "--json"]))[0]["done"].as_u64().is_some_and(|d| d > 0)
    });
    assert!(busy, "the worker never completed a shard");
    // The first frame the master builds, and every one after, shows the busy worker's rate.
    let started = std::time::Instant::now();
    let mut frames = 0;
    while started.elapsed() < std::time::Duration::from_secs(2) {
        let state = get(&dash, "/api/state", None);
        let v: serde_json::Value = serde_json::from_str(&state.body).expect("JSON");
        let w = &v["workers"][0];
        assert_eq!(w["busy"], 2, "frame {frames}: {w}");
        assert!(w["rate"].as_f64().is_some_and(|r| r > 0.0), "frame {frames}: {w}");
        // Newest first: the cancelled newer job above the older one still running. (Frames
        // are paced, not waited for: each one is checked.)
        let ids: Vec<u64> =
            v["jobs"].as_array().expect("jobs").iter().filter_map(|j| j["id"].as_u64()).collect();
        assert_eq!(ids, vec![newer, older], "frame {frames}");
        frames += 1;
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(frames >= 5, "{frames} frames in 2 s");
}
