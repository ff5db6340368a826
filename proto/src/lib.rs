//! farm's wire contract: the generated gRPC code for `farm.proto`, the protocol version that
//! both ends check, and the domain types that master and worker logic use instead of prost types.

pub mod auth;
mod convert;
pub mod domain;
#[cfg(test)]
mod fuzz_tests;
pub mod kernel;
pub mod session;
pub mod tls;

/// Generated prost messages and tonic services of package `farm.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("farm.v1");
}

/// Bumped on any incompatible change to `farm.proto`; checked when a worker registers and when a
/// client that states its version submits.
pub const PROTOCOL_VERSION: u32 = 2;

/// Encoded `FileDescriptorSet` of `farm.proto`, served by the master for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/farm_descriptor.bin"));

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

pub use domain::{ExecRun, JobLimits, JobSource, JobSpec, Output, Params, SpecError};
pub use kernel::{KernelDescriptor, OutputShape, ParamError, ParamKind, ParamSpec};

/// Largest gRPC message either end accepts (a job with many explicit inputs, a batch of large
/// outputs). Larger messages are refused by the transport.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
