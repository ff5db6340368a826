//! The `exec` kernel's pipes: its program's stdout read whole, and its stderr passed on to the
//! worker's own stderr while the last bytes of it are kept, for the error of a failed run.
//! Each pipe is read on a helper thread, so a chatty program cannot block on a full pipe while
//! the pool thread polls it.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::process::{ChildStderr, ChildStdout};
use std::sync::mpsc::{self, Receiver};

/// The last bytes of a stream, at most `cap` of them: older bytes are dropped as new ones come.
#[derive(Debug, Clone)]
pub struct Tail {
    /// The bytes kept, oldest first.
    bytes: VecDeque<u8>,
    /// Most bytes kept.
    cap: usize,
    /// Bytes dropped from the front so far.
    dropped: u64,
}

impl Tail {
    /// An empty tail that keeps at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Tail { bytes: VecDeque::new(), cap, dropped: 0 }
    }

    /// Appends `chunk`, dropping the oldest bytes past the cap.
    pub fn push(&mut self, chunk: &[u8]) {
        let chunk = if chunk.len() > self.cap {
            self.dropped += (chunk.len() - self.cap) as u64;
            &chunk[chunk.len() - self.cap..]
        } else {
            chunk
        };
        let over = (self.bytes.len() + chunk.len()).saturating_sub(self.cap);
        self.bytes.drain(..over);
        self.dropped += over as u64;
        self.bytes.extend(chunk);
    }

    /// Whether bytes were dropped from the front.
    pub fn cut(&self) -> bool {
        self.dropped > 0
    }

    /// The last `max` bytes kept, as lossy UTF-8, trimmed of surrounding whitespace.
    pub fn last(&self, max: usize) -> String {
        let skip = self.bytes.len().saturating_sub(max);
        let bytes: Vec<u8> = self.bytes.iter().skip(skip).copied().collect();
        String::from_utf8_lossy(&bytes).trim().to_string()
    }
}

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

/// Copies the child's stderr to the worker's stderr as it comes and keeps its last `cap`
/// bytes; the tail arrives on the returned channel at end of file.
pub fn tee_stderr(err: Option<ChildStderr>, cap: usize) -> Receiver<Tail> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_keeps_the_last_bytes() {
        let mut tail = Tail::new(8);
        tail.push(b"hello_");
        assert_eq!(tail.last(usize::MAX), "hello_");
        assert!(!tail.cut());
        tail.push(b"world");
        assert_eq!(tail.last(usize::MAX), "lo_world");
        assert!(tail.cut());
        tail.push(b"0123456789abc");
        assert_eq!(tail.last(usize::MAX), "56789abc");
        assert_eq!(tail.last(3), "abc");
    }
}
