//! What both ends of a farm connection share, so the master, the worker and the client agree
//! by construction rather than by copy: capped exponential backoff with jitter, one endpoint
//! and keepalive policy for every dialer and server, shared-token authentication, TLS from PEM
//! files, and a listener that turns Nagle's algorithm off.
//!
//! # Files
//!
//! One entry per source file under `src/` (a test in `tests/tests/docs.rs` fails when one
//! is missing or names a file that is gone):
//!
//! - `auth.rs`: shared-token authentication: the `authorization` header, and `Gate`, which checks
//!   it
//! - `backoff.rs`: capped exponential backoff with jitter, for every loop that dials or restarts
//! - `endpoint.rs`: one connection policy (timeouts, TCP_NODELAY, keepalive) for every dialer and
//!   server
//! - `tls.rs`: TLS settings from PEM files for both sides, and hints when the two sides disagree

pub mod auth;
mod backoff;
mod endpoint;
pub mod tls;

pub use backoff::Backoff;

/// Environment variables that hold a secret or name a file that does (tokens, a TLS private
/// key): a worker keeps them out of the programs it runs for `exec` jobs.
pub const SECRET_ENV: [&str; 5] = [
    "FARM_TOKEN",
    "FARM_TOKEN_FILE",
    "FARM_WORKER_TOKEN",
    "FARM_WORKER_TOKEN_FILE",
    "FARM_TLS_KEY",
];
pub use endpoint::{endpoint, incoming_nodelay, server_builder};
