//! The gRPC services: thin adapters that unpack a request, hand it to the core's task and map
//! the answer (or the error, in one place) to the wire.

mod convert;
pub(crate) mod guard;
mod run;
mod watch;

pub(crate) use convert::status;
use convert::worker_info;
pub use convert::{job_status, listed_status};

use crate::access::{Principal, Role};
use crate::actor::CoreHandle;
use crate::audit::Audit;
use crate::core::{CoreError, JobState, JobView, Owner, Submission};
use crate::error::{Error, Result};
use crate::modules::{Claim, ModuleError, Modules};
use crate::store::Store;
use farm_proto::pb::{self, farm_service_server::FarmService};
use farm_proto::{AllocQueueSpec, JobSpec, JobStatus, OutputShape, Submitted, WorkerInfo};
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

/// Submissions whose inputs take more bytes than this hand freed memory back to the system.
const TRIM_AFTER: usize = 1 << 20;

/// `FarmService`, for clients.
pub struct Farm {
    /// The core's task.
    pub core: CoreHandle,
    /// The store, read by `Results` off the core's task.
    pub store: Store,
    /// The allocator's task (`farm alloc`).
    pub alloc: crate::autoalloc::AllocHandle,
    /// The wasm modules clients uploaded.
    pub modules: Modules,
    /// The audit trail of mutating calls.
    pub audit: Arc<Audit>,
}

/// The principal that owns a job.
pub(crate) fn job_owner(view: &JobView) -> &str {
    &view.owner
}

/// Whether `who` may see `view` in a list: its own jobs, or every job with `operate` (unless
/// it asked for its own only).
pub(crate) fn listed_for(who: &Principal, mine: bool, view: &JobView) -> bool {
    (who.sees_all() && !mine) || job_owner(view) == &*who.name
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::JobEvent, Status>> + Send>>;
type ResultsStream = Pin<Box<dyn Stream<Item = Result<pb::ResultsChunk, Status>> + Send>>;
type LogsStream = Pin<Box<dyn Stream<Item = Result<pb::LogsChunk, Status>> + Send>>;

/// Chunks of a `Results` stream queued ahead of a slow reader; past them, reading the store
/// waits (backpressure), so a stream holds a few MiB at most.
const RESULTS_AHEAD: usize = 4;

impl Farm {
    /// Job `job`, if `who` may act on it as `needed` (its own, or anyone's with `operate`).
    pub(crate) async fn own_job(
        &self,
        who: &Principal,
        job: u64,
        needed: Role,
        what: &str,
    ) -> Result<JobView> {
        let view = self.core.get(job).await?.ok_or(CoreError::NoSuchJob(job))?;
        who.require_owner(needed, job_owner(&view), what)?;
        Ok(view)
    }

    /// For a `wasm` job: its module, held until the job pins it, and its output shape; for a
    /// `python` job: its pickled function, held the same way (its shape is the kernel's). The
    /// module must be on this master, in the format the kind runs: a wasm module missing is
    /// FailedPrecondition (upload it first), a python function missing NotFound, naming the
    /// hash; a param that is not a hash, or names a module of the other format, is
    /// InvalidArgument; a missing one is left to the kernel check.
    fn job_module(&self, spec: &pb::JobSpec) -> Result<Option<(Claim, Option<OutputShape>)>> {
        use farm_proto::{python, wasm, ModuleFormat};
        let Some((param, format)) = crate::modules::module_param(&spec.kind) else {
            return Ok(None);
        };
        let Some(hash) = spec.params.get(param) else { return Ok(None) };
        let kind = &spec.kind;
        if !wasm::is_sha256_hex(hash) {
            return Err(Error::InvalidArgument(format!(
                "{kind}: param {param} must be the SHA-256 of an uploaded module (64 lowercase \
                 hex digits), got {}",
                farm_proto::kernel::quote(hash)
            )));
        }
        let (claim, info) = self.modules.claim(hash).ok_or_else(|| match format {
            ModuleFormat::Wasm => Error::FailedPrecondition(format!(
                "wasm: module {hash} is not on this master: upload it first (PutModule; \
                 `farm submit wasm --module FILE` does)"
            )),
            ModuleFormat::Pickle => Error::Module(ModuleError::Missing(format!(
                "{}: function {hash} is not on this master: upload it first (PutModule, \
                 format PICKLE)",
                python::KIND
            ))),
        })?;
        if info.format != format {
            return Err(Error::InvalidArgument(format!(
                "{kind}: module {hash} is a {} module, and a {kind} job runs a {} one",
                info.format.as_str(),
                format.as_str()
            )));
        }
        let shape = (format == ModuleFormat::Wasm).then_some(info.shape);
        Ok(Some((claim, shape)))
    }

    /// Checks a submission (protocol version, spec, wasm module) and queues its job; returns
    /// once the submission is committed to the journal. Submit and Run share it, so they
    /// refuse the same things with the same codes.
    async fn submit_spec(
        &self,
        spec: Option<pb::JobSpec>,
        protocol_version: u32,
        owner: Owner,
    ) -> Result<Submitted> {
        let ours = farm_proto::PROTOCOL_VERSION;
        if protocol_version != 0 && protocol_version != ours {
            return Err(Error::FailedPrecondition(format!(
                "client speaks protocol version {protocol_version}, this master speaks {ours}"
            )));
        }
        let spec = spec.ok_or_else(|| Error::InvalidArgument("spec is missing".into()))?;
        let module = self.job_module(&spec)?;
        // Checking and packing millions of input lines (and freeing their strings) is CPU
        // work: it runs on a blocking thread, neither here nor on the core's task.
        let sub = tokio::task::spawn_blocking(move || {
            let sub = JobSpec::try_from(spec).map(Submission::new).map_err(|e| e.to_string());
            if sub.as_ref().is_ok_and(|s| s.bytes() > TRIM_AFTER) {
                crate::arenas::give_back_freed_memory();
            }
            sub
        })
        .await
        .map_err(|e| Error::Internal(format!("packing the job's inputs failed: {e}")))?
        .map_err(Error::InvalidArgument)?;
        let shape = module.as_ref().and_then(|(_, shape)| *shape);
        // The module is held from its check on (`claim`), through the commit wait: an upload
        // meanwhile cannot evict it. A failed submit drops the claim.
        let (job_id, shards) = self.core.submit_as(sub, owner, shape).await?;
        if let Some((claim, _)) = module {
            claim.pin(job_id);
        }
        Ok(Submitted { job: job_id, shards })
    }

    /// Checks that job `job` succeeded with a list result (or, `partial`, that it ended), and
    /// waits until all of it is committed to the store. Returns the job's shard count for a
    /// partial read (whose missing shards are marked), `None` for a whole one.
    async fn list_result(&self, job: u64, partial: bool) -> Result<Option<u64>> {
        let view = self.core.get(job).await?.ok_or(CoreError::NoSuchJob(job))?;
        let ended = matches!(view.state, JobState::Failed | JobState::Cancelled);
        if partial && ended {
            self.core.get(job).await?;
            self.store.committed().await?;
            return Ok(Some(view.total));
        }
        if view.state != JobState::Succeeded {
            return Err(Error::FailedPrecondition(format!(
                "job {job} is {}: results are read once it succeeded{}",
                view.state,
                if ended {
                    format!(", or with --partial (`farm results {job} --partial`)")
                } else {
                    String::new()
                }
            )));
        }
        if !view.output.is_list() {
            return Err(Error::FailedPrecondition(format!(
                "job {job}'s result is not a list: it is in its status (farm status {job})"
            )));
        }
        // The reply above left the core's task before that batch's journal ops went to the
        // writer; a second round trip comes after they went, so the barrier is behind them.
        self.core.get(job).await?;
        self.store.committed().await?;
        Ok(None)
    }
}

#[tonic::async_trait]
impl FarmService for Farm {
    async fn submit(
        &self,
        req: Request<pb::SubmitRequest>,
    ) -> Result<Response<pb::SubmitResponse>, Status> {
        let who = guard::principal(&req);
        let pb::SubmitRequest { spec, protocol_version } = req.into_inner();
        let submitted = self.submit_spec(spec, protocol_version, who.owner()).await;
        let target = submitted.as_ref().map_or("-".into(), |s| format!("job {}", s.job));
        self.audit.outcome(&who.name, "submit", &target, &submitted);
        Ok(Response::new(submitted.map_err(status)?.into()))
    }

    async fn run(&self, req: Request<pb::RunRequest>) -> Result<Response<pb::JobStatus>, Status> {
        let who = guard::principal(&req);
        Ok(Response::new(run::run(self, &who, req.into_inner()).await.map_err(status)?.into()))
    }

    type WatchStream = EventStream;

    async fn watch(&self, req: Request<pb::WatchRequest>) -> Result<Response<EventStream>, Status> {
        let who = guard::principal(&req);
        let req = req.into_inner();
        self.own_job(&who, req.job_id, Role::Read, "watch").await.map_err(status)?;
        let sub = self
            .core
            .watch(req.job_id, req.shard_results, req.replay)
            .await
            .and_then(|sub| sub.ok_or(CoreError::NoSuchJob(req.job_id).into()))
            .map_err(status)?;
        let (tx, rx) = mpsc::channel(64);
        self.core
            .tasks()
            .spawn(format!("watch of job {}", req.job_id), watch::forward_events(sub, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get(&self, req: Request<pb::GetRequest>) -> Result<Response<pb::JobStatus>, Status> {
        let who = guard::principal(&req);
        let job = req.into_inner().job_id;
        let view = self.own_job(&who, job, Role::Read, "status").await.map_err(status)?;
        Ok(Response::new(job_status(view).into()))
    }

    async fn list(
        &self,
        req: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        let who = guard::principal(&req);
        let mine = req.into_inner().mine;
        // Short results only (one can be megabytes); Get and Watch carry them whole.
        let jobs: Vec<JobStatus> = self
            .core
            .list()
            .await
            .map_err(status)?
            .into_iter()
            .filter(|v| listed_for(&who, mine, v))
            .map(listed_status)
            .collect();
        Ok(Response::new(jobs.into()))
    }

    async fn cancel(
        &self,
        req: Request<pb::CancelRequest>,
    ) -> Result<Response<pb::JobStatus>, Status> {
        let who = guard::principal(&req);
        let job = req.into_inner().job_id;
        let cancelled = match self.own_job(&who, job, Role::Submit, "cancel").await {
            Ok(_) => self.core.cancel(job).await,
            Err(e) => Err(e),
        };
        self.audit.outcome(&who.name, "cancel", &format!("job {job}"), &cancelled);
        Ok(Response::new(job_status(cancelled.map_err(status)?).into()))
    }

    async fn list_workers(
        &self,
        _: Request<pb::ListWorkersRequest>,
    ) -> Result<Response<pb::ListWorkersResponse>, Status> {
        let workers: Result<Vec<WorkerInfo>> =
            self.core.workers().await.and_then(|ws| ws.into_iter().map(worker_info).collect());
        Ok(Response::new(workers.map_err(status)?.into()))
    }

    async fn drain_worker(
        &self,
        req: Request<pb::DrainWorkerRequest>,
    ) -> Result<Response<pb::WorkerInfo>, Status> {
        let who = guard::principal(&req);
        let worker = req.into_inner().worker_id;
        let w = self.core.drain(worker).await.and_then(worker_info);
        self.audit.outcome(&who.name, "drain", &format!("worker {worker}"), &w);
        Ok(Response::new(w.map_err(status)?.into()))
    }

    type ResultsStream = ResultsStream;

    async fn results(
        &self,
        req: Request<pb::ResultsRequest>,
    ) -> Result<Response<ResultsStream>, Status> {
        let who = guard::principal(&req);
        let pb::ResultsRequest { job_id, offset, partial } = req.into_inner();
        self.own_job(&who, job_id, Role::Read, "results").await.map_err(status)?;
        let partial = self.list_result(job_id, partial).await.map_err(status)?;
        let (tx, rx) = mpsc::channel(RESULTS_AHEAD);
        let store = self.store.clone();
        // Reading and decoding the store is blocking work: a blocking thread, whose sends
        // wait while the channel is full.
        tokio::task::spawn_blocking(move || {
            let read = store
                .read_items(job_id, offset, partial, |chunk| tx.blocking_send(Ok(chunk)).is_ok());
            if let Err(e) = read {
                let _ = tx.blocking_send(Err(status(e.into())));
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type LogsStream = LogsStream;

    async fn logs(&self, req: Request<pb::LogsRequest>) -> Result<Response<LogsStream>, Status> {
        let who = guard::principal(&req);
        let pb::LogsRequest { job_id, shard, failed_only } = req.into_inner();
        self.own_job(&who, job_id, Role::Read, "logs").await.map_err(status)?;
        let query = farm_proto::LogQuery { shard, failed_only };
        let rx = crate::logs::shard_logs(&self.core, &self.store, job_id, query)
            .await
            .map_err(status)?;
        let chunks = ReceiverStream::new(rx).map(|chunk| match chunk {
            Ok(logs) => Ok(pb::LogsChunk { logs: logs.into_iter().map(Into::into).collect() }),
            Err(e) => Err(status(e)),
        });
        Ok(Response::new(Box::pin(chunks)))
    }

    async fn alloc_add(
        &self,
        req: Request<pb::AllocAddRequest>,
    ) -> Result<Response<pb::AllocQueueInfo>, Status> {
        let who = guard::principal(&req);
        let spec =
            req.into_inner().spec.ok_or_else(|| Error::InvalidArgument("spec is missing".into()));
        let name = spec.as_ref().map_or_else(|_| "-".to_string(), |s| s.name.clone());
        let spec = spec.and_then(|spec| {
            AllocQueueSpec::try_from(spec).map_err(|e| Error::InvalidArgument(e.to_string()))
        });
        let queue = match spec {
            Ok(spec) => self.alloc.add(spec).await,
            Err(e) => Err(e),
        };
        self.audit.outcome(&who.name, "alloc add", &format!("queue {name}"), &queue);
        Ok(Response::new(queue.map_err(status)?.into()))
    }

    async fn alloc_list(
        &self,
        _: Request<pb::AllocListRequest>,
    ) -> Result<Response<pb::AllocListResponse>, Status> {
        let queues = self.alloc.list().await.map_err(status)?.into_iter().map(Into::into).collect();
        Ok(Response::new(pb::AllocListResponse { queues }))
    }

    async fn alloc_remove(
        &self,
        req: Request<pb::AllocRemoveRequest>,
    ) -> Result<Response<pb::AllocQueueInfo>, Status> {
        let who = guard::principal(&req);
        let pb::AllocRemoveRequest { name, now } = req.into_inner();
        let target = format!("queue {name}");
        let removed = self.alloc.remove(name, now).await;
        self.audit.outcome(&who.name, "alloc remove", &target, &removed);
        Ok(Response::new(removed.map_err(status)?.into()))
    }

    async fn put_module(
        &self,
        req: Request<pb::PutModuleRequest>,
    ) -> Result<Response<pb::ModuleInfo>, Status> {
        let who = guard::principal(&req);
        let pb::PutModuleRequest { wasm, format } = req.into_inner();
        let format = farm_proto::ModuleFormat::try_from(format)
            .map_err(|e| status(Error::InvalidArgument(e.to_string())))?;
        let owner = who.owner();
        let (modules, core) = (self.modules.clone(), self.core.clone());
        let runtime = tokio::runtime::Handle::current();
        // Hashing, checking and writing the store are blocking work. The unfinished jobs are
        // asked for only when room must be made (a full store).
        let live = move || {
            let jobs = runtime.block_on(core.list()).map_err(|e| e.to_string())?;
            Ok(jobs.into_iter().filter(|v| !v.state.is_final()).map(|v| v.id).collect())
        };
        let put = tokio::task::spawn_blocking(move || modules.put(&wasm, format, &owner, live))
            .await
            .map_err(|e| Error::Internal(format!("storing the module failed: {e}")))
            .and_then(|put| put.map_err(Error::from));
        let target = put.as_ref().map_or("-".into(), |(sha256, _)| format!("module {sha256}"));
        self.audit.outcome(&who.name, "module upload", &target, &put);
        let (sha256, info) = put.map_err(status)?;
        let (output, _) = info.shape.to_wire();
        let format = info.format.into();
        Ok(Response::new(pb::ModuleInfo { sha256, size: info.size as u64, output, format }))
    }

    async fn has_module(
        &self,
        req: Request<pb::HasModuleRequest>,
    ) -> Result<Response<pb::HasModuleResponse>, Status> {
        let present = self.modules.info(&req.into_inner().sha256).is_some();
        Ok(Response::new(pb::HasModuleResponse { present }))
    }

    async fn list_kinds(
        &self,
        _: Request<pb::ListKindsRequest>,
    ) -> Result<Response<pb::ListKindsResponse>, Status> {
        let kinds =
            self.core.kinds().await.map_err(status)?.iter().map(pb::KindInfo::from).collect();
        Ok(Response::new(pb::ListKindsResponse { kinds }))
    }

    async fn audit(
        &self,
        req: Request<pb::AuditRequest>,
    ) -> Result<Response<pb::AuditResponse>, Status> {
        let pb::AuditRequest { since_unix_ms, limit } = req.into_inner();
        let limit = if limit == 0 { usize::MAX } else { limit as usize };
        let entries = self
            .audit
            .since(since_unix_ms, limit)
            .into_iter()
            .map(|e| pb::AuditEntry {
                unix_ms: e.unix_ms,
                principal: e.principal,
                action: e.action,
                target: e.target,
                outcome: e.outcome,
                reason: e.reason,
            })
            .collect();
        Ok(Response::new(pb::AuditResponse { entries }))
    }
}

#[cfg(test)]
#[path = "grpc_tests.rs"]
mod tests;
