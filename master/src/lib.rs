//! The farm master: a scheduler core without I/O, the gRPC services that adapt it to the
//! network, and the spawner that starts and supervises local worker processes.

mod actor;
pub mod core;
mod grpc;
mod server;
pub mod spawner;

pub use grpc::MAX_THREADS;
pub use server::{serve, MasterConfig, MasterError};
