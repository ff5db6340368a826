//! What keeps a web page of another site from using the dashboard through the browser of
//! someone who can reach it (DNS rebinding, cross-site requests): the `Host` a request names
//! must be the listen address (any IP literal when listening on every interface, `localhost`
//! too on loopback) or a name the operator allowed with `--http-allow-host`; an action (any
//! method but GET and HEAD) whose `Origin` is present must come from the same origin; and every
//! response carries headers that forbid framing, sniffing, referrers and scripts or styles
//! from anywhere but the page's own files.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tracing::debug;

/// The page's own files only; no framing, no `<base>`, forms only to itself.
const CSP: &str = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The hosts a request may name.
#[derive(Debug, Clone)]
pub(super) struct Hosts {
    /// The address the endpoint listens on.
    listen: SocketAddr,
    /// Names allowed besides it (`--http-allow-host`), lowercase.
    names: Vec<String>,
}

impl Hosts {
    /// The hosts of an endpoint listening on `listen`, with the operator's `names`.
    pub(super) fn new(listen: SocketAddr, names: &[String]) -> Self {
        let names = names.iter().map(|n| n.trim().trim_end_matches('.').to_lowercase()).collect();
        Hosts { listen, names }
    }

    /// Whether `host` (a `Host` header's value, port and all) names this endpoint.
    fn allows(&self, host: &str) -> bool {
        let Some(name) = host_name(host) else { return false };
        let name = name.trim_end_matches('.').to_lowercase();
        if self.names.contains(&name) {
            return true;
        }
        let listen = self.listen.ip();
        match name.parse::<IpAddr>() {
            // An IP literal cannot be rebound: on every interface any is fine.
            Ok(ip) => {
                ip == listen
                    || listen.is_unspecified()
                    || (listen.is_loopback() && ip.is_loopback())
            }
            Err(_) => listen.is_loopback() && (name == "localhost" || name.ends_with(".localhost")),
        }
    }
}

/// The name part of a `Host` value: `name`, `name:port`, `[v6]` or `[v6]:port`; `None` if
/// it is malformed.
fn host_name(host: &str) -> Option<&str> {
    if let Some(rest) = host.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        return (after.is_empty() || port(after.strip_prefix(':')?)).then_some(ip);
    }
    let (name, ok) = match host.rsplit_once(':') {
        Some((name, p)) => (name, port(p)),
        None => (host, true),
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
    (ok && !name.is_empty() && name.chars().all(valid)).then_some(name)
}

fn port(p: &str) -> bool {
    p.parse::<u16>().is_ok()
}

/// A one-line refusal.
fn forbidden(message: String) -> Response {
    (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message + "\n")
        .into_response()
}

/// The `Host` a request names: the header, or the authority of an absolute URI.
fn host_of(req: &Request) -> Option<String> {
    match req.headers().get(header::HOST) {
        Some(v) => v.to_str().ok().map(str::to_string),
        None => req.uri().authority().map(|a| a.as_str().to_string()),
    }
}

/// Whether an action's `Origin`, if any, is this endpoint as the request names it.
fn same_origin(headers: &HeaderMap, host: &str) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let origin = origin.to_str().unwrap_or("");
    let authority = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    authority.is_some_and(|a| a.eq_ignore_ascii_case(host))
}

/// Refuses requests naming another host, and actions from another origin.
pub(super) async fn check_host(
    State(hosts): State<Arc<Hosts>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(host) = host_of(&req).filter(|h| hosts.allows(h)) else {
        let named = host_of(&req).unwrap_or_default();
        debug!(host = %farm_proto::kernel::quote(&named), "http request for another host refused");
        return forbidden(format!(
            "host {} is not this dashboard's: open it by its address, or start the master with \
             --http-allow-host NAME",
            farm_proto::kernel::quote(&named)
        ));
    };
    let reads = req.method() == Method::GET || req.method() == Method::HEAD;
    if !reads && !same_origin(req.headers(), &host) {
        return forbidden("actions are taken from the dashboard's own page only".into());
    }
    next.run(req).await
}

/// Adds the security headers to every response.
pub(super) async fn secure_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(listen: &str, names: &[&str]) -> Hosts {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        Hosts::new(listen.parse().expect("addr"), &names)
    }

    #[test]
    fn loopback_takes_its_address_and_localhost_only() {
        let h = hosts("127.0.0.1:7080", &[]);
        for ok in ["127.0.0.1:7080", "127.0.0.1", "localhost:7080", "LOCALHOST", "[::1]:7080"] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in ["evil.example:7080", "evil.example", "", "127.0.0.1:x", "a b", "10.0.0.1:7080"]
        {
            assert!(!h.allows(bad), "{bad}");
        }
    }

    #[test]
    fn other_addresses_take_their_ip_and_the_allowed_names() {
        let h = hosts("10.1.2.3:7080", &["farm.lab.example", "Dash."]);
        for ok in ["10.1.2.3:7080", "farm.lab.example:7080", "FARM.lab.example", "dash", "dash.:80"]
        {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in ["localhost:7080", "127.0.0.1:7080", "evil.example", "10.1.2.4"] {
            assert!(!h.allows(bad), "{bad}");
        }
        let any = hosts("0.0.0.0:7080", &[]);
        assert!(any.allows("192.168.1.5:7080") && any.allows("[fe80::1]:7080"));
        assert!(!any.allows("node1:7080"), "names must be allowed by the operator");
    }

    #[test]
    fn an_action_must_come_from_the_same_origin_if_it_says() {
        let with = |origin: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ORIGIN, HeaderValue::from_str(origin).expect("value"));
            h
        };
        assert!(same_origin(&HeaderMap::new(), "127.0.0.1:7080"));
        assert!(same_origin(&with("http://127.0.0.1:7080"), "127.0.0.1:7080"));
        assert!(!same_origin(&with("http://evil.example"), "127.0.0.1:7080"));
        assert!(!same_origin(&with("http://127.0.0.1:7081"), "127.0.0.1:7080"));
        assert!(!same_origin(&with("null"), "127.0.0.1:7080"));
    }
}
