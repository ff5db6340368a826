//! A small HTTP/1.1 client over a plain TCP stream, for the master's dashboard API and
//! `/metrics`: enough for the tests (one request per connection, bodies with a length), with
//! no HTTP client crate to build.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// An HTTP reply: its status code and body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code (200, 401, …).
    pub status: u16,
    /// The body, as text.
    pub body: String,
    /// The headers, names lowercase, in order.
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// The value of header `name` (any case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

/// Sends `METHOD path` to `base` (`http://127.0.0.1:PORT`) with the given extra headers
/// (`"Authorization: Bearer t"`; a `Host:` among them replaces the address), and reads the
/// whole reply (bounded by a 30 s timeout).
pub fn http(method: &str, base: &str, path: &str, headers: &[&str]) -> std::io::Result<Reply> {
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|h| h.to_ascii_lowercase().starts_with("host:")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("Content-Length: 0\r\n\r\n");
    stream.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Reply { status, body: body.to_string(), headers })
}

/// `GET path`, with the token if there is one; panics if the master cannot be reached.
pub fn get(base: &str, path: &str, token: Option<&str>) -> Reply {
    let auth = token.map(|t| format!("Authorization: Bearer {t}"));
    let headers: Vec<&str> = auth.iter().map(String::as_str).collect();
    http("GET", base, path, &headers).unwrap_or_else(|e| panic!("GET {base}{path}: {e}"))
}

/// The value of the sample `series` (`name{labels}` exactly as exported) in a metrics text.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}
