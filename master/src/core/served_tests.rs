//! Tests of jobs nothing can run, under simulated time: the status says a job waits for a
//! worker of its kind, watchers see it start and stop waiting, and `--no-worker-timeout` fails
//! the job once it waited that long.

use super::recording::{take, Recording};
use super::*;
use farm_proto::{JobSource, JobSpec, Params};
use std::time::Duration;

fn job(kind: &str, no_worker_timeout_ms: Option<u64>) -> JobSpec {
    let source = JobSource::Range { start: 0, end: 100, shard_size: 1 };
    let mut spec = JobSpec::new(kind, source, Params::default(), 0).expect("valid spec");
    spec.limits.no_worker_timeout_ms = no_worker_timeout_ms;
    spec
}

fn worker(kinds: &[&str]) -> WorkerSpec {
    let kinds = kinds.iter().map(|k| k.to_string()).collect();
    WorkerSpec { threads: 1, kinds, ..Default::default() }
}

const WAITING: &str = "no connected worker offers kind sleep";

#[test]
fn a_job_waits_while_no_connected_worker_offers_its_kind_and_watchers_see_it() {
    let mut core = Core::new(CoreConfig::default());
    let mut out = Recording::default();
    let t0 = Instant::now();
    let id = core
        .submit(job("sleep", None), Owner::anonymous(), OutputShape::Count, t0, &mut out)
        .expect("submit");
    assert_eq!(core.status(id, t0).expect("job").waiting.as_deref(), Some(WAITING));

    // A worker of another kind changes nothing; one of its kind ends the wait.
    core.worker_joined(worker(&["noop"]), t0, &mut out);
    assert!(out.changed.is_empty(), "{:?}", out.changed);
    let w = core.worker_joined(worker(&["noop", "sleep"]), t0, &mut out);
    let seen = take(&mut out.changed);
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].id, seen[0].waiting.as_deref()), (id, None));
    core.dispatch(t0, &mut out);
    assert_eq!(core.status(id, t0).expect("job").waiting, None);

    // Its only worker leaves: watchers see the job waiting, with its shards back in the queue.
    core.worker_left(w, "connection lost", t0, &mut out);
    let seen = take(&mut out.changed);
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].waiting.as_deref(), seen[0].in_flight), (Some(WAITING), 0));
    // Without --no-worker-timeout it waits for ever.
    core.tick(t0 + Duration::from_secs(24 * 3600), &mut out);
    let view = core.status(id, t0).expect("job");
    assert_eq!((view.state, view.waiting.as_deref()), (JobState::Running, Some(WAITING)));
    assert!(out.changed.is_empty(), "{:?}", out.changed);
    // The job went to the worker of its kind; the other, silent for a day, was dropped.
    assert_eq!(take(&mut out.defs), vec![(w, id)]);
    assert_eq!(take(&mut out.dropped).len(), 1);
    out.assert_quiet();
}

#[test]
fn no_worker_timeout_fails_the_job_after_that_long_without_a_worker() {
    let mut core = Core::new(CoreConfig::default());
    let mut out = Recording::default();
    let t0 = Instant::now();
    let secs = Duration::from_secs;
    let spec = job("sleep", Some(30_000));
    let id =
        core.submit(spec, Owner::anonymous(), OutputShape::Count, t0, &mut out).expect("submit");
    let other = core
        .submit(job("noop", None), Owner::anonymous(), OutputShape::Count, t0, &mut out)
        .expect("submit");
    core.tick(t0 + secs(29), &mut out);
    assert_eq!(core.status(id, t0).expect("job").state, JobState::Queued);

    // A worker that comes and goes restarts the clock when it leaves.
    let w = core.worker_joined(worker(&["sleep"]), t0 + secs(29), &mut out);
    core.worker_left(w, "gone", t0 + secs(40), &mut out);
    out.changed.clear();
    core.tick(t0 + secs(69), &mut out);
    assert!(out.changed.is_empty(), "still within 30 s of the worker leaving: {:?}", out.changed);
    core.tick(t0 + secs(70), &mut out);
    let ended: Vec<_> = out.changed.iter().filter(|v| v.state.is_final()).collect();
    assert_eq!(ended.len(), 1, "{:?}", out.changed);
    assert_eq!((ended[0].id, ended[0].state), (id, JobState::Failed));
    assert_eq!(
        ended[0].error.as_deref(),
        Some(
            "no connected worker offers kind sleep, and none joined within 30s \
             (--no-worker-timeout)"
        )
    );
    assert_eq!(ended[0].waiting, None, "an ended job waits for nothing");
    // The job without a timeout still waits.
    let view = core.status(other, t0 + secs(70)).expect("other");
    assert_eq!(view.state, JobState::Queued);
    assert!(view.waiting.is_some());
    // The failed job, checked above through the views.
    assert_eq!(take(&mut out.finished).len(), 1);
    out.assert_quiet();
}

#[test]
fn for_the_startup_grace_a_job_waits_silently_while_workers_reconnect() {
    let config = CoreConfig { startup_grace: Duration::from_secs(6), ..CoreConfig::default() };
    let (grace, t0) = (config.startup_grace, Instant::now());
    let mut core = Core::new(config);
    let mut out = Recording::default();
    // A master that just started (or restarted, its jobs restored).
    let early =
        core.submit(job("sleep", Some(1000)), Owner::anonymous(), OutputShape::Count, t0, &mut out);
    let early = early.expect("submit");
    core.restore_finish(t0, &mut out);
    let late = core.submit(
        job("sleep", None),
        Owner::anonymous(),
        OutputShape::Count,
        t0 + grace / 2,
        &mut out,
    );
    let late = late.expect("submit");
    let served =
        core.submit(job("noop", None), Owner::anonymous(), OutputShape::Count, t0, &mut out);
    let served = served.expect("submit");
    core.tick(t0 + grace / 2, &mut out);
    for id in [early, late, served] {
        assert_eq!(core.status(id, t0 + grace / 2).expect("job").waiting, None);
    }
    assert!(out.changed.iter().all(|v| v.waiting.is_none()), "{:?}", out.changed);
    // A worker of another kind reconnects in time: its job never waited.
    let w = core.worker_joined(worker(&["noop"]), t0 + grace / 2, &mut out);
    out.changed.clear();
    // Past the grace, the watchers of jobs still waiting are told, once; the no-worker
    // timeout counts from then.
    let after = t0 + grace;
    core.heartbeat(w, after);
    core.tick(after, &mut out);
    let seen: Vec<_> = take(&mut out.changed).into_iter().map(|v| (v.id, v.waiting)).collect();
    assert_eq!(seen, [(early, Some(WAITING.into())), (late, Some(WAITING.into()))]);
    core.tick(after + Duration::from_millis(999), &mut out);
    assert!(out.changed.is_empty(), "{:?}", out.changed);
    core.tick(after + Duration::from_millis(1000), &mut out);
    assert_eq!(core.status(early, after).expect("job").state, JobState::Failed);
    assert_eq!(core.status(served, after).expect("job").waiting, None);
    // The early job failed its no-worker timeout.
    assert_eq!(take(&mut out.finished).len(), 1);
    out.assert_quiet();
}
