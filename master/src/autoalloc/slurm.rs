//! The Slurm driver: carries out the allocator's effects with Slurm's own tools, `sbatch
//! --parsable`, `squeue` and `scancel`, each a child process (tokio::process, killed if it
//! outlives its timeout) run beside the allocator's task, never on the core's.

use super::machine::SchedState;
use super::script::sbatch_script;
use super::AllocSettings;
use farm_proto::AllocQueueSpec;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

/// Longest any Slurm command may take before it is killed and counted as failed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Slurm's tools, run for the allocator.
#[derive(Clone)]
pub struct Slurm {
    /// Where scripts, the token file and logs go, and what the workers run.
    settings: Arc<AllocSettings>,
    /// The bound on each command.
    timeout: Duration,
}

impl Slurm {
    /// A driver writing under `settings.dir`.
    pub fn new(settings: Arc<AllocSettings>) -> Self {
        Slurm { settings, timeout: COMMAND_TIMEOUT }
    }

    /// What clients may pass to sbatch.
    pub fn policy(&self) -> &super::SbatchPolicy {
        &self.settings.sbatch
    }

    /// Writes the queue's script (and the token file) and submits it; returns the job id, or
    /// the scheduler's own message.
    pub async fn submit(&self, spec: &AllocQueueSpec) -> Result<String, String> {
        let (settings, spec2) = (self.settings.clone(), spec.clone());
        let script = tokio::task::spawn_blocking(move || prepare(&settings, &spec2))
            .await
            .map_err(|e| format!("writing the batch script failed: {e}"))?
            .map_err(|e| format!("writing the batch script failed: {e}"))?;
        let mut args: Vec<String> = vec!["--parsable".into()];
        // The client's arguments (checked at `add`), then the operator's, which win.
        args.extend(spec.extra_args.iter().cloned());
        args.extend(self.settings.sbatch.fixed.iter().cloned());
        args.push(script.display().to_string());
        let out = run("sbatch", &args, self.timeout).await?;
        let id = out.split(';').next().unwrap_or("").trim().to_string();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("sbatch printed no job id: {}", farm_proto::kernel::quote(&out)));
        }
        Ok(id)
    }

    /// Where each allocation is. Ids squeue no longer knows (purged after Slurm's MinJobAge)
    /// have ended.
    pub async fn poll(&self, ids: &[String]) -> Result<Vec<(String, SchedState)>, String> {
        let args = ["-h", "-t", "all", "-o", "%i|%T", "-j", &ids.join(",")].map(String::from);
        let out = match run("squeue", &args, self.timeout).await {
            Ok(out) => out,
            // Every id is unknown: squeue refuses the whole request.
            Err(e) if e.contains("Invalid job id") => String::new(),
            Err(e) => return Err(e),
        };
        let mut known = std::collections::HashMap::new();
        for line in out.lines() {
            if let Some((id, state)) = line.trim().split_once('|') {
                known.insert(id.to_string(), sched_state(state));
            }
        }
        Ok(ids
            .iter()
            .map(|id| {
                let gone = SchedState::Ended { detail: "gone from the scheduler".into() };
                (id.clone(), known.remove(id).unwrap_or(gone))
            })
            .collect())
    }

    /// Cancels an allocation.
    pub async fn cancel(&self, id: &str) -> Result<(), String> {
        run("scancel", &[id.to_string()], self.timeout).await.map(|_| ())
    }

    /// Removes the token file (at shutdown: no allocation will start a worker any more).
    pub fn forget_token(&self) {
        let _ = std::fs::remove_file(token_path(&self.settings.dir));
    }
}

/// Slurm's job states, as the allocator counts them.
pub fn sched_state(state: &str) -> SchedState {
    match state.trim() {
        "PENDING" | "CONFIGURING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED"
        | "RESV_DEL_HOLD" => SchedState::Queued,
        "RUNNING" | "COMPLETING" | "SUSPENDED" | "STOPPED" | "SIGNALING" | "STAGE_OUT"
        | "RESIZING" => SchedState::Running,
        other => SchedState::Ended { detail: other.to_string() },
    }
}

fn token_path(dir: &Path) -> PathBuf {
    dir.join("token")
}

/// Writes `<dir>/token` if workers need a token, `<dir>/<queue>/worker.sh` and the log
/// folder; returns the script's path. The folders are the master user's only (0700, checked),
/// the files 0600 and never written through a symlink (see [`crate::private`]).
fn prepare(settings: &AllocSettings, spec: &AllocQueueSpec) -> std::io::Result<PathBuf> {
    use crate::private::{private_dir, write_private};
    let queue_dir = settings.dir.join(&spec.name);
    let logs = queue_dir.join("logs");
    for dir in [&settings.dir, &queue_dir, &logs] {
        private_dir(dir)?;
    }
    let token_file = match &settings.token {
        Some(token) => {
            let path = token_path(&settings.dir);
            write_private(&path, token.as_bytes())?;
            Some(path.display().to_string())
        }
        None => None,
    };
    let script = sbatch_script(spec, settings, token_file.as_deref(), &logs.display().to_string());
    let path = queue_dir.join("worker.sh");
    write_private(&path, script.as_bytes())?;
    Ok(path)
}

/// Runs `program args` with a timeout; its stdout, or its stderr (else its exit status) as
/// the error.
async fn run(program: &str, args: &[String], timeout: Duration) -> Result<String, String> {
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(timeout, child).await {
        Err(_) => return Err(format!("{program} did not answer within {timeout:?}")),
        Ok(Err(e)) => return Err(format!("cannot run {program}: {e}")),
        Ok(Ok(out)) => out,
    };
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let message: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if message.is_empty() {
        Err(format!("{program} failed ({})", out.status))
    } else {
        Err(bounded(message.join("; ")))
    }
}

/// Longest scheduler message kept (its own words, shown by `farm alloc list`).
const MAX_MESSAGE_BYTES: usize = 1000;

/// `text`, cut to [`MAX_MESSAGE_BYTES`] at a character boundary.
fn bounded(mut text: String) -> String {
    if text.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_states_map_to_where_an_allocation_is() {
        assert_eq!(sched_state("PENDING"), SchedState::Queued);
        assert_eq!(sched_state("RUNNING"), SchedState::Running);
        assert_eq!(sched_state("COMPLETING"), SchedState::Running);
        assert_eq!(sched_state("TIMEOUT"), SchedState::Ended { detail: "TIMEOUT".into() });
        assert_eq!(sched_state("COMPLETED"), SchedState::Ended { detail: "COMPLETED".into() });
    }

    #[tokio::test]
    async fn a_command_that_fails_reports_its_stderr_and_one_that_hangs_times_out() {
        let err = run(
            "sh",
            &["-c".into(), "echo 'sbatch: error: no' >&2; exit 1".into()],
            COMMAND_TIMEOUT,
        )
        .await
        .expect_err("fails");
        assert_eq!(err, "sbatch: error: no");
        let slow = run("sleep", &["5".into()], Duration::from_millis(100)).await;
        assert_eq!(slow, Err("sleep did not answer within 100ms".into()));
        let missing = run("no-such-farm-tool", &[], COMMAND_TIMEOUT).await.expect_err("missing");
        assert!(missing.starts_with("cannot run no-such-farm-tool"), "{missing}");
    }
}
