//! The queue of messages from the master to one worker session, bounded by bytes. The core's
//! task and the session's reader put messages in ([`WorkerTx::send`] never waits), the
//! session's response stream ([`WorkerRx`]) takes them out as the transport has room. A worker
//! that reads too slowly must not make the master buffer for it: once more than the bound is
//! queued, the next message is refused, the queue is emptied (its memory freed at once) and
//! the stream ends with `Unavailable`; the caller then drops the session as lost, and its
//! shards run elsewhere.

use crate::core::WorkerId;
use crate::error::Error;
use farm_proto::pb;
use futures::task::AtomicWaker;
use futures::Stream;
use prometheus_client::metrics::counter::Counter;
use prost::Message;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use tokio::sync::watch;
use tonic::Status;
use tracing::warn;

/// The least a worker's queue may hold before it counts as fallen behind. A module is sent
/// whole, so the bound is also at least twice the largest module (see [`bound_for`]).
pub const MIN_QUEUE_BYTES: usize = 32 << 20;

/// The byte bound of a worker's queue when modules may be `max_module` bytes: room for two of
/// them (one leaving, one waiting) and never below [`MIN_QUEUE_BYTES`].
pub fn bound_for(max_module: usize) -> usize {
    max_module.saturating_mul(2).max(MIN_QUEUE_BYTES)
}

/// Logs that a worker's queue went over its bound and says why its session ends: one wording
/// for the core's task and the session's reader, whichever sent the message that found it.
pub fn fell_behind(worker: WorkerId, queued: usize) -> &'static str {
    warn!(worker, queued_bytes = queued, "worker reads too slowly, dropping its session");
    "fell behind: too many bytes queued for it"
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotSent {
    /// The session is over (closed, fallen behind before, or its stream is gone).
    Closed,
    /// More than the bound was queued: the queue is now emptied and closed.
    FellBehind {
        /// Bytes that were queued when the message came.
        queued: usize,
    },
}

/// How the stream ends once the queue is drained.
enum End {
    /// Still open.
    Open,
    /// Yield this error after what is queued, then end.
    Fail(Error),
    /// Over.
    Done,
}

/// What the senders and the stream share.
struct State {
    /// Messages not yet taken by the transport, with their encoded sizes.
    queue: VecDeque<(pb::MasterMessage, usize)>,
    /// Sum of the sizes in `queue`.
    bytes: usize,
    /// How the stream ends.
    end: End,
    /// Senders alive; the stream ends when none is left.
    senders: usize,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the stream when a message is queued or the queue closes.
    waker: AtomicWaker,
    /// Set once no message will be queued any more, with why (what [`WorkerTx::closed`]
    /// returns).
    closed: watch::Sender<Option<String>>,
    /// The byte bound.
    bound: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the queue inconsistent: every update is
        // a push or pop with its byte count.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the queue closed for senders (first reason wins) and wakes everyone.
    fn close(&self, why: String) {
        self.closed.send_if_modified(|c| c.is_none() && c.replace(why).is_none());
        self.waker.wake();
    }
}

/// The sending side; cloned for the core's task and the session's reader.
pub struct WorkerTx {
    shared: Arc<Shared>,
}

/// The receiving side: the session's response stream. Counts each message it yields into the
/// sent-bytes metric.
pub struct WorkerRx {
    shared: Arc<Shared>,
    /// The master's sent-bytes counter.
    sent: Counter,
}

/// A queue of at most about `bound` bytes (see [`WorkerTx::send`]), counting what leaves it
/// into `sent`.
pub fn channel(bound: usize, sent: Counter) -> (WorkerTx, WorkerRx) {
    let state = State { queue: VecDeque::new(), bytes: 0, end: End::Open, senders: 1 };
    let shared = Arc::new(Shared {
        state: Mutex::new(state),
        waker: AtomicWaker::new(),
        closed: watch::channel(None).0,
        bound,
    });
    (WorkerTx { shared: shared.clone() }, WorkerRx { shared, sent })
}

impl WorkerTx {
    /// Queues a message without waiting. Refused if the session is over, or if more than the
    /// bound is already queued: then the queue is emptied and the stream ends with
    /// `Unavailable` (so the bytes held never pass the bound by more than one message).
    pub fn send(&self, msg: pb::MasterMessage) -> Result<(), NotSent> {
        let mut s = self.shared.lock();
        if !matches!(s.end, End::Open) {
            return Err(NotSent::Closed);
        }
        let queued = s.bytes;
        if queued > self.shared.bound {
            s.queue = VecDeque::new();
            s.bytes = 0;
            let why = format!("fell behind: more than {} bytes queued", self.shared.bound);
            s.end = End::Fail(Error::Unavailable(format!("worker {why}")));
            drop(s);
            self.shared.close(why);
            return Err(NotSent::FellBehind { queued });
        }
        let len = msg.encoded_len();
        s.queue.push_back((msg, len));
        s.bytes += len;
        drop(s);
        self.shared.waker.wake();
        Ok(())
    }

    /// Ends the stream with `error` after what is already queued; later sends are refused.
    pub fn close(&self, error: Error) {
        let mut s = self.shared.lock();
        if matches!(s.end, End::Open) {
            let why = error.to_string();
            s.end = End::Fail(error);
            drop(s);
            self.shared.close(why);
        }
    }

    /// Resolves once no message will be queued any more (closed, fallen behind, or the stream
    /// gone), with why.
    pub async fn closed(&self) -> String {
        let mut rx = self.shared.closed.subscribe();
        // An error is unreachable: `self` holds the sender.
        let why = rx.wait_for(Option::is_some).await.map(|why| why.clone());
        why.ok().flatten().unwrap_or_default()
    }

    /// Bytes queued and not yet taken by the transport.
    pub fn queued(&self) -> usize {
        self.shared.lock().bytes
    }
}

impl Clone for WorkerTx {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        WorkerTx { shared: self.shared.clone() }
    }
}

impl Drop for WorkerTx {
    fn drop(&mut self) {
        let mut s = self.shared.lock();
        s.senders -= 1;
        if s.senders == 0 {
            drop(s);
            self.shared.waker.wake();
        }
    }
}

impl Stream for WorkerRx {
    type Item = Result<pb::MasterMessage, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Registered before looking, so a send between the look and the return is not missed.
        self.shared.waker.register(cx.waker());
        let mut s = self.shared.lock();
        if let Some((msg, len)) = s.queue.pop_front() {
            s.bytes -= len;
            self.sent.inc_by(len as u64);
            return Poll::Ready(Some(Ok(msg)));
        }
        match std::mem::replace(&mut s.end, End::Done) {
            End::Fail(e) => Poll::Ready(Some(Err(crate::grpc::status(e)))),
            End::Done => Poll::Ready(None),
            End::Open if s.senders == 0 => Poll::Ready(None),
            End::Open => {
                s.end = End::Open;
                Poll::Pending
            }
        }
    }
}

impl Drop for WorkerRx {
    /// The transport is gone: free what is queued and refuse what comes.
    fn drop(&mut self) {
        let mut s = self.shared.lock();
        s.queue = VecDeque::new();
        s.bytes = 0;
        s.end = End::Done;
        drop(s);
        self.shared.close("stream to the worker gone".to_string());
    }
}

#[cfg(test)]
mod tests;
