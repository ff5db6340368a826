//! The SDK for kernels: what a kernel receives (its shard and a cancel flag) and what it
//! returns. Built-in kernels use it, and so does a user's own kernel in their own worker binary
//! (see `examples/collatz`).

pub use farm_proto::{ExecRun, Output, Params};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The piece of the job one shard covers: the indices `lo..hi`, or one explicit input line
/// (then `lo` is the line's index and `hi == lo + 1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInput {
    /// First index.
    pub lo: u64,
    /// One past the last index.
    pub hi: u64,
    /// The input line, for a job submitted with explicit inputs.
    pub input: Option<String>,
}

/// Why a kernel did not return an output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// A parameter is missing, malformed or out of range; the message names it.
    #[error("{0}")]
    BadParam(String),
    /// The shard was cancelled while running.
    #[error("cancelled")]
    Cancelled,
    /// The kernel failed on this shard; the message says why.
    #[error("{0}")]
    Failed(String),
}

/// Set by the worker when the shard's job is cancelled; kernels call `check` at least every few
/// milliseconds.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(pub Arc<AtomicBool>);

impl CancelFlag {
    /// Whether the shard should stop.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once the shard should stop.
    pub fn check(&self) -> Result<(), KernelError> {
        if self.is_cancelled() {
            Err(KernelError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Asks every kernel holding this flag to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A kind of work. `prepare` parses and checks the job's parameters once per job: the master
/// calls it to reject bad parameters at submit time, each worker once per job it runs.
pub trait Kernel: Send + Sync + 'static {
    /// The name jobs use to ask for this kernel (`farm run NAME`).
    fn name(&self) -> &str;
    /// Parses the job's parameters.
    fn prepare(&self, params: &Params) -> Result<Box<dyn Prepared>, KernelError>;
}

/// A kernel with its parameters parsed, ready to run shards; called from many pool threads at
/// once.
pub trait Prepared: Send + Sync + 'static {
    /// Runs one shard.
    fn run(&self, shard: &ShardInput, cancel: &CancelFlag) -> Result<Output, KernelError>;
}
