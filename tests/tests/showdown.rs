//! `farm showdown` runs every configuration as a real `farm run`, agrees with itself, and
//! leaves no process behind. A small range keeps it fast; the full showdown is for people.

use farm_tests::*;

#[test]
fn a_small_showdown_runs_every_mode_and_the_results_agree() {
    let tag = tag();
    let out = run(
        &[
            "showdown",
            "--range",
            "0..20000",
            "--shard-size",
            "5000",
            "--sleep-ms",
            "5",
            "--no-python",
            "--cores",
            "2",
            "--json",
        ],
        &tag,
    );
    assert!(out.status.success(), "showdown failed: {:?}", String::from_utf8_lossy(&out.stdout));
    let report = json(&out);
    assert_eq!(report["cores"], 2);
    let rows = report["rows"].as_array().expect("rows");
    let shapes: Vec<(&str, &str, u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["kernel"].as_str().expect("kernel"),
                r["mode"].as_str().expect("mode"),
                r["workers"].as_u64().expect("workers"),
                r["threads"].as_u64().expect("threads"),
            )
        })
        .collect();
    assert_eq!(
        shapes,
        [
            ("primes", "serial", 1, 1),
            ("primes", "threads", 1, 2),
            ("primes", "processes", 2, 1),
            ("primes", "composed", 2, 2),
            ("sleep", "serial", 1, 1),
            ("sleep", "threads", 1, 2),
            ("sleep", "processes", 2, 1),
            ("sleep", "composed", 2, 2),
            ("sleep", "composed wide", 2, 8),
        ]
    );
    for r in rows {
        // 2262 primes below 20000; 200 sleep indices.
        let expected = if r["kernel"] == "primes" { 2262 } else { 200 };
        assert_eq!(r["result"], expected, "{r}");
        assert!(r["wall_s"].as_f64().expect("wall") > 0.0, "{r}");
        assert!(r["elapsed_ms"].is_u64(), "{r}");
        assert!(r["speedup"].as_f64().expect("speedup") > 0.0, "{r}");
        assert!(r["efficiency"].as_f64().expect("efficiency") > 0.0, "{r}");
    }
    assert_eq!(rows[0]["speedup"], 1.0);
    assert_eq!(rows[4]["speedup"], 1.0);
    assert_none_left(&tag);
}

/// A `--python` that finds a stand-in `farm` package first on its path: a shell script that
/// runs python3 with PYTHONPATH set to `dir`, where `farm/__init__.py` holds `init`.
fn python_with_farm(dir: &std::path::Path, init: &str) -> std::path::PathBuf {
    let package = dir.join("farm");
    std::fs::create_dir_all(&package).expect("package dir");
    std::fs::write(package.join("__init__.py"), init).expect("__init__.py");
    let script = dir.join("python");
    let text = format!("#!/bin/sh\nPYTHONPATH='{}' exec python3 \"$@\"\n", dir.display());
    std::fs::write(&script, text).expect("script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script
}

/// A stand-in for the real package with the Executor's signature: threads in one process, or
/// processes of one thread, and P x T refused, so the panel's three outcomes all show.
const STAND_IN: &str = r#"
import concurrent.futures, multiprocessing
__version__ = "stand-in"
def Executor(master=None, *, workers=None, threads=1):
    if workers == 1:
        return concurrent.futures.ThreadPoolExecutor(threads)
    if threads == 1:
        return concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("fork"))
    raise RuntimeError("the stand-in refuses P x T")
"#;

/// The Python rows of a small showdown run with `python` (the primes and sleep runs kept
/// short), and its `farm_executor` report.
fn python_panel(python: &std::path::Path) -> (Vec<serde_json::Value>, serde_json::Value) {
    let tag = tag();
    let python = python.to_str().expect("utf-8 path");
    let out = run(
        &[
            "showdown",
            "--range",
            "0..20000",
            "--shard-size",
            "5000",
            "--sleep-range",
            "0..4",
            "--sleep-ms",
            "5",
            "--python-range",
            "0..20000",
            "--python",
            python,
            "--cores",
            "2",
            "--json",
        ],
        &tag,
    );
    assert!(out.status.success(), "showdown failed: {}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out);
    assert_none_left(&tag);
    let rows = report["rows"].as_array().expect("rows");
    let python_rows: Vec<_> =
        rows.iter().filter(|r| r["kernel"] == "primes (python)").cloned().collect();
    for r in &python_rows {
        // 2262 primes below 20000, whichever pool counted them.
        assert_eq!(r["result"], 2262, "{r}");
        assert!(r["wall_s"].as_f64().expect("wall") > 0.0, "{r}");
    }
    (python_rows, report["farm_executor"].clone())
}

fn modes(rows: &[serde_json::Value]) -> Vec<(String, u64, u64)> {
    rows.iter()
        .map(|r| {
            let mode = r["mode"].as_str().expect("mode").to_string();
            (mode, r["workers"].as_u64().expect("P"), r["threads"].as_u64().expect("T"))
        })
        .collect()
}

#[test]
fn the_python_panel_runs_farm_executor_when_the_package_imports() {
    let dir = Scratch::new(&tag());
    let python = python_with_farm(&dir.0, STAND_IN);
    let (rows, farm) = python_panel(&python);
    let want = [
        ("serial", 1, 1),
        ("ThreadPoolExecutor", 1, 2),
        ("ProcessPoolExecutor", 2, 1),
        ("farm.Executor threads", 1, 2),
        ("farm.Executor processes", 2, 1),
    ];
    let want: Vec<_> = want.iter().map(|(m, p, t)| (m.to_string(), *p, *t)).collect();
    assert_eq!(modes(&rows), want);
    assert_eq!(farm["available"], true, "{farm}");
    assert_eq!(farm["version"], "stand-in", "{farm}");
    let failed = farm["failed"].as_array().expect("failed");
    assert_eq!(failed.len(), 1, "{farm}");
    let failure = failed[0].as_str().expect("text");
    assert!(failure.contains("farm.Executor composed 2x2: RuntimeError: the stand-in refuses"));
}

#[test]
fn the_python_panel_says_why_farm_executor_is_missing() {
    let dir = Scratch::new(&tag());
    let python = python_with_farm(&dir.0, "raise ImportError('no native module here')\n");
    let (rows, farm) = python_panel(&python);
    let want = [("serial", 1, 1), ("ThreadPoolExecutor", 1, 2), ("ProcessPoolExecutor", 2, 1)];
    let want: Vec<_> = want.iter().map(|(m, p, t)| (m.to_string(), *p, *t)).collect();
    assert_eq!(modes(&rows), want);
    assert_eq!(farm["available"], false, "{farm}");
    assert_eq!(farm["missing"], "ImportError: no native module here", "{farm}");
}

#[test]
fn a_named_python_that_is_not_there_fails_before_anything_runs() {
    let tag = tag();
    let out = run(&["showdown", "--python", "/nonexistent/python", "--cores", "1"], &tag);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot start /nonexistent/python"), "{err}");
    // It failed at the check, before the first `farm run`.
    assert!(!err.contains("primes"), "{err}");
    let out = run(&["showdown", "--no-python", "--python", "python3"], &tag);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--no-python") && err.contains("--python"), "{err}");
    assert_none_left(&tag);
}
