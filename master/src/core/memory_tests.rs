//! Memory is bounded by bytes: ended jobs drop their inputs and params, finished jobs are kept
//! within a byte budget, a submit past the memory budget is refused naming it, and a result
//! past the per-job limit fails its job instead of succeeding unreadably.

use super::recording::{take, Recording};
use super::*;
use farm_proto::{JobSource, JobSpec, Output, Params};
use std::sync::Arc;

fn lines_job(lines: &[&str], params: &[&str]) -> JobSpec {
    let lines = lines.iter().map(|s| s.to_string()).collect();
    let params = Params::from_pairs(params).unwrap();
    JobSpec::new("echo", JobSource::Inputs(lines), params, 0).unwrap()
}

/// A core with one worker of many threads offering `echo`.
/// Submits `sub` as the anonymous principal, its outputs of any shape.
fn submit(
    core: &mut Core,
    sub: impl Into<Submission>,
    now: Instant,
    rec: &mut Recording,
) -> Result<JobId, CoreError> {
    core.submit(sub, Owner::anonymous(), OutputShape::Any, now, rec)
}

fn core(config: CoreConfig) -> (Core, WorkerId, Instant) {
    let now = Instant::now();
    let mut core = Core::new(config);
    let spec = WorkerSpec { threads: 64, kinds: vec!["echo".into()], ..Default::default() };
    let worker = core.worker_joined(spec, now, &mut Recording::default());
    (core, worker, now)
}

/// Runs `job`'s shards as they are handed out (windows grow with completions, so in rounds)
/// until none is left to run, each returning its input line `copies` times.
fn run(core: &mut Core, rec: &mut Recording, job: JobId, copies: usize, now: Instant) {
    loop {
        core.dispatch(now, rec);
        let tasks: Vec<_> = rec.take_tasks().into_iter().filter(|(_, t)| t.job_id == job).collect();
        if tasks.is_empty() {
            return;
        }
        for (worker, t) in tasks {
            let line = t.input.clone().unwrap_or_default();
            let out = Output::Lines(vec![line; copies]);
            core.results(worker, [(job, t.shard, ShardOutcome::Done(out))], now, rec).unwrap();
        }
    }
}

#[test]
fn ended_jobs_drop_inputs_and_params_and_give_back_their_bytes() {
    let (mut core, _, now) = core(CoreConfig::default());
    let mut rec = Recording::default();
    let job = submit(&mut core, lines_job(&["a", "b", "c"], &["k=v"]), now, &mut rec).unwrap();
    assert!(core.memory().0 > 0, "a queued job's inputs are counted");
    run(&mut core, &mut rec, job, 1, now);
    assert_eq!(rec.finished.len(), 1);
    assert_eq!(rec.finished[0].result_json.as_deref(), Some(r#"["a","b","c"]"#));
    let kept = &core.jobs[&job];
    assert!(kept.inputs.is_empty(), "inputs dropped");
    assert!(kept.spec.params.0.is_empty(), "params dropped");
    assert_eq!(kept.spec.kind, "echo", "the kind stays");
    assert_eq!((kept.total, kept.done), (3, 3), "the counts stay");
    assert_eq!(core.memory().0, 0, "nothing live is counted any more");
    assert!(core.memory().1 >= r#"["a","b","c"]"#.len());
    // Views share the one rendered result.
    let (a, b) = (core.status(job, now).unwrap(), core.status(job, now).unwrap());
    assert!(Arc::ptr_eq(a.result_json.as_ref().unwrap(), b.result_json.as_ref().unwrap()));
    assert_eq!(take(&mut rec.defs).len(), 1);
    assert_eq!(take(&mut rec.forgets).len(), 1);
    assert_eq!(take(&mut rec.outputs).len(), 3);
    take(&mut rec.finished);
    rec.assert_quiet();
}

#[test]
fn finished_jobs_are_kept_within_a_byte_budget_oldest_forgotten_first() {
    let config = CoreConfig { keep_finished_bytes: 5000, ..Default::default() };
    let (mut core, _, now) = core(config);
    let mut rec = Recording::default();
    let line = "x".repeat(1000);
    let mut jobs = Vec::new();
    for _ in 0..4 {
        let job = submit(&mut core, lines_job(&[&line], &[]), now, &mut rec).unwrap();
        run(&mut core, &mut rec, job, 1, now);
        jobs.push(job);
    }
    // Each keeps about 2 KiB (its result and its record): the two newest fit in 5000 bytes.
    assert!(core.status(jobs[0], now).is_none(), "the oldest is forgotten");
    assert!(core.status(jobs[1], now).is_none());
    assert!(core.status(jobs[2], now).is_some());
    assert!(core.status(jobs[3], now).is_some());
    assert!(core.memory().1 <= 5000, "{:?}", core.memory());

    // The newest is kept even alone over the budget, so its client can read it.
    let big = "y".repeat(8000);
    let job = submit(&mut core, lines_job(&[&big], &[]), now, &mut rec).unwrap();
    run(&mut core, &mut rec, job, 1, now);
    assert!(core.status(job, now).is_some_and(|v| v.result_json.is_some()));
    assert!(core.status(jobs[3], now).is_none());
    // Five jobs of one shard each ran and ended.
    assert_eq!((take(&mut rec.defs).len(), take(&mut rec.forgets).len()), (5, 5));
    assert_eq!((take(&mut rec.outputs).len(), take(&mut rec.finished).len()), (5, 5));
    rec.assert_quiet();
}

#[test]
fn a_submit_past_the_memory_budget_is_refused_naming_the_budget() {
    let config = CoreConfig { memory_budget: 64 << 10, ..Default::default() };
    let (mut core, _, now) = core(config);
    let mut rec = Recording::default();
    let line = "z".repeat(20 << 10);
    let first = submit(&mut core, lines_job(&[&line, &line], &[]), now, &mut rec).unwrap();
    let err = submit(&mut core, lines_job(&[&line, &line], &[]), now, &mut rec).unwrap_err();
    assert!(matches!(err, CoreError::MemoryBudget { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("master memory budget of 0.1 MiB for job inputs and results"), "{msg}");
    // Params count too.
    let param = format!("p={}", "q".repeat(40 << 10));
    assert!(submit(&mut core, lines_job(&["1"], &[&param]), now, &mut rec).is_err());
    // Once the first ends, its bytes are free again.
    run(&mut core, &mut rec, first, 0, now);
    assert_eq!(core.memory().0, 0);
    submit(&mut core, lines_job(&[&line, &line], &[]), now, &mut rec).unwrap();
    assert_eq!(take(&mut rec.defs).len(), 1);
    assert_eq!(take(&mut rec.forgets).len(), 1);
    assert_eq!(take(&mut rec.outputs).len(), 2);
    assert_eq!(take(&mut rec.finished).len(), 1);
    rec.assert_quiet();
}

#[test]
fn a_result_past_the_per_job_limit_is_kept_in_the_store_only() {
    let config = CoreConfig { inline_result_bytes: 10 << 10, ..Default::default() };
    let (mut core, _, now) = core(config);
    let mut rec = Recording::default();
    let job = submit(&mut core, lines_job(&["0123456789"; 100], &[]), now, &mut rec).unwrap();
    // Each shard returns its line 20 times: about 260 bytes a shard, 26 KiB in all.
    run(&mut core, &mut rec, job, 20, now);
    let v = core.status(job, now).unwrap();
    assert_eq!(v.state, JobState::Succeeded);
    assert!(v.result_in_store && v.result_json.is_none(), "{v:?}");
    assert_eq!(core.memory().0, 0, "the spilled job's fragments are given back");
    assert_eq!(take(&mut rec.defs).len(), 1);
    assert_eq!(take(&mut rec.forgets).len(), 1);
    assert_eq!(take(&mut rec.outputs).len(), 100);
    assert_eq!(take(&mut rec.finished).len(), 1);
    rec.assert_quiet();
}

#[test]
fn results_that_would_pass_the_memory_budget_fail_their_job() {
    let config = CoreConfig { memory_budget: 32 << 10, ..Default::default() };
    let (mut core, _, now) = core(config);
    let mut rec = Recording::default();
    let job = submit(&mut core, lines_job(&["0123456789"; 50], &[]), now, &mut rec).unwrap();
    run(&mut core, &mut rec, job, 100, now);
    let v = core.status(job, now).unwrap();
    assert_eq!(v.state, JobState::Failed);
    let error = v.error.unwrap_or_default();
    assert!(
        error.contains("master memory budget of 0.0 MiB for job inputs and results"),
        "{error}"
    );
    assert_eq!(core.memory().0, 0);
    // The failed job is cancelled on its worker; the outputs before the budget was hit count.
    assert_eq!(take(&mut rec.defs).len(), 1);
    assert_eq!(take(&mut rec.cancels).len(), 1);
    take(&mut rec.outputs);
    assert_eq!(take(&mut rec.finished).len(), 1);
    rec.assert_quiet();
}
