//! Any language can submit jobs: the Python client in examples/python, generated from
//! proto/farm.proto with grpcio-tools, submits a job to a real master and streams its results,
//! and runs one with the single submit-and-wait call (`--run`).

use farm_tests::*;
use std::process::{Command, Stdio};

fn python_with_grpc_tools() -> bool {
    Command::new("python3")
        .args(["-c", "import grpc, grpc_tools"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn the_generated_python_client_submits_and_streams_a_job_and_runs_one() {
    if !python_with_grpc_tools() {
        // CI installs them (.ci/run); there the test must run, not skip.
        assert!(
            std::env::var("CI").is_err(),
            "python3 with grpcio and grpcio-tools is required in CI (pip install -r examples/python/requirements.txt)"
        );
        eprintln!("SKIPPED: python3 with grpcio and grpcio-tools not found (pip install -r examples/python/requirements.txt)");
        return;
    }
    let master = Master::start(&["--workers", "1", "--threads", "2", "--token", "py-t"]);
    // Long enough (about 1 s) that shards finish both before and after the watch opens.
    let v = python_client(&master, &["spin", "0", "200", "1", "--param", "ms=10"]);
    assert_eq!(v["state"], "succeeded");
    assert_eq!(v["result"], 200);
    assert_eq!(v["shards"], 200);
    assert_eq!(v["shards_seen_twice"], 0);
    // The watch asks for a replay: the shards done before it opened come first.
    assert_eq!(v["shard_results_seen"], 200, "{v}");

    // One Run call: the final status, with its result, and no shard results.
    let v = python_client(&master, &["--run", "primes", "0", "1000", "100"]);
    assert_eq!(v["call"], "run");
    assert_eq!(v["state"], "succeeded");
    assert_eq!(v["result"], 168);
    assert_eq!(v["shards"], 10);
    assert!(v["shard_results_seen"].is_null(), "{v}");
    assert!(v["shards_seen_twice"].is_null(), "nothing was watched, so nothing was seen: {v}");

    // The latency script (bench/python_latency.py) runs in both modes; its figures are for
    // the bench, only its shape is checked here.
    for mode in ["watch", "run"] {
        let v = python(
            &master,
            "/../bench/python_latency.py",
            &["--n", "20", "--warmup", "2", "--mode", mode],
        );
        assert_eq!((v["n"].as_u64(), v["mode"].as_str()), (Some(20), Some(mode)), "{v}");
        let (p50, max) = (v["p50_ms"].as_f64(), v["max_ms"].as_f64());
        assert!(p50.zip(max).is_some_and(|(p50, max)| 0.0 < p50 && p50 <= max), "{v}");
    }
}

/// Runs examples/python/farm_client.py against `master` with `args`; its JSON line.
fn python_client(master: &Master, args: &[&str]) -> serde_json::Value {
    python(master, "/../examples/python/farm_client.py", args)
}

/// Runs the Python script at `path` (from this crate's folder) against `master` with `args`;
/// its JSON line, once it exited 0.
fn python(master: &Master, path: &str, args: &[&str]) -> serde_json::Value {
    let script = format!("{}{path}", env!("CARGO_MANIFEST_DIR"));
    let addr = master.url.trim_start_matches("http://").to_string();
    let mut child = Command::new("python3")
        .args([script.as_str(), "--master", &addr])
        .args(args)
        .env("FARM_TOKEN", "py-t")
        .env("FARM_TEST_TAG", &master.tag)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python3");
    if wait_child(&mut child, WAIT).is_none() {
        let _ = child.kill();
        panic!("the Python client did not finish in {WAIT:?}");
    }
    let out = child.wait_with_output().expect("output");
    assert!(out.status.success(), "{out:?}");
    json(&out)
}
