//! The gRPC edge's access check, in one place for every method of both services: a tower
//! service around each, which authenticates the call's token ([`Access`]), checks the role its
//! method needs ([`Need::grpc`]), audits a refused mutating call, and hands the [`Principal`]
//! on to the handler in the request's extensions (ownership is the handler's to check).

use crate::access::{Access, Need, Principal};
use crate::audit::Audit;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::body::Body;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::NamedService;
use tonic::Status;

/// Which of the master's services a [`Guarded`] wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `FarmService`: clients, by role.
    Clients,
    /// `WorkerService`: workers only.
    Workers,
}

/// A service whose calls pass the access check first.
#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    side: Side,
    access: Arc<Access>,
    audit: Arc<Audit>,
}

impl<S> Guarded<S> {
    /// `inner` behind the check of `side`.
    pub fn new(inner: S, side: Side, access: Arc<Access>, audit: Arc<Audit>) -> Self {
        Guarded { inner, side, access, audit }
    }

    /// The principal making `req`, if it may call the method `req` names.
    fn admit(&self, req: &http::Request<Body>) -> Result<Option<Arc<Principal>>, Status> {
        let auth = req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if self.side == Side::Workers {
            return self.access.worker(auth);
        }
        let principal = self.access.client(auth)?;
        let need = Need::grpc(req.uri().path());
        if let Err(denied) = principal.require(need.role, need.action) {
            self.access.denied(&denied);
            if need.mutating {
                self.audit.refused(&principal.name, need.action, "-", &denied.0);
            }
            return Err(Status::permission_denied(denied.0));
        }
        Ok(Some(principal))
    }
}

impl<S> Service<http::Request<Body>> for Guarded<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        match self.admit(&req) {
            Ok(principal) => {
                if let Some(p) = principal {
                    req.extensions_mut().insert(p);
                }
                // The clone is the one poll_ready readied; `self` keeps a fresh one.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(inner.call(req))
            }
            Err(status) => Box::pin(async move { Ok(status.into_http()) }),
        }
    }
}

impl<S: NamedService> NamedService for Guarded<S> {
    const NAME: &'static str = S::NAME;
}

/// The principal the guard admitted for a client call (the anonymous admin where clients are
/// not checked). A request that did not pass the guard fails closed: it gets a principal with
/// no role, so a service wired without [`Guarded`] refuses every call instead of running it as
/// admin. Handlers' unit tests, which skip the guard, get the anonymous admin.
pub fn principal<T>(req: &tonic::Request<T>) -> Arc<Principal> {
    req.extensions().get::<Arc<Principal>>().cloned().unwrap_or_else(|| {
        if cfg!(test) {
            Arc::new(Principal::anonymous())
        } else {
            Arc::new(Principal::unguarded())
        }
    })
}
