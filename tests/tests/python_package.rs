//! The Python package (`python/`): its wheel is built with maturin and installed into fresh
//! venvs of two interpreters (pyenv's CPython 3.12 and 3.11), and its pytest suite
//! (`python/tests/`) runs on the first against the real `farm` binary, with the second's
//! interpreter for the environment-matching test. Every process the suite starts carries this
//! test's tag, and none is left when it ends.
//!
//! Needs maturin (`pip install maturin`) and pyenv's 3.12 and 3.11; under CI=true (`.ci/run`
//! installs maturin) a missing piece fails the test, elsewhere it is skipped.

use farm_tests::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The wheel build and the whole suite, on a loaded 2-core machine with debug builds.
const SUITE: Duration = Duration::from_secs(1500);

/// The repository's root (this crate is `tests/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repository root").to_path_buf()
}

/// A missing piece: fails under CI=true, skips (returns None) elsewhere.
fn missing<T>(what: &str) -> Option<T> {
    assert!(std::env::var("CI").is_err(), "{what} is required in CI (.ci/run installs it)");
    eprintln!("SKIPPED: {what} not found");
    None
}

/// pyenv's newest CPython `major.minor.*` (`$PYENV_ROOT`, else `~/.pyenv`).
fn pyenv_python(minor: &str) -> Option<PathBuf> {
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pyenv")))?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(root.join("versions"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("{minor}.")))
        .map(|e| e.path().join("bin").join("python3"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop()
}

/// Runs `cmd`, failing with its output unless it succeeds within `timeout`.
fn run_ok(cmd: &mut Command, what: &str, timeout: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let out_rx = drain(child.stdout.take().expect("stdout"));
    let err_rx = drain(child.stderr.take().expect("stderr"));
    let status = wait_child(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = out_rx.recv_timeout(WAIT).unwrap_or_default();
    let stderr = err_rx.recv_timeout(WAIT).unwrap_or_default();
    let text = format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    match status {
        Some(s) if s.success() => Output { status: s, stdout, stderr },
        Some(s) => panic!("{what} failed ({s}):\n{text}"),
        None => panic!("{what} did not finish in {timeout:?}:\n{text}"),
    }
}

/// Reads a pipe to its end on a thread; its bytes on the channel.
fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// A fresh venv of `python` at `dir` with pytest, cloudpickle and `wheel`; its interpreter.
fn venv(python: &Path, dir: &Path, wheel: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    run_ok(Command::new(python).arg("-m").arg("venv").arg(dir), "python -m venv", WAIT);
    let py = dir.join("bin").join("python");
    run_ok(
        Command::new(&py)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .args(["pytest", "cloudpickle"])
            .arg(wheel),
        "pip install pytest cloudpickle and the wheel",
        Duration::from_secs(600),
    );
    py
}

#[test]
fn the_python_package_builds_installs_on_two_interpreters_and_passes_its_suite() {
    let Some(main_py) = pyenv_python("3.12").or_else(|| missing("pyenv's CPython 3.12")) else {
        return;
    };
    let Some(other_py) = pyenv_python("3.11").or_else(|| missing("pyenv's CPython 3.11")) else {
        return;
    };
    let has_maturin = Command::new(&main_py)
        .args(["-m", "maturin", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let maturin = if has_maturin {
        vec![main_py.clone().into_os_string(), "-m".into(), "maturin".into()]
    } else if Command::new("maturin")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        vec!["maturin".into()]
    } else {
        missing::<()>("maturin (pip install maturin)");
        return;
    };
    let farm_bin = farm();
    let tag = tag();
    let work = std::env::temp_dir().join(format!("farm-py-{tag}"));
    std::fs::create_dir_all(&work).expect("work dir");

    // The wheel: abi3, so one serves both interpreters. A debug build, as the other tests.
    let wheels = work.join("wheels");
    let started = Instant::now();
    run_ok(
        Command::new(&maturin[0])
            .args(&maturin[1..])
            .args(["build", "--quiet", "--manifest-path"])
            .arg(root().join("python").join("Cargo.toml"))
            .arg("--out")
            .arg(&wheels)
            .arg("--interpreter")
            .arg(&main_py),
        "maturin build",
        SUITE,
    );
    eprintln!("python wheel built in {:.1} s", started.elapsed().as_secs_f64());
    let wheel = std::fs::read_dir(&wheels)
        .expect("wheels dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .expect("maturin wrote a wheel");

    let main_venv = venv(&main_py, &work.join("venv-main"), &wheel);
    let other_venv = venv(&other_py, &work.join("venv-other"), &wheel);

    // From the work dir, so `import farm` is the installed package, not python/farm.
    let out = run_ok(
        Command::new(&main_venv)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"])
            .arg(root().join("python").join("tests"))
            .current_dir(&work)
            .env("FARM_BIN", &farm_bin)
            .env("FARM_OTHER_PYTHON", &other_venv)
            .env("FARM_TEST_TAG", &tag),
        "pytest python/tests",
        SUITE,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(stdout.contains(" passed"), "{stdout}");
    assert!(
        !stdout.contains(" skipped") || std::env::var("CI").is_err(),
        "a skip under CI: {stdout}"
    );
    assert_none_left(&tag);
    let _ = std::fs::remove_dir_all(&work);
}
