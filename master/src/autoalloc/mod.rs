//! Automatic worker allocation (`farm alloc`): allocation queues that submit worker
//! allocations to a batch scheduler (Slurm) while shards wait, track them with the
//! scheduler's own tools, and stop when the queue is empty.
//!
//! `machine.rs` is the allocator as a pure state machine (`now` passed in, effects out);
//! `task.rs` is the tracked task that owns it: it asks the core's task for its numbers on a
//! tick, carries the effects out through `slurm.rs` (child processes with a timeout each,
//! never on the core's task) and serves `AllocAdd`/`AllocList`/`AllocRemove`. `script.rs`
//! writes the batch script each allocation runs; `policy.rs` checks the sbatch arguments a
//! client asks for against what the operator allowed.

mod machine;
#[cfg(test)]
mod machine_tests;
mod policy;
mod queue;
mod script;
mod slurm;
mod task;

pub use machine::{Allocator, AllocatorConfig, Effect, SchedState};
pub use policy::{SbatchPolicy, DEFAULT_ALLOWED};
pub use task::{spawn, AllocHandle};

use std::path::PathBuf;
use std::time::Duration;

/// What a master needs to start workers through a scheduler; built by the CLI.
#[derive(Debug, Clone)]
pub struct AllocSettings {
    /// The `farm` executable the allocations run (the master's own, so versions match); it
    /// must be at the same path on the compute nodes (a shared filesystem).
    pub exe: PathBuf,
    /// The URL the allocated workers dial.
    pub master_url: String,
    /// More environment for the workers (TLS files), exported by the batch script.
    pub env: Vec<(String, String)>,
    /// The token workers present: written to a file only the master's user can read, whose
    /// path the script passes on.
    pub token: Option<String>,
    /// Where scripts, the token file and the allocations' logs go; compute nodes must see it.
    pub dir: PathBuf,
    /// The kernels allocated workers offer: only shards of these kinds call for allocations.
    pub kinds: Vec<String>,
    /// The sbatch options clients may set and the operator's fixed arguments.
    pub sbatch: SbatchPolicy,
}

/// How often the allocator looks at the queue.
pub const TICK: Duration = Duration::from_secs(1);

/// Why an allocation request was refused (a [`crate::Error`] the edges map to codes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// Bad settings (InvalidArgument).
    #[error("{0}")]
    Invalid(String),
    /// The name is taken (AlreadyExists).
    #[error("an allocation queue named {0} exists")]
    Exists(String),
    /// No such queue (NotFound).
    #[error("no allocation queue {0}")]
    NoSuchQueue(String),
    /// An sbatch option the operator did not allow (PermissionDenied).
    #[error("{0}")]
    Denied(String),
    /// This master cannot start workers (FailedPrecondition).
    #[error("{0}")]
    Unavailable(String),
}
