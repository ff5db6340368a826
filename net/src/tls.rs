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
    use super::dial_url;

    #[test]
    fn tls_never_dials_plain_http() {
        assert_eq!(dial_url("http://h:1", true), "https://h:1");
        assert_eq!(dial_url("h:1", true), "https://h:1");
        assert_eq!(dial_url("https://h:1", false), "https://h:1");
        assert_eq!(dial_url("h:1", false), "http://h:1");
        assert_eq!(dial_url("http://h:1", false), "http://h:1");
    }
}
