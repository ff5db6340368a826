//! TLS settings built from PEM files, for the master's server side and for clients, workers and
//! masters that dial (rustls through tonic). Plaintext stays the default for localhost use.

use std::path::Path;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// Why TLS settings could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {what} {path}: {source}")]
pub struct TlsError {
    /// Which setting.
    pub what: &'static str,
    /// The file.
    pub path: String,
    /// What went wrong.
    pub source: std::io::Error,
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError {
        what,
        path: path.display().to_string(),
        source,
    })
}

/// A server's TLS: its certificate chain and key, and, for mutual TLS, the CA that client
/// certificates must be signed by.
pub fn server(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<ServerTlsConfig, TlsError> {
    let identity = Identity::from_pem(read("--tls-cert", cert)?, read("--tls-key", key)?);
    let mut config = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = client_ca {
        config = config.client_ca_root(Certificate::from_pem(read("--tls-client-ca", ca)?));
    }
    Ok(config)
}

/// A caller's TLS: the CA the server's certificate must be signed by (none: the system's web
/// roots are not used, so a CA is required to verify), and a client certificate for mutual TLS.
pub fn client(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<ClientTlsConfig, TlsError> {
    let mut config =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("--tls-ca", ca)?));
    if let Some((cert, key)) = identity {
        config =
            config.identity(Identity::from_pem(read("--tls-cert", cert)?, read("--tls-key", key)?));
    }
    Ok(config)
}

/// The URL to dial: with TLS on, `http://` becomes `https://` and a bare `host:port` gets
/// `https://` (tonic does TLS only for https URLs, and would otherwise fall back to plaintext
/// silently); with TLS off, a bare `host:port` gets `http://`.
pub fn dial_url(url: &str, tls: bool) -> String {
    match (url.split_once("://"), tls) {
        (Some(("http", rest)), true) => format!("https://{rest}"),
        (Some(_), _) => url.to_string(),
        (None, true) => format!("https://{url}"),
        (None, false) => format!("http://{url}"),
    }
}

/// What to do about a failure to talk to a master whose TLS may not match this side's, when
/// the error's own text does not say it: `error` is the failure's whole chain, `tls` whether
/// this side dialed with TLS. None when the failure does not look like a mismatch.
pub fn mismatch_hint(error: &str, tls: bool) -> Option<&'static str> {
    let has = |needle: &str| error.contains(needle);
    if has("Connecting to HTTPS without TLS enabled") {
        Some("an https:// master needs --tls-ca FILE, the CA that signed its certificate")
    } else if has("InvalidContentType") || has("corrupt message") {
        Some("the master does not answer TLS on that port: use http://, or start it with --tls-cert and --tls-key")
    } else if has("UnknownIssuer") {
        Some("the master's certificate is not signed by the CA given with --tls-ca")
    } else if !tls && closed_early(error) {
        Some(CLOSED_EARLY)
    } else {
        None
    }
}

/// `reason`, with [`mismatch_hint`]'s hint after it in parentheses when there is one.
pub fn with_hint(reason: String, tls: bool) -> String {
    match mismatch_hint(&reason, tls) {
        Some(hint) => format!("{reason} ({hint})"),
        None => reason,
    }
}

/// The hint for a plaintext connection the master closed before answering.
const CLOSED_EARLY: &str =
    "the master closed the connection before answering; a master that serves TLS does that to an http:// client: use https:// and --tls-ca";

/// Whether `error` is an HTTP/2 connection that ended before any answer (what a TLS server
/// does with a plaintext HTTP/2 preface): a call's bare "transport error", or one of the
/// ways hyper and h2 word it.
fn closed_early(error: &str) -> bool {
    error == "transport error"
        || [
            "operation was canceled",
            "h2 protocol error",
            "connection closed before message completed",
        ]
        .iter()
        .any(|needle| error.contains(needle))
}

/// The whole chain of an error, joined with ": " (TLS failures hide the reason a few levels down).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{dial_url, mismatch_hint};

    #[test]
    fn a_tls_mismatch_gets_a_hint_and_other_failures_none() {
        let hint = |e: &str, tls: bool| mismatch_hint(e, tls).unwrap_or("");
        assert!(hint("transport error: Connecting to HTTPS without TLS enabled", false)
            .contains("--tls-ca"));
        assert!(
            hint("received corrupt message of type InvalidContentType", true).contains("http://")
        );
        assert!(hint("invalid peer certificate: UnknownIssuer", true).contains("not signed"));
        assert!(hint("operation was canceled", false).contains("https://"));
        assert!(hint("transport error", false).contains("https://"));
        assert_eq!(mismatch_hint("stream error: transport error", false), None);
        // With TLS on, an early close is not a plaintext client's mistake.
        assert_eq!(mismatch_hint("operation was canceled", true), None);
        assert_eq!(mismatch_hint("tcp connect error: Connection refused", false), None);
    }

    #[test]
    fn tls_never_dials_plain_http() {
        assert_eq!(dial_url("http://h:1", true), "https://h:1");
        assert_eq!(dial_url("h:1", true), "https://h:1");
        assert_eq!(dial_url("https://h:1", false), "https://h:1");
        assert_eq!(dial_url("h:1", false), "http://h:1");
        assert_eq!(dial_url("http://h:1", false), "http://h:1");
    }
}
