//! Tests of jobs that require labels (`--require`, a python job's interpreter), under
//! simulated time: their shards go only to workers holding every pair, they wait with the
//! pair none holds while no such worker is connected, and watchers see the wait start, change
//! and end.

use super::recording::{take, Recording};
use super::*;
use farm_proto::labels::Labels;
use farm_proto::{JobSource, JobSpec, Params};
use std::time::Duration;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn job(kind: &str, requires: &[(&str, &str)]) -> JobSpec {
    let source = JobSource::Range { start: 0, end: 40, shard_size: 1 };
    let spec = JobSpec::new(kind, source, Params::default(), 0).expect("valid spec");
    spec.with_requires(labels(requires)).expect("valid requirements")
}

fn worker(kinds: &[&str], pairs: &[(&str, &str)]) -> WorkerSpec {
    let kinds = kinds.iter().map(|k| k.to_string()).collect();
    WorkerSpec { threads: 2, kinds, labels: labels(pairs), ..Default::default() }
}

const PY312: (&str, &str) = ("python", "CPython 3.12");
const PY311: (&str, &str) = ("python", "CPython 3.11");

/// The waiting reason of each view published since the last call.
fn seen(out: &mut Recording) -> Vec<(JobId, Option<String>)> {
    take(&mut out.changed).into_iter().map(|v| (v.id, v.waiting)).collect()
}

#[test]
fn a_python_job_runs_only_on_workers_of_its_interpreter_and_waits_for_one() {
    let mut core = Core::new(CoreConfig::default());
    let mut out = Recording::default();
    let t0 = Instant::now();
    let old = core.worker_joined(worker(&["python"], &[PY311]), t0, &mut out);
    let id = core.submit(job("python", &[PY312]), OutputShape::Lines, t0, &mut out);
    let id = id.expect("submit");
    core.dispatch(t0, &mut out);
    let want = "no worker runs CPython 3.12";
    assert_eq!(core.status(id, t0).expect("job").waiting.as_deref(), Some(want));
    // The worker of another interpreter was offered the kind but got nothing of the job.
    assert_eq!(out.queued(old), 0);
    assert!(out.defs.is_empty(), "{:?}", out.defs);

    // A matching worker joins: the wait ends, watchers see it, and the shards go to it alone.
    let new =
        core.worker_joined(worker(&["python"], &[PY312, ("cloudpickle", "3.1")]), t0, &mut out);
    assert_eq!(seen(&mut out), [(id, None)]);
    core.dispatch(t0, &mut out);
    assert_eq!(take(&mut out.defs), [(new, id)]);
    assert!(out.queued(new) > 0);
    assert_eq!(out.queued(old), 0);

    // It leaves: its shards go back, and the job waits again with the same reason; the other
    // worker still gets none of them.
    core.worker_left(new, "connection lost", t0, &mut out);
    assert_eq!(seen(&mut out), [(id, Some(want.into()))]);
    core.dispatch(t0, &mut out);
    assert!(out.defs.is_empty(), "{:?}", out.defs);
    assert_eq!(out.queued(old), 0);
    let view = core.status(id, t0).expect("job");
    assert_eq!((view.in_flight, view.waiting.as_deref()), (0, Some(want)));
    out.queues.clear();
    out.assert_quiet();
}

#[test]
fn the_reason_names_the_pair_no_worker_of_the_kind_holds_and_follows_the_workers() {
    let mut core = Core::new(CoreConfig::default());
    let mut out = Recording::default();
    let t0 = Instant::now();
    let id = core.submit(
        job("sleep", &[("gpu", "a100"), ("zone", "b")]),
        OutputShape::Count,
        t0,
        &mut out,
    );
    let id = id.expect("submit");
    let waiting = |core: &Core| core.status(id, t0).expect("job").waiting;
    assert_eq!(waiting(&core).as_deref(), Some("no connected worker offers kind sleep"));

    // A worker of the kind without the labels: still waiting, now for the labels.
    let a = core.worker_joined(worker(&["sleep"], &[("zone", "b")]), t0, &mut out);
    let why = "no worker offering kind sleep has gpu=a100";
    assert_eq!(seen(&mut out), [(id, Some(why.into()))]);
    // A worker with the labels but not the kind changes nothing.
    core.worker_joined(worker(&["noop"], &[("gpu", "a100"), ("zone", "b")]), t0, &mut out);
    assert!(out.changed.is_empty(), "{:?}", out.changed);
    // Each pair held, by different workers, but no worker holds both.
    let b = core.worker_joined(worker(&["sleep"], &[("gpu", "a100")]), t0, &mut out);
    let why = "no worker offering kind sleep has all of gpu=a100, zone=b";
    assert_eq!(seen(&mut out), [(id, Some(why.into()))]);
    core.dispatch(t0, &mut out);
    assert!(out.defs.is_empty(), "{:?}", out.defs);

    // The last worker of the kind leaves after the other: waiting for the kind again.
    core.worker_left(b, "gone", t0, &mut out);
    let why = "no worker offering kind sleep has gpu=a100";
    assert_eq!(seen(&mut out), [(id, Some(why.into()))]);
    core.worker_left(a, "gone", t0, &mut out);
    let why = "no connected worker offers kind sleep";
    assert_eq!(seen(&mut out), [(id, Some(why.into()))]);
    out.assert_quiet();
}

#[test]
fn a_job_without_requirements_runs_anywhere_and_one_with_them_fails_its_no_worker_timeout() {
    let mut core = Core::new(CoreConfig::default());
    let mut out = Recording::default();
    let t0 = Instant::now();
    let w = core.worker_joined(worker(&["sleep"], &[PY311]), t0, &mut out);
    let free = core.submit(job("sleep", &[]), OutputShape::Count, t0, &mut out).expect("submit");
    let mut spec = job("sleep", &[PY312]);
    spec.limits.no_worker_timeout_ms = Some(5_000);
    let bound = core.submit(spec, OutputShape::Count, t0, &mut out).expect("submit");
    core.dispatch(t0, &mut out);
    assert_eq!(take(&mut out.defs), [(w, free)], "a labelled worker runs unlabelled jobs");
    assert_eq!(core.status(free, t0).expect("job").waiting, None);
    // The worker stays connected (heard from), so the job waits for its labels throughout.
    core.heartbeat(w, t0 + Duration::from_millis(4_999));
    core.tick(t0 + Duration::from_millis(4_999), &mut out);
    assert!(take(&mut out.finished).is_empty());
    core.heartbeat(w, t0 + Duration::from_secs(5));
    core.tick(t0 + Duration::from_secs(5), &mut out);
    let ended = take(&mut out.finished);
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!((ended[0].id, ended[0].state), (bound, JobState::Failed));
    assert_eq!(
        ended[0].error.as_deref(),
        Some("no worker runs CPython 3.12, and none joined within 5s (--no-worker-timeout)")
    );
    out.queues.clear();
    out.assert_quiet();
}
