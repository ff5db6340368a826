//! Figure 13, `python`: `farm.Executor` against `ProcessPoolExecutor`, `multiprocessing.Pool`,
//! loky, Dask and Ray, side by side in one run (`bench/python/executor_bench.py`, which prints
//! the Markdown table of BENCHMARKS.md). It runs with the peers venv's Python
//! (`target/peers-venv`, made by `bench/peers/setup.sh`; `PEERS_PYTHON` names another), into
//! which the farm package is installed (`pip install ./python`); a peer that Python cannot
//! import gets a column that says why. `farm-bench all` runs it only when the venv exists.

use crate::peers::{setup_venv, venv_python, workspace};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The figure: from `farm-bench all` (`from_all`) only if the venv is already there.
pub fn figure(from_all: bool) -> Result<()> {
    let python = match std::env::var_os("PEERS_PYTHON") {
        Some(p) => PathBuf::from(p),
        None if venv_python().exists() => venv_python(),
        None if from_all => {
            println!("13. python: skipped, no venv (farm-bench python makes it)");
            return Ok(());
        }
        None => setup_venv().map_err(anyhow::Error::msg)?,
    };
    let script = workspace().join("bench/python/executor_bench.py");
    println!(
        "13. python: farm.Executor and its peers, 2 processes x 1 thread, warmed up ({} {})",
        python.display(),
        script.display()
    );
    let status = Command::new(&python)
        .arg(&script)
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot start {}", python.display()))?;
    if !status.success() {
        bail!("executor_bench.py failed ({status})");
    }
    Ok(())
}
