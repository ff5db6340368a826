//! The `exec` kernel: runs an external program once per index. Only registered when the
//! worker is started with `--allow-exec`.
//!
//! Parameter `cmd` (required, non-empty) is split into argv with POSIX-shell-like quoting
//! (shlex). For each index, `{}` is replaced by the index's decimal value, or by the input
//! line for an input shard: as it is in a plain argument, quoted in a shell's `-c` script, so
//! that a line never becomes shell code (`exec_cmd.rs`); the value is also in the program's
//! environment as `FARM_INPUT`. The program is run directly (no shell) with stdin null, the
//! worker's environment less its secrets (tokens, TLS key), stdout captured (decoded as lossy
//! UTF-8) up to the shard's output limit, and stderr passed on to the worker's stderr, its
//! last bytes kept. A shard whose programs write more stdout than a shard may send fails as
//! soon as they pass the limit, its running program's process group killed. The exit code is the program's, or `-signal_number` if
//! a signal killed it. A run that exits with another code than 0 fails the shard (its error
//! names the code and ends with the program's last stderr bytes), so the job's retries apply;
//! with `allow_fail=true` every run counts and the output lists every exit code. The output is
//! `Output::Exec` with one run per index, in order. On cancellation the running program's
//! process group is killed and the shard returns `Cancelled`.
//!
//! A run costs the pool thread no sleep and no helper thread: the program is started with a
//! vfork-style clone on a stack kept per thread (`exec_spawn.rs`), and one `poll` waits on
//! its pipes and a pidfd (`exec_wait.rs`, `exec_io.rs`).
//! A worker that leaves kills the programs still running (`exec_groups.rs`, which also says
//! what a SIGKILL of the worker leaves behind).

use crate::kernels::exec_cmd::{CmdTemplate, INPUT_ENV};
use crate::kernels::exec_groups::Group;
use crate::kernels::exec_io::Pipes;
use crate::kernels::exec_spawn;
use crate::kernels::exec_wait::{self, ExitWatch};
use crate::kernels::params::index_texts;
use crate::sdk::{
    CancelFlag, ExecRun, Kernel, KernelDescriptor, KernelError, Output, OutputShape, ParamSpec,
    Params, Prepared, ShardInput, MAX_OUTPUT_BYTES,
};
use crate::tail::Tail;
use farm_proto::kernel::quote;

/// The `exec` kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Exec;

/// Bytes of a run's stderr kept for its error (the shard's log keeps 64 KiB of it).
const STDERR_TAIL: usize = 4 << 10;
/// Bytes of a failed run's stderr quoted in the shard's error.
const ERROR_TAIL: usize = 400;

impl Kernel for Exec {
    fn name(&self) -> &str {
        "exec"
    }

    fn describe(&self) -> KernelDescriptor {
        let help = "runs a program per index (workers started with --allow-exec only)";
        let cmd = ParamSpec::required_text(
            "cmd",
            "the program and its arguments; {} is the index or input line (quoted in sh -c scripts)",
        );
        let allow_fail = ParamSpec::text(
            "allow_fail",
            "false",
            "true: a run that exits non-zero does not fail its shard (the result lists codes)",
        );
        KernelDescriptor::new(self.name(), OutputShape::Exec, help).param(cmd).param(allow_fail)
    }

    fn prepare(&self, params: &Params) -> Result<Box<dyn Prepared>, KernelError> {
        let cmd = CmdTemplate::parse(params.text("cmd")?)?;
        let allow_fail = params.flag("allow_fail")?;
        Ok(Box::new(PreparedExec { cmd, allow_fail }))
    }
}

struct PreparedExec {
    /// `cmd`, split into words, its placeholders found.
    cmd: CmdTemplate,
    /// Runs that exit non-zero count as done (`allow_fail=true`).
    allow_fail: bool,
}

impl Prepared for PreparedExec {
    fn run(&self, shard: &ShardInput, cancel: &CancelFlag) -> Result<Output, KernelError> {
        cancel.check()?;
        let mut runs = Vec::new();
        // What the shard's runs may still write to stdout in all.
        let mut left = MAX_OUTPUT_BYTES;
        for text in index_texts(shard) {
            let args = self.cmd.argv(&text).map_err(KernelError::Failed)?;
            let (run, stderr) = run_one(&args, &text, left, cancel)?;
            left -= run.stdout.len().min(left);
            cancel.log().exit_code(run.exit_code);
            if run.exit_code != 0 && !self.allow_fail {
                return Err(KernelError::Failed(failure(&args[0], &text, run.exit_code, &stderr)));
            }
            runs.push(run);
        }
        Ok(Output::Exec(runs))
    }
}

/// The error of a run that exited with `code`: the program, the index, and its last stderr.
fn failure(program: &str, index: &str, code: i32, stderr: &Tail) -> String {
    let how = if code < 0 {
        format!("was killed by signal {}", -code)
    } else {
        format!("exited with code {code}")
    };
    let tail = stderr.last(ERROR_TAIL);
    let stderr = match (tail.is_empty(), stderr.cut() || tail.len() >= ERROR_TAIL) {
        (true, _) => "no stderr".to_string(),
        (false, false) => format!("stderr: {tail}"),
        (false, true) => format!("stderr ends: …{tail}"),
    };
    format!(
        "{} {how} for {{}} = {} (allow_fail=true keeps going); {stderr}",
        quote(program),
        quote(index)
    )
}

/// Runs `args[0]` with the rest as arguments, and `input` as `FARM_INPUT`, until it exits and
/// both its pipes reach their end, or `cancel` is set, or its stdout passes `limit` bytes; the
/// run and the last bytes of its stderr.
fn run_one(
    args: &[String],
    input: &str,
    limit: usize,
    cancel: &CancelFlag,
) -> Result<(ExecRun, Tail), KernelError> {
    let program = &args[0];
    // Its own process group, so a cancel stops everything it started (`sh -c '…; sleep'`).
    let spawned = exec_spawn::spawn(args, &[(INPUT_ENV, input)]).map_err(|e| {
        KernelError::Failed(format!("cannot start program {}: {e}", quote(program)))
    })?;
    let pid = spawned.pid;
    let group = Group::register(pid);
    let cannot_wait =
        |e: std::io::Error| format!("cannot wait for program {}: {e}", quote(program));
    let log = cancel.log().clone();
    let watched = Pipes::new(spawned.stdout, spawned.stderr, limit, STDERR_TAIL, log)
        .and_then(|pipes| Ok((pipes, ExitWatch::new(pid)?)));
    let (mut pipes, mut exit) = match watched {
        Ok(watched) => watched,
        Err(e) => return Err(stop(pid, group, KernelError::Failed(cannot_wait(e)))),
    };
    // The run ends once the program has exited and both pipes are at their end, so a
    // background process that keeps them open holds the run until it closes them (or the
    // shard is cancelled, which kills the whole group, that process too).
    while !(exit.exited() && pipes.done()) {
        if let Err(stopped) = cancel.check() {
            return Err(stop(pid, group, stopped));
        }
        if let Err(e) = exec_wait::step(&mut pipes, &mut exit) {
            return Err(stop(pid, group, KernelError::Failed(cannot_wait(e))));
        }
        if pipes.over_limit() {
            let why = format!(
                "{} for {{}} = {}: stdout passed the {} MiB output limit of a shard (use \
                 smaller shards, or have the program write large outputs to files)",
                quote(program),
                quote(input),
                MAX_OUTPUT_BYTES >> 20
            );
            return Err(stop(pid, group, KernelError::Failed(why)));
        }
    }
    // Out of the registry before it is reaped: its pid may be reused after that.
    drop(group);
    let exit_code = exec_spawn::reap(pid).map_err(|e| KernelError::Failed(cannot_wait(e)))?;
    let (stdout, tail) = pipes.finish();
    Ok((ExecRun { exit_code, stdout }, tail))
}

/// Kills the program's whole group, reaps the program and hands back `why`.
fn stop(pid: libc::pid_t, group: Group, why: KernelError) -> KernelError {
    group.kill();
    drop(group);
    // The leader was killed with its group; reaping it cannot fail but for a gone child.
    let _ = exec_spawn::reap(pid);
    why
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::exec_groups::tests::{ended, wait_for};
    use crate::kernels::params::tests::{assert_stops_when_cancelled, line, params, range};
    use crate::sdk::prepare_checked;

    fn run(cmd: &str, shard: ShardInput) -> Result<Output, KernelError> {
        prepare_checked(&Exec, &params(&[("cmd", cmd)]))?.run(&shard, &CancelFlag::default())
    }

    fn exec_run(exit_code: i32, stdout: &str) -> ExecRun {
        ExecRun { exit_code, stdout: stdout.to_string() }
    }

    #[test]
    fn echo_substitutes_indices() {
        assert_eq!(
            run("echo {}", range(3, 5)),
            Ok(Output::Exec(vec![exec_run(0, "3\n"), exec_run(0, "4\n")]))
        );
        assert_eq!(
            run("echo 'n={}' x{}y", range(7, 8)),
            Ok(Output::Exec(vec![exec_run(0, "n=7 x7y\n")]))
        );
        // An input line is passed raw, as one argument, not re-split.
        assert_eq!(
            run("echo {}", line(0, " hello  world ")),
            Ok(Output::Exec(vec![exec_run(0, " hello  world \n")]))
        );
        assert_eq!(run("echo {}", range(3, 3)), Ok(Output::Exec(vec![])));
    }

    fn run_allowing_failures(cmd: &str, shard: ShardInput) -> Result<Output, KernelError> {
        let p = params(&[("cmd", cmd), ("allow_fail", "true")]);
        prepare_checked(&Exec, &p)?.run(&shard, &CancelFlag::default())
    }

    #[test]
    fn exit_codes_and_signals_are_listed_when_failures_are_allowed() {
        assert_eq!(
            run_allowing_failures("sh -c \"exit 3\"", range(0, 1)),
            Ok(Output::Exec(vec![exec_run(3, "")]))
        );
        assert_eq!(
            run_allowing_failures("sh -c 'printf out; kill -9 $$'", range(0, 1)),
            Ok(Output::Exec(vec![exec_run(-9, "out")]))
        );
    }

    #[test]
    fn a_failing_run_fails_the_shard_naming_its_code_and_stderr() {
        let cmd = "sh -c 'echo noise >&2; echo \"bad input {}\" >&2; exit 3'";
        match run(cmd, range(4, 6)) {
            Err(KernelError::Failed(m)) => assert_eq!(
                m,
                "\"sh\" exited with code 3 for {} = \"4\" (allow_fail=true keeps going); \
                 stderr: noise\nbad input 4"
            ),
            other => panic!("expected Failed, got {other:?}"),
        }
        match run("sh -c 'kill -9 $$'", range(0, 1)) {
            Err(KernelError::Failed(m)) => {
                assert!(m.contains("was killed by signal 9") && m.ends_with("no stderr"), "{m}")
            }
            other => panic!("expected Failed, got {other:?}"),
        }
        // A later index that fails fails the shard too; earlier ones ran.
        let cmd = "sh -c 'test {} -lt 2'";
        assert!(matches!(run(cmd, range(0, 3)), Err(KernelError::Failed(_))));
        assert_eq!(run(cmd, range(0, 2)), Ok(Output::Exec(vec![exec_run(0, ""); 2])));
    }

    #[test]
    fn stderr_goes_to_the_shards_log_with_the_first_failing_code() {
        let cmd = "sh -c 'echo err {} >&2; exit $(( {} % 2 ))'";
        let p = params(&[("cmd", cmd), ("allow_fail", "true")]);
        let job = prepare_checked(&Exec, &p).expect("prepare");
        let cancel = CancelFlag::new().for_shard(None);
        job.run(&range(0, 4), &cancel).expect("runs");
        assert_eq!(cancel.log().contents(), ("err 0\nerr 1\nerr 2\nerr 3\n".into(), Some(1)));
    }

    #[test]
    fn a_long_stderr_is_quoted_by_its_end() {
        let Err(KernelError::Failed(m)) = run("sh -c 'seq 1 20000 >&2; exit 1'", range(0, 1))
        else {
            panic!("expected a failure");
        };
        assert!(m.contains("stderr ends: …") && m.ends_with("19999\n20000"), "{m}");
        assert!(m.len() < 600, "{} bytes", m.len());
    }

    #[test]
    fn large_output_is_captured() {
        let Ok(Output::Exec(runs)) = run("seq 1 {}", range(200_000, 200_001)) else {
            panic!("expected exec output");
        };
        assert_eq!(runs[0].exit_code, 0);
        assert_eq!(runs[0].stdout.lines().count(), 200_000);
        assert!(runs[0].stdout.ends_with("199999\n200000\n"));
    }

    #[test]
    fn stdout_past_the_limit_fails_the_shard_at_once() {
        let limit = format!("stdout passed the {} MiB output limit", MAX_OUTPUT_BYTES >> 20);
        // Far more than the limit: the program is stopped there, not read to its end.
        let started = std::time::Instant::now();
        let Err(KernelError::Failed(m)) = run("head -c 4000000000 /dev/zero", range(0, 1)) else {
            panic!("expected a failure");
        };
        assert!(m.contains(&limit), "{m}");
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "read to its end");
        // The limit is the shard's: three runs of 12 MB pass it on the third.
        let Err(KernelError::Failed(m)) = run("head -c 12000000 /dev/zero", range(0, 3)) else {
            panic!("expected a failure");
        };
        assert!(m.contains(&limit) && m.contains("{} = \"2\""), "{m}");
        assert!(run("head -c 12000000 /dev/zero", range(0, 2)).is_ok());
    }

    #[test]
    fn the_value_is_in_the_environment_and_quoted_in_a_shell_script() {
        let hostile = line(0, "it's; echo INJECTED");
        let out = run("sh -c 'printf %s \"$FARM_INPUT\"; echo {} | rev'", hostile);
        let want = "it's; echo INJECTEDDETCEJNI ohce ;s'ti\n";
        assert_eq!(out, Ok(Output::Exec(vec![exec_run(0, want)])));
        // {raw} is the job's explicit choice to run the line as code.
        let raw = run("sh -c 'echo {raw}'", line(0, "a; echo RAN"));
        assert_eq!(raw, Ok(Output::Exec(vec![exec_run(0, "a\nRAN\n")])));
    }

    #[test]
    fn missing_program() {
        match run("no-such-program-farm-xyz {}", range(0, 1)) {
            Err(KernelError::Failed(m)) => assert!(m.contains("no-such-program-farm-xyz"), "{m}"),
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    #[test]
    fn param_errors() {
        let bad = |p: &[(&str, &str)]| match prepare_checked(&Exec, &params(p)) {
            Err(KernelError::BadParam(m)) => m,
            Err(e) => panic!("expected BadParam, got {e:?}"),
            Ok(_) => panic!("expected BadParam, got a prepared kernel"),
        };
        assert_eq!(bad(&[]), "missing param cmd");
        assert_eq!(bad(&[("cmd", "")]), "bad param cmd: must not be empty");
        assert_eq!(bad(&[("cmd", "''")]), "bad param cmd: names no program");
        assert_eq!(bad(&[("cmd", "# a comment")]), "bad param cmd: names no program");
        assert!(bad(&[("cmd", "echo \"abc")]).starts_with("bad param cmd: cannot split"));
        assert_eq!(
            bad(&[("cmd", "echo"), ("shell", "1")]),
            "unknown param shell for kernel exec; known: cmd, allow_fail"
        );
        let p = params(&[("cmd", "true"), ("allow_fail", "maybe")]);
        match prepare_checked(&Exec, &p) {
            Err(KernelError::BadParam(m)) => {
                assert_eq!(m, "bad param allow_fail: \"maybe\" is not true or false")
            }
            _ => panic!("expected BadParam"),
        }
    }

    #[test]
    fn cancelled() {
        let job = prepare_checked(&Exec, &params(&[("cmd", "sleep 30")])).unwrap();
        assert_stops_when_cancelled(job.as_ref(), &range(0, 3));
    }

    #[test]
    fn a_background_process_holding_stdout_holds_the_run_until_it_closes_it() {
        let cmd = "sh -c '(sleep 0.2; echo late) & echo early'";
        let Ok(Output::Exec(runs)) = run(cmd, range(0, 1)) else {
            panic!("expected exec output");
        };
        let mut lines: Vec<&str> = runs[0].stdout.lines().collect();
        lines.sort();
        assert_eq!((runs[0].exit_code, lines), (0, vec!["early", "late"]));
    }

    #[test]
    fn a_cancel_kills_a_background_process_left_holding_the_pipes() {
        let file = std::env::temp_dir().join(format!("farm-exec-bg-{}", std::process::id()));
        let cmd = format!("sh -c 'sleep 30 & echo $! > {}'", file.display());
        let job = prepare_checked(&Exec, &params(&[("cmd", &cmd)])).expect("prepare");
        let cancel = CancelFlag::new();
        let setter = cancel.clone();
        let running = std::thread::spawn(move || job.run(&range(0, 1), &setter));
        let sleep = wait_for(|| std::fs::read_to_string(&file).ok()?.trim().parse::<u32>().ok());
        let sleep = sleep.expect("the background sleep's pid");
        cancel.cancel();
        assert_eq!(running.join().expect("run"), Err(KernelError::Cancelled));
        assert!(wait_for(|| ended(sleep).then_some(())).is_some(), "sleep {sleep} survived");
        let _ = std::fs::remove_file(file);
    }
}
