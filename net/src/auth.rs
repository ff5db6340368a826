//! Shared-token authentication: what a caller sends (`authorization: Bearer TOKEN`) and how a
//! server checks it, in constant time. Used by the master for clients and workers, and by
//! listening workers for the masters that dial them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tonic::metadata::MetadataValue;
use tonic::{Request, Status};

/// At most one warning per this long about refused calls, so that nobody can flood the log
/// by calling without a token.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Refused calls of one service, counted, and logged at most once per [`WARN_EVERY`] with how
/// many there were since the last warning, so nobody can flood the log by calling without a
/// token (or without a role).
#[derive(Debug)]
pub struct Refusals {
    /// Names the service in the log (`clients`, `workers`, `masters`, `access`).
    service: &'static str,
    /// Refused calls since the start.
    refused: AtomicU64,
    /// Refused calls already reported in a warning.
    reported: AtomicU64,
    /// When the last warning went out, in ms since `born` (u64::MAX: never).
    warned_at: AtomicU64,
    born: Instant,
}

impl Refusals {
    /// No refusals yet, for `service`.
    pub fn new(service: &'static str) -> Self {
        Refusals {
            service,
            refused: AtomicU64::new(0),
            reported: AtomicU64::new(0),
            warned_at: AtomicU64::new(u64::MAX),
            born: Instant::now(),
        }
    }

    /// Counts a refusal, logs it if no warning went out lately, and hands it back.
    pub fn refuse(&self, status: Status) -> Status {
        let total = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let now = self.born.elapsed().as_millis() as u64;
        let last = self.warned_at.load(Ordering::Relaxed);
        let due = last == u64::MAX || now.saturating_sub(last) >= WARN_EVERY.as_millis() as u64;
        if due
            && self
                .warned_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let since = total - self.reported.swap(total, Ordering::Relaxed);
            tracing::warn!(
                service = self.service,
                refused = since,
                refused_total = total,
                reason = status.message(),
                "refused calls (at most one warning per 10 s)"
            );
        }
        status
    }

    /// Calls refused since the start.
    pub fn count(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// The token check of one service, counting refusals ([`Refusals`]).
#[derive(Debug)]
pub struct Gate {
    /// The token callers must present; none: every call passes.
    expected: Option<String>,
    refusals: Refusals,
}

impl Gate {
    /// A gate for `service` that lets through calls carrying `expected`.
    pub fn new(service: &'static str, expected: Option<String>) -> Self {
        Gate { expected, refusals: Refusals::new(service) }
    }

    /// Checks a call's token; a refusal is counted, and logged if no warning went out lately.
    pub fn check<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let given = request.metadata().get(HEADER).and_then(|v| v.to_str().ok());
        self.check_header(given)
    }

    /// Checks the value of an `authorization` header (`Bearer TOKEN`), from any protocol,
    /// counting and logging refusals like [`Gate::check`].
    pub fn check_header(&self, authorization: Option<&str>) -> Result<(), Status> {
        check_bearer(authorization, self.expected.as_deref()).map_err(|s| self.refusals.refuse(s))
    }

    /// Calls refused since the start.
    pub fn refused(&self) -> u64 {
        self.refusals.count()
    }
}

/// A fresh token: 32 random bytes from the operating system's generator, as 64 hex digits.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The metadata key the token travels in.
pub const HEADER: &str = "authorization";

/// Puts `token` on a request, if there is one.
pub fn attach<T>(request: &mut Request<T>, token: Option<&str>) -> Result<(), Status> {
    if let Some(token) = token {
        let value = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Status::invalid_argument("token has characters a header cannot carry"))?;
        request.metadata_mut().insert(HEADER, value);
    }
    Ok(())
}

/// Checks a request's token against `expected` (no token expected: anything passes).
/// A missing or wrong token is `Unauthenticated`; the comparison takes the same time wherever
/// the first difference is.
pub fn check<T>(request: &Request<T>, expected: Option<&str>) -> Result<(), Status> {
    check_bearer(request.metadata().get(HEADER).and_then(|v| v.to_str().ok()), expected)
}

/// Checks an `authorization` header's value (`Bearer TOKEN`) against `expected`, as [`check`].
pub fn check_bearer(authorization: Option<&str>, expected: Option<&str>) -> Result<(), Status> {
    let Some(expected) = expected else { return Ok(()) };
    let given = authorization
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| Status::unauthenticated("missing token (authorization: Bearer TOKEN)"))?;
    if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(Status::unauthenticated("wrong token"))
    }
}

/// Equal bytes, compared without an early exit (only the length can be told apart by timing).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A token from a value or a file (trimmed); an empty one counts as none.
pub fn load(
    value: Option<String>,
    file: Option<&std::path::Path>,
) -> std::io::Result<Option<String>> {
    let token = match file {
        Some(path) => Some(std::fs::read_to_string(path)?),
        None => value,
    };
    Ok(token.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_exactly() {
        let mut req = Request::new(());
        assert_eq!(check(&req, None).map_err(|s| s.code()), Ok(()));
        assert_eq!(
            check(&req, Some("s3cret")).map_err(|s| s.code()),
            Err(tonic::Code::Unauthenticated)
        );
        attach(&mut req, Some("s3cret")).expect("attach");
        assert!(check(&req, Some("s3cret")).is_ok());
        assert_eq!(
            check(&req, Some("s3cres")).map_err(|s| s.code()),
            Err(tonic::Code::Unauthenticated)
        );
        assert_eq!(
            check(&req, Some("s3cret2")).map_err(|s| s.code()),
            Err(tonic::Code::Unauthenticated)
        );
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"a", b"b"));
    }

    #[test]
    fn a_gate_counts_every_refusal() {
        let gate = Gate::new("clients", Some("s3cret".into()));
        for _ in 0..1000 {
            assert!(gate.check(&Request::new(())).is_err());
        }
        let mut good = Request::new(());
        attach(&mut good, Some("s3cret")).expect("attach");
        assert!(gate.check(&good).is_ok());
        assert_eq!(gate.refused(), 1000);
        // Only the first refusal of the burst was due a warning.
        assert_eq!(gate.refusals.reported.load(Ordering::Relaxed), 1);
        assert!(Gate::new("open", None).check(&Request::new(())).is_ok());
    }

    #[test]
    fn tokens_load_from_files_and_empty_means_none() {
        let dir = std::env::temp_dir().join(format!("farm-auth-test-{}", std::process::id()));
        std::fs::write(&dir, "  tok\n").expect("write");
        assert_eq!(load(Some("x".into()), Some(&dir)).expect("load"), Some("tok".into()));
        assert_eq!(load(Some("  ".into()), None).expect("load"), None);
        let _ = std::fs::remove_file(dir);
    }
}
