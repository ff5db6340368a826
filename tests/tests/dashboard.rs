//! The dashboard in a real browser: headless Chromium driven through Selenium
//! (tests/browser/dashboard.py) against a master with a token and two workers. The page asks
//! for the token (saying the data is behind it, not that there is none), the job's row appears
//! and its progress advances without a reload, jobs are listed newest first, busy workers show a
//! rate, the job is cancelled from the page, the page runs under its Content-Security-Policy
//! without a violation, and screenshots are saved under target/tmp as test artifacts.

use farm_tests::*;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Whether python3 with Selenium, Chromium and its driver are here.
fn browser_available() -> bool {
    let selenium = Command::new("python3")
        .args(["-c", "import selenium"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    selenium
        && Path::new("/usr/bin/chromium").exists()
        && Path::new("/usr/bin/chromedriver").exists()
}

#[test]
fn the_dashboard_shows_a_job_advance_live_and_cancels_it_in_a_real_browser() {
    if !browser_available() {
        // CI installs them (.ci/run); there the test must run, not skip.
        assert!(
            std::env::var("CI").is_err(),
            "chromium, chromium-driver and python3 with selenium are required in CI"
        );
        eprintln!("SKIPPED: needs chromium, chromium-driver and selenium (see .ci/run)");
        return;
    }
    let master = Master::start(&[
        "--workers",
        "2",
        "--threads",
        "2",
        "--token",
        "dash-t",
        "--http",
        "127.0.0.1:0",
    ]);
    let url = format!("{}/", master.http.clone().expect("dashboard address"));
    let workers = || json(&master.cli(&["--token", "dash-t", "workers", "--json"]));
    assert!(wait_until(WAIT, || workers().as_array().is_some_and(|w| w.len() == 2)));
    // 20,000 shards of 20 ms on 4 threads: minutes, so the job is still going when cancelled.
    let submit =
        ["--token", "dash-t", "submit", "spin", "--range", "0..20000", "--shard-size", "1"];
    let out = master.cli(&[&submit[..], &["--param", "ms=20"]].concat());
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(out.status.success() && id.parse::<u64>().is_ok(), "{out:?}");
    // A newer job, cancelled at once: ended, it is still listed above the older one running.
    let newer = master.cli(&[&submit[..], &["--param", "ms=20"]].concat());
    let newest = String::from_utf8_lossy(&newer.stdout).trim().to_string();
    let cancel = master.cli(&["--token", "dash-t", "cancel", &newest]);
    assert!(cancel.status.success(), "{cancel:?}");

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let (shot, phone) = (dir.join("dashboard.png"), dir.join("dashboard-phone.png"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/browser/dashboard.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args(["--url", &url, "--job", &id, "--token", "dash-t"])
        .arg("--screenshot")
        .arg(&shot)
        .arg("--phone-screenshot")
        .arg(&phone)
        .stdout(Stdio::piped())
        // A group of its own, so a stuck run is killed with its chromedriver and Chromium.
        .process_group(0)
        .spawn()
        .expect("start python3");
    if wait_child(&mut child, WAIT * 2).is_none() {
        // SAFETY: kill(2) on the group this test started; no memory is involved.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
        let _ = child.wait();
        panic!("the browser script did not finish in {:?}", WAIT * 2);
    }
    let out = child.wait_with_output().expect("output");
    assert!(out.status.success(), "the browser script failed: {out:?}");
    let seen = json(&out);
    assert_eq!(seen["asked_for_token"], true, "{seen}");
    let behind = seen["behind_token"].to_string();
    assert!(behind.contains("behind the token"), "{seen}");
    assert!(!behind.contains("No jobs") && !behind.contains("No workers"), "{seen}");
    assert_eq!(seen["row_order"], serde_json::json!([newest, id]), "newest first: {seen}");
    let rates = seen["worker_rates"].as_array().cloned().unwrap_or_default();
    assert_eq!(rates.len(), 2, "{seen}");
    assert!(rates.iter().all(|r| r.as_str().is_some_and(|r| r != "0/s")), "{seen}");
    assert_eq!(seen["csp_violations"], serde_json::json!([]), "{seen}");
    assert!(seen["later_done"].as_u64() > seen["first_done"].as_u64(), "{seen}");
    assert_eq!(seen["state_after"], "cancelled", "{seen}");
    assert_eq!(seen["no_reload"], true, "the page reloaded: {seen}");
    // The master agrees: the page's cancel reached it.
    let status = json(&master.cli(&["--token", "dash-t", "status", &id, "--json"]))[0].clone();
    assert_eq!(status["state"], "cancelled", "{status}");
    for png in [&shot, &phone] {
        let bytes = std::fs::read(png).expect("screenshot written");
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "{}", png.display());
        eprintln!("screenshot: {}", png.display());
    }
}
