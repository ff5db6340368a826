//! How the `exec` kernel's `cmd` becomes each run's argv, so that an input line never becomes
//! shell code unless the job asks for it.
//!
//! `cmd` is split into words once (shlex, POSIX-shell-like quoting). In a plain word, `{}` is
//! replaced by the run's value as it is: the program gets it as (part of) one argument, and no
//! shell reads it. In the script of a shell (`sh -c SCRIPT`, also `bash`, `dash`, `zsh`, … and
//! behind a wrapper such as `env` or `timeout 5`), `{}` is replaced by the value quoted for
//! the spot where it stands: bare outside quotes, inside `'…'` or inside `"…"`. A value of
//! plain characters (letters, digits, `_.,:/@%+-`: every index) needs no quotes and is put in
//! as it is, so `$(( {} % 2 ))` keeps working. Where the script is past a construct whose
//! quoting this does not follow (`$(`, `` ` ``, `${`, `$'`, `((`, `<<`, `#`), a value that
//! needs quotes fails its run, naming the safe form: `"$FARM_INPUT"`, the environment variable
//! every run gets with its value. `{raw}` puts the value in as it is, everywhere: the job's
//! explicit choice to run it as code.

use crate::sdk::KernelError;
use farm_proto::kernel::quote;

/// The environment variable that holds the run's value (what `{}` stands for).
pub(crate) const INPUT_ENV: &str = "FARM_INPUT";
/// Programs that read their `-c` argument as POSIX shell code.
const SHELLS: [&str; 7] = ["sh", "bash", "dash", "ash", "ksh", "mksh", "zsh"];
/// The placeholder quoted for a shell script.
const QUOTED: &str = "{}";
/// The placeholder put in as it is, even into a shell script.
const RAW: &str = "{raw}";

/// A parsed `cmd`: its words, each a run of text and placeholders.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CmdTemplate {
    /// The words, the program first.
    words: Vec<Word>,
}

/// One word of `cmd`.
#[derive(Debug, Clone, PartialEq)]
struct Word {
    /// Its text and placeholders in order.
    pieces: Vec<Piece>,
    /// It is a shell's script: `{}` is quoted for where it stands.
    script: bool,
}

/// A piece of a word.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    /// Text kept as it is.
    Text(String),
    /// `{}`, with where it stands in a shell script (`Bare` in a plain word).
    Input(Spot),
    /// `{raw}`.
    Raw,
}

/// Where a `{}` stands in a shell script.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Spot {
    /// Outside quotes (or in a plain word, where no shell reads it).
    Bare,
    /// Inside `'…'`.
    Single,
    /// Inside `"…"`.
    Double,
    /// After a construct whose quoting is not followed here.
    Unknown,
}

impl CmdTemplate {
    /// Splits `cmd` into words and finds the placeholders; an error names what is wrong.
    pub(crate) fn parse(cmd: &str) -> Result<CmdTemplate, KernelError> {
        let words = shlex::split(cmd).ok_or_else(|| {
            KernelError::BadParam(format!(
                "bad param cmd: cannot split {} into arguments",
                quote(cmd)
            ))
        })?;
        if words.first().is_none_or(|p| p.is_empty()) {
            return Err(KernelError::BadParam("bad param cmd: names no program".to_string()));
        }
        let script = script_index(&words);
        let words = words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let script = Some(i) == script;
                let pieces = if script { script_pieces(w) } else { plain_pieces(w) };
                Word { pieces, script }
            })
            .collect();
        Ok(CmdTemplate { words })
    }

    /// The argv of the run whose value is `value`, or why it cannot be built.
    pub(crate) fn argv(&self, value: &str) -> Result<Vec<String>, String> {
        self.words.iter().map(|w| w.render(value)).collect()
    }
}

impl Word {
    /// This word for the run whose value is `value`. Inside quotes the quote is closed, the
    /// value put in single-quoted, and the quote opened again: `'a{}b'` with `v's` becomes
    /// `'a''v'\''s''b'`.
    fn render(&self, value: &str) -> Result<String, String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Raw => out.push_str(value),
                Piece::Input(_) if !self.script || is_plain(value) => out.push_str(value),
                Piece::Input(Spot::Bare) => out.push_str(&shell_quote(value)),
                Piece::Input(Spot::Single) => {
                    out.extend(["'", shell_quote(value).as_str(), "'"]);
                }
                Piece::Input(Spot::Double) => {
                    out.extend(["\"", shell_quote(value).as_str(), "\""]);
                }
                Piece::Input(Spot::Unknown) => {
                    return Err(format!(
                        "{{}} = {} needs quoting, and it stands after $(, `, ${{, $', ((, << or # \
                         in the shell script, where farm does not quote: use \"${INPUT_ENV}\" \
                         there (or {{raw}} to run the value as code)",
                        quote(value)
                    ))
                }
            }
        }
        Ok(out)
    }
}

/// Which word is a shell's script: the first operand after a shell whose options include
/// `-c` (`sh -c S`, `bash -ec S`, `bash -o pipefail -c S`, `env sh -c S`, `busybox sh -c S`).
fn script_index(words: &[String]) -> Option<usize> {
    let name = |w: &str| w.rsplit('/').next().unwrap_or(w).to_string();
    let shell = words.iter().position(|w| SHELLS.contains(&name(w).as_str()))?;
    let mut has_c = false;
    let mut i = shell + 1;
    while let Some(w) = words.get(i) {
        match w.as_str() {
            "--" => return has_c.then_some(i + 1).filter(|&s| s < words.len()),
            "-o" | "+o" | "-O" | "+O" => i += 1,
            w if w.starts_with("--") => {}
            w if (w.starts_with('-') || w.starts_with('+')) && w.len() > 1 => {
                has_c |= w.starts_with('-') && w.contains('c');
            }
            _ => return has_c.then_some(i),
        }
        i += 1;
    }
    None
}

/// A plain word's pieces: its text and placeholders, none of them quoted.
fn plain_pieces(word: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = word;
    while !rest.is_empty() {
        if let Some((piece, len)) = placeholder(rest, Spot::Bare) {
            flush(&mut pieces, &mut text);
            pieces.push(piece);
            rest = &rest[len..];
        } else {
            let c = rest.chars().next().unwrap_or_default();
            text.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    flush(&mut pieces, &mut text);
    pieces
}

/// A shell script's pieces, each `{}` with where it stands: follows `'…'`, `"…"` and
/// backslashes, and gives up (`Unknown` from there on) at any construct with quoting of its
/// own, a comment or a here-document.
fn script_pieces(script: &str) -> Vec<Piece> {
    let (mut pieces, mut text) = (Vec::new(), String::new());
    let (mut spot, mut unknown) = (Spot::Bare, false);
    let mut rest = script;
    while let Some(c) = rest.chars().next() {
        let here = if unknown { Spot::Unknown } else { spot };
        if let Some((piece, len)) = placeholder(rest, here) {
            flush(&mut pieces, &mut text);
            pieces.push(piece);
            rest = &rest[len..];
            continue;
        }
        let next = rest[c.len_utf8()..].chars().next();
        let mut len = c.len_utf8();
        match (spot, c, next) {
            (Spot::Bare | Spot::Double, '\\', Some(n)) => len += n.len_utf8(),
            (Spot::Bare, '\'', _) => spot = Spot::Single,
            (Spot::Single, '\'', _) => spot = Spot::Bare,
            (Spot::Bare, '"', _) => spot = Spot::Double,
            (Spot::Double, '"', _) => spot = Spot::Bare,
            (Spot::Bare | Spot::Double, '`', _)
            | (Spot::Bare | Spot::Double, '$', Some('(' | '{'))
            | (Spot::Bare, '$', Some('\'' | '"'))
            | (Spot::Bare, '(', Some('('))
            | (Spot::Bare, '<', Some('<'))
            | (Spot::Bare, '#', _) => unknown = true,
            _ => {}
        }
        text.push_str(&rest[..len]);
        rest = &rest[len..];
    }
    flush(&mut pieces, &mut text);
    pieces
}

/// The placeholder `rest` starts with, and its length.
fn placeholder(rest: &str, spot: Spot) -> Option<(Piece, usize)> {
    if rest.starts_with(QUOTED) {
        Some((Piece::Input(spot), QUOTED.len()))
    } else if rest.starts_with(RAW) {
        Some((Piece::Raw, RAW.len()))
    } else {
        None
    }
}

fn flush(pieces: &mut Vec<Piece>, text: &mut String) {
    if !text.is_empty() {
        pieces.push(Piece::Text(std::mem::take(text)));
    }
}

/// Whether `value` means the same to a shell wherever it stands, quoted or not.
fn is_plain(value: &str) -> bool {
    !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.,:/@%+-".contains(&b))
}

/// `value` as one single-quoted shell word (a `'` in it written `'\''`).
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
#[path = "exec_cmd_tests.rs"]
mod tests;
