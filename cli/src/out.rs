//! Standard output for every command. `println!` panics when the reader has gone (`farm … |
//! head`), so nothing in the CLI uses it (clippy's `print_stdout` is denied crate-wide): every
//! write goes through here, and a closed pipe becomes [`Closed`], an error that `main` turns
//! into a quiet exit, after the command has cleaned up on its way out as for any other error.

use std::fmt;
use std::io::Write;

/// Standard output was closed by its reader: stop quietly, as every Unix tool does.
#[derive(Debug)]
pub struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for Closed {}

/// An I/O error on standard output, with a closed pipe turned into [`Closed`].
pub fn error(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        anyhow::Error::new(Closed)
    } else {
        anyhow::Error::new(e).context("cannot write to standard output")
    }
}

/// Whether `e` (or what it wraps) is a closed standard output.
pub fn is_closed(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<Closed>()
            || c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Writes `text` to standard output and flushes it.
pub fn write(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).map_err(error)
}

/// Writes one line (`text` and a newline) to standard output.
pub fn line(text: impl fmt::Display) -> anyhow::Result<()> {
    write(&format!("{text}\n"))
}

/// Writes one line of JSON: `value` serialized.
pub fn json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    line(serde_json::to_string(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_pipe_is_closed_and_other_errors_are_not() {
        let closed = error(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(is_closed(&closed));
        assert!(is_closed(&anyhow::Error::new(std::io::Error::from(
            std::io::ErrorKind::BrokenPipe
        ))));
        let full = error(std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert!(!is_closed(&full));
        assert!(full.to_string().contains("standard output"));
    }
}
