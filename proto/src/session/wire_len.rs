//! Sizes of session messages on the wire, computed without building the prost messages: a
//! worker sizes its result batches with them.

use crate::domain::Output;
use prost::encoding::{encoded_len_varint, key_len};

/// A length-delimited field: its key, its length and its body.
pub(super) fn delimited(tag: u32, body: usize) -> usize {
    key_len(tag) + encoded_len_varint(body as u64) + body
}

/// A proto3 scalar field, omitted when zero.
fn varint_field(tag: u32, value: u64) -> usize {
    if value == 0 {
        0
    } else {
        key_len(tag) + encoded_len_varint(value)
    }
}

/// The body of a `ShardOutput` message holding `output`.
pub(super) fn output_len(output: &Output) -> usize {
    match output {
        Output::Count(n) => key_len(1) + encoded_len_varint(*n),
        Output::Fraction { hits, samples } => {
            delimited(2, varint_field(1, *hits) + varint_field(2, *samples))
        }
        Output::Lines(lines) => delimited(3, lines.iter().map(|l| delimited(1, l.len())).sum()),
        Output::Rows(rows) => {
            let row = |values: &Vec<u32>| match values.len() {
                0 => 0,
                _ => delimited(1, values.iter().map(|v| encoded_len_varint(u64::from(*v))).sum()),
            };
            delimited(4, rows.iter().map(|r| delimited(1, row(r))).sum())
        }
        Output::Exec(runs) => {
            let run = |r: &crate::ExecRun| {
                // An int32 is sign-extended to 64 bits on the wire.
                let code = varint_field(1, i64::from(r.exit_code) as u64);
                let stdout = if r.stdout.is_empty() { 0 } else { delimited(2, r.stdout.len()) };
                code + stdout
            };
            delimited(5, runs.iter().map(|r| delimited(1, run(r))).sum())
        }
    }
}
