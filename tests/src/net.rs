//! Addresses: the one a server announces on its first line of stdout, and a port that records
//! being dialed before the real server exists.

use crate::process::{spawn, Proc};
use crate::wait::{wait_until, WAIT};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

/// Reads the "... listening on ADDR" line a server prints first; returns ADDR without scheme.
/// The rest of its stdout is drained, so it never blocks on a full pipe.
pub fn announced(proc: &mut Proc) -> String {
    announced_lines(proc, 1).remove(0)
}

/// Reads the first `n` lines a server prints, each ending "... ADDR" (a master's second line
/// names its dashboard); returns each ADDR without scheme (nor a trailing `/`). The rest of
/// its stdout is drained, so it never blocks on a full pipe.
pub fn announced_lines(proc: &mut Proc, n: usize) -> Vec<String> {
    let stdout = proc.child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        for _ in 0..n {
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
        }
        for _ in lines {}
    });
    (0..n)
        .map(|_| {
            let line = rx.recv_timeout(WAIT).expect("the server printed its address in time");
            let addr = line.rsplit(' ').next().expect("address on the line");
            let addr = addr.trim_start_matches("http://").trim_start_matches("https://");
            let addr = addr.trim_end_matches('/').to_string();
            assert!(addr.starts_with("127.0.0.1:"), "unexpected line {line:?}");
            addr
        })
        .collect()
}

/// Starts `farm <args>` for a server role and waits for its announced address.
pub fn spawn_announcing(args: &[&str], tag: &str) -> (Proc, String) {
    let mut proc = spawn(args, tag, Stdio::piped());
    let addr = announced(&mut proc);
    (proc, addr)
}

/// A loopback port that hangs up on whoever dials it: point a dialer at it before the real
/// server exists, and see that the dialer tried (and failed) before starting the server there.
pub struct DialTrap {
    /// Held until `release`, so nothing else takes the port meanwhile.
    listener: TcpListener,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl DialTrap {
    /// Binds a fresh loopback port.
    pub fn new() -> DialTrap {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address").to_string();
        DialTrap { listener, addr }
    }

    /// Waits until something has dialed the port (it is hung up on at once); false after
    /// `timeout`.
    pub fn wait_for_dial(&self, timeout: Duration) -> bool {
        wait_until(timeout, || self.listener.accept().is_ok())
    }

    /// Frees the port for the real server.
    pub fn release(self) -> String {
        self.addr
    }
}

impl Default for DialTrap {
    fn default() -> Self {
        DialTrap::new()
    }
}
