//! The `exec` kernel's pipes: its program's stdout read whole, and its stderr passed on to the
//! worker's own stderr and to the shard's log, while its last bytes are kept for the error of
//! a failed run.
//! Each pipe is read on a helper thread, so a chatty program cannot block on a full pipe while
//! the pool thread polls it.

use crate::sdk::ShardLog;
use crate::tail::Tail;
use std::io::{Read, Write};
use std::process::{ChildStderr, ChildStdout};
use std::sync::mpsc::{self, Receiver};

/// Reads the child's whole stdout; the bytes arrive on the returned channel at end of file.
pub fn read_stdout(out: Option<ChildStdout>) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    match out {
        Some(mut out) => {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                // A read error keeps what was read so far.
                let _ = out.read_to_end(&mut bytes);
                let _ = tx.send(bytes);
            });
        }
        None => {
            let _ = tx.send(Vec::new());
        }
    }
    rx
}

/// Copies the child's stderr to the worker's stderr and to the shard's `log` as it comes, and
/// keeps its last `cap` bytes; the tail arrives on the returned channel at end of file.
pub fn tee_stderr(err: Option<ChildStderr>, cap: usize, log: ShardLog) -> Receiver<Tail> {
    let (tx, rx) = mpsc::channel();
    let mut tail = Tail::new(cap);
    match err {
        Some(mut err) => {
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match err.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            // The worker's stderr may be closed; the tail is kept all the same.
                            let _ = std::io::stderr().write_all(&buf[..n]);
                            tail.push(&buf[..n]);
                            log.write(&buf[..n]);
                        }
                    }
                }
                let _ = tx.send(tail);
            });
        }
        None => {
            let _ = tx.send(tail);
        }
    }
    rx
}
