//! The master's HTTP endpoint as the command line sets it up: `--http ADDR|off`, the default
//! address and its fallback, and the dashboard's URL.

use anyhow::{Context, Result};
use clap::Args;
use farm_master::HttpConfig;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use tracing::{info, warn};

/// The master's HTTP endpoint: the dashboard, its API and Prometheus `/metrics`, on a port of
/// its own.
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// Serve the dashboard and /metrics on this address, or `off` [default: 127.0.0.1:7080,
    /// or a free port if that one is taken]. With a client token, the dashboard asks for it.
    #[arg(long, value_name = "ADDR|off", env = "FARM_HTTP")]
    pub http: Option<String>,
    /// Serve /metrics without the token, for a Prometheus scraper on a private network.
    #[arg(long, env = "FARM_METRICS_OPEN")]
    pub metrics_open: bool,
    /// A host name the dashboard answers to besides its listen address (and localhost on
    /// loopback), e.g. the name of a reverse proxy or of this machine; repeat for more, or
    /// comma-separate. Requests naming any other host are refused, so a web page cannot reach
    /// the dashboard through DNS rebinding.
    #[arg(long, value_name = "NAME", value_delimiter = ',', env = "FARM_HTTP_ALLOW_HOST")]
    pub http_allow_host: Vec<String>,
}

/// Where the dashboard goes without `--http`: away from the 7070 of masters and the 7071 of
/// listening workers in the docs.
pub const DEFAULT_HTTP: &str = "127.0.0.1:7080";

/// Binds the listener `args` asks for (`None`: `--http off`). An address given with `--http`
/// must be free; the default falls back to a free port on loopback when it is taken, with a
/// warning, so a second master or `farm run` on one machine never fails for its dashboard.
/// `checked` says whether clients need a token, to warn about an open dashboard on the network.
pub fn bind(args: &HttpArgs, checked: bool) -> Result<Option<HttpConfig>> {
    let listener = match args.http.as_deref().map(str::trim) {
        Some("off") => return Ok(None),
        Some(addr) => {
            TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr} (--http)"))?
        }
        None => match TcpListener::bind(DEFAULT_HTTP) {
            Ok(listener) => listener,
            Err(e) if e.kind() == ErrorKind::AddrInUse => {
                let listener = TcpListener::bind("127.0.0.1:0")
                    .context("cannot listen on loopback for the dashboard")?;
                let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
                // Expected with a second master or `farm run` on one machine: not a warning.
                info!(default = DEFAULT_HTTP, port, "dashboard address taken, using a free port");
                listener
            }
            Err(e) => return Err(e).context(format!("cannot listen on {DEFAULT_HTTP} (--http)")),
        },
    };
    let addr = listener.local_addr()?;
    if !checked && !addr.ip().is_loopback() {
        warn!(%addr, "dashboard on a non-loopback address without a token: anyone who can reach it can cancel jobs and drain workers (set FARM_TOKEN)");
    }
    Ok(Some(HttpConfig {
        listener: Arc::new(listener),
        metrics_open: args.metrics_open,
        allow_hosts: args.http_allow_host.clone(),
    }))
}

/// The dashboard's URL (on 127.0.0.1 when it listens on every interface).
pub fn url(config: &HttpConfig) -> Option<String> {
    let addr = config.listener.local_addr().ok()?;
    let ip = if addr.ip().is_unspecified() { [127, 0, 0, 1].into() } else { addr.ip() };
    Some(format!("http://{}/", SocketAddr::new(ip, addr.port())))
}
