//! Waiting for a job to end, riding through a master restart: when the master goes away the
//! waiter reconnects with backoff for a bounded time, looks the job up again and follows it to
//! its end. A master restarted with `--journal` still has the job (and its progress, or its
//! final status if it ended meanwhile); one restarted without it does not, and the waiter says
//! so instead of following some other job that now has the same id.

use crate::{Client, ClientError, JobEvent, JobStatus, Progress, Result};
use futures::{Stream, StreamExt};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::time::Instant;

/// The longest pause between two attempts to reach a lost master: short enough that a
/// restarted master is noticed within a couple of seconds.
const RETRY_CAP: Duration = Duration::from_secs(2);

/// How a wait treats a lost master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitOptions {
    /// How long to keep reconnecting after the master went away before giving up with
    /// [`ClientError::MasterLost`]; zero gives up at once.
    pub reconnect_for: Duration,
}

impl WaitOptions {
    /// The bound when none is given: long enough for a supervisor to restart a master.
    pub const DEFAULT_RECONNECT_FOR: Duration = Duration::from_secs(60);
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions { reconnect_for: Self::DEFAULT_RECONNECT_FOR }
    }
}

/// What happens while a job is waited for, for the caller to show.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitEvent {
    /// The job advanced.
    Progress(Progress),
    /// The master went away; the waiter reconnects for up to `reconnect_for`.
    Lost {
        /// The bound of [`WaitOptions`], so the message can name it.
        reconnect_for: Duration,
    },
    /// The master is back and still has the job; following it again.
    Back,
}

/// One line for people: what `farm submit --wait` and `farm watch` print on stderr.
impl std::fmt::Display for WaitEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitEvent::Progress(p) => {
                write!(f, "{}/{} shards done, {} in flight", p.done, p.total, p.in_flight)?;
                match &p.waiting {
                    Some(why) => write!(f, "; waiting: {why}"),
                    None => Ok(()),
                }
            }
            WaitEvent::Lost { reconnect_for } => {
                write!(
                    f,
                    "lost the master; reconnecting for up to {}",
                    crate::seconds(*reconnect_for)
                )
            }
            WaitEvent::Back => write!(f, "the master is back; following the job again"),
        }
    }
}

/// A stream of a job's events, as a master sends them.
pub(crate) type Events = Pin<Box<dyn Stream<Item = Result<JobEvent>> + Send>>;

/// What a waiter needs from a master. [`Client`] is one; the tests script one, so the retry
/// logic runs under paused time without a network.
pub(crate) trait Feed {
    /// The job's status now (Get).
    fn status(&mut self, job: u64) -> impl Future<Output = Result<JobStatus>> + Send;
    /// The job's events from now on (Watch).
    fn events(&mut self, job: u64) -> impl Future<Output = Result<Events>> + Send;
}

impl Feed for Client {
    fn status(&mut self, job: u64) -> impl Future<Output = Result<JobStatus>> + Send {
        self.get(job)
    }

    async fn events(&mut self, job: u64) -> Result<Events> {
        Ok(Box::pin(self.watch(job, false).await?))
    }
}

/// Whether an error means the master is away (shut down, killed, unreachable) rather than
/// that it refused the call.
fn away(e: &ClientError) -> bool {
    use tonic::Code::*;
    matches!(e.code(), Some(Unavailable | Unknown | Internal | Cancelled | DeadlineExceeded))
}

/// What a job is, beyond its id: a master restarted without a journal hands the same ids to
/// new jobs, and following one of those would report someone else's result.
#[derive(Debug, PartialEq)]
struct Identity {
    kind: String,
    shards: u64,
    priority: i32,
}

impl Identity {
    fn of(status: &JobStatus) -> Self {
        Identity { kind: status.kind.clone(), shards: status.shards, priority: status.priority }
    }
}

/// Follows `job` to its end through `feed`, riding through lost masters as `options` allow.
pub(crate) async fn follow(
    feed: &mut impl Feed,
    job: u64,
    options: &WaitOptions,
    on_event: &mut impl FnMut(WaitEvent),
) -> Result<JobStatus> {
    // The master may go away between a submit and this first look too.
    let mut status = match feed.status(job).await {
        Err(e) if away(&e) => back(feed, job, options, None, on_event).await?,
        status => status?,
    };
    let identity = Identity::of(&status);
    loop {
        if status.state.is_final() {
            return Ok(status);
        }
        if let Some(ended) = stretch(feed, job, on_event).await? {
            return Ok(ended);
        }
        status = back(feed, job, options, Some(&identity), on_event).await?;
    }
}

/// Waits for a lost master to come back with the job (the same job, if its `identity` is
/// known) and says so.
async fn back(
    feed: &mut impl Feed,
    job: u64,
    options: &WaitOptions,
    identity: Option<&Identity>,
    on_event: &mut impl FnMut(WaitEvent),
) -> Result<JobStatus> {
    let status = come_back(feed, job, options, on_event).await?;
    if identity.is_some_and(|known| *known != Identity::of(&status)) {
        return Err(ClientError::JobGone(job));
    }
    on_event(WaitEvent::Back);
    Ok(status)
}

/// Watches the job until it ends (its final status) or the master goes away (`None`).
async fn stretch(
    feed: &mut impl Feed,
    job: u64,
    on_event: &mut impl FnMut(WaitEvent),
) -> Result<Option<JobStatus>> {
    let mut events = match feed.events(job).await {
        Ok(events) => events,
        Err(e) if away(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    while let Some(event) = events.next().await {
        match event {
            Ok(JobEvent::Progress(p)) => on_event(WaitEvent::Progress(p)),
            Ok(JobEvent::Finished(status)) => return Ok(Some(status)),
            Ok(JobEvent::Shard { .. }) => {}
            Err(e) if away(&e) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    // The stream ended without the final status: the master shut down.
    Ok(None)
}

/// Reconnects to a lost master with backoff until it answers for the job, it answers that the
/// job is gone, or the bound passes.
async fn come_back(
    feed: &mut impl Feed,
    job: u64,
    options: &WaitOptions,
    on_event: &mut impl FnMut(WaitEvent),
) -> Result<JobStatus> {
    let bound = options.reconnect_for;
    on_event(WaitEvent::Lost { reconnect_for: bound });
    let deadline = Instant::now() + bound;
    let mut backoff = farm_net::Backoff::new(RETRY_CAP);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ClientError::MasterLost { job, waited: bound });
        }
        // A dial to an unreachable host may take longer than the time left.
        match tokio::time::timeout(left, feed.status(job)).await {
            Ok(Ok(status)) => return Ok(status),
            Ok(Err(e)) if e.code() == Some(tonic::Code::NotFound) => {
                return Err(ClientError::JobGone(job))
            }
            Ok(Err(e)) if !away(&e) => return Err(e),
            Ok(Err(_)) | Err(_) => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(backoff.next().min(left)).await;
    }
}

#[cfg(test)]
#[path = "ride_tests.rs"]
mod tests;
