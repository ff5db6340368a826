//! Every error's code on both edges, pinned: the gRPC code clients and the CLI see, and the
//! HTTP status the dashboard's API answers with, and that both carry the same message.

use super::*;
use crate::grpc::status;
use crate::http::http_status;
use axum::http::StatusCode;
use tonic::Code;

/// The arm of `e` and its pinned codes. No catch-all: a new variant (or a new variant of a
/// wrapped error) does not compile until its codes are pinned here, and [`samples`] must then
/// show one, in the arm's place.
fn pinned(e: &Error) -> (usize, Code, StatusCode) {
    use StatusCode as H;
    match e {
        Error::Core(CoreError::TooManyShards { .. }) => {
            (0, Code::ResourceExhausted, H::TOO_MANY_REQUESTS)
        }
        Error::Core(CoreError::TooManyJobs { .. }) => {
            (1, Code::ResourceExhausted, H::TOO_MANY_REQUESTS)
        }
        Error::Core(CoreError::MemoryBudget { .. }) => {
            (2, Code::ResourceExhausted, H::TOO_MANY_REQUESTS)
        }
        Error::Core(CoreError::NoSuchJob(_)) => (3, Code::NotFound, H::NOT_FOUND),
        Error::Core(CoreError::NoSuchWorker(_)) => (4, Code::NotFound, H::NOT_FOUND),
        Error::Core(CoreError::JobEnded(_)) => (5, Code::FailedPrecondition, H::CONFLICT),
        Error::Kind(KindError::Unknown(_)) => (6, Code::FailedPrecondition, H::CONFLICT),
        Error::Kind(KindError::BadParams(_)) => (7, Code::InvalidArgument, H::BAD_REQUEST),
        Error::Module(ModuleError::Invalid(_)) => (8, Code::InvalidArgument, H::BAD_REQUEST),
        Error::Module(ModuleError::TooLarge(_)) => {
            (9, Code::ResourceExhausted, H::TOO_MANY_REQUESTS)
        }
        Error::Module(ModuleError::Missing(_)) => (10, Code::NotFound, H::NOT_FOUND),
        Error::Module(ModuleError::Store(_)) => (11, Code::Internal, H::INTERNAL_SERVER_ERROR),
        Error::Alloc(AllocError::Invalid(_)) => (12, Code::InvalidArgument, H::BAD_REQUEST),
        Error::Alloc(AllocError::Exists(_)) => (13, Code::AlreadyExists, H::CONFLICT),
        Error::Alloc(AllocError::NoSuchQueue(_)) => (14, Code::NotFound, H::NOT_FOUND),
        Error::Alloc(AllocError::Denied(_)) => (15, Code::PermissionDenied, H::FORBIDDEN),
        Error::Alloc(AllocError::Unavailable(_)) => (16, Code::FailedPrecondition, H::CONFLICT),
        Error::Store(StoreError::Open(_)) => (17, Code::Internal, H::INTERNAL_SERVER_ERROR),
        Error::Store(StoreError::Corrupt(_)) => (18, Code::Internal, H::INTERNAL_SERVER_ERROR),
        Error::Store(StoreError::Commit(_)) => (19, Code::Unavailable, H::SERVICE_UNAVAILABLE),
        Error::Store(StoreError::Closed(_)) => (20, Code::Unavailable, H::SERVICE_UNAVAILABLE),
        Error::Store(StoreError::Io(_)) => (21, Code::Internal, H::INTERNAL_SERVER_ERROR),
        Error::InvalidArgument(_) => (22, Code::InvalidArgument, H::BAD_REQUEST),
        Error::FailedPrecondition(_) => (23, Code::FailedPrecondition, H::CONFLICT),
        Error::Unavailable(_) => (24, Code::Unavailable, H::SERVICE_UNAVAILABLE),
        Error::FellBehind => (25, Code::ResourceExhausted, H::TOO_MANY_REQUESTS),
        Error::ShuttingDown => (26, Code::Unavailable, H::SERVICE_UNAVAILABLE),
        Error::Internal(_) => (27, Code::Internal, H::INTERNAL_SERVER_ERROR),
        Error::Core(CoreError::Quota(_)) => (28, Code::ResourceExhausted, H::TOO_MANY_REQUESTS),
        Error::Module(ModuleError::Quota(_)) => (29, Code::ResourceExhausted, H::TOO_MANY_REQUESTS),
        Error::Denied(_) => (30, Code::PermissionDenied, H::FORBIDDEN),
    }
}

/// One error of every arm of [`pinned`], in its order.
fn samples() -> Vec<Error> {
    let s = || "x".to_string();
    vec![
        CoreError::TooManyShards { shards: 2, limit: 1 }.into(),
        CoreError::TooManyJobs { active: 2, limit: 1 }.into(),
        CoreError::MemoryBudget { budget_mib: s(), need_mib: s(), used_mib: s() }.into(),
        CoreError::NoSuchJob(7).into(),
        CoreError::NoSuchWorker(7).into(),
        CoreError::JobEnded(7).into(),
        KindError::Unknown(s()).into(),
        KindError::BadParams(s()).into(),
        ModuleError::Invalid(s()).into(),
        ModuleError::TooLarge(s()).into(),
        ModuleError::Missing(s()).into(),
        ModuleError::Store(s()).into(),
        AllocError::Invalid(s()).into(),
        AllocError::Exists(s()).into(),
        AllocError::NoSuchQueue(s()).into(),
        AllocError::Denied(s()).into(),
        AllocError::Unavailable(s()).into(),
        StoreError::Open(s()).into(),
        StoreError::Corrupt(s()).into(),
        StoreError::Commit(s()).into(),
        StoreError::Closed(s()).into(),
        StoreError::Io(s()).into(),
        Error::InvalidArgument(s()),
        Error::FailedPrecondition(s()),
        Error::Unavailable(s()),
        Error::FellBehind,
        Error::ShuttingDown,
        Error::Internal(s()),
        CoreError::Quota(s()).into(),
        ModuleError::Quota(s()).into(),
        crate::access::Denied(s()).into(),
    ]
}

/// The number of arms in [`pinned`]: the samples must show each once.
const VARIANTS: usize = 31;

#[test]
fn every_error_has_its_code_on_both_edges_and_one_message() {
    let samples = samples();
    assert_eq!(samples.len(), VARIANTS, "one sample per arm of `pinned`");
    for (i, e) in samples.into_iter().enumerate() {
        let (arm, grpc, http) = pinned(&e);
        assert_eq!(arm, i, "{e:?} is sample {i}, so it must hit arm {i}");
        let s = status(e.clone());
        assert_eq!(s.code(), grpc, "{e:?} on gRPC");
        assert_eq!(http_status(&e), http, "{e:?} on HTTP");
        assert_eq!(s.message(), e.to_string(), "{e:?}: gRPC sends the error's own message");
    }
}

#[test]
fn a_failed_journal_write_says_so_on_both_edges() {
    // What a submit whose commit failed answered before the store had its own error.
    let e = Error::from(StoreError::Commit("disk full".into()));
    assert_eq!(e.to_string(), "journal write failed: disk full");
    assert_eq!(status(e).code(), Code::Unavailable);
}

#[test]
fn an_unknown_job_is_told_the_same_on_every_edge() {
    let e = Error::from(CoreError::NoSuchJob(42));
    assert!(e.to_string().starts_with("no job 42 on this master"), "{e}");
    assert_eq!(status(e.clone()).message(), e.to_string());
}
