//! The `exec` kernel's pipes: its program's stdout read whole up to a limit (past it the pipe
//! is closed and the run is to be stopped: a program cannot make the worker buffer more than
//! a shard may send), and its stderr passed on to the worker's own stderr and to the shard's
//! log, while its last bytes are kept for the error of a failed run.
//!
//! Both pipes are non-blocking and read on the pool thread that runs the program, in the one
//! `poll(2)` loop that also waits for the program to exit (see `exec_wait.rs`): a chatty
//! program never blocks on a full pipe, and no thread is started per run.

use crate::sdk::ShardLog;
use crate::tail::Tail;
use std::cell::RefCell;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::ops::ControlFlow;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Bytes asked of a pipe per read: a whole pipe buffer (64 KiB on Linux).
const READ_CHUNK: usize = 64 << 10;

thread_local! {
    /// Where each read lands before it is passed on: one per pool thread, not one per run
    /// (a zeroed 64 KiB allocation per run showed in the profile of 5,000 × `/bin/true`).
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}

/// A running program's two pipes, each open until its end of file.
pub(crate) struct Pipes {
    /// Its stdout, until end of file.
    stdout: Option<File>,
    /// Its stderr, until end of file.
    stderr: Option<File>,
    /// Its stdout so far.
    captured: Vec<u8>,
    /// Most bytes of stdout kept; one more and the run is over its limit.
    limit: usize,
    /// Its stdout passed `limit` (the pipe was closed there).
    over_limit: bool,
    /// The last bytes of its stderr so far.
    tail: Tail,
    /// The shard's log, which gets its stderr too.
    log: ShardLog,
}

impl Pipes {
    /// Takes the child's pipes, made non-blocking; stdout keeps at most `limit` bytes, the
    /// stderr tail `cap` bytes. A pipe that cannot be made non-blocking is an error (a read on
    /// it could stall the loop).
    pub(crate) fn new(
        stdout: OwnedFd,
        stderr: OwnedFd,
        limit: usize,
        cap: usize,
        log: ShardLog,
    ) -> std::io::Result<Pipes> {
        Ok(Pipes {
            stdout: Some(non_blocking(stdout)?),
            stderr: Some(non_blocking(stderr)?),
            captured: Vec::new(),
            limit,
            over_limit: false,
            tail: Tail::new(cap),
            log,
        })
    }

    /// The descriptors still open, stdout first, for `poll`.
    pub(crate) fn fds(&self) -> [Option<RawFd>; 2] {
        [self.stdout.as_ref().map(|f| f.as_raw_fd()), self.stderr.as_ref().map(|f| f.as_raw_fd())]
    }

    /// Whether both pipes reached their end.
    pub(crate) fn done(&self) -> bool {
        self.stdout.is_none() && self.stderr.is_none()
    }

    /// Whether stdout passed its limit: the run must stop, its output is not whole.
    pub(crate) fn over_limit(&self) -> bool {
        self.over_limit
    }

    /// Reads what the stdout pipe holds now; closes it at end of file (or on a read error,
    /// keeping what was read, as a blocking reader would), or as soon as it passes the limit,
    /// without keeping the bytes past it.
    pub(crate) fn read_stdout(&mut self) {
        if let Some(pipe) = self.stdout.as_mut() {
            let (captured, limit, over) = (&mut self.captured, self.limit, &mut self.over_limit);
            let at_end = drain(pipe, |bytes| {
                if captured.len() + bytes.len() > limit {
                    *over = true;
                    return ControlFlow::Break(());
                }
                captured.extend_from_slice(bytes);
                ControlFlow::Continue(())
            });
            if at_end {
                self.stdout = None;
            }
        }
    }

    /// Reads what the stderr pipe holds now, passing it on to the worker's stderr, the shard's
    /// log and the tail; closes it at end of file (or on a read error).
    pub(crate) fn read_stderr(&mut self) {
        let (tail, log) = (&mut self.tail, &self.log);
        if let Some(pipe) = self.stderr.as_mut() {
            let at_end = drain(pipe, |bytes| {
                // The worker's stderr may be closed; the tail is kept all the same.
                let _ = std::io::stderr().write_all(bytes);
                tail.push(bytes);
                log.write(bytes);
                ControlFlow::Continue(())
            });
            if at_end {
                self.stderr = None;
            }
        }
    }

    /// The whole stdout (lossy UTF-8, copied only if it is not UTF-8) and the stderr tail.
    pub(crate) fn finish(self) -> (String, Tail) {
        let stdout = String::from_utf8(self.captured)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        (stdout, self.tail)
    }
}

/// Reads `pipe` until it would block, handing each chunk to `sink`; whether the pipe is
/// finished (end of file, a read error, or `sink` breaking off).
fn drain(pipe: &mut File, mut sink: impl FnMut(&[u8]) -> ControlFlow<()>) -> bool {
    READ_BUF.with_borrow_mut(|buf| loop {
        match pipe.read(buf) {
            Ok(0) => return true,
            Ok(n) => {
                if sink(&buf[..n]).is_break() {
                    return true;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    })
}

/// The pipe `fd` as a file in non-blocking mode.
fn non_blocking(fd: OwnedFd) -> std::io::Result<File> {
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own; no memory is passed.
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(File::from(fd))
}
