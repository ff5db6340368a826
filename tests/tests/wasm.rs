//! End to end: jobs that bring their own WebAssembly module. Results equal the built-in
//! kernels'; a module is uploaded once and compiled once per worker (and not again by a
//! restarted worker); the sandbox refuses foreign imports, garbage and oversized modules,
//! stops infinite loops, caps memory and reports traps; `--no-wasm` workers do not offer it.

use farm_tests::*;
use serde_json::{json as js, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/wasm").join(name)
}

/// A worker of `master` that logs at info (so its compiles can be counted).
fn worker(master: &Master, extra: &[&str]) -> Proc {
    let mut args = vec!["worker", "--master", master.url.as_str()];
    args.extend_from_slice(extra);
    start(&farm(), &args, &master.tag, "farm_worker=info", Stdio::null())
}

/// `farm submit <args> --wait --json` that must succeed; returns its result.
fn result(master: &Master, args: &[&str]) -> Value {
    let v = master.submit_wait(args);
    assert_eq!(v["state"], "succeeded", "{args:?}: {v}");
    v["result"].clone()
}

/// `farm submit <args> --wait --json` that must fail; returns the job's error.
fn failure(master: &Master, args: &[&str]) -> String {
    let v = master.submit_wait(args);
    assert_eq!(v["state"], "failed", "{args:?}: {v}");
    v["error"].as_str().unwrap_or_default().to_string()
}

fn compiles(proc: &Proc) -> usize {
    proc.log_count(|l| l.contains("wasm module compiled"))
}

#[test]
fn c_and_wat_primes_equal_the_built_in_primes_uploaded_and_compiled_once() {
    let tag = tag();
    let scratch = Scratch::new(&tag);
    let cache = scratch.0.join("cache").display().to_string();
    let master = Master::start_logging(&[], &tag, "127.0.0.1:0", "farm_master=info");
    let w = worker(&master, &["--threads", "2", "--wasm-cache", &cache]);
    master.wait_workers(1);
    let c = example("primes.wasm").display().to_string();
    let wat = std::fs::read_to_string(example("primes.wat")).expect("primes.wat");
    let wat = scratch.wat("primes_wat.wasm", &wat);
    let ranges = ["0..200000", "1000000..1100000", "4294960000..4294970000"];
    for range in ranges {
        let builtin = result(&master, &["primes", "--range", range, "--shard-size", "7919"]);
        for module in [&c, &wat] {
            let args = ["wasm", "--module", module, "--range", range, "--shard-size", "7919"];
            assert_eq!(result(&master, &args), builtin, "{module} over {range}");
        }
    }
    // Three jobs each: each module uploaded once and compiled once.
    let stored = master.proc.log_count(|l| l.contains("wasm module stored"));
    assert_eq!(stored, 2, "two modules, each stored once");
    assert_eq!(compiles(&w), 2, "each module compiled once");
    // A restarted worker finds the compiled code in its cache: nothing to compile.
    drop(w);
    master.wait_workers(0);
    let again = worker(&master, &["--threads", "1", "--wasm-cache", &cache]);
    master.wait_workers(1);
    let args = ["wasm", "--module", &c, "--range", "0..200000", "--shard-size", "7919"];
    assert_eq!(result(&master, &args), js!(17984));
    assert_eq!(compiles(&again), 0);
}

#[test]
fn farm_run_wasm_gives_the_built_in_results() {
    let tag = tag();
    let module = example("primes.wasm").display().to_string();
    let args = ["--range", "0..300000", "--shard-size", "10000", "--workers", "1", "--json"];
    let wasm = run(&[&["run", "wasm", "--module", &module][..], &args].concat(), &tag);
    assert!(wasm.status.success(), "{wasm:?}");
    assert_eq!(json(&wasm)["result"], 25997);
    // pi: the same points, so the same hits, samples and estimate.
    let pi = example("pi.wasm").display().to_string();
    let common = ["--range", "0..20", "--param", "samples=20000", "--workers", "1", "--json"];
    let native = run(&[&["run", "pi"][..], &common].concat(), &tag);
    let ours = run(&[&["run", "wasm", "--module", &pi][..], &common].concat(), &tag);
    assert!(native.status.success() && ours.status.success(), "{native:?} {ours:?}");
    assert_eq!(json(&ours)["result"], json(&native)["result"]);
    assert!(json(&ours)["result"]["estimate"]
        .as_f64()
        .is_some_and(|e| (e - std::f64::consts::PI).abs() < 0.1));
    assert_none_left(&tag);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_modules_are_refused_with_the_right_status_and_the_master_keeps_serving() {
    within(bad_modules_body()).await;
}

async fn bad_modules_body() {
    use tonic::Code;
    let master = Master::start(&["--max-module-mib", "1"]);
    let mut client = farm_client::Client::connect(&master.url).await.expect("client");
    let wasi = wat::parse_str(
        r#"(module (import "wasi_snapshot_preview1" "fd_write"
             (func (param i32 i32 i32 i32) (result i32)))
           (func (export "farm_run") (param i64 i64) (result i64) (i64.const 0)))"#,
    )
    .expect("wat");
    let err = client.put_module(wasi).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument), "{err}");
    assert!(err.to_string().contains("wasi_snapshot_preview1.fd_write"), "{err}");
    let err = client.put_module(b"\0asm but then garbage".to_vec()).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument), "{err}");
    let huge = vec![0u8; 2 << 20];
    let err = client.put_module(huge).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::ResourceExhausted), "{err}");
    // A job naming a module the master does not hold.
    let source = farm_proto::JobSource::Range { start: 0, end: 10, shard_size: 1 };
    let params = farm_proto::Params::from_pairs([format!("module={}", "a".repeat(64))]);
    let spec = farm_proto::JobSpec::new("wasm", source, params.expect("params"), 0);
    let err = client.submit(spec.expect("spec")).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::FailedPrecondition), "{err}");
    // The CLI: one line, non-zero exit.
    let scratch = Scratch::new(&master.tag);
    let garbage = scratch.file("garbage.wasm", b"\0asm but then garbage");
    let out = master.cli(&["submit", "wasm", "--module", &garbage, "--range", "0..10"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("invalid argument"), "{out:?}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    // Still serving: a good module is stored, once.
    let good = std::fs::read(example("primes.wasm")).expect("example");
    let (hash, uploaded) = client.upload_module(&good).await.expect("upload");
    assert!(uploaded && client.has_module(&hash).await.expect("has"));
    assert_eq!(client.upload_module(&good).await.expect("again"), (hash, false));
}

const LOOP: &str = r#"(module (func (export "farm_run") (param i64 i64) (result i64)
    (loop $forever (br $forever)) (i64.const 0)))"#;

#[test]
fn an_infinite_loop_is_cancelled_and_timed_out_and_the_thread_is_freed() {
    let master = Master::start(&[]);
    let scratch = Scratch::new(&master.tag);
    let _w = master.worker(&["--threads", "1"]);
    master.wait_workers(1);
    let looping = scratch.wat("loop.wasm", LOOP);
    let id = master.submit(&["wasm", "--module", &looping, "--range", "0..3", "--shard-size", "1"]);
    let held = |ws: &[Value]| ws.iter().any(|w| w["in_flight"].as_u64() >= Some(1));
    master.wait_workers_where("shards of the loop held", held);
    let started = Instant::now();
    assert!(master.cli(&["cancel", &id]).status.success());
    assert_eq!(master.status(&id)["state"], "cancelled");
    let args = ["wasm", "--module", &looping, "--range", "0..1", "--shard-timeout", "300ms"];
    let error = failure(&master, &args);
    assert!(error.contains("timed out after 300 ms"), "{error}");
    // The worker's one thread is free again (the loops were stopped): a real job completes.
    let primes = example("primes.wasm").display().to_string();
    assert_eq!(result(&master, &["wasm", "--module", &primes, "--range", "0..100"]), js!(25));
    assert!(started.elapsed() < WAIT, "{:?}", started.elapsed());
}

#[test]
fn traps_and_the_memory_cap_fail_the_job_with_their_message() {
    let master = Master::start(&[]);
    let scratch = Scratch::new(&master.tag);
    let _w = master.worker(&["--threads", "1", "--wasm-max-memory", "1"]);
    master.wait_workers(1);
    let trap = scratch.wat(
        "trap.wasm",
        r#"(module (func (export "farm_run") (param i64 i64) (result i64) unreachable))"#,
    );
    let error = failure(&master, &["wasm", "--module", &trap, "--range", "0..1"]);
    assert!(error.contains("wasm trap") && error.contains("unreachable"), "{error}");
    let grow = scratch.wat(
        "grow.wasm",
        r#"(module (memory 1) (func (export "farm_run") (param i64 i64) (result i64)
             (i64.extend_i32_s (memory.grow (i32.const 64)))))"#,
    );
    let error = failure(&master, &["wasm", "--module", &grow, "--range", "0..1"]);
    assert!(error.contains("memory limit") && error.contains("--wasm-max-memory"), "{error}");
}

#[test]
fn a_worker_started_with_no_wasm_does_not_offer_it() {
    let master = Master::start(&[]);
    let _plain = master.worker(&["--threads", "1", "--no-wasm", "--name", "plain"]);
    let _wasm = master.worker(&["--threads", "1", "--name", "wasm"]);
    let workers = master.wait_workers(2);
    let offers = |name: &str| {
        let w = workers.iter().find(|w| w["name"] == name).expect("worker");
        w["kinds"].as_array().expect("kinds").iter().any(|k| k == "wasm")
    };
    assert!(!offers("plain") && offers("wasm"));
    let kinds = master.cli(&["kinds"]);
    let text = String::from_utf8_lossy(&kinds.stdout);
    assert!(text.contains("wasm  (1 worker)") && text.contains("--param module=text"), "{text}");
}

/// A list module: emits param `prefix` plus a letter per index, or its input line as is
/// (shared with the worker's own wasm tests).
const EMITTER: &str = include_str!("../../examples/wasm/emitter.wat");

#[test]
fn list_modules_params_and_input_jobs() {
    let master = Master::start(&["--workers", "1", "--threads", "2"]);
    let scratch = Scratch::new(&master.tag);
    master.wait_workers(1);
    let emitter = scratch.wat("emitter.wasm", EMITTER);
    let args = ["wasm", "--module", &emitter, "--range", "0..5", "--shard-size", "2"];
    let with = result(&master, &[&args[..], &["--param", "prefix=x-"]].concat());
    assert_eq!(with, js!(["x-a", "x-b", "x-c", "x-d", "x-e"]));
    assert_eq!(result(&master, &args), js!(["a", "b", "c", "d", "e"]));
    let inputs = scratch.file("lines.txt", b"first line\n\nsecond\n");
    let lines = result(&master, &["wasm", "--module", &emitter, "--inputs", &inputs]);
    assert_eq!(lines, js!(["first line", "second"]));
    // A counting module gets each input line as the number it is, like the built-in primes.
    let numbers = scratch.file("numbers.txt", b"7\n8\n1000003\n4294967291\n");
    let primes = example("primes.wasm").display().to_string();
    let ours = result(&master, &["wasm", "--module", &primes, "--inputs", &numbers]);
    assert_eq!(ours, result(&master, &["primes", "--inputs", &numbers]));
    assert_eq!(ours, js!(3));
}
