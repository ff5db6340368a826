//! End to end: text from workers and jobs cannot drive the operator's terminal. An exec job
//! whose stderr sets the window title (`ESC ] 0 ; … BEL`) and clears the screen (`ESC [ 2J`)
//! shows those bytes escaped in every human output (`submit --wait`, `status`, `logs`, `jobs`),
//! and exactly, as JSON escapes, with `--json`.

use farm_tests::*;

/// What the program writes to its stderr before it fails.
const HOSTILE: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J";

/// Fails with a message when `bytes` hold a raw ESC or BEL.
fn assert_no_raw_controls(what: &str, bytes: &[u8]) {
    assert!(
        !bytes.iter().any(|&b| b == 0x1b || b == 0x07),
        "{what} has a raw control character: {:?}",
        String::from_utf8_lossy(bytes)
    );
}

#[test]
fn escapes_in_a_jobs_stderr_are_shown_escaped_and_kept_exact_in_json() {
    let master = Master::start(&["--http", "off"]);
    let _w = master.worker(&["--threads", "1", "--allow-exec"]);
    master.wait_workers(1);
    let cmd = r#"cmd=sh -c 'printf "\033]0;pwned\007\033[2J" >&2; exit 1'"#;
    let out = master.cli(&["submit", "exec", "--range", "0..1", "--param", cmd, "--wait"]);
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(r"\u{1b}]0;pwned\u{7}\u{1b}[2J"), "shown escaped: {stderr}");
    assert_no_raw_controls("submit --wait", &out.stderr);
    assert_no_raw_controls("submit --wait", &out.stdout);
    let id = "1";
    for args in [&["status", id][..], &["logs", id], &["jobs"]] {
        let out = master.cli(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        // `jobs` cuts the error to its first 60 characters, before the escapes.
        let cut = args[0] == "jobs";
        assert!(cut || text.contains(r"\u{1b}[2J"), "{args:?} shows the escape: {text}");
        assert_no_raw_controls(&format!("{args:?}"), &out.stdout);
    }
    let error = master.status(id)["error"].as_str().unwrap_or_default().to_string();
    assert!(error.ends_with(HOSTILE), "--json keeps the exact text: {error:?}");
    let logs = json(&master.cli(&["logs", id, "--json"]));
    assert_eq!(logs[0]["log"], HOSTILE, "{logs}");
}
