//! farm's wire contract: the generated gRPC code for `farm.proto`, the protocol version that
//! both ends check, and the domain types that master, worker and client logic use instead of
//! prost types (`domain`: job specs and outputs; `status`: what clients see), with every
//! conversion between the two in `convert`.

pub mod alloc;
pub mod codec;
mod convert;
pub mod domain;
#[cfg(test)]
mod fuzz_tests;
pub mod kernel;
pub mod logs;
pub mod quote;
pub mod session;
pub mod status;
#[cfg(test)]
mod status_tests;
pub mod wasm;
pub mod wasm_limits;

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

pub use alloc::{
    AllocQueueInfo, AllocQueueSpec, AllocQueueState, AllocationInfo, AllocationState, Scheduler,
};
pub use domain::{ExecRun, JobLimits, JobSource, JobSpec, Output, Params, SpecError};
pub use kernel::{KernelDescriptor, KindInfo, OutputShape, ParamError, ParamKind, ParamSpec};
pub use logs::{LogQuery, ShardLog};
pub use status::{
    DialedBy, JobEvent, JobState, JobStatus, JsonText, Progress, Submitted, WorkerInfo,
    LIST_RESULT_BYTES,
};

/// Most threads a worker may state at registration (the master refuses more).
pub const MAX_THREADS: u32 = 4096;

/// Largest gRPC message either end accepts (a job with many explicit inputs, a batch of large
/// outputs). Larger messages are refused by the transport.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
