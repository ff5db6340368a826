//! Where the binaries under test are, built once per test run.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The directory holding the built binaries (target/debug), after building them once.
fn bin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // current_exe is target/debug/deps/<test>-<hash>.
        let exe = std::env::current_exe().expect("test executable path");
        let dir = exe.parent().and_then(|p| p.parent()).expect("target dir").to_path_buf();
        // Build (or confirm up to date) the binaries the tests start; cargo test alone builds
        // only this package's targets.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "farm", "-p", "farm-example-collatz", "--bins"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building the binaries failed");
        dir
    })
    .clone()
}

/// Path of the `farm` binary.
pub fn farm() -> PathBuf {
    bin_dir().join("farm")
}

/// Path of the example worker with the `collatz` kernel.
pub fn collatz_worker() -> PathBuf {
    bin_dir().join("farm-example-collatz")
}
