//! What both ends of a farm connection share, so the master, the worker and the client agree
//! by construction rather than by copy: capped exponential backoff with jitter, one endpoint
//! and keepalive policy for every dialer and server, shared-token authentication, TLS from PEM
//! files, and a listener that turns Nagle's algorithm off.

pub mod auth;
mod backoff;
mod endpoint;
pub mod tls;

pub use backoff::Backoff;
pub use endpoint::{endpoint, incoming_nodelay, server_builder};
