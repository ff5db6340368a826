//! End to end: hostile wasm modules against a real master and workers. A start function that
//! loops forever is cancelled and timed out like `farm_run`, and with `--retries 0` its job
//! fails instead of spreading to every worker; a table bomb fails its shard with the memory
//! cap's message while the worker stays small; a compile bomb is refused at submit naming the
//! bound, and a module just under the bounds still runs; `--module` takes WAT text and names
//! any other file in one line.

use farm_tests::*;
use serde_json::{json as js, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// A module whose start function never returns.
const START_LOOP: &str = r#"(module
    (func $forever (loop $l (br $l)))
    (start $forever)
    (func (export "farm_run") (param i64 i64) (result i64) (i64.const 0)))"#;

/// A module of `tables` tables of `elements` funcrefs each.
fn tables(tables: usize, elements: u32) -> String {
    format!(
        r#"(module {} (func (export "farm_run") (param i64 i64) (result i64) (i64.const 0)))"#,
        format!("(table {elements} funcref) ").repeat(tables)
    )
}

/// A module of `n` trivial functions besides `farm_run`.
fn functions(n: usize) -> String {
    format!(
        r#"(module {} (func (export "farm_run") (param i64 i64) (result i64) (i64.const 0)))"#,
        "(func) ".repeat(n)
    )
}

/// A module at the bounds on tables, memories, globals, segments and locals, with 1,000
/// functions (the function bound itself is checked at 9,999 in farm-proto's tests: a debug
/// build takes 27 s to compile that many). `farm_run` returns 7 per index.
fn just_under() -> String {
    let mut parts = vec!["(module".to_string()];
    parts.extend(["(table 1 funcref)", "(memory 1)"].repeat(8).into_iter().map(String::from));
    parts.extend(std::iter::repeat_n("(global i32 (i32.const 0))".into(), 1000));
    parts.extend((0..1000).map(|i| format!("(func $f{i})")));
    parts.extend(std::iter::repeat_n("(elem (table 0) (i32.const 0) func $f0)".into(), 1000));
    parts.extend(std::iter::repeat_n(r#"(data (memory 0) (i32.const 0) "x")"#.into(), 1000));
    parts.push(format!(
        r#"(func (export "farm_run") (param i64 i64) (result i64) (local {})
             (i64.mul (i64.sub (local.get 1) (local.get 0)) (i64.const 7))))"#,
        "i64 ".repeat(5000)
    ));
    parts.join(" ")
}

fn primes_wat() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/wasm/primes.wat");
    path.display().to_string()
}

#[test]
fn a_start_loop_is_cancelled_and_timed_out_and_with_no_retries_fails_instead_of_spreading() {
    let master = Master::start(&[]);
    let scratch = Scratch::new(&master.tag);
    let _a = master.worker(&["--threads", "1", "--name", "a"]);
    let _b = master.worker(&["--threads", "1", "--name", "b"]);
    master.wait_workers(2);
    let looping = scratch.wat("start.wasm", START_LOOP);
    let id = master.submit(&["wasm", "--module", &looping, "--range", "0..8", "--shard-size", "1"]);
    let held = |ws: &[Value]| ws.iter().all(|w| w["in_flight"].as_u64() >= Some(1));
    master.wait_workers_where("both workers in the start loop", held);
    let cancelled = Instant::now();
    assert!(master.cli(&["cancel", &id]).status.success());
    assert_eq!(master.status(&id)["state"], "cancelled");
    // The loops stopped: both pool threads run a real job.
    let primes = primes_wat();
    let args = ["wasm", "--module", &primes, "--range", "0..1000", "--shard-size", "100"];
    let v = master.submit_wait(&args);
    assert_eq!((&v["state"], &v["result"]), (&js!("succeeded"), &js!(168)), "{v}");
    assert!(cancelled.elapsed() < Duration::from_secs(10), "{:?}", cancelled.elapsed());
    // A timeout: the worker stops the start loop itself; --retries 0 fails the job at once,
    // without the shard going on to the other worker.
    let started = Instant::now();
    let args = ["wasm", "--module", &looping, "--range", "0..1", "--shard-timeout", "300ms"];
    let v = master.submit_wait(&[&args[..], &["--retries", "0"]].concat());
    assert_eq!(v["state"], "failed", "{v}");
    let error = v["error"].as_str().unwrap_or_default();
    assert!(error.contains("timed out after 300 ms"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let workers = master.workers();
    assert!(
        workers.iter().all(|w| w["suspect"].is_null()),
        "no worker held it too long: {workers:?}"
    );
}

#[test]
fn a_table_bomb_fails_on_the_memory_cap_and_too_many_tables_are_refused_at_submit() {
    let master = Master::start(&[]);
    let scratch = Scratch::new(&master.tag);
    let w = master.worker(&["--threads", "1", "--wasm-max-memory", "16"]);
    master.wait_workers(1);
    // Warm up: the worker's baseline, with the wasm runtime in use.
    let primes = primes_wat();
    let v = master.submit_wait(&["wasm", "--module", &primes, "--range", "0..100"]);
    assert_eq!(v["result"], 25, "{v}");
    let before = w.peak_rss_mib();
    // 8 tables (the most allowed) of 1 M funcrefs: 128 MiB at 16 bytes an element.
    let bomb = scratch.wat("tables.wasm", &tables(8, 1 << 20));
    let v =
        master.submit_wait(&["wasm", "--module", &bomb, "--range", "0..4", "--shard-size", "1"]);
    assert_eq!(v["state"], "failed", "{v}");
    let error = v["error"].as_str().unwrap_or_default();
    assert!(error.contains("memory limit") && error.contains("--wasm-max-memory"), "{error}");
    let grew = w.peak_rss_mib().saturating_sub(before);
    assert!(grew < 32, "the worker's peak RSS grew {grew} MiB (from {before} MiB)");
    // 100 tables: refused at submit, naming the bound.
    let many = scratch.wat("many.wasm", &tables(100, 1));
    let out = master.cli(&["submit", "wasm", "--module", &many, "--range", "0..1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("invalid argument"), "{out:?}");
    assert!(stderr.contains("declares 100 tables, farm allows at most 8"), "{stderr}");
}

#[test]
fn a_compile_bomb_is_refused_at_submit_and_a_module_just_under_the_bounds_runs() {
    let master = Master::start(&["--workers", "1", "--threads", "1"]);
    let scratch = Scratch::new(&master.tag);
    master.wait_workers(1);
    let bomb = scratch.wat("bomb.wasm", &functions(200_000));
    let started = Instant::now();
    let out = master.cli(&["submit", "wasm", "--module", &bomb, "--range", "0..1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("invalid argument"), "{out:?}");
    assert!(stderr.contains("declares 200001 functions, farm allows at most 10000"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let under = scratch.wat("under.wasm", &just_under());
    let v = master.submit_wait(&["wasm", "--module", &under, "--range", "0..10"]);
    assert_eq!((&v["state"], &v["result"]), (&js!("succeeded"), &js!(70)), "{v}");
}

#[test]
fn module_takes_wat_text_and_names_other_files_in_one_line() {
    let master = Master::start(&["--workers", "1", "--threads", "1"]);
    let scratch = Scratch::new(&master.tag);
    master.wait_workers(1);
    let v = master.submit_wait(&["wasm", "--module", &primes_wat(), "--range", "0..100"]);
    assert_eq!((&v["state"], &v["result"]), (&js!("succeeded"), &js!(25)), "{v}");
    let png = scratch.file("x.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    let out = master.cli(&["submit", "wasm", "--module", &png, "--range", "0..1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("x.png is not a WebAssembly module (binary or WAT text)"), "{stderr}");
}
