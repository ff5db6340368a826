//! The Python panel: what it found besides its rows, and its rows themselves, each count
//! checked against farm's own primality test.

use super::*;

/// What the Python panel found besides its rows.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PythonInfo {
    pub(super) version: String,
    /// `Ok(version)` of the `farm` package, or why its rows are missing.
    pub(super) farm: std::result::Result<String, String>,
    /// farm.Executor shapes that raised, with the error.
    pub(super) failed: Vec<String>,
}

impl PythonInfo {
    /// Lines that say which farm.Executor rows are missing and why; none when all ran.
    pub(super) fn missing(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Err(why) = &self.farm {
            lines.push(format!(
                "farm.Executor rows: not measured, this Python cannot import farm ({why}); \
                 pip install ./python, or name a Python that can with --python"
            ));
        }
        for failure in &self.failed {
            lines.push(format!("farm.Executor rows: {failure}"));
        }
        lines
    }

    pub(super) fn to_json(&self) -> Value {
        json!({
            "available": self.farm.is_ok(),
            "version": self.farm.as_ref().ok(),
            "missing": self.farm.as_ref().err(),
            "failed": self.failed,
        })
    }
}

/// Times the primality test in Python (if the interpreter is there and the plan has a range),
/// checks every count against farm's own test, and adds its rows.
pub(super) async fn python_rows(
    plan: &Plan,
    timeout: std::time::Duration,
    rows: &mut Vec<Row>,
    say: &impl Fn(String),
) -> Result<Option<PythonInfo>> {
    let Some((a, b)) = plan.python else { return Ok(None) };
    let n = plan.cores;
    let Some(out) = python(&plan.interpreter, a, b, plan.shard_size, n, timeout).await? else {
        eprintln!("python3 is not on PATH: skipped the Python rows");
        return Ok(None);
    };
    let panel = python_panel(&out, n)?;
    let expected = tokio::task::spawn_blocking(move || {
        (a..b).filter(|&i| farm_worker::kernels::primes::is_prime(i)).count() as u64
    })
    .await?;
    if let Some(m) = panel.measured.iter().find(|m| m.result != json!(expected)) {
        bail!(
            "Python counted {} primes in {a}..{b} ({}), farm's test counts {expected}",
            m.result,
            m.shape.mode
        );
    }
    let shards = (b - a).div_ceil(plan.shard_size);
    for m in &panel.measured {
        say(progress(PYTHON_KERNEL, m));
    }
    let info = PythonInfo { version: panel.version, farm: panel.farm, failed: panel.failed };
    for line in info.missing() {
        say(line);
    }
    rows.extend(rows_for(PYTHON_KERNEL, b - a, shards, Ideal::Cpu { cores: n }, panel.measured)?);
    Ok(Some(info))
}

/// The kernel name of the Python rows.
pub(super) const PYTHON_KERNEL: &str = "primes (python)";
