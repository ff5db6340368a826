//! Who may do what: the principals (named identities, each with a token's hash and roles)
//! from `--principals FILE` and the shared tokens, the roles, and the one table of which role
//! each gRPC method and HTTP route needs ([`Need`]). The edges authenticate a call here, check
//! its role here, and carry the [`Principal`] on into the handler, which checks ownership.
//!
//! Tokens are stored as the SHA-256 of the token, never in plain text: a token `farm token new`
//! makes has 256 random bits, so a fast unsalted hash is as strong as a slow one (nobody can
//! search 2^256 candidates), and checking a call costs one hash, not the tens of milliseconds
//! of a password hash such as argon2 on every call. A presented token is hashed and compared
//! with every principal's hash without an early exit ([`constant_time_eq`]), so the time a
//! refusal takes tells nothing about any stored hash.

mod file;

pub use file::{check_name, entry, PrincipalsFile};

use farm_net::auth::{constant_time_eq, Refusals};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;
use tonic::Status;

/// What a principal may do. `read` < `submit` < `operate` < `admin`; `worker` stands apart:
/// only it connects as a worker, and it grants nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Status, jobs, results and logs of its own jobs; the cluster's workers and kinds.
    Read,
    /// `read`, and submitting and cancelling its own jobs, and uploading modules.
    Submit,
    /// Everything on every job, draining workers, allocation queues, the audit trail.
    Operate,
    /// Everything a client may do (connecting as a worker takes the `worker` role).
    Admin,
    /// Connecting as a worker, and nothing else.
    Worker,
}

impl Role {
    /// Every role, in order.
    pub const ALL: [Role; 5] = [Role::Read, Role::Submit, Role::Operate, Role::Admin, Role::Worker];

    /// The role's name, as the file and the CLI spell it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Submit => "submit",
            Role::Operate => "operate",
            Role::Admin => "admin",
            Role::Worker => "worker",
        }
    }

    /// Whether holding `self` grants `needed`.
    pub fn grants(self, needed: Role) -> bool {
        let rank = |r: Role| match r {
            Role::Read => 1,
            Role::Submit => 2,
            Role::Operate => 3,
            Role::Admin | Role::Worker => 4,
        };
        match (self, needed) {
            (Role::Worker, n) | (n, Role::Worker) => n == Role::Worker,
            (Role::Admin, _) => true,
            (_, Role::Admin) => false,
            (have, n) => rank(have) >= rank(n),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL.into_iter().find(|r| r.name() == s).ok_or_else(|| {
            format!("unknown role {s:?}: one of read, submit, operate, admin, worker")
        })
    }
}

/// A principal's limits; `None` is unlimited. The core enforces them (`Owner`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Jobs queued or running.
    pub jobs: Option<u64>,
    /// Shards handed to workers and not yet back.
    pub shards_in_flight: Option<u64>,
    /// Bytes of inputs its jobs hold.
    pub input_bytes: Option<u64>,
    /// Bytes of wasm modules it uploaded.
    pub module_bytes: Option<u64>,
}

/// A named identity: what it is called, what it may do, and what it may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Its name, unique among the master's principals.
    pub name: Arc<str>,
    /// What it may do.
    pub roles: Vec<Role>,
    /// Its share of the cluster against other principals with work waiting (≥ 1).
    pub weight: u32,
    /// Its quotas.
    pub limits: Limits,
    /// The SHA-256 of its token; none for the anonymous principal of an open master.
    token_sha256: Option<[u8; 32]>,
}

impl Principal {
    /// The principal every call is when clients need no token: `default`, admin.
    pub fn anonymous() -> Principal {
        Principal::new(DEFAULT, vec![Role::Admin], None)
    }

    /// The principal of a request that did not pass the guard: no role, so every check
    /// refuses it (fail closed).
    pub fn unguarded() -> Principal {
        Principal::new("unguarded", Vec::new(), None)
    }

    fn new(name: &str, roles: Vec<Role>, token_sha256: Option<[u8; 32]>) -> Principal {
        Principal { name: name.into(), roles, weight: 1, limits: Limits::default(), token_sha256 }
    }

    /// The principal as the core sees it: name, weight and quotas.
    pub fn owner(&self) -> crate::core::Owner {
        let l = self.limits;
        crate::core::Owner {
            name: self.name.clone(),
            weight: self.weight,
            quota: crate::core::Quota {
                jobs: l.jobs,
                shards_in_flight: l.shards_in_flight,
                input_bytes: l.input_bytes,
                module_bytes: l.module_bytes,
            },
        }
    }

    /// Whether one of its roles grants `needed`.
    pub fn may(&self, needed: Role) -> bool {
        self.roles.iter().any(|r| r.grants(needed))
    }

    /// Its roles, comma-separated, for messages.
    pub fn role_names(&self) -> String {
        self.roles.iter().map(|r| r.name()).collect::<Vec<_>>().join(",")
    }

    /// `Ok` if it may act as `needed` for `what`; otherwise the refusal naming the role.
    pub fn require(&self, needed: Role, what: &str) -> Result<(), Denied> {
        if self.may(needed) {
            return Ok(());
        }
        Err(Denied(format!(
            "{what} needs role {needed}; principal {} has {}",
            self.name,
            self.role_names()
        )))
    }

    /// Whether it may touch `owner`'s job as `needed` (its own with `needed`, anyone's with
    /// `operate`); the refusal names `operate`.
    pub fn require_owner(&self, needed: Role, owner: &str, what: &str) -> Result<(), Denied> {
        self.require(needed, what)?;
        if owner == &*self.name || self.may(Role::Operate) {
            return Ok(());
        }
        Err(Denied(format!(
            "{what} of another principal's job (owner {owner}) needs role operate; principal {} \
             has {}",
            self.name,
            self.role_names()
        )))
    }

    /// Whether it sees every job, or only its own.
    pub fn sees_all(&self) -> bool {
        self.may(Role::Operate)
    }
}

/// A refusal for want of a role; PermissionDenied on gRPC, 403 on HTTP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

/// The name of the principal today's shared client token (`FARM_TOKEN`) is.
pub const DEFAULT: &str = "default";
/// The name of the principal the worker token (`--worker-token`) is.
pub const WORKERS: &str = "workers";
/// The name of the internal principal the master's own local workers (`--workers N`) are when
/// a principals file is in use. Not a name a file may give ([`check_name`] refuses the
/// parentheses and the space), so no file principal can clash with it.
pub const LOCAL_WORKERS: &str = "(local workers)";

/// The token the master mints at start for the local workers it spawns when a principals file
/// leaves no shared worker token to hand them: 256 random bits, kept in memory only (handed to
/// the workers through their environment), never written to disk and never logged, since its
/// `Debug` shows nothing of it. It authenticates as [`LOCAL_WORKERS`], with the `worker` role
/// only, so a leaked one opens no client call.
#[derive(Clone)]
pub struct LocalWorkerToken(String);

impl LocalWorkerToken {
    /// A fresh token from the operating system's random generator.
    pub fn mint() -> LocalWorkerToken {
        LocalWorkerToken(farm_net::auth::new_token())
    }

    /// The token itself, for the workers' environment.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LocalWorkerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalWorkerToken(..)")
    }
}

/// The master's principals, and whether each service checks tokens at all.
#[derive(Debug)]
pub struct Access {
    principals: Vec<Arc<Principal>>,
    /// No client token and no principals file: every client call is [`Principal::anonymous`].
    clients_open: bool,
    /// No worker token and no principals file: workers are not checked.
    workers_open: bool,
    /// Refused calls, counted, warned about at most once per 10 s.
    refusals: Refusals,
}

impl Access {
    /// Access from the shared tokens (principals `default`, admin, and `workers`, worker) and
    /// the principals of a file, if any. A name defined twice is an error.
    pub fn new(
        client_token: Option<&str>,
        worker_token: Option<&str>,
        file: Option<PrincipalsFile>,
    ) -> Result<Access, String> {
        let mut principals = Vec::new();
        if let Some(token) = client_token {
            principals.push(Principal::new(DEFAULT, vec![Role::Admin], Some(hash(token))));
        }
        let has_file = file.is_some();
        principals.extend(file.map(|f| f.principals).unwrap_or_default());
        if let Some(token) = worker_token {
            principals.push(Principal::new(WORKERS, vec![Role::Worker], Some(hash(token))));
        }
        for (i, p) in principals.iter().enumerate() {
            if principals[..i].iter().any(|q| q.name == p.name) {
                return Err(format!(
                    "principal {} is defined twice (`default` and `workers` are the shared \
                     client and worker tokens)",
                    p.name
                ));
            }
        }
        Ok(Access {
            principals: principals.into_iter().map(Arc::new).collect(),
            clients_open: client_token.is_none() && !has_file,
            workers_open: worker_token.is_none() && !has_file,
            refusals: Refusals::new("access"),
        })
    }

    /// Adds the internal principal [`LOCAL_WORKERS`] (role `worker` only) whose token is
    /// `token`, for the workers this master spawns itself.
    pub fn with_local_workers(mut self, token: &LocalWorkerToken) -> Access {
        let p = Principal::new(LOCAL_WORKERS, vec![Role::Worker], Some(hash(token.expose())));
        self.principals.push(Arc::new(p));
        self
    }

    /// Access that checks nothing: every client is `default`, admin.
    pub fn open() -> Access {
        Access::new(None, None, None).unwrap_or_else(|_| unreachable!("no names, no clash"))
    }

    /// Whether clients are checked at all.
    pub fn checks_clients(&self) -> bool {
        !self.clients_open
    }

    /// The principal a client call's `authorization` header (`Bearer TOKEN`) names, or
    /// `Unauthenticated`.
    pub fn client(&self, authorization: Option<&str>) -> Result<Arc<Principal>, Status> {
        if self.clients_open {
            return Ok(Arc::new(Principal::anonymous()));
        }
        let p = self.lookup(authorization, |_| true)?;
        if p.roles.iter().all(|r| *r == Role::Worker) {
            // A worker's token is no client's: as unknown to this service as a wrong one.
            let msg = format!("wrong token: principal {} may only connect as a worker", p.name);
            return Err(self.refusals.refuse(Status::unauthenticated(msg)));
        }
        Ok(p)
    }

    /// The principal a worker's `authorization` header names, if it has the `worker` role
    /// (`Unauthenticated` otherwise: a client's token, even an admin's, does not open the
    /// worker service, so a leaked client token cannot pose as a worker and take shards).
    pub fn worker(&self, authorization: Option<&str>) -> Result<Option<Arc<Principal>>, Status> {
        if self.workers_open {
            return Ok(None);
        }
        self.lookup(authorization, |p| p.roles.contains(&Role::Worker)).map(Some)
    }

    /// The first principal whose token the header carries and that `fits`. Every stored hash
    /// is compared, without an early exit.
    fn lookup(
        &self,
        authorization: Option<&str>,
        fits: impl Fn(&Principal) -> bool,
    ) -> Result<Arc<Principal>, Status> {
        let Some(given) = authorization.and_then(|v| v.strip_prefix("Bearer ")) else {
            return Err(self
                .refusals
                .refuse(Status::unauthenticated("missing token (authorization: Bearer TOKEN)")));
        };
        let given = hash(given.trim());
        let mut found = None;
        for p in &self.principals {
            let same = p.token_sha256.is_some_and(|h| constant_time_eq(&h, &given));
            if same && fits(p) && found.is_none() {
                found = Some(p.clone());
            }
        }
        found.ok_or_else(|| self.refusals.refuse(Status::unauthenticated("wrong token")))
    }

    /// Counts and (rate-limited) logs a refusal for want of a role.
    pub fn denied(&self, denied: &Denied) {
        self.refusals.refuse(Status::permission_denied(denied.0.clone()));
    }

    /// Calls refused since the start (no or a wrong token, a missing role).
    pub fn refused(&self) -> u64 {
        self.refusals.count()
    }
}

/// The SHA-256 of a token.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Lowercase hex of a hash.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What each call needs: the one table of roles for every gRPC method and HTTP route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// The role.
    pub role: Role,
    /// Whether the call changes something (audited).
    pub mutating: bool,
    /// The action's name in the audit trail and in refusals.
    pub action: &'static str,
}

impl Need {
    const fn new(role: Role, mutating: bool, action: &'static str) -> Need {
        Need { role, mutating, action }
    }

    /// What a gRPC call to `path` (`/farm.v1.FarmService/Submit`) needs. A method this table
    /// does not know needs `admin`, so a new one is closed until it is listed here.
    pub fn grpc(path: &str) -> Need {
        let method = path.rsplit('/').next().unwrap_or_default();
        if path.starts_with("/farm.v1.WorkerService/") {
            return Need::new(Role::Worker, false, "connect");
        }
        if !path.starts_with("/farm.v1.FarmService/") {
            return Need::new(Role::Admin, false, "unknown");
        }
        use Role::*;
        match method {
            "Submit" => Need::new(Submit, true, "submit"),
            "Run" => Need::new(Submit, true, "submit"),
            "Cancel" => Need::new(Submit, true, "cancel"),
            "PutModule" => Need::new(Submit, true, "module upload"),
            "DrainWorker" => Need::new(Operate, true, "drain"),
            "AllocAdd" => Need::new(Operate, true, "alloc add"),
            "AllocRemove" => Need::new(Operate, true, "alloc remove"),
            "Audit" => Need::new(Operate, false, "audit"),
            "Watch" => Need::new(Read, false, "watch"),
            "Get" => Need::new(Read, false, "status"),
            "List" => Need::new(Read, false, "jobs"),
            "Results" => Need::new(Read, false, "results"),
            "Logs" => Need::new(Read, false, "logs"),
            "ListWorkers" => Need::new(Read, false, "workers"),
            "ListKinds" => Need::new(Read, false, "kinds"),
            "AllocList" => Need::new(Read, false, "alloc list"),
            "HasModule" => Need::new(Read, false, "module lookup"),
            "WhoAmI" => Need::new(Read, false, "whoami"),
            _ => Need::new(Admin, false, "unknown"),
        }
    }

    /// What an HTTP request for `path` with `method` needs; unknown routes need `admin`.
    pub fn http(method: &str, path: &str) -> Need {
        use Role::*;
        let post = method == "POST";
        if post && path.starts_with("/api/jobs/") && path.ends_with("/cancel") {
            return Need::new(Submit, true, "cancel");
        }
        if post && path.starts_with("/api/workers/") && path.ends_with("/drain") {
            return Need::new(Operate, true, "drain");
        }
        let get = method == "GET" || method == "HEAD";
        match path {
            "/api/state" | "/api/events" | "/api/me" | "/metrics" if get => {
                Need::new(Read, false, "status")
            }
            p if get && p.starts_with("/api/jobs/") => Need::new(Read, false, "status"),
            _ => Need::new(Admin, false, "unknown"),
        }
    }
}

#[cfg(test)]
mod tests;
