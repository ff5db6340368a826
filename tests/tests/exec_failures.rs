//! End to end: an `exec` job whose commands fail fails, with the exit code and the command's
//! stderr in its error, retries apply, and `farm` exits non-zero; `allow_fail=true` keeps
//! every exit code in the result instead.

use farm_tests::*;

#[test]
fn farm_run_of_failing_commands_fails_and_exits_non_zero() {
    let tag = tag();
    let out = run(
        &[
            "run",
            "exec",
            "--range",
            "0..3",
            "--param",
            "cmd=sh -c 'echo oops-{} >&2; exit 1'",
            "--workers",
            "1",
            "--threads",
            "1",
            "--allow-exec",
        ],
        &tag,
    );
    assert!(!out.status.success(), "a job of failing commands must fail: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("job 1 failed"), "{stderr}");
    assert!(stderr.contains("exited with code 1"), "{stderr}");
    assert!(stderr.contains("stderr: oops-"), "the command's stderr is quoted: {stderr}");
    assert_none_left(&tag);
}

#[test]
fn submit_wait_fails_after_the_retries_and_allow_fail_lists_every_code() {
    let master = Master::start(&[]);
    let _w = master.worker(&["--threads", "2", "--allow-exec"]);
    master.wait_workers(1);
    let fail = "cmd=sh -c 'echo bad {} >&2; exit 7'";
    let args = ["submit", "exec", "--range", "0..1", "--param", fail, "--retries", "1"];
    let out = master.cli(&[&args[..], &["--wait", "--json"]].concat());
    assert!(!out.status.success(), "submit --wait of a failing job exits non-zero: {out:?}");
    let v = json(&out);
    assert_eq!(v["state"], "failed", "{v}");
    assert_eq!(v["reruns"], 1, "the retry ran: {v}");
    let error = v["error"].as_str().unwrap_or_default();
    assert!(error.contains("(run 2)") && error.contains("exited with code 7"), "{error}");
    assert!(error.ends_with("stderr: bad 0"), "{error}");

    // Exit codes 0, 1 and 2: with allow_fail the job succeeds and lists them all.
    let codes = "cmd=sh -c 'echo out {}; exit {}'";
    let ok = master.cli(&[
        "submit",
        "exec",
        "--range",
        "0..3",
        "--param",
        codes,
        "--param",
        "allow_fail=true",
        "--wait",
        "--json",
    ]);
    assert!(ok.status.success(), "{ok:?}");
    let v = json(&ok);
    let listed: Vec<i64> = (0..3).filter_map(|i| v["result"][i]["exit_code"].as_i64()).collect();
    assert_eq!(listed, [0, 1, 2], "{v}");
    assert_eq!(v["result"][2]["stdout"], "out 2\n");

    // The same job without it fails on its first non-zero exit.
    let v = master.submit_wait(&["exec", "--range", "0..3", "--param", codes]);
    assert_eq!(v["state"], "failed", "{v}");

    // A value that is not a flag fails the job once, naming the param.
    let v = master.submit_wait(&[
        "exec",
        "--range",
        "0..3",
        "--param",
        codes,
        "--param",
        "allow_fail=maybe",
    ]);
    assert_eq!(v["state"], "failed", "{v}");
    let error = v["error"].as_str().unwrap_or_default();
    assert!(error.contains("bad param allow_fail"), "{error}");
}
