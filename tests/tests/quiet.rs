//! End to end: farm is quiet and honest. `farm run` names its dashboard only to a person at a
//! terminal (never with `--json`, never into a pipe), a taken default dashboard port is no
//! warning, Ctrl-C stops everything with one line and exit code 130, and a mistyped kind is
//! refused before any worker starts, with the closest kind suggested. `farm results` answers
//! for a count and an estimate; log fields show values, not Rust debug text.

use farm_tests::*;
use std::process::Stdio;

/// `farm run` under `script`, so its stdout and stderr are a terminal; returns what the
/// terminal showed.
fn on_a_terminal(args: &[&str], tag: &str) -> String {
    let command = std::iter::once(farm().display().to_string())
        .chain(args.iter().map(|a| format!("'{a}'")))
        .collect::<Vec<_>>()
        .join(" ");
    let script = std::path::Path::new("script");
    let mut proc = start(script, &["-qec", &command, "/dev/null"], tag, QUIET, Stdio::piped());
    let mut shown = String::new();
    let stdout = proc.child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut { stdout }, &mut text);
        text
    });
    let status = proc.wait(WAIT).expect("farm run under script ends");
    shown.push_str(&reader.join().expect("reader"));
    assert!(status.success(), "{shown}");
    shown
}

#[test]
fn the_dashboard_is_named_only_to_a_person_at_a_terminal() {
    let tag = tag();
    let args = ["run", "noop", "--range", "0..100", "--workers", "1", "--threads", "1"];
    let http = [&args[..], &["--http", "127.0.0.1:0"]].concat();
    let shown = on_a_terminal(&http, &tag);
    assert!(shown.contains("farm: dashboard at http://127.0.0.1:"), "{shown}");
    assert!(shown.contains("100"), "the result too: {shown}");
    let shown = on_a_terminal(&[&http[..], &["--json"]].concat(), &tag);
    assert!(!shown.contains("dashboard"), "never with --json: {shown}");
    let piped = run(&http, &tag);
    assert!(piped.status.success(), "{piped:?}");
    assert!(!String::from_utf8_lossy(&piped.stderr).contains("dashboard"), "{piped:?}");
    assert_none_left(&tag);
}

#[test]
fn a_taken_default_dashboard_port_is_no_warning() {
    let tag = tag();
    // Taken by this test, or by someone else already: either way `farm run` falls back.
    let _held = std::net::TcpListener::bind("127.0.0.1:7080");
    assert!(std::net::TcpListener::bind("127.0.0.1:7080").is_err(), "7080 is taken");
    let out = run(&["run", "noop", "--range", "0..10", "--workers", "1", "--threads", "1"], &tag);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("WARN"), "{stderr}");
    assert_none_left(&tag);
}

#[test]
fn ctrl_c_stops_farm_run_with_one_line_and_exit_code_130() {
    let tag = tag();
    let args = ["run", "sleep", "--range", "0..1000", "--shard-size", "1", "--param", "ms=100"];
    let mut proc =
        spawn(&[&args[..], &["--workers", "2", "--threads", "1"]].concat(), &tag, Stdio::null());
    // Its two workers are running: the interrupt comes mid-run.
    assert!(wait_until(WAIT, || tagged_processes(&tag).len() >= 3), "workers started");
    proc.signal(libc::SIGINT);
    let status = proc.wait(WAIT).expect("farm run stops");
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert_none_left(&tag);
    let said = |l: &str| l.starts_with("error: interrupted");
    proc.wait_for_log(std::time::Duration::from_secs(10), "error: interrupted", said);
    assert_eq!(proc.log_count(|_| true), 1, "one line");
}

#[test]
fn farm_run_checks_the_kind_before_starting_workers_and_suggests_the_closest() {
    let tag = tag();
    // --threads 0 would fail the start of the workers: the kind is checked before it.
    let out = run(&["run", "prims", "--range", "0..10", "--threads", "0"], &tag);
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no worker offers kind prims (did you mean primes?)"), "{stderr}");
    assert!(!stderr.contains("--threads"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_none_left(&tag);
}

#[test]
fn farm_results_answers_for_a_count_and_an_estimate() {
    let master = Master::start(&["--workers", "1", "--threads", "1", "--http", "off"]);
    let primes = master.submit_wait(&["primes", "--range", "0..100"]);
    assert_eq!(primes["result"], 25, "{primes}");
    let out = master.cli(&["results", &primes["job"].to_string()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "25\n");
    let pi = master.submit_wait(&["pi", "--range", "0..4", "--param", "samples=100"]);
    let out = master.cli(&["results", &pi["job"].to_string()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out), pi["result"], "the estimate, as the status has it");
}

#[test]
fn log_fields_show_values_not_rust_debug_text() {
    let tag = tag();
    let master = Master::start_logging(
        &["--workers", "1", "--threads", "1", "--http", "off"],
        &tag,
        "127.0.0.1:0",
        "farm_master=info",
    );
    let pi = master.submit_wait(&["pi", "--range", "0..2", "--param", "samples=10"]);
    assert_eq!(pi["state"], "succeeded", "{pi}");
    let ended = master.proc.wait_for_log(WAIT, "job ended", |l| l.contains("job ended"));
    assert!(ended.contains("state=succeeded") && !ended.contains("Some("), "{ended}");
    let cancelled = master.submit(&["sleep", "--range", "0..100", "--param", "ms=1000"]);
    let out = master.cli(&["cancel", &cancelled]);
    assert!(out.status.success(), "{out:?}");
    let said = |l: &str| l.contains("job ended") && l.contains("state=cancelled");
    let ended = master.proc.wait_for_log(WAIT, "a cancelled job ended", said);
    assert!(ended.contains("error=\"") && !ended.contains("Some("), "{ended}");
}
