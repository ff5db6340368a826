//! The `exec` kernel: runs an external program once per index. Only registered when the
//! worker is started with `--allow-exec`.
//!
//! Parameter `cmd` (required, non-empty) is split into argv with POSIX-shell-like quoting
//! (shlex). For each index, every `{}` in every argument is replaced by the index's decimal
//! value, or by the raw input line for an input shard. The program is run directly (no shell)
//! with stdin null, stdout captured (decoded as lossy UTF-8) and stderr inherited from the
//! worker. The exit code is the program's, or `-signal_number` if a signal killed it.
//! The output is `Output::Exec` with one run per index, in order. On cancellation the running
//! program is killed and the shard returns `Cancelled`.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::Duration;

use crate::kernels::params::index_texts;
use crate::sdk::{
    CancelFlag, ExecRun, Kernel, KernelDescriptor, KernelError, Output, OutputShape, ParamSpec,
    Params, Prepared, ShardInput,
};
use farm_proto::kernel::quote;

/// The `exec` kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Exec;

/// The longest pause between two polls of a running program.
const MAX_POLL: Duration = Duration::from_millis(5);

impl Kernel for Exec {
    fn name(&self) -> &str {
        "exec"
    }

    fn describe(&self) -> KernelDescriptor {
        let help = "runs a program per index (workers started with --allow-exec only)";
        let cmd = ParamSpec::required_text("cmd", "the program and its arguments; {} is the index");
        KernelDescriptor::new(self.name(), OutputShape::Exec, help).param(cmd)
    }

    fn prepare(&self, params: &Params) -> Result<Box<dyn Prepared>, KernelError> {
        let cmd = params.text("cmd")?;
        let argv = shlex::split(cmd).ok_or_else(|| {
            KernelError::BadParam(format!(
                "bad param cmd: cannot split {} into arguments",
                quote(cmd)
            ))
        })?;
        if argv.first().is_none_or(|p| p.is_empty()) {
            return Err(KernelError::BadParam("bad param cmd: names no program".to_string()));
        }
        Ok(Box::new(PreparedExec { argv }))
    }
}

struct PreparedExec {
    argv: Vec<String>,
}

impl Prepared for PreparedExec {
    fn run(&self, shard: &ShardInput, cancel: &CancelFlag) -> Result<Output, KernelError> {
        cancel.check()?;
        let mut runs = Vec::new();
        for text in index_texts(shard) {
            let args: Vec<String> = self.argv.iter().map(|a| a.replace("{}", &text)).collect();
            runs.push(run_one(&args, cancel)?);
        }
        Ok(Output::Exec(runs))
    }
}

/// Runs `args[0]` with the rest as arguments, polling until it exits or `cancel` is set.
fn run_one(args: &[String], cancel: &CancelFlag) -> Result<ExecRun, KernelError> {
    use std::os::unix::process::CommandExt;
    let program = &args[0];
    let mut command = Command::new(program);
    command
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
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
    let stdout = read_in_background(&mut child);
    let mut status: Option<ExitStatus> = None;
    let mut captured: Option<Vec<u8>> = None;
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
            // The reader thread ends on its own once every writer of the pipe is gone.
            return Err(stop);
        }
        if status.is_none() {
            status = child.try_wait().map_err(|e| {
                KernelError::Failed(format!("cannot wait for program {}: {e}", quote(program)))
            })?;
        }
        if captured.is_none() {
            match stdout.try_recv() {
                Ok(bytes) => captured = Some(bytes),
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => captured = Some(Vec::new()),
            }
        }
        if let (Some(status), Some(bytes)) = (status, &captured) {
            return Ok(ExecRun {
                exit_code: exit_code(status),
                stdout: String::from_utf8_lossy(bytes).into_owned(),
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(MAX_POLL);
    }
}

/// Reads the child's whole stdout on a helper thread, so a chatty program cannot block on a
/// full pipe while the caller polls; the bytes arrive on the returned channel at end of file.
fn read_in_background(child: &mut Child) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut out) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            // A read error keeps what was read so far.
            let _ = out.read_to_end(&mut bytes);
            let _ = tx.send(bytes);
        });
    }
    rx
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

    #[test]
    fn exit_codes_and_signals() {
        assert_eq!(run("sh -c \"exit 3\"", range(0, 1)), Ok(Output::Exec(vec![exec_run(3, "")])));
        assert_eq!(
            run("sh -c 'printf out; kill -9 $$'", range(0, 1)),
            Ok(Output::Exec(vec![exec_run(-9, "out")]))
        );
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
            "unknown param shell for kernel exec; known: cmd"
        );
    }

    #[test]
    fn cancelled() {
        let job = prepare_checked(&Exec, &params(&[("cmd", "sleep 30")])).unwrap();
        assert_stops_when_cancelled(job.as_ref(), &range(0, 3));
    }
}
