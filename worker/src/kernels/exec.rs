//! The `exec` kernel: runs an external program once per index. Only registered when the
//! worker is started with `--allow-exec`.
//!
//! Parameter `cmd` (required, non-empty) is split into argv with POSIX-shell-like quoting
//! (shlex). For each index, every `{}` in every argument is replaced by the index's decimal
//! value, or by the raw input line for an input shard. The program is run directly (no shell)
//! with stdin null, stdout captured (decoded as lossy UTF-8) and stderr passed on to the
//! worker's stderr, its last bytes kept. The exit code is the program's, or `-signal_number` if
//! a signal killed it. A run that exits with another code than 0 fails the shard (its error
//! names the code and ends with the program's last stderr bytes), so the job's retries apply;
//! with `allow_fail=true` every run counts and the output lists every exit code. The output is
//! `Output::Exec` with one run per index, in order. On cancellation the running program is
//! killed and the shard returns `Cancelled`.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Duration;

use crate::kernels::exec_io::{read_stdout, tee_stderr};
use crate::kernels::params::index_texts;
use crate::sdk::{
    CancelFlag, ExecRun, Kernel, KernelDescriptor, KernelError, Output, OutputShape, ParamSpec,
    Params, Prepared, ShardInput,
};
use crate::tail::Tail;
use farm_proto::kernel::quote;

/// The `exec` kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Exec;

/// The longest pause between two polls of a running program.
const MAX_POLL: Duration = Duration::from_millis(5);
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
        let cmd = ParamSpec::required_text("cmd", "the program and its arguments; {} is the index");
        let allow_fail = ParamSpec::text(
            "allow_fail",
            "false",
            "true: a run that exits non-zero does not fail its shard (the result lists codes)",
        );
        KernelDescriptor::new(self.name(), OutputShape::Exec, help).param(cmd).param(allow_fail)
    }

    fn prepare(&self, params: &Params) -> Result<Box<dyn Prepared>, KernelError> {
        let cmd = params.text("cmd")?;
        let allow_fail = params.flag("allow_fail")?;
        let argv = shlex::split(cmd).ok_or_else(|| {
            KernelError::BadParam(format!(
                "bad param cmd: cannot split {} into arguments",
                quote(cmd)
            ))
        })?;
        if argv.first().is_none_or(|p| p.is_empty()) {
            return Err(KernelError::BadParam("bad param cmd: names no program".to_string()));
        }
        Ok(Box::new(PreparedExec { argv, allow_fail }))
    }
}

struct PreparedExec {
    argv: Vec<String>,
    /// Runs that exit non-zero count as done (`allow_fail=true`).
    allow_fail: bool,
}

impl Prepared for PreparedExec {
    fn run(&self, shard: &ShardInput, cancel: &CancelFlag) -> Result<Output, KernelError> {
        cancel.check()?;
        let mut runs = Vec::new();
        for text in index_texts(shard) {
            let args: Vec<String> = self.argv.iter().map(|a| a.replace("{}", &text)).collect();
            let (run, stderr) = run_one(&args, cancel)?;
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

/// Runs `args[0]` with the rest as arguments, polling until it exits or `cancel` is set; the
/// run and the last bytes of its stderr.
fn run_one(args: &[String], cancel: &CancelFlag) -> Result<(ExecRun, Tail), KernelError> {
    use std::os::unix::process::CommandExt;
    let program = &args[0];
    let mut command = Command::new(program);
    command
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a cancel stops everything it started (`sh -c '…; sleep'`).
        .process_group(0);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent. The program is
    // killed if the pool thread that started it dies with its worker.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| {
        KernelError::Failed(format!("cannot start program {}: {e}", quote(program)))
    })?;
    let mut pipes = Pipes {
        stdout: read_stdout(child.stdout.take()),
        stderr: tee_stderr(child.stderr.take(), STDERR_TAIL, cancel.log().clone()),
        captured: None,
        tail: None,
    };
    let mut status: Option<ExitStatus> = None;
    let mut pause = Duration::from_micros(100);
    loop {
        if let Err(stop) = cancel.check() {
            if status.is_none() {
                // Kill errors mean it already exited; wait reaps it either way.
                // SAFETY: killpg on the group this child leads (its pid, not yet reaped).
                unsafe {
                    libc::killpg(child.id() as libc::pid_t, libc::SIGKILL);
                }
                let _ = child.kill();
                let _ = child.wait();
            }
            // The reader threads end on their own once every writer of the pipes is gone.
            return Err(stop);
        }
        if status.is_none() {
            status = child.try_wait().map_err(|e| {
                KernelError::Failed(format!("cannot wait for program {}: {e}", quote(program)))
            })?;
        }
        // The pipes are asked only once the program ended: `poll` hands their contents over,
        // and a poll before the exit status was known dropped a stderr tail already read.
        if let Some((status, (stdout, tail))) = status.and_then(|s| Some((s, pipes.poll()?))) {
            let run = ExecRun { exit_code: exit_code(status), stdout };
            return Ok((run, tail));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(MAX_POLL);
    }
}

/// A running program's pipes, each read to its end on a helper thread.
struct Pipes {
    stdout: Receiver<Vec<u8>>,
    stderr: Receiver<Tail>,
    /// Its whole stdout, once read.
    captured: Option<Vec<u8>>,
    /// The last bytes of its stderr, once read.
    tail: Option<Tail>,
}

impl Pipes {
    /// Its stdout (lossy UTF-8) and stderr tail once both pipes reached their end.
    fn poll(&mut self) -> Option<(String, Tail)> {
        if self.captured.is_none() {
            match self.stdout.try_recv() {
                Ok(bytes) => self.captured = Some(bytes),
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => self.captured = Some(Vec::new()),
            }
        }
        if self.tail.is_none() {
            match self.stderr.try_recv() {
                Ok(t) => self.tail = Some(t),
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => self.tail = Some(Tail::new(0)),
            }
        }
        let stdout = String::from_utf8_lossy(self.captured.as_deref()?).into_owned();
        Some((stdout, self.tail.take()?))
    }
}

/// The exit code, or minus the signal number when a signal ended the program.
fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => -signal,
        (None, None) => -1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
