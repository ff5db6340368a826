//! The names a worker gives its kernels and their params: a safe character set and a length,
//! checked at registration, so that a name can be shown in a Prometheus label, a table, a log
//! line or a URL as it is, with nothing to escape (a worker once registered the kind
//! `x"} 1\nfarm_injected_total{…` and forged a series on `/metrics`).

use super::{quote, ParamError};

/// Longest kind name.
pub const MAX_KIND_BYTES: usize = 64;

/// Whether `c` may appear in a kind or param name: an ASCII letter or digit, `_`, `.`, `:` or
/// `-`.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')
}

/// Checks `name` (a `what`: "kind" or "param name"): 1 to `max` bytes of [`is_name_char`].
pub fn check(what: &str, name: &str, max: usize) -> Result<(), ParamError> {
    if name.is_empty() {
        return Err(ParamError(format!("a kernel has an empty {what}")));
    }
    if name.len() > max {
        return Err(ParamError(format!("{what} {} is over {max} bytes", quote(name))));
    }
    if !name.chars().all(is_name_char) {
        return Err(ParamError(format!(
            "{what} {} may hold only letters, digits, '_', '.', ':' and '-'",
            quote(name)
        )));
    }
    Ok(())
}
