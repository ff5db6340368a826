//! The wasm kernel against the built-in kernels and its sandbox, with modules from
//! `examples/wasm` and small WAT ones.

use super::*;
use crate::kernels::{pi::Pi, primes::Primes};
use crate::sdk::{prepare_checked, CancelFlag, Output, ShardInput};
use std::time::{Duration, Instant};

fn example(name: &str) -> Vec<u8> {
    let path = format!("{}/../examples/wasm/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    if name.ends_with(".wat") {
        return wat::parse_bytes(&bytes).expect("valid wat").into_owned();
    }
    bytes
}

pub(super) fn runtime(cache: Option<std::path::PathBuf>) -> Arc<Runtime> {
    let config = WasmConfig { cache_dir: cache, ..WasmConfig::default() };
    Runtime::new(config).expect("runtime")
}

/// The module prepared as a job with `params` (`key=value`).
pub(super) fn job(runtime: &Arc<Runtime>, wasm: &[u8], params: &[&str]) -> Box<dyn Prepared> {
    let hash = farm_proto_sha(wasm);
    if runtime.missing(&hash) {
        runtime.arrived(&hash, wasm.to_vec());
    }
    let mut pairs = vec![format!("module={hash}")];
    pairs.extend(params.iter().map(|p| p.to_string()));
    let params = Params::from_pairs(pairs).expect("params");
    prepare_checked(&WasmKernel::new(runtime.clone()), &params).expect("prepared")
}

pub(super) fn farm_proto_sha(wasm: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(wasm).iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn range(lo: u64, hi: u64) -> ShardInput {
    ShardInput { lo, hi, input: None }
}

/// Runs shard 0..1 of `prepared` with a cancel flag set `after` it starts; what the run
/// returned, and how long after the cancel it returned.
pub(super) fn cancelled_after(
    prepared: &dyn Prepared,
    after: Duration,
) -> (Result<Output, KernelError>, Duration) {
    let cancel = CancelFlag::new();
    let setter = cancel.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(after);
        setter.cancel();
        Instant::now()
    });
    let result = prepared.run(&range(0, 1), &cancel);
    (result, Instant::now() - canceller.join().expect("canceller"))
}

pub(super) fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("valid wat")
}

#[test]
fn c_and_wat_primes_equal_the_built_in_primes() {
    let rt = runtime(None);
    let native = prepare_checked(&Primes, &Params::default()).expect("primes");
    let ranges = [(0, 10_000), (1_000_000, 1_010_000), ((1 << 32) - 3000, (1 << 32) + 3000)];
    let ranges = ranges.into_iter().chain([(u64::MAX - 2000, u64::MAX), (0, 0)]);
    let c = job(&rt, &example("primes.wasm"), &[]);
    let w = job(&rt, &example("primes.wat"), &[]);
    for (lo, hi) in ranges {
        let want = native.run(&range(lo, hi), &CancelFlag::new()).expect("native");
        assert_eq!(c.run(&range(lo, hi), &CancelFlag::new()), Ok(want.clone()), "C {lo}..{hi}");
        assert_eq!(w.run(&range(lo, hi), &CancelFlag::new()), Ok(want), "WAT {lo}..{hi}");
    }
}

#[test]
fn c_pi_gives_the_built_in_pis_hits_and_samples() {
    let rt = runtime(None);
    let native = prepare_checked(&Pi, &Params::from_pairs(["samples=5000"]).unwrap()).unwrap();
    let c = job(&rt, &example("pi.wasm"), &["samples=5000"]);
    for (lo, hi) in [(0, 10), (12345, 12350)] {
        let want = native.run(&range(lo, hi), &CancelFlag::new());
        assert!(matches!(want, Ok(Output::Fraction { .. })));
        assert_eq!(c.run(&range(lo, hi), &CancelFlag::new()), want);
    }
}

#[test]
fn a_module_compiles_once_per_worker_and_once_per_cache_directory() {
    let dir = std::env::temp_dir().join(format!("farm-wasm-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let wasm = example("primes.wasm");
    let rt = runtime(Some(dir.clone()));
    let (a, b) = (job(&rt, &wasm, &[]), job(&rt, &wasm, &[]));
    assert_eq!(a.run(&range(0, 100), &CancelFlag::new()), Ok(Output::Count(25)));
    assert_eq!(b.run(&range(0, 100), &CancelFlag::new()), Ok(Output::Count(25)));
    assert_eq!(rt.compiles(), 1);
    // A restarted worker finds the compiled code on disk: nothing to fetch or compile.
    let again = runtime(Some(dir.clone()));
    assert!(!again.missing(&farm_proto_sha(&wasm)));
    let c = job(&again, &wasm, &[]);
    assert_eq!(c.run(&range(0, 100), &CancelFlag::new()), Ok(Output::Count(25)));
    assert_eq!(again.compiles(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

const LOOP: &str = r#"(module (func (export "farm_run") (param i64 i64) (result i64)
    (loop $forever (br $forever)) (i64.const 0)))"#;

#[test]
fn an_infinite_loop_stops_soon_after_a_cancel_or_its_timeout() {
    let rt = runtime(None);
    let spin = job(&rt, &wat(LOOP), &[]);
    let (result, late) = cancelled_after(spin.as_ref(), Duration::from_millis(50));
    assert_eq!(result, Err(KernelError::Cancelled));
    assert!(late < Duration::from_secs(2), "stopped {late:?} after the cancel");
    let limit = Duration::from_millis(100);
    let start = Instant::now();
    let timed = spin.run(&range(0, 1), &CancelFlag::new().with_timeout(limit));
    assert_eq!(timed, Err(KernelError::TimedOut(100)));
    assert!(start.elapsed() < limit + Duration::from_secs(2), "{:?}", start.elapsed());
}

pub(super) fn failed(result: Result<Output, KernelError>) -> String {
    match result {
        Err(KernelError::Failed(message) | KernelError::BadInput(message)) => message,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn traps_memory_limits_and_failures_fail_the_shard_with_their_message() {
    let rt =
        Runtime::new(WasmConfig { max_memory: 1 << 20, cache_dir: None, ..WasmConfig::default() })
            .expect("runtime");
    let trap = job(
        &rt,
        &wat(r#"(module (func (export "farm_run") (param i64 i64) (result i64)
        unreachable))"#),
        &[],
    );
    let message = failed(trap.run(&range(0, 1), &CancelFlag::new()));
    assert!(message.starts_with("wasm trap:") && message.contains("unreachable"), "{message}");
    let grow = job(
        &rt,
        &wat(r#"(module (memory 1) (func (export "farm_run") (param i64 i64)
        (result i64) (i64.extend_i32_s (memory.grow (i32.const 100)))))"#),
        &[],
    );
    let message = failed(grow.run(&range(0, 1), &CancelFlag::new()));
    assert!(message.contains("memory limit"), "{message}");
    // Many memories count together: 3 of 6 pages each pass 1 MiB.
    let many = job(
        &rt,
        &wat(r#"(module (memory 6) (memory 6) (memory 6)
        (func (export "farm_run") (param i64 i64) (result i64) (i64.const 0)))"#),
        &[],
    );
    let message = failed(many.run(&range(0, 1), &CancelFlag::new()));
    assert!(message.contains("memory limit"), "{message}");
    let fits = job(
        &rt,
        &wat(r#"(module (memory 6) (memory 6)
        (func (export "farm_run") (param i64 i64) (result i64) (i64.const 0)))"#),
        &[],
    );
    assert_eq!(fits.run(&range(0, 1), &CancelFlag::new()), Ok(Output::Count(0)));
    let fail = job(
        &rt,
        &wat(r#"(module (import "farm" "fail" (func $fail (param i32 i32)))
        (memory (export "memory") 1) (data (i32.const 8) "bad index")
        (func (export "farm_run") (param i64 i64) (result i64)
          (call $fail (i32.const 8) (i32.const 9)) (i64.const 0)))"#),
        &[],
    );
    assert_eq!(failed(fail.run(&range(0, 1), &CancelFlag::new())), "module failed: bad index");
    // The instance that failed is dropped; the next shard gets a fresh one.
    assert!(fail.run(&range(0, 1), &CancelFlag::new()).is_err());
}

/// A list module: emits param `prefix` plus a letter per index, or its input line as is
/// (shared with the end-to-end tests).
const EMITTER: &str = include_str!("../../../examples/wasm/emitter.wat");

#[test]
fn list_modules_emit_lines_with_params_and_inputs() {
    let rt = runtime(None);
    let lines = |v: &[&str]| Ok(Output::Lines(v.iter().map(|s| s.to_string()).collect()));
    let with = job(&rt, &wat(EMITTER), &["prefix=x-"]);
    assert_eq!(with.run(&range(0, 3), &CancelFlag::new()), lines(&["x-a", "x-b", "x-c"]));
    let without = job(&rt, &wat(EMITTER), &[]);
    assert_eq!(without.run(&range(25, 27), &CancelFlag::new()), lines(&["z", "a"]));
    let input = ShardInput { lo: 4, hi: 5, input: Some("hello line".into()) };
    assert_eq!(with.run(&input, &CancelFlag::new()), lines(&["hello line"]));
    // A counting module that does not read input lines gets each as the number it is.
    let primes = job(&rt, &example("primes.wasm"), &[]);
    let seven = ShardInput { lo: 0, hi: 1, input: Some(" 7 ".into()) };
    assert_eq!(primes.run(&seven, &CancelFlag::new()), Ok(Output::Count(1)));
    let word = ShardInput { lo: 3, hi: 4, input: Some("seven".into()) };
    assert!(failed(primes.run(&word, &CancelFlag::new())).contains("not a whole number"));
}

/// Not a check but a measurement (`cargo test -p farm-worker --release -- --ignored
/// --nocapture instances`): tiny shards on one instance per shard vs reused instances.
#[test]
#[ignore]
fn instances_per_shard_vs_reused() {
    let noop = wat(r#"(module (memory (export "memory") 2)
        (func (export "farm_run") (param i64 i64) (result i64) (i64.sub (local.get 1) (local.get 0))))"#);
    for reuse in [false, true] {
        let config = WasmConfig { reuse_instances: reuse, cache_dir: None, ..Default::default() };
        let rt = Runtime::new(config).expect("runtime");
        let j = job(&rt, &noop, &[]);
        let n = 200_000;
        let start = Instant::now();
        for i in 0..n {
            j.run(&range(i, i + 1), &CancelFlag::new()).expect("ran");
        }
        let per = start.elapsed() / n as u32;
        println!("reuse_instances={reuse}: {per:?} per shard");
    }
}
