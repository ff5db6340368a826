//! End to end: a job that cannot succeed says so at once. Params that contradict the range are
//! refused at submit; a failure every rerun would repeat (an input that is not a number) fails
//! the job without spending its retries.

use farm_tests::*;

#[test]
fn a_range_past_the_param_that_bounds_it_is_refused_at_submit() {
    let master = Master::start(&[]);
    let _w = master.worker(&["--threads", "1"]);
    master.wait_workers(1);
    let rows = |range: &str| {
        let args = ["submit", "mandelbrot", "--range", range, "--param", "height=10"];
        master.cli(&[&args[..], &["--param", "width=4", "--retries", "10"]].concat())
    };
    let out = rows("0..20");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        stderr.contains("range 0..20 goes past height=10: indices must be below height"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    let jobs = json(&master.cli(&["jobs", "--json"]));
    assert_eq!(jobs, serde_json::json!([]), "nothing was queued");
    // The master keeps serving: the range that fits runs.
    let out = rows("0..10");
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn an_input_that_is_not_a_number_fails_the_job_at_once_whatever_its_retries() {
    let master = Master::start(&[]);
    let _w = master.worker(&["--threads", "2"]);
    master.wait_workers(1);
    let inputs = std::env::temp_dir().join(format!("{}-inputs.txt", master.tag));
    std::fs::write(&inputs, "7\nseven\n11\n").expect("inputs file");
    let path = inputs.to_string_lossy().to_string();
    let v = master.submit_wait(&["primes", "--inputs", &path, "--retries", "5"]);
    let _ = std::fs::remove_file(&inputs);
    assert_eq!(v["state"], "failed", "{v}");
    assert_eq!(v["reruns"], 0, "a rerun would fail the same way: {v}");
    let error = v["error"].as_str().unwrap_or_default();
    assert!(error.contains(r#""seven" is not a whole number"#), "{error}");
    assert!(!error.contains("(run "), "failed on its first run: {error}");
}
