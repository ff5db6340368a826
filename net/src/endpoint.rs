//! One connection policy for every dialer (client, worker, master dialing listening workers)
//! and every server (master, listening worker): connect timeout, TCP_NODELAY, HTTP/2 keepalive,
//! and the same settings whichever side dials.

use crate::tls;
use std::time::Duration;
use tonic::transport::{ClientTlsConfig, Endpoint, Server, ServerTlsConfig};

/// How long a dial may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 pings notice a dead connection even when no message is due.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// A ping unanswered this long ends the connection.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// An endpoint to dial `url` (`host:port` or a URL), with TLS when given (the URL then becomes
/// https, so tonic never falls back to plaintext). The error says what is wrong with the URL or
/// the TLS settings.
pub fn endpoint(url: &str, tls: Option<ClientTlsConfig>) -> Result<Endpoint, String> {
    let dial = tls::dial_url(url, tls.is_some());
    let mut endpoint = Endpoint::from_shared(dial).map_err(|e| format!("{url}: {e}"))?;
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).map_err(|e| format!("{url}: {e}"))?;
    }
    Ok(endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true))
}

/// A server builder with the same policy, serving TLS when given.
pub fn server_builder(tls: Option<ServerTlsConfig>) -> Result<Server, tonic::transport::Error> {
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    Ok(builder
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT)))
}

/// Accepted connections of a listener with Nagle's algorithm off. Tonic sets TCP_NODELAY only
/// on sockets it accepts itself; without it, small messages (assignments, result batches) wait
/// for the peer's delayed ACK, which made a session about 20 times slower.
pub fn incoming_nodelay(
    listener: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|conn| {
        let conn = conn?;
        conn.set_nodelay(true)?;
        Ok(conn)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_are_errors_that_name_them() {
        let err = endpoint("not a url\n", None).unwrap_err();
        assert!(err.starts_with("not a url"), "{err}");
        assert!(endpoint("127.0.0.1:1", None).is_ok());
    }
}
