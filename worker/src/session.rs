//! One session with a master, whichever side dialed: register, then run the shards it sends on
//! the pool and stream their outcomes back in batches, with heartbeats both ways and a drain on
//! request. `dial.rs` and `listen.rs` only set up the transport and hand over a [`Link`].

use crate::pool::{Finished, JobEntry, Pool, Report, Work};
use crate::registry::Registry;
use crate::sdk::{CancelFlag, KernelError, ShardInput};
use crate::{WorkerConfig, WorkerError};
use farm_proto::pb::{self, master_message::Msg as In, worker_message::Msg as Out};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tonic::Streaming;
use tracing::{debug, info, warn};

/// A peer that does not welcome the worker within this long is given up on (for a listening
/// worker, it would otherwise hold the worker for nothing).
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);
/// Most outcomes sent in one result message.
const MAX_BATCH: usize = 4096;
/// Longest a finished shard's result waits to travel with others (only while the worker has
/// more work queued than it is running).
const COALESCE: Duration = Duration::from_millis(1);
/// A result message stops growing past this many bytes; with each output at most twice this,
/// a message stays under the transport's limit.
const BATCH_BYTES: usize = farm_proto::MAX_MESSAGE_BYTES / 4;
/// A shard whose output is larger fails instead (it could not be sent).
const MAX_OUTPUT_BYTES: usize = farm_proto::MAX_MESSAGE_BYTES / 2;

/// How a session ended.
pub(crate) enum End {
    /// The worker was asked to stop (and has drained).
    Shutdown,
    /// The connection to the master was lost; the reason says how.
    Lost(String),
}

/// The two halves of a session's stream, however it was opened.
pub(crate) struct Link {
    /// Messages from the master.
    pub inbound: Streaming<pb::MasterMessage>,
    /// Messages to the master; the caller has already queued the `Register`.
    pub tx: mpsc::Sender<pb::WorkerMessage>,
    /// Who is at the other end, for logs.
    pub peer: String,
}

/// The channel a session's outgoing messages go through.
pub(crate) fn outgoing() -> (mpsc::Sender<pb::WorkerMessage>, mpsc::Receiver<pb::WorkerMessage>) {
    mpsc::channel(64)
}

/// Queues the registration: the first message of every session.
pub(crate) async fn register(
    tx: &mpsc::Sender<pb::WorkerMessage>,
    config: &WorkerConfig,
    registry: &Registry,
) {
    let register = pb::Register {
        protocol_version: farm_proto::PROTOCOL_VERSION,
        threads: config.threads.max(1) as u32,
        kernels: registry.descriptors().iter().map(pb::KernelDescriptor::from).collect(),
        name: config.name.clone(),
        hostname: hostname(),
        pid: std::process::id(),
        restarts: config.restarts,
    };
    let _ = tx.send(pb::WorkerMessage { msg: Some(Out::Register(register)) }).await;
}

/// Runs one session to its end. Returns whether the master welcomed the worker, and how the
/// session ended; an error only for a refusal that retrying cannot fix.
pub(crate) async fn run_session<F: Future<Output = ()>>(
    link: Link,
    config: &WorkerConfig,
    registry: &Registry,
    pool: &Pool,
    shutdown: &mut Pin<&mut F>,
) -> Result<(bool, End), WorkerError> {
    let Link { mut inbound, tx, peer } = link;
    let first = tokio::time::timeout(WELCOME_TIMEOUT, inbound.message()).await;
    let welcome = match first {
        Ok(Ok(Some(pb::MasterMessage { msg: Some(In::Welcome(w)) }))) => w,
        Ok(Ok(_)) => return Ok((false, End::Lost("master did not welcome the worker".into()))),
        Ok(Err(status)) => return rejected_or_lost(status).map(|end| (false, end)),
        Err(_) => return Ok((false, End::Lost("no welcome from the master in time".into()))),
    };
    let heartbeat = Duration::from_millis(u64::from(welcome.heartbeat_ms.max(50)));
    let threads = config.threads.max(1);
    info!(worker = welcome.worker_id, master = %peer, threads = config.threads, "registered");

    let (reply, mut reports) = mpsc::unbounded_channel::<Report>();
    let mut jobs: HashMap<u64, Arc<JobEntry>> = HashMap::new();
    let mut ticker = tokio::time::interval(heartbeat);
    let mut last_heard = Instant::now();
    // Shards handed to the pool whose outcome has not come back yet.
    let mut in_flight = 0usize;
    let mut drain: Option<Drain> = None;
    let send = |msg: Out| tx.send(pb::WorkerMessage { msg: Some(msg) });
    let end = loop {
        if let Some(d) = &drain {
            if in_flight == 0 || Instant::now() >= d.give_up {
                info!(in_flight, "drained, leaving");
                break End::Shutdown;
            }
        }
        tokio::select! {
            _ = shutdown.as_mut(), if drain.is_none() => {
                drain = Some(Drain::start(config.drain_timeout, pool, &send).await);
            }
            msg = inbound.message() => match msg {
                Ok(Some(pb::MasterMessage { msg: Some(In::Drain(_)) })) => {
                    last_heard = Instant::now();
                    if drain.is_none() {
                        drain = Some(Drain::start(config.drain_timeout, pool, &send).await);
                    }
                }
                Ok(Some(msg)) => {
                    last_heard = Instant::now();
                    in_flight += handle(msg, registry, pool, &mut jobs, &reply);
                }
                Ok(None) => break End::Lost("master closed the stream".into()),
                Err(status) => break End::Lost(format!("stream error: {}", status.message())),
            },
            Some(first) = reports.recv() => {
                let mut batch = collect_batch(first, &mut reports);
                // While shards are still queued here beyond the running ones, the master is in
                // no hurry for this batch: wait a moment for more to finish, so short shards
                // cost fewer messages. A worker about to run dry reports at once.
                let deadline = tokio::time::Instant::now() + COALESCE;
                while batch.done.len() < MAX_BATCH
                    && prost::Message::encoded_len(&batch) < BATCH_BYTES
                    && in_flight.saturating_sub(batch.done.len()) > threads
                {
                    match tokio::time::timeout_at(deadline, reports.recv()).await {
                        Ok(Some(more)) => merge(&mut batch, collect_batch(more, &mut reports)),
                        _ => break,
                    }
                }
                in_flight -= batch.done.len();
                if send(Out::Results(batch)).await.is_err() {
                    break End::Lost("master closed the stream".into());
                }
            }
            _ = ticker.tick() => {
                if last_heard.elapsed() > heartbeat * 3 {
                    break End::Lost("no heartbeat from the master".into());
                }
                if let Some(d) = &mut drain {
                    d.on_tick(&jobs);
                }
                if send(Out::Heartbeat(pb::Heartbeat {})).await.is_err() {
                    break End::Lost("master closed the stream".into());
                }
            }
        }
    };
    for job in jobs.values() {
        job.cancel.cancel();
    }
    // A worker that started draining leaves, even if the master went away mid-drain: it was
    // asked to stop (and the shutdown signal it may have come from has already fired, so it must
    // not be awaited again).
    let end = match end {
        End::Lost(reason) if drain.is_some() => {
            warn!(%reason, "session lost while draining, leaving");
            return Ok((true, End::Shutdown));
        }
        end => end,
    };
    if matches!(end, End::Shutdown) {
        // Close our side and wait for the master to close its side: it does so only after
        // taking in every result we sent, so none is lost with the process.
        drop(tx);
        let closed = async { while let Ok(Some(_)) = inbound.message().await {} };
        if tokio::time::timeout(Duration::from_secs(5), closed).await.is_err() {
            warn!("master did not close the session in time");
        }
    }
    Ok((true, end))
}

/// A drain in progress: no new shards start; running ones get until `cancel_at` to finish, then
/// are cancelled (and so handed back to the master); the session ends by `give_up` at the latest.
struct Drain {
    cancel_at: Instant,
    give_up: Instant,
    cancelled: bool,
}

impl Drain {
    async fn start<F, Fut>(timeout: Duration, pool: &Pool, send: &F) -> Drain
    where
        F: Fn(Out) -> Fut,
        Fut: Future<Output = Result<(), mpsc::error::SendError<pb::WorkerMessage>>>,
    {
        info!(?timeout, "draining: finishing running shards, handing back the rest");
        pool.drain();
        let _ = send(Out::Draining(pb::Draining {})).await;
        let now = Instant::now();
        Drain {
            cancel_at: now + timeout,
            give_up: now + timeout + Duration::from_secs(5),
            cancelled: false,
        }
    }

    fn on_tick(&mut self, jobs: &HashMap<u64, Arc<JobEntry>>) {
        if !self.cancelled && Instant::now() >= self.cancel_at {
            warn!("drain timeout: cancelling running shards, the master runs them elsewhere");
            for job in jobs.values() {
                job.cancel.cancel();
            }
            self.cancelled = true;
        }
    }
}

/// Applies one message from the master; returns how many shards it handed to the pool.
fn handle(
    msg: pb::MasterMessage,
    registry: &Registry,
    pool: &Pool,
    jobs: &mut HashMap<u64, Arc<JobEntry>>,
    reply: &mpsc::UnboundedSender<Report>,
) -> usize {
    let mut started = 0;
    match msg.msg {
        Some(In::Assign(batch)) => {
            for def in batch.jobs {
                let params = farm_proto::Params(def.params.into_iter().collect());
                let prepared = registry.prepare(&def.kind, &params).unwrap_or_else(|e| {
                    warn!(job = def.job_id, kind = %def.kind, error = %e, "cannot prepare job");
                    Box::new(Refused(e))
                });
                let timeout =
                    (def.shard_timeout_ms > 0).then(|| Duration::from_millis(def.shard_timeout_ms));
                let entry = JobEntry { prepared, cancel: CancelFlag::new(), timeout };
                jobs.insert(def.job_id, Arc::new(entry));
            }
            for task in batch.tasks {
                let input = ShardInput { lo: task.lo, hi: task.hi, input: task.input };
                started += 1;
                match jobs.get(&task.job_id) {
                    Some(job) => pool.submit(Work {
                        job_id: task.job_id,
                        shard: task.shard,
                        job: job.clone(),
                        input,
                        reply: reply.clone(),
                    }),
                    None => {
                        let error =
                            KernelError::Failed(format!("job {} was never defined", task.job_id));
                        let _ = reply.send(Report::Finished(Finished {
                            job_id: task.job_id,
                            shard: task.shard,
                            outcome: Err(error),
                        }));
                    }
                }
            }
        }
        Some(In::Cancel(c)) => {
            if let Some(job) = jobs.remove(&c.job_id) {
                job.cancel.cancel();
                debug!(job = c.job_id, "job cancelled");
            }
        }
        Some(In::Forget(f)) => {
            jobs.remove(&f.job_id);
        }
        Some(In::Heartbeat(_)) | Some(In::Welcome(_)) | Some(In::Drain(_)) | None => {}
    }
    started
}

/// Stands in for a job whose parameters this worker could not parse: every shard fails with why.
struct Refused(KernelError);

impl crate::sdk::Prepared for Refused {
    fn run(&self, _: &ShardInput, _: &CancelFlag) -> Result<crate::sdk::Output, KernelError> {
        Err(self.0.clone())
    }
}

/// Adds a later batch to an earlier one; a shard started in one and done in the other is
/// reported done only.
fn merge(batch: &mut pb::ResultBatch, more: pb::ResultBatch) {
    batch.done.extend(more.done);
    batch.started.extend(more.started);
    let finished: std::collections::HashSet<(u64, u64)> =
        batch.done.iter().map(|d| (d.job_id, d.shard)).collect();
    batch.started.retain(|s| !finished.contains(&(s.job_id, s.shard)));
}

/// Everything the pool reported since `first`, as one message. A shard that started and
/// finished within the batch is reported done only.
fn collect_batch(first: Report, reports: &mut mpsc::UnboundedReceiver<Report>) -> pb::ResultBatch {
    let mut done = Vec::new();
    let mut started = Vec::new();
    let mut bytes = 0;
    let mut next = Some(first);
    while let Some(report) = next.take() {
        match report {
            Report::Started { job_id, shard } => started.push(pb::ShardRef { job_id, shard }),
            Report::Finished(f) => {
                let d = shard_done(f);
                bytes += prost::Message::encoded_len(&d);
                done.push(d);
            }
        }
        if done.len() + started.len() < MAX_BATCH && bytes < BATCH_BYTES {
            next = reports.try_recv().ok();
        }
    }
    if !started.is_empty() && !done.is_empty() {
        let finished: std::collections::HashSet<(u64, u64)> =
            done.iter().map(|d| (d.job_id, d.shard)).collect();
        started.retain(|s| !finished.contains(&(s.job_id, s.shard)));
    }
    pb::ResultBatch { done, started }
}

fn shard_done(f: Finished) -> pb::ShardDone {
    use pb::shard_done::Outcome;
    let outcome = match f.outcome {
        Ok(output) => {
            let wire: pb::ShardOutput = output.into();
            let size = prost::Message::encoded_len(&wire);
            if size > MAX_OUTPUT_BYTES {
                Outcome::Error(format!(
                    "output of {size} bytes is over the {MAX_OUTPUT_BYTES}-byte limit for one shard; use smaller shards"
                ))
            } else {
                Outcome::Output(wire)
            }
        }
        Err(KernelError::Cancelled) => Outcome::Cancelled(true),
        Err(e) => Outcome::Error(e.to_string()),
    };
    pb::ShardDone { job_id: f.job_id, shard: f.shard, outcome: Some(outcome) }
}

/// A refusal that retrying cannot fix ends the worker; anything else is a lost connection.
pub(crate) fn rejected_or_lost(status: tonic::Status) -> Result<End, WorkerError> {
    match status.code() {
        tonic::Code::FailedPrecondition
        | tonic::Code::InvalidArgument
        | tonic::Code::Unauthenticated => Err(WorkerError::Rejected(status.message().to_string())),
        _ => Ok(End::Lost(format!("stream error: {}", status.message()))),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}
