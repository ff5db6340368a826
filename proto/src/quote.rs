//! Bounding user input quoted back in messages: an error never echoes a huge input back, and
//! a message from elsewhere (a worker's error) is never unbounded. Below every other module,
//! so the spec checks and the kernel checks can both use it.

/// Longest piece of user input quoted back in an error message.
const QUOTE_BYTES: usize = 96;

/// `input` quoted for an error message: whole when short, else its first bytes and its length,
/// so an error never echoes a huge input back.
pub fn quote(input: &str) -> String {
    let (head, len) = head(input);
    match len {
        None => format!("{head:?}"),
        Some(len) => format!("{head:?}… ({len} bytes)"),
    }
}

/// `name` as it is when short, else its first bytes and its length (see [`quote`]).
pub fn clip(name: &str) -> String {
    truncate(name, QUOTE_BYTES)
}

/// `text` as it is when at most `max` bytes, else its first `max` bytes and its length: for
/// messages from elsewhere (a worker's error) that may be long but must not be unbounded.
pub fn truncate(text: &str, max: usize) -> String {
    match head_of(text, max) {
        (head, None) => head.to_string(),
        (head, Some(len)) => format!("{head}… ({len} bytes)"),
    }
}

/// The first [`QUOTE_BYTES`] of `input` (on a char boundary), and its length if it was cut.
fn head(input: &str) -> (&str, Option<usize>) {
    head_of(input, QUOTE_BYTES)
}

/// The first `max` bytes of `input` (on a char boundary), and its length if it was cut.
fn head_of(input: &str, max: usize) -> (&str, Option<usize>) {
    if input.len() <= max {
        return (input, None);
    }
    let mut end = max;
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    (&input[..end], Some(input.len()))
}
