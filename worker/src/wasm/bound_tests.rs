//! The wasm kernel's bounds against hostile modules: a start function that loops forever,
//! table bombs, compile bombs, and the bounds of the compiled-code caches in memory and on
//! disk, with the cache directory's owner and mode check.

use super::tests::{cancelled_after, failed, farm_proto_sha, job, range, runtime, wat};
use super::*;
use crate::sdk::{CancelFlag, KernelError, Output};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

/// A module whose start function never returns.
pub(super) const START_LOOP: &str = r#"(module
    (func $forever (loop $l (br $l)))
    (start $forever)
    (func (export "farm_run") (param i64 i64) (result i64) (i64.const 0)))"#;

#[test]
fn a_start_function_that_loops_forever_stops_on_cancel_and_on_its_timeout() {
    let rt = runtime(None);
    let spin = job(&rt, &wat(START_LOOP), &[]);
    let (result, late) = cancelled_after(spin.as_ref(), Duration::from_millis(50));
    assert_eq!(result, Err(KernelError::Cancelled));
    assert!(late < Duration::from_secs(2), "stopped {late:?} after the cancel");
    let start = Instant::now();
    let timed = spin.run(&range(0, 1), &CancelFlag::new().with_timeout(Duration::from_millis(100)));
    assert_eq!(timed, Err(KernelError::TimedOut(100)));
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
}

/// A module with `tables` tables of `elements` funcrefs each.
fn tables(tables: usize, elements: u32) -> Vec<u8> {
    let table = format!("(table {elements} funcref) ");
    wat(&format!(
        r#"(module {} (func (export "farm_run") (param i64 i64) (result i64) (i64.const 0)))"#,
        table.repeat(tables)
    ))
}

#[test]
fn tables_count_against_the_memory_cap_and_their_number_is_bounded() {
    let config = WasmConfig { max_memory: 16 << 20, cache_dir: None, ..WasmConfig::default() };
    let rt = Runtime::new(config).expect("runtime");
    // 8 tables of 1 M funcrefs: 128 MiB at 16 bytes an element, over the 16 MiB cap.
    let bomb = job(&rt, &tables(8, 1 << 20), &[]);
    let message = failed(bomb.run(&range(0, 1), &CancelFlag::new()));
    assert!(message.contains("memory limit") && message.contains("memory and tables"), "{message}");
    // 8 tables of 100 000 (12.8 MB) fit.
    let fits = job(&rt, &tables(8, 100_000), &[]);
    assert_eq!(fits.run(&range(0, 1), &CancelFlag::new()), Ok(Output::Count(0)));
    // More than 8 tables: refused before compiling, as the master refuses them.
    let many = job(&rt, &tables(100, 1), &[]);
    let message = failed(many.run(&range(0, 1), &CancelFlag::new()));
    assert!(message.contains("declares 100 tables, farm allows at most 8"), "{message}");
    assert_eq!(rt.compiles(), 2);
}

/// A module of `n` trivial functions besides `farm_run`.
fn functions(n: usize) -> Vec<u8> {
    let text = format!(
        r#"(module {} (func (export "farm_run") (param i64 i64) (result i64) (i64.const 0)))"#,
        "(func) ".repeat(n)
    );
    wat(&text)
}

#[test]
fn a_compile_bomb_is_refused_before_compiling_and_a_cancel_during_a_compile_is_prompt() {
    let rt = runtime(None);
    let bomb = job(&rt, &functions(100_000), &[]);
    let message = failed(bomb.run(&range(0, 1), &CancelFlag::new()));
    assert!(message.contains("declares 100001 functions, farm allows at most 10000"), "{message}");
    assert_eq!(rt.compiles(), 0);
    // 2,000 functions compile (on the compile thread) for seconds in a debug build; a cancel
    // ends the wait at once, and the compile goes on for the next shard.
    let big = job(&rt, &functions(2_000), &[]);
    let (result, late) = cancelled_after(big.as_ref(), Duration::from_millis(20));
    assert_eq!(result, Err(KernelError::Cancelled));
    assert!(late < Duration::from_millis(500), "stopped {late:?} after the cancel");
    assert_eq!(rt.compiles(), 0, "the compile was still going");
    assert_eq!(big.run(&range(0, 1), &CancelFlag::new()), Ok(Output::Count(0)));
    assert_eq!(rt.compiles(), 1);
}

/// A counting module made distinct by `tag`.
fn distinct(tag: u32) -> Vec<u8> {
    wat(&format!(
        r#"(module (func (export "farm_run") (param i64 i64) (result i64) (i64.const {tag})))"#
    ))
}

#[test]
fn compiled_code_is_bounded_in_memory_and_on_disk_least_recently_used_out() {
    let dir = std::env::temp_dir().join(format!("farm-wasm-bound-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = WasmConfig {
        cache_dir: Some(dir.clone()),
        memory_bound: 64 << 10,
        disk_bound: 64 << 10,
        ..WasmConfig::default()
    };
    let rt = Runtime::new(config).expect("runtime");
    let mode = std::fs::metadata(&dir).expect("created").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let disk_bytes = || -> u64 {
        let files = std::fs::read_dir(&dir).expect("dir").filter_map(Result::ok);
        files.map(|e| e.metadata().map_or(0, |m| m.len())).sum()
    };
    let first = distinct(0);
    for tag in 0..40 {
        let j = job(&rt, &distinct(tag), &[]);
        assert_eq!(j.run(&range(0, 1), &CancelFlag::new()), Ok(Output::Count(tag.into())));
        drop(j);
        // The first module is used all along: never the least recently used.
        let again = job(&rt, &first, &[]);
        assert_eq!(again.run(&range(0, 1), &CancelFlag::new()), Ok(Output::Count(0)));
        assert!(rt.held_bytes() <= 64 << 10, "{} bytes held after {tag}", rt.held_bytes());
        assert!(disk_bytes() <= 64 << 10, "{} bytes on disk after {tag}", disk_bytes());
    }
    assert_eq!(rt.compiles(), 40, "each compiled once while held");
    assert!(!rt.missing(&farm_proto_sha(&first)), "the most used one stays");
    assert!(rt.missing(&farm_proto_sha(&distinct(1))), "an old one is gone from memory and disk");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_cache_directory_writable_by_others_or_a_symlink_is_refused() {
    let base = std::env::temp_dir().join(format!("farm-wasm-dirs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let open = base.join("open");
    std::fs::create_dir_all(&open).expect("dir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let err = cache::check_dir(&open).unwrap_err();
    assert!(err.contains("writable by others (mode 777)"), "{err}");
    let link = base.join("link");
    let private = base.join("private");
    assert_eq!(cache::check_dir(&private), Ok(()));
    std::os::unix::fs::symlink(&private, &link).expect("symlink");
    assert!(cache::check_dir(&link).unwrap_err().contains("not a directory"));
    // A worker given the open one runs without a disk cache: nothing is written there.
    let rt = runtime(Some(open.clone()));
    let j = job(&rt, &distinct(7), &[]);
    assert_eq!(j.run(&range(0, 1), &CancelFlag::new()), Ok(Output::Count(7)));
    assert_eq!(std::fs::read_dir(&open).expect("dir").count(), 0);
    let _ = std::fs::remove_dir_all(&base);
}
