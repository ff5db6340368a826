//! The batch script an allocation runs: it starts `farm worker` × workers-per-allocation with
//! `srun`, each dialing the master. Everything the workers need travels in the environment the
//! script exports: the token as the path of a file only the master's user can read, never as a
//! value on a command line (`ps` shows command lines to every user of the node).

use super::AllocSettings;
use farm_proto::AllocQueueSpec;
use std::fmt::Write;
use std::time::Duration;

/// Quotes `s` for a POSIX shell: single quotes, with each `'` written as `'\''`.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Slurm's wall-time format, `D-HH:MM:SS`, rounded up to whole minutes (Slurm's resolution).
pub fn slurm_time(limit: Duration) -> String {
    let minutes = limit.as_secs().div_ceil(60);
    let (days, rest) = (minutes / 1440, minutes % 1440);
    format!("{days}-{:02}:{:02}:00", rest / 60, rest % 60)
}

/// The script for one allocation of `spec`; `token_file` is set when workers need a token.
pub fn sbatch_script(
    spec: &AllocQueueSpec,
    settings: &AllocSettings,
    token_file: Option<&str>,
    log_dir: &str,
) -> String {
    let mut s = String::from("#!/bin/sh\n");
    let _ = writeln!(
        s,
        "# farm allocation queue {}: workers for the master at {}",
        spec.name, settings.master_url
    );
    let _ = writeln!(s, "#SBATCH --job-name=farm-{}", spec.name);
    let _ = writeln!(s, "#SBATCH --ntasks={}", spec.workers_per_alloc);
    if let Some(t) = spec.threads {
        let _ = writeln!(s, "#SBATCH --cpus-per-task={t}");
    }
    if let Some(limit) = spec.time_limit() {
        let _ = writeln!(s, "#SBATCH --time={}", slurm_time(limit));
    }
    let _ = writeln!(s, "#SBATCH --output={log_dir}/%j.log");
    let mut env: Vec<(String, String)> = vec![
        ("FARM_MASTER".into(), settings.master_url.clone()),
        ("FARM_WORKER_NAME".into(), format!("{}-${{SLURM_JOB_ID}}", spec.name)),
        ("FARM_IDLE_TIMEOUT".into(), format!("{}ms", spec.idle_timeout_ms)),
    ];
    if let Some(path) = token_file {
        env.push(("FARM_TOKEN_FILE".into(), path.into()));
    }
    if let Some(t) = spec.threads {
        env.push(("FARM_THREADS".into(), t.to_string()));
    }
    if let Some(ms) = spec.time_limit_ms {
        env.push(("FARM_TIME_LIMIT".into(), format!("{ms}ms")));
    }
    env.extend(settings.env.iter().cloned());
    for (key, value) in env {
        // The worker name expands the job id; every other value is taken literally.
        let value = if key == "FARM_WORKER_NAME" {
            format!("\"{}\"", value.replace('"', ""))
        } else {
            shell_quote(&value)
        };
        let _ = writeln!(s, "export {key}={value}");
    }
    s.push_str("export FARM_ALLOC_ID=\"$SLURM_JOB_ID\"\n");
    // The allocation's end as Slurm sees it, so workers stop taking shards shortly before.
    s.push_str(
        "end=$(squeue -h -j \"$SLURM_JOB_ID\" -o %e 2>/dev/null) && \
         FARM_END_AT=$(date -d \"$end\" +%s 2>/dev/null) && export FARM_END_AT\n",
    );
    let cpus = spec.threads.map(|t| format!(" --cpus-per-task={t}")).unwrap_or_default();
    let _ = writeln!(
        s,
        "exec srun --ntasks={}{cpus} {} worker",
        spec.workers_per_alloc,
        shell_quote(&settings.exe.display().to_string())
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AllocSettings {
        AllocSettings {
            exe: "/opt/farm's/farm".into(),
            master_url: "http://node1:7070".into(),
            env: vec![("FARM_TLS_CA".into(), "/etc/farm/ca.pem".into())],
            token: Some("secret".into()),
            dir: "/tmp/x".into(),
            kinds: vec![],
            sbatch: Default::default(),
        }
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
    }

    #[test]
    fn wall_time_rounds_up_to_minutes() {
        assert_eq!(slurm_time(Duration::from_secs(90)), "0-00:02:00");
        assert_eq!(slurm_time(Duration::from_secs(3600)), "0-01:00:00");
        assert_eq!(slurm_time(Duration::from_secs(26 * 3600 + 60)), "1-02:01:00");
    }

    #[test]
    fn the_script_runs_k_workers_and_keeps_the_token_off_command_lines() {
        let spec = AllocQueueSpec {
            name: "q".into(),
            workers_per_alloc: 3,
            threads: Some(2),
            time_limit_ms: Some(3_600_000),
            ..AllocQueueSpec::slurm()
        };
        let script = sbatch_script(&spec, &settings(), Some("/tmp/x/token"), "/tmp/x/logs");
        assert!(script.contains("#SBATCH --ntasks=3\n"), "{script}");
        assert!(script.contains("#SBATCH --cpus-per-task=2\n"));
        assert!(script.contains("#SBATCH --time=0-01:00:00\n"));
        assert!(script.contains("export FARM_TOKEN_FILE='/tmp/x/token'\n"));
        assert!(script.contains("export FARM_TLS_CA='/etc/farm/ca.pem'\n"));
        assert!(script.contains("export FARM_IDLE_TIMEOUT='300000ms'\n"));
        assert!(script.contains("export FARM_WORKER_NAME=\"q-${SLURM_JOB_ID}\"\n"));
        assert!(
            script.contains(r"exec srun --ntasks=3 --cpus-per-task=2 '/opt/farm'\''s/farm' worker")
        );
        assert!(!script.contains("secret"), "the token itself never appears");
    }
}
