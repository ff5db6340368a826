//! One session with a master, whichever side dialed: register, then run the shards it sends on
//! the pool and stream their outcomes back in batches, with heartbeats both ways and a drain on
//! request. `dial.rs` and `listen.rs` only set up the transport and hand over a [`Link`].
//!
//! The session's logic is the state machine in `machine.rs`; this file is the thin driver: it
//! selects over the master's stream, the pool's reports, the shutdown signal and the machine's
//! next wake-up, converts prost messages to domain ones and back at the edge, and carries out
//! the machine's actions.

mod batch;
#[cfg(test)]
mod driver_tests;
mod fetch;
mod machine;
#[cfg(test)]
mod tests;

pub(crate) use machine::End;

use crate::pool::{Pool, Work};
use crate::registry::Registry;
use crate::reports::Reports;
use crate::WorkerConfig;
use farm_proto::pb;
use farm_proto::session::{Register, ToMaster, ToWorker};
use machine::{Action, Config, Event, Session};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt};
use tonic::Status;

/// Messages from the master: a gRPC stream, or an in-memory one in tests.
pub(crate) type Inbound = Pin<Box<dyn Stream<Item = Result<pb::MasterMessage, Status>> + Send>>;

/// The two halves of a session's stream, however it was opened.
pub(crate) struct Link {
    /// Messages from the master.
    pub inbound: Inbound,
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
    let register = Register {
        protocol_version: farm_proto::PROTOCOL_VERSION,
        threads: u32::try_from(config.threads.max(1)).unwrap_or(u32::MAX),
        kernels: registry.descriptors(),
        name: config.name.clone(),
        hostname: hostname(),
        pid: std::process::id(),
        restarts: config.restarts,
        allocation: config.allocation.clone(),
        labels: config.labels.clone(),
    };
    let _ = tx.send(ToMaster::Register(register).into()).await;
}

/// Runs one session to its end. Returns whether the master welcomed the worker, and how the
/// session ended.
#[tracing::instrument(name = "session", skip_all, fields(master = %link.peer))]
pub(crate) async fn run_session<F: Future<Output = ()>>(
    link: Link,
    config: &WorkerConfig,
    registry: &Registry,
    pool: &Pool,
    shutdown: &mut Pin<&mut F>,
) -> (bool, End) {
    let Link { mut inbound, tx, .. } = link;
    let reports = Arc::new(Reports::default());
    // However the session ends, the pool skips its queued shards and keeps no reports.
    let _closed = CloseOnDrop(reports.clone());
    let mut edge = Edge { tx: Some(tx), reply: reports.clone(), pool };
    let start = now();
    let stop_at =
        config.lifetime.stop_at(start, std::time::SystemTime::now(), config.drain_timeout);
    let config = Config {
        threads: config.threads.max(1),
        drain_timeout: config.drain_timeout,
        idle_timeout: config.lifetime.idle_timeout,
        stop_at,
    };
    let mut session = Session::new(config, registry.clone(), start);
    // A shutdown future that has fired must not be polled again (the session then always
    // ends as a shutdown, so the caller never polls it either).
    let mut stopping = false;
    // Reports came in after the last look and will not wake the session: look again at once.
    let mut waiting = false;
    let timer = tokio::time::sleep_until(far_future());
    tokio::pin!(timer);
    loop {
        let wake = session.next_wake().map_or_else(far_future, tokio::time::Instant::from_std);
        if timer.deadline() != wake {
            timer.as_mut().reset(wake);
        }
        let event = tokio::select! {
            _ = shutdown.as_mut(), if !stopping => {
                stopping = true;
                Some(Event::Shutdown)
            }
            msg = inbound.next() => Some(stream_event(msg)),
            _ = reports.woken() => None,
            _ = std::future::ready(()), if waiting => None,
            _ = &mut timer => None,
        };
        let now = now();
        let mut actions = VecDeque::new();
        if let Some(event) = event {
            actions.extend(session.handle(now, event));
        }
        // Whatever the pool has reported goes into the batch before the machine decides
        // whether to send it (reports wake the session only when it must decide soon).
        for report in reports.take() {
            actions.extend(session.handle(now, Event::Pool(report)));
        }
        actions.extend(session.poll(now));
        waiting = reports.arm(session.low_water(), session.batch_open());
        if let Some(end) = edge.execute(&mut session, now, actions).await {
            return (session.welcomed(), end);
        }
    }
}

/// Where the machine's actions take effect.
struct Edge<'a> {
    /// Messages to the master; `None` once the worker has closed its side.
    tx: Option<mpsc::Sender<pb::WorkerMessage>>,
    /// Where the pool reports on the shards this session hands it.
    reply: Arc<Reports>,
    /// The worker's threads.
    pool: &'a Pool,
}

impl Edge<'_> {
    /// Carries out `actions` in order; returns how the session ended, if it did.
    async fn execute(
        &mut self,
        session: &mut Session,
        now: std::time::Instant,
        mut actions: VecDeque<Action>,
    ) -> Option<End> {
        while let Some(action) = actions.pop_front() {
            match action {
                Action::Send(msg) => {
                    let sent = match &self.tx {
                        Some(tx) => tx.send(msg.into()).await.is_ok(),
                        None => false,
                    };
                    if !sent {
                        let closed = Event::Closed("master closed the stream".into());
                        actions.extend(session.handle(now, closed));
                    }
                }
                Action::Run(task) => self.pool.submit(Work {
                    job_id: task.job_id,
                    shard: task.shard,
                    job: task.job,
                    input: task.input,
                    reply: self.reply.clone(),
                }),
                Action::Cancel(flag) => flag.cancel(),
                Action::DrainPool => self.pool.drain(),
                Action::CloseSend => self.tx = None,
                Action::End(end) => return Some(end),
            }
        }
        None
    }
}

/// Closes a session's mailbox when the session's driver returns.
struct CloseOnDrop(Arc<Reports>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The session's clock: tokio's, so that tests with paused time drive it.
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(24 * 3600)
}

/// What one read of the master's stream means to the machine.
fn stream_event(msg: Option<Result<pb::MasterMessage, Status>>) -> Event {
    match msg {
        Some(Ok(msg)) => match ToWorker::try_from(msg) {
            Ok(msg) => Event::Master(msg),
            Err(e) => Event::Garbled(e.to_string()),
        },
        Some(Err(status)) if refusal(&status) => Event::Rejected(status.message().to_string()),
        Some(Err(status)) => Event::Closed(format!("stream error: {}", status.message())),
        None => Event::Closed("master closed the stream".into()),
    }
}

/// A status that retrying cannot fix (another protocol version, a bad token…).
fn refusal(status: &Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::FailedPrecondition
            | tonic::Code::InvalidArgument
            | tonic::Code::Unauthenticated
    )
}

/// How a refused call ends the session: a refusal ends the worker, anything else is a lost
/// connection.
pub(crate) fn end_of(status: Status) -> End {
    if refusal(&status) {
        End::Rejected(status.message().to_string())
    } else {
        End::Lost(format!("stream error: {}", status.message()))
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}
