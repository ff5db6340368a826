//! farm's wire contract: the generated gRPC code for `farm.proto`, the protocol version that
//! both ends check, and the domain types that master, worker and client logic use instead of
//! prost types (`domain`: job specs and outputs; `status`: what clients see). Conversions
//! between the two live in `convert` for jobs and statuses, and beside their types for the
//! rest (`session`, `logs`, `alloc`, `kernel/convert`).
//!
//! # Files
//!
//! One entry per source file under `src/` (a test in `tests/tests/docs.rs` fails when one
//! is missing or names a file that is gone):
//!
//! - `alloc.rs`: domain types of allocation queues (`farm alloc`) and their prost conversions
//! - `codec.rs`: the codec of every generated service: prost's, with undecodable bytes
//!   `InvalidArgument`
//! - `convert.rs`: conversions between the prost types of `farm.proto` and the job and status
//!   domain types
//! - `domain.rs`: domain types shared by master, worker and client: a job's spec and a shard's
//!   output
//! - `fuzz_tests.rs`: property tests over what a client or a worker can put on the wire
//! - `kernel.rs`: kernel descriptors: what a worker says about each kernel it offers
//! - `kernel/convert.rs`: kernel descriptors from and to their prost types
//! - `kernel/indices.rs`: params that bound a job's indices (mandelbrot's `height` bounds its rows)
//! - `kernel/names.rs`: the names a worker gives its kernels and their params: safe characters,
//!   bounded length
//! - `kernel_tests.rs`: tests of kernel descriptors: checks, limits, quoting and wire round trips
//! - `labels.rs`: worker labels and job requirements (`--label`, `--require`): bounds, parsing
//!   and the match
//! - `logs.rs`: per-shard logs as clients see them: one shard's last run, and their prost
//!   conversions
//! - `python.rs`: the names the `python` kernel, its jobs and its workers agree on
//! - `quote.rs`: `quote`, `clip` and `truncate`: user text kept short and printable in messages
//! - `session.rs`: the worker session's messages as domain types, both directions, with their
//!   conversions
//! - `session/tests.rs`: round trips of every session message, sizes against prost's own
//! - `session/wire_len.rs`: sizes of session messages on the wire
//! - `status.rs`: what clients see: a job's state and status, watch events, workers; their
//!   conversions
//! - `status_tests.rs`: round trips of the client-facing types through their prost forms
//! - `wasm.rs`: the wasm kernel's ABI as data: the `farm` imports, `farm_run`, the shape rule
//! - `wasm_limits.rs`: what a wasm module may declare, checked before it is compiled

pub mod alloc;
pub mod codec;
mod convert;
pub mod domain;
#[cfg(test)]
mod fuzz_tests;
pub mod kernel;
pub mod labels;
pub mod logs;
pub mod python;
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
pub use domain::{ExecRun, JobLimits, JobSource, JobSpec, ModuleFormat, Output, Params, SpecError};
pub use kernel::{KernelDescriptor, KindInfo, OutputShape, ParamError, ParamKind, ParamSpec};
pub use labels::Labels;
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
