//! The farm master: a scheduler core without I/O, the gRPC services that adapt it to the
//! network, and the spawner that starts and supervises local worker processes.

mod actor;
pub mod alloc;
pub mod autoalloc;
pub mod catalog;
mod connector;
pub mod core;
mod grpc;
pub(crate) mod logs;
pub mod modules;
mod server;
mod sessions;
pub mod spawner;
pub mod store;
mod tasks;

pub use server::{serve, MasterConfig, MasterError};
pub use sessions::MAX_THREADS;
