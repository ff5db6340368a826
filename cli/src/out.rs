//! Standard output for every command. `println!` panics when the reader has gone (`farm … |
//! head`), so nothing in the CLI uses it (clippy's `print_stdout` is denied crate-wide): every
//! write goes through here, and a closed pipe becomes [`Closed`], an error that `main` turns
//! into a quiet exit, after the command has cleaned up on its way out as for any other error.

use std::borrow::Cow;
use std::fmt;
use std::io::{IsTerminal, Write};

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

/// Text from outside farm (a worker's name, a kind, a job's error, a kernel's output) with
/// its control characters escaped (`\u{1b}`, `\r`), so it cannot drive the terminal that
/// shows it: move the cursor, clear the screen, set the window title. `lines` keeps newlines
/// and tabs (a log, a program's output); without it they are escaped too, so a table cell
/// stays on its row. The one place this is decided; `--json` never goes through it (JSON
/// escapes every control character itself, keeping the exact text).
pub fn escaped(text: &str, lines: bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && !(lines && (c == '\n' || c == '\t'));
    if !text.contains(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut safe = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            safe.extend(c.escape_default());
        } else {
            safe.push(c);
        }
    }
    Cow::Owned(safe)
}

/// Data from a job (a result item, a program's stdout) for standard output: its exact text
/// when stdout is a file or a pipe, escaped (newlines kept) when it is a terminal.
pub fn data(text: &str, terminal: bool) -> Cow<'_, str> {
    if terminal {
        escaped(text, true)
    } else {
        Cow::Borrowed(text)
    }
}

/// Whether standard output is a terminal (data written to it is then escaped, see [`data`]).
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_lines_kept_when_asked() {
        let hostile = "a\u{1b}]0;pwned\u{7}b\u{1b}[2J\r\n\tc\u{9b}d";
        let cell = escaped(hostile, false);
        assert_eq!(cell, "a\\u{1b}]0;pwned\\u{7}b\\u{1b}[2J\\r\\n\\tc\\u{9b}d");
        assert!(!cell.chars().any(char::is_control), "{cell}");
        let log = escaped(hostile, true);
        assert_eq!(log, "a\\u{1b}]0;pwned\\u{7}b\\u{1b}[2J\\r\n\tc\\u{9b}d");
        assert!(!log.chars().any(|c| c.is_control() && c != '\n' && c != '\t'), "{log}");
        assert!(matches!(escaped("plain text, ünïcode", false), Cow::Borrowed(_)));
        assert_eq!(data(hostile, false), hostile);
        assert_eq!(data(hostile, true), log);
    }

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
