//! The SDK for kernels: what a kernel receives (its shard and a cancel flag, which also carries
//! the shard's log) and what it returns. Built-in kernels use it, and so does a user's own
//! kernel in their own worker binary (see `examples/collatz`).

use crate::tail::Tail;
pub use farm_proto::{ExecRun, KernelDescriptor, Output, OutputShape, ParamSpec, Params};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bytes of a shard's log kept: its last 64 KiB.
pub const SHARD_LOG_BYTES: usize = 64 << 10;
/// Most bytes a shard's output may take encoded (32 MiB): a larger one fails its shard, since
/// it could not be sent. A kernel that gathers output stops and fails as soon as it passes it.
pub const MAX_OUTPUT_BYTES: usize = farm_proto::MAX_MESSAGE_BYTES / 2;

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
    /// The shard ran past its time limit (milliseconds).
    #[error("timed out after {0} ms")]
    TimedOut(u64),
    /// The kernel failed on this shard; the message says why.
    #[error("{0}")]
    Failed(String),
    /// The shard's input is not what the kernel takes (an input line that is not a number);
    /// the message says why. Like [`KernelError::BadParam`] from `run`, every rerun would fail
    /// the same way, so the master fails the job at once, whatever its retries.
    #[error("{0}")]
    BadInput(String),
}

/// Tells a running kernel to stop: set when the shard's job is cancelled or the worker hands
/// the shard back, or past the shard's deadline (`--shard-timeout`). Kernels call
/// [`CancelFlag::check`] at least every few milliseconds. It also carries the shard's log
/// ([`CancelFlag::log`]).
#[derive(Debug, Clone, Default)]
pub struct CancelFlag {
    cancelled: Arc<AtomicBool>,
    deadline: Option<(Instant, Duration)>,
    /// What the running shard logs; each shard the pool runs gets its own.
    log: ShardLog,
}

/// What a shard logs for the person who submitted its job: lines a kernel writes with
/// [`ShardLog::line`] (exec writes its program's stderr). The worker keeps the last 64 KiB
/// and sends them with the shard's outcome; the master keeps them with the job, and
/// `farm logs JOB` prints them. Cheap to clone: clones write to the same log.
#[derive(Debug, Clone, Default)]
pub struct ShardLog {
    inner: Arc<Mutex<LogState>>,
}

/// A log's bytes and the exit code a kernel reported.
#[derive(Debug)]
struct LogState {
    tail: Tail,
    exit_code: Option<i32>,
}

impl Default for LogState {
    fn default() -> Self {
        LogState { tail: Tail::new(SHARD_LOG_BYTES), exit_code: None }
    }
}

impl ShardLog {
    /// Appends one line (a newline is added).
    pub fn line(&self, text: impl AsRef<str>) {
        let mut state = self.state();
        state.tail.push(text.as_ref().as_bytes());
        state.tail.push(b"\n");
    }

    /// Appends raw bytes (a program's stderr, say), kept as they come.
    pub fn write(&self, bytes: &[u8]) {
        self.state().tail.push(bytes);
    }

    /// Reports a program's exit code: the log keeps the first that is not 0 (else 0), which
    /// `--joblog` shows.
    pub fn exit_code(&self, code: i32) {
        let mut state = self.state();
        if state.exit_code.is_none_or(|c| c == 0) {
            state.exit_code = Some(code);
        }
    }

    /// What was logged (its last 64 KiB, as lossy UTF-8) and the exit code reported.
    pub fn contents(&self) -> (String, Option<i32>) {
        let state = self.state();
        (state.tail.text(), state.exit_code)
    }

    /// The state; a kernel that panicked while holding the lock leaves a log still usable.
    fn state(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl CancelFlag {
    /// A flag that is not set.
    pub fn new() -> Self {
        CancelFlag::default()
    }

    /// The same flag, with a time limit counted from now.
    pub fn with_timeout(&self, limit: Duration) -> Self {
        CancelFlag {
            cancelled: self.cancelled.clone(),
            deadline: Some((Instant::now() + limit, limit)),
            log: self.log.clone(),
        }
    }

    /// The same flag for one shard about to run: a fresh log, and its time limit (if any)
    /// counted from now.
    pub fn for_shard(&self, limit: Option<Duration>) -> Self {
        CancelFlag {
            cancelled: self.cancelled.clone(),
            deadline: limit.map(|limit| (Instant::now() + limit, limit)),
            log: ShardLog::default(),
        }
    }

    /// The running shard's log: `cancel.log().line("retrying with a smaller step")`.
    pub fn log(&self) -> &ShardLog {
        &self.log
    }

    /// Whether the shard should stop.
    pub fn is_cancelled(&self) -> bool {
        self.check().is_err()
    }

    /// `Err(Cancelled)` or `Err(TimedOut)` once the shard should stop.
    pub fn check(&self) -> Result<(), KernelError> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(KernelError::Cancelled);
        }
        match self.deadline {
            Some((at, limit)) if Instant::now() >= at => {
                Err(KernelError::TimedOut(limit.as_millis() as u64))
            }
            _ => Ok(()),
        }
    }

    /// Asks every kernel holding this flag to stop.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

impl From<farm_proto::ParamError> for KernelError {
    fn from(e: farm_proto::ParamError) -> Self {
        KernelError::BadParam(e.0)
    }
}

/// Checks `params` against the kernel's descriptor (filling in defaults), then prepares it:
/// what the worker's registry does for every job, and what a kernel's own tests should call.
pub fn prepare_checked(
    kernel: &dyn Kernel,
    params: &Params,
) -> Result<Box<dyn Prepared>, KernelError> {
    let checked = kernel.describe().check(params)?;
    kernel.prepare(&checked)
}

/// A kind of work. It describes its params and output shape (`describe`), which the master
/// checks submissions against; each worker prepares it once per job it runs.
pub trait Kernel: Send + Sync + 'static {
    /// The name jobs use to ask for this kernel (`farm run NAME`).
    fn name(&self) -> &str;
    /// What the kernel declares: its params (type, default, bounds, help) and output shape.
    /// Workers send it at registration, the master checks submissions against it, and the
    /// registry checks a job's params with it (filling in defaults) before `prepare`. The
    /// default declares nothing: params then reach `prepare` unchecked.
    fn describe(&self) -> KernelDescriptor {
        KernelDescriptor::open(self.name())
    }
    /// Parses the job's parameters, already checked against [`Kernel::describe`] with its
    /// defaults filled in (read them with `params.uint(name)?` and friends). Cross-field checks
    /// (say, `x0 < x1`) belong here. It runs on the worker's one async thread, which also
    /// answers the master: keep it short and never block in it (no I/O, no
    /// `tokio::task::block_in_place`); put heavy set-up in the first `run`, on a pool thread.
    fn prepare(&self, params: &Params) -> Result<Box<dyn Prepared>, KernelError>;
    /// The name of the param that holds the SHA-256 of a module this kernel needs (stored on
    /// the master with PutModule, in any format): the session then fetches the module's bytes
    /// from the master before the job's shards run (once per worker, kept in a cache bounded
    /// in bytes) and calls [`Kernel::prepare_with_module`] instead of `prepare`. A module the
    /// master cannot send refuses the job, with the reason. The default names none.
    fn module_param(&self) -> Option<&str> {
        None
    }
    /// [`Kernel::prepare`] for a kernel that names a module param: `module` holds the bytes of
    /// the module the job's param names. Same rules as `prepare` (short, no blocking). The
    /// default ignores the module and calls `prepare`.
    fn prepare_with_module(
        &self,
        params: &Params,
        module: Arc<[u8]>,
    ) -> Result<Box<dyn Prepared>, KernelError> {
        let _ = module;
        self.prepare(params)
    }
}

/// A kernel with its parameters parsed, ready to run shards; called from many pool threads at
/// once.
pub trait Prepared: Send + Sync + 'static {
    /// Runs one shard.
    fn run(&self, shard: &ShardInput, cancel: &CancelFlag) -> Result<Output, KernelError>;
}
