//! End to end: the real `farm` binary as master, workers and client; exact results; processes
//! that come and go.

use farm_tests::*;
use sha2::{Digest, Sha256};
use std::time::Duration;

#[test]
fn farm_run_prints_the_exact_result_as_json_and_leaves_no_process() {
    let tag = tag();
    let out = run(
        &[
            "run",
            "primes",
            "--range",
            "0..1000000",
            "--shard-size",
            "10000",
            "--workers",
            "2",
            "--threads",
            "2",
            "--json",
        ],
        &tag,
    );
    assert!(out.status.success(), "farm run failed: {out:?}");
    let v = json(&out);
    assert_eq!(v["result"], 78498);
    assert_eq!(v["state"], "succeeded");
    assert_eq!(v["kind"], "primes");
    assert_eq!(v["shards"], 100);
    assert!(v["job"].is_u64() && v["elapsed_ms"].is_u64(), "{v}");
    assert_none_left(&tag);
}

#[test]
fn separate_master_and_workers_compute_exact_results() {
    let master = Master::start(&[]);
    let _w1 = master.worker(&["--threads", "2", "--name", "w-one"]);
    let _w2 = master.worker(&["--threads", "1"]);
    let workers = master.wait_workers(2);
    let mut threads: Vec<u64> =
        workers.iter().map(|w| w["threads"].as_u64().unwrap_or(0)).collect();
    threads.sort();
    assert_eq!(threads, vec![1, 2]);
    assert!(workers.iter().any(|w| w["name"] == "w-one"));

    // primes below 200,000: 17,984 (a known count); near 10^9: checked by trial division here.
    let out = master.cli(&[
        "submit",
        "primes",
        "--range",
        "0..200000",
        "--shard-size",
        "1000",
        "--wait",
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out)["result"], 17984);
    let is_prime =
        |n: u64| n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| !n.is_multiple_of(d));
    let expected = (1_000_000_000..1_000_010_000u64).filter(|&n| is_prime(n)).count();
    let v = master.submit_wait(&["primes", "--range", "1000000000..1000010000"]);
    assert_eq!(v["result"], expected);

    // hashchain against an independent SHA-256 computation.
    let out = master.cli(&[
        "submit",
        "hashchain",
        "--range",
        "0..16",
        "--shard-size",
        "4",
        "--param",
        "rounds=1000",
        "--wait",
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let got = json(&out)["result"].clone();
    let expected: Vec<String> = (0..16u64)
        .map(|i| {
            let mut state: Vec<u8> = Sha256::digest(i.to_string().as_bytes()).to_vec();
            for _ in 1..1000 {
                state = Sha256::digest(&state).to_vec();
            }
            state.iter().map(|b| format!("{b:02x}")).collect()
        })
        .collect();
    assert_eq!(got, serde_json::json!(expected));

    // Without --wait, submit prints the id; status and jobs find it.
    let id = master.submit(&["noop", "--range", "0..1000", "--shard-size", "10"]);
    assert!(wait_until(WAIT, || master.status(&id)["state"] == "succeeded"));
    let jobs = json(&master.cli(&["jobs", "--json"]));
    assert_eq!(jobs.as_array().map(Vec::len), Some(4));
    // Newest first, with their results (each under the list's 4 KiB bound).
    assert_eq!(jobs[0]["job"].to_string(), id, "{jobs}");
    assert_eq!(jobs[0]["result"], 1000, "{jobs}");
    assert_eq!(jobs[3]["state"], "succeeded");
    assert_eq!(jobs[3]["result"], 17984, "{jobs}");
    assert_eq!(master.status(&id)["result"], 1000);
}

#[test]
fn pi_matches_an_independent_splitmix64_computation() {
    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let unit = |s: &mut u64| (splitmix(s) >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    let mut hits = 0u64;
    for seed in 0..8u64 {
        let mut s = seed;
        for _ in 0..5000 {
            let (x, y) = (unit(&mut s), unit(&mut s));
            hits += u64::from(x * x + y * y <= 1.0);
        }
    }
    let tag = tag();
    let out = run(
        &[
            "run",
            "pi",
            "--range",
            "0..8",
            "--shard-size",
            "3",
            "--param",
            "samples=5000",
            "--workers",
            "1",
            "--threads",
            "2",
            "--json",
        ],
        &tag,
    );
    let v = json(&out);
    assert_eq!(v["result"]["hits"], hits);
    assert_eq!(v["result"]["samples"], 40_000);
    let estimate = v["result"]["estimate"].as_f64().unwrap_or(0.0);
    assert!((estimate - std::f64::consts::PI).abs() < 0.05, "{estimate}");
}

/// The width and height of a PNG file's bytes, after checking its signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let word =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    (word(16), word(20))
}

#[test]
fn a_png_is_drawn_from_rows_kept_in_the_store() {
    let tag = tag();
    let dir = std::env::temp_dir().join(&tag);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let png = dir.join("big.png");
    let png_arg = png.to_string_lossy().to_string();
    // The default 800 x 600 image: its rows are over the 1 MiB a result may keep inline.
    let args = ["run", "mandelbrot", "--range", "0..600", "--shard-size", "50", "--out"];
    let mut args = args.to_vec();
    args.extend([png_arg.as_str(), "--workers", "1", "--threads", "2", "--json"]);
    let out = run(&args, &tag);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out)["result_in_store"], true, "the rows live only in the store");
    assert_eq!(png_size(&std::fs::read(&png).expect("png written")), (800, 600));
    let _ = std::fs::remove_dir_all(&dir);
    assert_none_left(&tag);
}

#[test]
fn mandelbrot_writes_a_png_and_a_range_past_its_height_is_refused() {
    let tag = tag();
    let dir = std::env::temp_dir().join(&tag);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let png = dir.join("m.png");
    let png_arg = png.to_string_lossy().to_string();
    let out = run(
        &[
            "run",
            "mandelbrot",
            "--range",
            "0..30",
            "--shard-size",
            "4",
            "--param",
            "width=40",
            "--param",
            "height=30",
            "--out",
            &png_arg,
            "--workers",
            "1",
            "--threads",
            "2",
        ],
        &tag,
    );
    assert!(out.status.success(), "{out:?}");
    let bytes = std::fs::read(&png).expect("png written");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.is_empty(), "with --out the rows go to the file, not stdout: {stdout}");
    assert_eq!(png_size(&bytes), (40, 30));

    let out = run(
        &[
            "run",
            "mandelbrot",
            "--range",
            "0..12",
            "--shard-size",
            "4",
            "--param",
            "height=10",
            "--workers",
            "1",
            "--threads",
            "1",
            "--json",
        ],
        &tag,
    );
    // Rows 10 and 11 are past the image's height: refused before anything runs.
    assert!(!out.status.success());
    let refusal = out.stderr.split(|&b| b == b'\n').find_map(|l| {
        serde_json::from_slice::<serde_json::Value>(l).ok().filter(|v| v.get("code").is_some())
    });
    let v = refusal.unwrap_or_else(|| panic!("no JSON error on stderr: {out:?}"));
    assert_eq!(v["code"], "InvalidArgument", "{v}");
    let error = v["error"].as_str().unwrap_or("");
    assert!(error.contains("range 0..12 goes past height=10"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
    assert_none_left(&tag);
}

#[test]
fn exec_runs_only_on_workers_that_allow_it() {
    let master = Master::start(&[]);
    let _plain = master.worker(&["--threads", "1"]);
    master.wait_workers(1);
    let out = master.cli(&["submit", "exec", "--range", "0..3", "--param", "cmd=echo x{}"]);
    assert!(!out.status.success(), "exec without --allow-exec must be refused");

    let _exec = master.worker(&["--threads", "2", "--allow-exec"]);
    master.wait_workers(2);
    let inputs = std::env::temp_dir().join(format!("{}-inputs.txt", master.tag));
    std::fs::write(&inputs, "alpha\nbeta gamma\n").expect("inputs file");
    let path = inputs.to_string_lossy().to_string();
    let out = master.cli(&[
        "submit",
        "exec",
        "--inputs",
        &path,
        "--param",
        "cmd=echo <{}>",
        "--wait",
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let v = json(&out);
    assert_eq!(
        v["result"],
        serde_json::json!([
            {"exit_code": 0, "stdout": "<alpha>\n"},
            {"exit_code": 0, "stdout": "<beta gamma>\n"},
        ])
    );
    let fail = "cmd=sh -c 'exit 3'";
    let v = master.submit_wait(&[
        "exec",
        "--range",
        "0..2",
        "--param",
        fail,
        "--param",
        "allow_fail=1",
    ]);
    assert_eq!(v["result"][1]["exit_code"], 3);

    // farm run starts its workers before submitting, so exec is offered at once.
    let out = run(
        &[
            "run",
            "exec",
            "--range",
            "0..3",
            "--param",
            "cmd=echo {}",
            "--workers",
            "2",
            "--threads",
            "1",
            "--allow-exec",
        ],
        &master.tag,
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n1\n2\n");
    let _ = std::fs::remove_file(inputs);
}

#[test]
fn a_user_kernel_runs_in_its_own_worker_binary() {
    let master = Master::start(&[]);
    let args = ["--master", &master.url, "--threads", "2"];
    let _worker = start(&collatz_worker(), &args, &master.tag, QUIET, std::process::Stdio::null());
    master.wait_workers(1);
    let expected: u64 = (1..10_000u64)
        .map(|mut n| {
            let mut steps = 0;
            while n > 1 {
                n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
                steps += 1;
            }
            steps
        })
        .sum();
    let out = master.cli(&[
        "submit",
        "collatz",
        "--range",
        "1..10000",
        "--shard-size",
        "500",
        "--wait",
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out)["result"], expected);

    // The master learned the kernel from the worker's description: `farm kinds` lists it, and
    // a param it does not declare is refused at submit, not on the worker.
    let kinds = master.cli(&["kinds", "--json"]);
    assert!(kinds.status.success(), "{kinds:?}");
    let kinds = json(&kinds);
    let collatz = kinds
        .as_array()
        .and_then(|k| k.iter().find(|k| k["kernel"]["kind"] == "collatz"))
        .expect("collatz listed")
        .clone();
    assert_eq!(collatz["workers"], 1);
    assert_eq!(collatz["kernel"]["output"]["shape"], "count");
    let text = master.cli(&["kinds"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("collatz  (1 worker)"), "{text:?}");
    let bad = master.cli(&["submit", "collatz", "--range", "1..10", "--param", "depth=3"]);
    assert!(!bad.status.success(), "{bad:?}");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("unknown param depth for kernel collatz"), "{err}");
}

#[test]
fn cancel_stops_a_running_job_and_frees_the_workers() {
    let master = Master::start(&["--workers", "1", "--threads", "2"]);
    master.wait_workers(1);
    let id =
        master.submit(&["sleep", "--range", "0..1000", "--shard-size", "1", "--param", "ms=200"]);
    master.wait_done(&id, 1);
    let out = master.cli(&["cancel", &id, "--json"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out)[0]["state"], "cancelled");
    assert_eq!(master.submit_wait(&["noop", "--range", "0..10"])["result"], 10);
    // The cancelled job stays cancelled, and no shard is still counted as running anywhere.
    assert_eq!(master.status(&id)["state"], "cancelled");
    let workers = master.wait_workers(1);
    assert_eq!(workers[0]["in_flight"], 0);
}

#[test]
fn spawned_workers_stop_with_the_master_on_sigterm() {
    let mut master = Master::start(&["--workers", "2", "--threads", "1"]);
    let workers = master.wait_workers(2);
    assert!(workers.iter().all(|w| w["pid"].as_u64() != Some(u64::from(master.proc.pid()))));
    master.proc.signal(libc::SIGTERM);
    let status = master.proc.wait(Duration::from_secs(20)).expect("master exits on SIGTERM");
    assert!(status.success(), "{status:?}");
    assert_none_left(&master.tag);
}

#[test]
fn spawned_workers_die_when_the_master_is_killed() {
    let mut master = Master::start(&["--workers", "2", "--threads", "1"]);
    master.wait_workers(2);
    master.proc.signal(libc::SIGKILL);
    master.proc.wait(Duration::from_secs(20)).expect("master killed");
    assert_none_left(&master.tag);
}

#[test]
fn a_worker_waits_for_a_master_that_starts_later() {
    // The worker dials a port where no master is yet, and is hung up on.
    let trap = DialTrap::new();
    let tag = tag();
    let url = format!("http://{}", trap.addr);
    let _worker =
        spawn(&["worker", "--master", &url, "--threads", "1"], &tag, std::process::Stdio::null());
    assert!(trap.wait_for_dial(WAIT), "the worker never dialed the master's address");
    let master = Master::start_tagged(&[], &tag, &trap.release());
    master.wait_workers(1);
    assert_eq!(master.submit_wait(&["primes", "--range", "0..1000"])["result"], 168);
}
