//! The farm master: a scheduler core without I/O, the gRPC services that adapt it to the
//! network, the HTTP endpoint (dashboard and Prometheus metrics), and the spawner that starts
//! and supervises local worker processes.

mod actor;
pub mod arenas;
pub mod autoalloc;
pub mod catalog;
mod clock;
mod connector;
pub mod core;
mod grpc;
mod http;
pub(crate) mod logs;
pub mod metrics;
pub mod modules;
mod outgoing;
mod private;
mod server;
mod sessions;
pub mod spawner;
pub mod store;
mod tasks;

pub use http::{HttpConfig, ACTION_HEADER};
pub use server::{serve, MasterConfig, MasterError};
pub use sessions::MAX_THREADS;
