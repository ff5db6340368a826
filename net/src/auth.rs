//! Shared-token authentication: what a caller sends (`authorization: Bearer TOKEN`) and how a
//! server checks it, in constant time. Used by the master for clients and workers, and by
//! listening workers for the masters that dial them.

use tonic::metadata::MetadataValue;
use tonic::{Request, Status};

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
    let Some(expected) = expected else { return Ok(()) };
    let given = request
        .metadata()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
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
    fn tokens_load_from_files_and_empty_means_none() {
        let dir = std::env::temp_dir().join(format!("farm-auth-test-{}", std::process::id()));
        std::fs::write(&dir, "  tok\n").expect("write");
        assert_eq!(load(Some("x".into()), Some(&dir)).expect("load"), Some("tok".into()));
        assert_eq!(load(Some("  ".into()), None).expect("load"), None);
        let _ = std::fs::remove_file(dir);
    }
}
