//! The CLI as a person and a script meet it: a closed pipe ends a command quietly, log files
//! carry no colour codes (and JSON logs parse), bare durations are refused with the fix, checks
//! come before a job is submitted, status and jobs show what matters, errors with --json are
//! JSON, the config file sits under the environment and the flags, and Ctrl-C on a waiting
//! submit says how to follow or cancel the job it leaves running.

use farm_tests::*;
use serde_json::Value;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Runs `bash -c script` (with `$FARM` the binary under test), tagged, with `env` set and
/// NO_COLOR and RUST_LOG unset; returns its output, killing it after the wait bound.
fn bash(script: &str, tag: &str, env: &[(&str, &str)]) -> Output {
    let mut child = Command::new("bash")
        .args(["-c", script])
        .env("FARM", farm())
        .env("FARM_TEST_TAG", tag)
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .env_remove("FARM_MASTER")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bash");
    if wait_child(&mut child, WAIT).is_none() {
        let _ = child.kill();
        panic!("{script} did not finish within {WAIT:?}");
    }
    child.wait_with_output().expect("output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let tag = tag();
    // About 0.9 MB of digests (under the 1 MiB kept inline): far more than a pipe holds, so
    // farm writes after head has gone.
    let run = "$FARM run hashchain --range 0..14000 --workers 1 --threads 2 | head -1; \
               echo \"farm exit ${PIPESTATUS[0]}\" >&2";
    let out = bash(run, &tag, &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert_eq!(stdout.trim().len(), 64, "one digest: {stdout}");
    assert!(stderr.contains("farm exit 0"), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
    // The showdown prints once, at the end; `head -n 0` has long gone by then.
    let showdown = "$FARM showdown --range 0..2000 --shard-size 1000 --sleep-range 0..2 \
                    --sleep-ms 1 --no-python --cores 1 --json | head -n 0; \
                    echo \"farm exit ${PIPESTATUS[0]}\" >&2";
    let out = bash(showdown, &tag, &[]);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("farm exit 0"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_none_left(&tag);
}

#[test]
fn logs_in_a_file_carry_no_colour_and_json_logs_parse() {
    let tag = tag();
    let job = "$FARM run primes --range 0..1000 --workers 1 --threads 1";
    let out = bash(&format!("RUST_LOG=info {job} 2>&1 >/dev/null"), &tag, &[]);
    let log = text(&out.stdout);
    assert!(log.contains("INFO"), "info lines were logged: {log}");
    assert!(!log.contains('\u{1b}'), "no escape codes in a file: {log:?}");
    let json_logs = format!("{job} --json --log-format json --log-level info 2>&1 >/dev/null");
    let out = bash(&json_logs, &tag, &[]);
    let log = text(&out.stdout);
    let lines: Vec<&str> = log.lines().collect();
    assert!(!lines.is_empty(), "json lines were logged");
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
    // debug for farm, not for the transport: no h2 frames.
    let out = bash(&format!("{job} --log-level debug 2>&1 >/dev/null"), &tag, &[]);
    let log = text(&out.stdout);
    assert!(log.contains("DEBUG"), "{log}");
    assert!(!log.lines().any(|l| l.contains(" h2::") || l.contains(" hyper")), "{log}");
    assert_none_left(&tag);
}

#[test]
fn bad_flags_fail_before_anything_runs_and_say_the_fix() {
    let tag = tag();
    let out = bash("$FARM run sleep --range 0..1 --shard-timeout 30", &tag, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("`30` has no unit: write 30s or 30ms"), "{out:?}");
    let out = bash("$FARM run sleep --range 0..1 --shard-timeout 1.5s --param ms=1", &tag, &[]);
    assert!(out.status.success(), "1.5s is a duration: {out:?}");
    let out = bash("$FARM --master http://127.0.0.1:1 run noop --range 0..1", &tag, &[]);
    assert!(text(&out.stderr).contains("`farm run` takes no --master"), "{out:?}");
    let out = bash("$FARM showdown --tls-ca x.pem", &tag, &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = bash("$FARM run noop --range 0..1 --token t --json", &tag, &[]);
    let err: Value = serde_json::from_slice(&out.stderr).expect("a JSON error");
    assert_eq!(err["code"], "InvalidArgument", "{err}");
    assert_none_left(&tag);
}

#[test]
fn png_out_is_checked_before_the_job_is_submitted() {
    let master = Master::start(&["--workers", "1", "--threads", "1"]);
    master.wait_workers(1);
    let out = master.cli(&["submit", "primes", "--range", "0..10", "--wait", "--out", "x.png"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("a PNG needs rows of numbers"), "{out:?}");
    assert_eq!(json(&master.cli(&["jobs", "--json"])), serde_json::json!([]), "nothing ran");
    let png = std::env::temp_dir().join(format!("{}.png", master.tag));
    let run = format!("$FARM run primes --range 0..10 --workers 1 --out {}", png.display());
    let out = bash(&run, &master.tag, &[]);
    assert!(text(&out.stderr).contains("a PNG needs rows of numbers"), "{out:?}");
    assert!(!png.exists());
}

#[test]
fn status_and_jobs_show_results_errors_and_filters() {
    let master = Master::start(&["--workers", "1", "--threads", "1"]);
    master.wait_workers(1);
    let ok = master.submit_wait(&["primes", "--range", "0..1000"]);
    assert_eq!(ok["result"], 168);
    // A shard past its time limit: the job fails with the worker's reason.
    let spin = ["spin", "--range", "0..1", "--param", "ms=10000", "--shard-timeout", "100ms"];
    let failed = master.submit_wait(&spin);
    assert_eq!(failed["state"], "failed");
    let id = failed["job"].to_string();
    let out = master.cli(&["status", &id]);
    let shown = text(&out.stdout);
    assert!(shown.contains("error: ") && shown.contains("timed out"), "{shown}");
    let ok_id = ok["job"].to_string();
    let shown = text(&master.cli(&["status", &ok_id]).stdout);
    assert!(shown.contains("result: 168"), "{shown}");
    let listed = json(&master.cli(&["jobs", "--json"]));
    let listed_ok = listed.as_array().expect("list").iter().find(|j| j["job"] == ok["job"]);
    assert_eq!(listed_ok.expect("listed")["result"], 168, "{listed}");
    assert!(listed[0]["submitted_unix_ms"].as_u64() > Some(0), "{listed}");
    assert!(listed[0]["in_flight"].is_u64(), "{listed}");
    let failed_only = json(&master.cli(&["jobs", "--state", "failed", "--json"]));
    assert_eq!(failed_only.as_array().map(Vec::len), Some(1), "{failed_only}");
    let out = master.cli(&["jobs", "--limit", "1"]);
    let table = text(&out.stdout);
    assert_eq!(table.lines().count(), 2, "a header and the newest job: {table}");
    assert!(table.lines().nth(1).is_some_and(|l| l.contains("spin")), "{table}");
    assert!(text(&out.stderr).contains("1 older jobs not shown"), "{out:?}");
    let out = master.cli(&["status", "999", "--json"]);
    assert!(!out.status.success());
    let err: Value = serde_json::from_slice(&out.stderr).expect("a JSON error");
    assert_eq!(err["code"], "NotFound", "{err}");
}

#[test]
fn the_config_file_is_under_the_environment_and_the_flags() {
    let master = Master::start(&[]);
    let dir = std::env::temp_dir().join(format!("farm-config-{}", master.tag));
    std::fs::create_dir_all(dir.join("farm")).expect("dir");
    let nowhere = "http://127.0.0.1:1";
    let file = dir.join("farm").join("farm.toml");
    std::fs::write(&file, format!("master = \"{}\"\n", master.url)).expect("write");
    let xdg = dir.to_string_lossy().into_owned();
    let env = [("XDG_CONFIG_HOME", xdg.as_str())];
    let jobs = "$FARM jobs --json";
    assert!(bash(jobs, &master.tag, &env).status.success(), "the file's master");
    let env_over = [("XDG_CONFIG_HOME", xdg.as_str()), ("FARM_MASTER", nowhere)];
    assert!(!bash(jobs, &master.tag, &env_over).status.success(), "env beats the file");
    let flag = format!("$FARM jobs --json --master {}", master.url);
    assert!(bash(&flag, &master.tag, &env_over).status.success(), "the flag beats env");
    let named = format!("$FARM --config {} jobs --json", file.display());
    assert!(bash(&named, &master.tag, &[]).status.success(), "--config names the file");
    std::fs::write(&file, "retires = 2\n").expect("write");
    let out = bash(jobs, &master.tag, &env);
    assert!(text(&out.stderr).contains("retires"), "a typo is named: {out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ctrl_c_on_a_waiting_submit_says_how_to_follow_or_cancel_the_job() {
    let master = Master::start(&["--workers", "1", "--threads", "1"]);
    master.wait_workers(1);
    let args = ["--master", &master.url, "submit", "sleep", "--range", "0..100"];
    let mut waiter =
        spawn(&[&args[..], &["--param", "ms=500", "--wait"]].concat(), &master.tag, Stdio::null());
    let running = wait_for(WAIT, || {
        let jobs = json(&master.cli(&["jobs", "--json"]));
        jobs.as_array()?.first().filter(|j| j["state"] == "running").map(|j| j["job"].clone())
    })
    .expect("the job runs");
    waiter.signal(libc::SIGINT);
    let status = waiter.wait(WAIT).expect("the waiter stops");
    assert_eq!(status.code(), Some(130), "{status:?}");
    let line =
        waiter.wait_for_log(Duration::from_secs(10), "interrupted", |l| l.contains("interrupted"));
    assert!(line.contains(&format!("farm watch {running}")), "{line}");
    assert!(line.contains(&format!("farm cancel {running}")), "{line}");
    assert_eq!(master.status(&running.to_string())["state"], "running", "the job goes on");
}
