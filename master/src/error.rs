//! The master's one error: what went wrong, in the domain's words. The core's task, the
//! handles to it and to the allocator, the module store and the log reader return it; the two
//! edges turn it into their codes, each in one function (`grpc::status`, `http::api`'s
//! `http_status`), and send its `Display` as the message, so gRPC and HTTP say the same thing.

use crate::autoalloc::AllocError;
use crate::catalog::KindError;
use crate::core::CoreError;
use crate::modules::ModuleError;
use crate::store::StoreError;

/// Why the master refused or failed a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The core refused it: a limit, an unknown job or worker, a job that ended.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A submission's kind is unknown, or its params do not fit the kernel.
    #[error(transparent)]
    Kind(#[from] KindError),
    /// The module store refused an upload or does not hold a module.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// The allocator refused a queue request.
    #[error(transparent)]
    Alloc(#[from] AllocError),
    /// The store failed: a commit, a read, a record that does not decode.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The caller's principal lacks the role the call needs; the message names it.
    #[error(transparent)]
    Denied(#[from] crate::access::Denied),
    /// The request is malformed; the message says how.
    #[error("{0}")]
    InvalidArgument(String),
    /// The request is well formed but cannot be served in the state things are in.
    #[error("{0}")]
    FailedPrecondition(String),
    /// Something the request needs is down (the journal's writer, a worker's session).
    #[error("{0}")]
    Unavailable(String),
    /// A watcher read shard results slower than they came, and some were dropped.
    #[error("watcher fell behind: shard results were dropped; watch without them")]
    FellBehind,
    /// The core's or the allocator's task is gone: the master is stopping.
    #[error("master is shutting down")]
    ShuttingDown,
    /// A bug or a broken store on this side.
    #[error("{0}")]
    Internal(String),
}

/// The master's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is: the one classification both edges map from, so a
/// refusal has the same meaning on gRPC and on HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// No such job, worker, module or queue.
    NotFound,
    /// The name is taken.
    AlreadyExists,
    /// Malformed input.
    InvalidArgument,
    /// Not now, in this state.
    FailedPrecondition,
    /// Over a limit.
    ResourceExhausted,
    /// The operator does not allow it.
    PermissionDenied,
    /// Down or stopping; try again.
    Unavailable,
    /// A bug or a broken store.
    Internal,
}

impl Error {
    /// What kind of failure this is. No catch-all: a new variant does not compile until it
    /// is classified here.
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Error::Core(e) => match e {
                CoreError::TooManyShards { .. }
                | CoreError::TooManyJobs { .. }
                | CoreError::MemoryBudget { .. }
                | CoreError::Quota(_) => Kind::ResourceExhausted,
                CoreError::NoSuchJob(_) | CoreError::NoSuchWorker(_) => Kind::NotFound,
                CoreError::JobEnded(_) => Kind::FailedPrecondition,
            },
            // A worker that offers the kind may still connect.
            Error::Kind(KindError::Unknown(_)) => Kind::FailedPrecondition,
            Error::Kind(KindError::BadParams(_)) => Kind::InvalidArgument,
            Error::Module(e) => match e {
                ModuleError::Invalid(_) => Kind::InvalidArgument,
                ModuleError::TooLarge(_) | ModuleError::Quota(_) => Kind::ResourceExhausted,
                ModuleError::Missing(_) => Kind::NotFound,
                ModuleError::Store(_) => Kind::Internal,
            },
            Error::Alloc(e) => match e {
                AllocError::Invalid(_) => Kind::InvalidArgument,
                AllocError::Exists(_) => Kind::AlreadyExists,
                AllocError::NoSuchQueue(_) => Kind::NotFound,
                AllocError::Denied(_) => Kind::PermissionDenied,
                AllocError::Unavailable(_) => Kind::FailedPrecondition,
            },
            Error::Store(e) => match e {
                // What the request wrote is not on disk, or the writer stopped: the journal's
                // writer is down, as `Unavailable` says; the client may try again.
                StoreError::Commit(_) | StoreError::Closed(_) => Kind::Unavailable,
                StoreError::Open(_) | StoreError::Corrupt(_) | StoreError::Io(_) => Kind::Internal,
            },
            Error::Denied(_) => Kind::PermissionDenied,
            Error::FellBehind => Kind::ResourceExhausted,
            Error::InvalidArgument(_) => Kind::InvalidArgument,
            Error::FailedPrecondition(_) => Kind::FailedPrecondition,
            Error::Unavailable(_) | Error::ShuttingDown => Kind::Unavailable,
            Error::Internal(_) => Kind::Internal,
        }
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
