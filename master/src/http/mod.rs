//! The master's HTTP endpoint (axum), on its own listener beside the gRPC port: the dashboard
//! at `/` (plain HTML, CSS and JS compiled into the binary: no CDN, works offline), its JSON
//! API and live feed under `/api/`, and Prometheus metrics at `/metrics`.
//!
//! Handlers reach the core's task through the same [`CoreHandle`] as the gRPC services. The
//! feed ([`feed`]) asks the core for one overview per second, and only while a browser
//! listens; every browser shares that frame (a principal that sees only its own jobs gets it
//! filtered). With a client token or principals, the API and `/metrics` (unless
//! `--metrics-open`) require `authorization: Bearer TOKEN`, checked by the same [`Access`] as
//! gRPC, which also checks the role each route needs ([`Need::http`]); the page itself holds
//! no data and is open, and asks for the token.
//! Whatever the token, [`guard`] refuses requests for other hosts and cross-origin actions, and
//! adds the security headers to every response.

mod api;
#[cfg(test)]
pub(crate) use api::http_status;
mod feed;
mod guard;

use crate::access::{Access, Need, Principal};
use crate::actor::CoreHandle;
use crate::audit::Audit;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use feed::Feed;
use std::sync::Arc;
use tracing::{info, warn};

/// How the master serves HTTP.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Where to serve, already bound (so the caller knows the port, or chose a fallback).
    pub listener: Arc<std::net::TcpListener>,
    /// Serve `/metrics` without the token, for a scraper on a private network.
    pub metrics_open: bool,
    /// Host names requests may name besides the listen address (`--http-allow-host`).
    pub allow_hosts: Vec<String>,
}

/// What every handler shares.
#[derive(Clone)]
struct Http {
    /// The core's task.
    core: CoreHandle,
    /// The store, where a job's per-shard logs are read (off the core's task).
    store: crate::store::Store,
    /// Who may do what (rate-limited warnings, constant-time comparison).
    access: Arc<Access>,
    /// The audit trail of mutating calls.
    audit: Arc<Audit>,
    /// The dashboard's live feed.
    feed: Arc<Feed>,
    /// One scrape at a time sets the gauges and encodes them.
    scrape: Arc<tokio::sync::Mutex<()>>,
}

/// The header a browser action (cancel, drain) must carry: a page on another site cannot set
/// it without a CORS preflight, which this server never grants, so it cannot forge actions
/// against a master that has no token.
pub const ACTION_HEADER: &str = "x-farm-action";

/// The configured listener, ready for the async runtime.
pub(crate) fn listener(config: &HttpConfig) -> std::io::Result<tokio::net::TcpListener> {
    let listener = config.listener.try_clone()?;
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

/// Starts serving HTTP on `listener` as one of the master's tracked tasks (with the feed's
/// ticker); both stop at shutdown. `guard` checks who calls, and records their actions.
pub(crate) fn spawn(
    listener: tokio::net::TcpListener,
    config: &HttpConfig,
    core: CoreHandle,
    store: crate::store::Store,
    guard: (Arc<Access>, Arc<Audit>),
) {
    let metrics_open = config.metrics_open;
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => return warn!(error = %e, "http endpoint has no address"),
    };
    let allow_hosts = config.allow_hosts.join(",");
    info!(%addr, metrics_open, %allow_hosts, "dashboard serving");
    let hosts = Arc::new(guard::Hosts::new(addr, &config.allow_hosts));
    let tasks = core.tasks().clone();
    let feed = Arc::new(Feed::new(core.clone()));
    tasks.spawn("dashboard feed", feed.clone().run());
    let (access, audit) = guard;
    let http = Http { core, store, access, audit, feed, scrape: Arc::default() };
    let app = router(http, metrics_open)
        .layer(middleware::from_fn_with_state(hosts, guard::check_host))
        .layer(middleware::from_fn(guard::secure_headers));
    let stop = tasks.clone();
    tasks.spawn("http", async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.stopped().await })
            .await;
        if let Err(e) = served {
            warn!(error = %e, "http endpoint stopped");
        }
    });
}

/// The routes: the page and its assets open, the API behind the token, `/metrics` behind it
/// unless `metrics_open`.
fn router(http: Http, metrics_open: bool) -> Router {
    let guard = || middleware::from_fn_with_state(http.clone(), require_token);
    let api = Router::new()
        .route("/api/state", get(api::state))
        .route("/api/me", get(api::me))
        .route("/api/events", get(api::events))
        .route("/api/jobs/{id}", get(api::job))
        .route("/api/jobs/{id}/cancel", post(api::cancel))
        .route("/api/workers/{id}/drain", post(api::drain))
        .route_layer(guard());
    let mut metrics = Router::new().route("/metrics", get(api::metrics));
    if !metrics_open {
        metrics = metrics.route_layer(guard());
    }
    Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", include_str!("page/index.html"))))
        .route("/app.js", get(|| asset("text/javascript", include_str!("page/app.js"))))
        .route("/style.css", get(|| asset("text/css", include_str!("page/style.css"))))
        .merge(api)
        .merge(metrics)
        .with_state(http)
}

/// A file of the page.
async fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// Lets through requests whose token names a principal with the role the route needs
/// (all, as `default`, where clients are not checked), with the principal in the request's
/// extensions: 401 without a valid token, 403 naming the role without it.
async fn require_token(State(http): State<Http>, mut req: Request, next: Next) -> Response {
    let given = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let principal = match http.access.client(given) {
        Ok(p) => p,
        Err(status) => {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                format!("{}\n", status.message()),
            )
                .into_response()
        }
    };
    let need = Need::http(req.method().as_str(), req.uri().path());
    if let Err(denied) = principal.require(need.role, need.action) {
        http.access.denied(&denied);
        if need.mutating {
            http.audit.refused(&principal.name, need.action, req.uri().path(), &denied.0);
        }
        return api::refused(&denied.into());
    }
    req.extensions_mut().insert::<Arc<Principal>>(principal);
    next.run(req).await
}
