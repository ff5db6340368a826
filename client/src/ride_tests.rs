//! The ride through a lost master, against a scripted master under paused time.

use super::*;
use crate::{JobState, JsonText};
use std::collections::VecDeque;
use tonic::Status;

/// A master that answers Get and Watch from a script; once the script of Gets runs out it is
/// away for good (Unavailable).
#[derive(Default)]
struct Script {
    /// Answers to Get, in order.
    gets: VecDeque<Result<JobStatus>>,
    /// Answers to Watch, in order: the events of each stream, or the error opening it.
    watches: VecDeque<Result<Vec<Result<JobEvent>>>>,
    /// Gets asked so far, to check the backoff does not spin.
    asked: usize,
}

impl Feed for Script {
    async fn status(&mut self, _job: u64) -> Result<JobStatus> {
        self.asked += 1;
        self.gets.pop_front().unwrap_or_else(|| Err(unavailable()))
    }

    async fn events(&mut self, _job: u64) -> Result<Events> {
        let events = self.watches.pop_front().unwrap_or_else(|| Err(unavailable()))?;
        Ok(Box::pin(futures::stream::iter(events)))
    }
}

fn unavailable() -> ClientError {
    ClientError::Status(Status::unavailable("connection refused"))
}

fn job(state: JobState, done: u64) -> JobStatus {
    JobStatus {
        job: 7,
        kind: "primes".into(),
        state,
        shards: 10,
        done,
        in_flight: 0,
        result: if state == JobState::Succeeded {
            JsonText::trusted("4".into())
        } else {
            JsonText::null()
        },
        error: None,
        elapsed_ms: 5,
        priority: 0,
        reruns: 0,
        result_in_store: false,
        submitted_unix_ms: 0,
        result_left_out: false,
        waiting: None,
        output: farm_proto::OutputShape::Count,
        owner: String::new(),
    }
}

fn progress(done: u64) -> Result<JobEvent> {
    Ok(JobEvent::Progress(Progress { done, total: 10, in_flight: 1, waiting: None }))
}

fn finished() -> Result<JobEvent> {
    Ok(JobEvent::Finished(job(JobState::Succeeded, 10)))
}

/// Follows job 7 with a 60 s bound; returns the outcome and every event seen.
async fn ride(script: &mut Script) -> (Result<JobStatus>, Vec<WaitEvent>) {
    let mut seen = Vec::new();
    let options = WaitOptions::default();
    let outcome = follow(script, 7, &options, &mut |e| seen.push(e)).await;
    (outcome, seen)
}

fn lost() -> WaitEvent {
    WaitEvent::Lost { reconnect_for: WaitOptions::DEFAULT_RECONNECT_FOR }
}

#[tokio::test(start_paused = true)]
async fn a_job_followed_to_its_end_reports_progress() {
    let mut script = Script {
        gets: [Ok(job(JobState::Running, 0))].into(),
        watches: [Ok(vec![progress(3), finished()])].into(),
        ..Default::default()
    };
    let (outcome, seen) = ride(&mut script).await;
    assert_eq!(outcome.expect("ended").result.as_str(), "4");
    assert_eq!(
        seen,
        [WaitEvent::Progress(Progress { done: 3, total: 10, in_flight: 1, waiting: None })]
    );
}

#[tokio::test(start_paused = true)]
async fn a_restarted_master_that_kept_the_job_is_followed_again() {
    let mut script = Script {
        gets: [Ok(job(JobState::Running, 0)), Err(unavailable()), Ok(job(JobState::Running, 3))]
            .into(),
        // The first stream breaks as the master dies; the second is the restarted master's.
        watches: [Ok(vec![progress(3), Err(unavailable())]), Ok(vec![progress(4), finished()])]
            .into(),
        ..Default::default()
    };
    let (outcome, seen) = ride(&mut script).await;
    assert_eq!(outcome.expect("ended").state, JobState::Succeeded);
    let p = |done| WaitEvent::Progress(Progress { done, total: 10, in_flight: 1, waiting: None });
    assert_eq!(seen, [p(3), lost(), WaitEvent::Back, p(4)]);
    let lines: Vec<String> = seen.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "3/10 shards done, 1 in flight",
            "lost the master; reconnecting for up to 60s",
            "the master is back; following the job again",
            "4/10 shards done, 1 in flight",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_job_that_ended_while_the_master_was_away_returns_its_final_status() {
    let mut script = Script {
        gets: [Ok(job(JobState::Running, 0)), Ok(job(JobState::Succeeded, 10))].into(),
        // The stream ends without a final status: the master shut down.
        watches: [Ok(vec![progress(3)])].into(),
        ..Default::default()
    };
    let (outcome, seen) = ride(&mut script).await;
    assert_eq!(outcome.expect("ended").result.as_str(), "4");
    assert_eq!(seen[1..], [lost(), WaitEvent::Back]);
}

#[tokio::test(start_paused = true)]
async fn a_master_back_without_the_job_says_it_restarted_without_a_journal() {
    let mut script = Script {
        gets: [Ok(job(JobState::Running, 0)), Err(Status::not_found("no job 7").into())].into(),
        watches: [Ok(vec![Err(ClientError::Status(Status::unknown("stream reset")))])].into(),
        ..Default::default()
    };
    let (outcome, _) = ride(&mut script).await;
    let gone = outcome.expect_err("gone");
    assert!(matches!(gone, ClientError::JobGone(7)), "{gone:?}");
    assert_eq!(gone.to_string(), "job 7 is gone: the master restarted without --journal");
}

#[tokio::test(start_paused = true)]
async fn another_job_under_the_same_id_is_not_followed() {
    let other = JobStatus { kind: "noop".into(), ..job(JobState::Running, 0) };
    let mut script = Script {
        gets: [Ok(job(JobState::Running, 0)), Ok(other)].into(),
        watches: [Ok(vec![])].into(),
        ..Default::default()
    };
    let (outcome, seen) = ride(&mut script).await;
    assert!(matches!(outcome, Err(ClientError::JobGone(7))), "{outcome:?}");
    assert!(!seen.contains(&WaitEvent::Back), "{seen:?}");
}

#[tokio::test(start_paused = true)]
async fn a_master_that_stays_away_ends_the_wait_after_the_bound() {
    let mut script = Script {
        gets: [Ok(job(JobState::Running, 0))].into(),
        watches: [Err(unavailable())].into(),
        ..Default::default()
    };
    let start = Instant::now();
    let options = WaitOptions { reconnect_for: Duration::from_secs(5) };
    let outcome = follow(&mut script, 7, &options, &mut |_| {}).await;
    let waited = start.elapsed();
    let lost = outcome.expect_err("lost");
    assert!(matches!(lost, ClientError::MasterLost { job: 7, .. }), "{lost:?}");
    assert_eq!(
        lost.to_string(),
        "lost the master while waiting for job 7: it was not back within 5s"
    );
    assert!(waited >= Duration::from_secs(5) && waited < Duration::from_millis(5100), "{waited:?}");
    // Backoff: a handful of attempts in 5 s, not thousands.
    assert!((4..=12).contains(&script.asked), "{} gets", script.asked);
}

#[tokio::test(start_paused = true)]
async fn refusals_are_not_mistaken_for_a_lost_master() {
    let mut script =
        Script { gets: [Err(Status::not_found("no job 7").into())].into(), ..Default::default() };
    let (outcome, seen) = ride(&mut script).await;
    assert_eq!(outcome.expect_err("refused").code(), Some(tonic::Code::NotFound));
    assert!(seen.is_empty());
    let mut script = Script {
        gets: [Ok(job(JobState::Running, 0))].into(),
        watches: [Err(Status::permission_denied("bad token").into())].into(),
        ..Default::default()
    };
    let (outcome, _) = ride(&mut script).await;
    assert_eq!(outcome.expect_err("refused").code(), Some(tonic::Code::PermissionDenied));
}

#[tokio::test(start_paused = true)]
async fn a_master_lost_before_the_first_look_is_waited_for_too() {
    let mut script = Script {
        gets: [Err(unavailable()), Err(unavailable()), Ok(job(JobState::Succeeded, 10))].into(),
        ..Default::default()
    };
    let (outcome, seen) = ride(&mut script).await;
    assert_eq!(outcome.expect("ended").result.as_str(), "4");
    assert_eq!(seen, [lost(), WaitEvent::Back]);
}

#[tokio::test(start_paused = true)]
async fn a_zero_bound_gives_up_at_once() {
    let mut script = Script {
        gets: [Ok(job(JobState::Running, 0))].into(),
        watches: [Ok(vec![])].into(),
        ..Default::default()
    };
    let options = WaitOptions { reconnect_for: Duration::ZERO };
    let outcome = follow(&mut script, 7, &options, &mut |_| {}).await;
    assert!(matches!(outcome, Err(ClientError::MasterLost { job: 7, .. })), "{outcome:?}");
    assert_eq!(script.asked, 1);
}
