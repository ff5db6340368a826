//! The journal on disk: what the core journals is replayed into a new core, ended jobs as
//! summaries, unfinished ones with their committed shards done; ids continue.

use super::*;
use crate::core::recording::{take, Recording};
use crate::core::{Owner, ShardOutcome, WorkerSpec};
use crate::core::{ShardTask, WorkerId};
use farm_proto::{JobSource, Params};
use farm_proto::{JobSpec, JobState, OutputShape};
use std::collections::VecDeque;

/// A new job's spec as the core journals it.
fn submitted(spec: JobSpec) -> crate::core::SubmittedJob {
    Submission::new(spec).take_journal().expect("a new submission")
}

fn noop(shards: u64) -> Submission {
    let source = JobSource::Range { start: 0, end: shards, shard_size: 1 };
    Submission::new(JobSpec::new("noop", source, Params::default(), 0).expect("spec"))
}

fn worker() -> WorkerSpec {
    WorkerSpec { threads: 2, kinds: vec!["noop".into()], ..Default::default() }
}

/// Dispatches and completes (each with a count of 5 for ids below 2, else 1) the tasks
/// `pick` chooses until no more come; returns the shards run.
fn run(
    core: &mut Core,
    rec: &mut Recording,
    w: WorkerId,
    pick: impl Fn(&ShardTask) -> bool,
) -> Vec<u64> {
    let now = Instant::now();
    let mut ran = Vec::new();
    loop {
        core.dispatch(now, rec);
        let queue = rec.queues.entry(w).or_default();
        let (done, held): (VecDeque<ShardTask>, _) = queue.drain(..).partition(&pick);
        *queue = held;
        if done.is_empty() {
            return ran;
        }
        ran.extend(done.iter().map(|t| t.shard));
        let outcomes = done.iter().map(|t| {
            let n = if t.job_id < 2 { 5 } else { 1 };
            (t.job_id, t.shard, ShardOutcome::Done(Output::Count(n)))
        });
        core.results(w, outcomes.collect::<Vec<_>>(), now, rec).expect("results");
    }
}

/// Writes `ops` to the journal at `path` and waits for the commit.
fn write(path: &Path, ops: Vec<JournalOp>) -> Core {
    let (core, journal, _) = open(Some(path), CoreConfig::default()).expect("open");
    ops.into_iter().for_each(|op| journal.send(op));
    let barrier = journal.sender().barrier();
    assert_eq!(barrier.blocking_recv().expect("writer"), Ok(()));
    journal.close();
    core
}

/// A fresh folder for one test's journal (named after the test and this process), and the
/// journal's path in it; the test removes the folder when it ends.
fn scratch_journal(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("journal.redb");
    let _ = std::fs::remove_file(&path);
    (dir, path)
}

#[test]
fn a_reopened_journal_resumes_jobs_keeps_ended_ones_and_owners_and_continues_ids() {
    let (dir, path) = scratch_journal("farm-store-test");
    let now = Instant::now();
    let mut rec = Recording::default();
    let mut core = write(&path, vec![]);
    let short = core
        .submit(noop(2), Owner::named("alice"), OutputShape::Count, now, &mut rec)
        .expect("submit");
    let long = core
        .submit(noop(10), Owner::named("bob"), OutputShape::Count, now, &mut rec)
        .expect("submit");
    let w = core.worker_joined(worker(), now, &mut rec);
    // The short job's two shards and the long job's shards 2 and 3 are done (out of order).
    let ran = run(&mut core, &mut rec, w, |t| t.job_id == short || [2, 3].contains(&t.shard));
    assert_eq!(ran.len(), 4);
    assert_eq!(core.status(short, now).expect("short").state, JobState::Succeeded);
    write(&path, take(&mut rec.journal));

    let (mut core, journal, replayed) = open(Some(&path), CoreConfig::default()).expect("reopen");
    assert_eq!((replayed.ended, replayed.resumed, replayed.outcomes), (1, 1, 2));
    let ended = core.status(short, now).expect("ended job kept");
    assert_eq!((ended.state, ended.result_json.as_deref()), (JobState::Succeeded, Some("10")));
    let resumed = core.status(long, now).expect("resumed");
    assert_eq!((resumed.state, resumed.done), (JobState::Running, 2));
    // Each job keeps its owner, ended or resumed.
    assert_eq!((&*ended.owner, &*resumed.owner), ("alice", "bob"));
    let mut rec = Recording::default();
    let w = core.worker_joined(worker(), now, &mut rec);
    let mut shards = run(&mut core, &mut rec, w, |_| true);
    shards.sort();
    assert_eq!(shards, [0, 1, 4, 5, 6, 7, 8, 9], "committed shards never run again");
    let end = core.status(long, now).expect("long");
    assert_eq!((end.state, end.result_json.as_deref()), (JobState::Succeeded, Some("10")));
    let next = core
        .submit(noop(1), Owner::anonymous(), OutputShape::Count, now, &mut rec)
        .expect("submit");
    assert_eq!(next, long + 1, "ids continue");
    // The resumed job ran on the new worker and ended.
    assert_eq!(take(&mut rec.defs), vec![(w, long)]);
    assert_eq!(take(&mut rec.forgets), vec![(w, long)]);
    assert_eq!(take(&mut rec.outputs).len(), 8);
    assert_eq!(take(&mut rec.finished).len(), 1);
    rec.assert_quiet();
    journal.close();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_resumed_job_keeps_the_labels_it_requires() {
    let (dir, path) = scratch_journal("farm-store-requires");
    let now = Instant::now();
    let mut rec = Recording::default();
    let mut core = write(&path, vec![]);
    let source = JobSource::Range { start: 0, end: 4, shard_size: 1 };
    let requires = [("python".to_string(), "CPython 3.12".to_string())].into();
    let spec = JobSpec::new("noop", source, Params::default(), 0).expect("spec");
    let spec = spec.with_requires(requires).expect("requires");
    let id =
        core.submit(Submission::new(spec), Owner::anonymous(), OutputShape::Count, now, &mut rec);
    let id = id.expect("submit");
    write(&path, take(&mut rec.journal));

    let (mut core, journal, replayed) = open(Some(&path), CoreConfig::default()).expect("reopen");
    assert_eq!(replayed.resumed, 1);
    let mut rec = Recording::default();
    // A worker without the label gets nothing of the resumed job; one with it gets it all.
    let plain = core.worker_joined(worker(), now, &mut rec);
    assert!(run(&mut core, &mut rec, plain, |_| true).is_empty());
    let labels = [("python".to_string(), "CPython 3.12".to_string())].into();
    let labelled = core.worker_joined(WorkerSpec { labels, ..worker() }, now, &mut rec);
    assert_eq!(run(&mut core, &mut rec, labelled, |_| true).len(), 4);
    assert_eq!(core.status(id, now).expect("job").state, JobState::Succeeded);
    assert_eq!(take(&mut rec.defs), vec![(labelled, id)]);
    take(&mut rec.forgets);
    take(&mut rec.outputs);
    take(&mut rec.finished);
    rec.assert_quiet();
    journal.close();
    let _ = std::fs::remove_dir_all(&dir);
}

/// BENCHMARKS.md: replay time of a journal holding 1,000,000 committed count outcomes of one
/// unfinished job, and journal bytes per outcome. Run with
/// `cargo test -p farm-master --lib replay_of_a_million -- --ignored --nocapture`.
#[test]
#[ignore]
fn replay_of_a_million_outcomes() {
    const N: u64 = 1_000_000;
    let (dir, path) = scratch_journal("farm-store-bench");
    let (_, journal, _) = open(Some(&path), CoreConfig::default()).expect("open");
    let spec = JobSpec::new(
        "noop",
        JobSource::Range { start: 0, end: N + 1, shard_size: 1 },
        Params::default(),
        0,
    )
    .expect("spec");
    let spec = submitted(spec);
    journal.send(JournalOp::Submit {
        job: 1,
        spec,
        output: OutputShape::Count,
        owner: "alice".into(),
    });
    let empty = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    for shard in 0..N {
        journal.send(JournalOp::Outcome { job: 1, shard, output: Output::Count(1) });
    }
    let barrier = journal.sender().barrier();
    assert_eq!(barrier.blocking_recv().expect("writer"), Ok(()));
    journal.close();
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let (core, journal, replayed) = open(Some(&path), CoreConfig::default()).expect("reopen");
    assert_eq!(replayed.outcomes, N);
    assert_eq!(core.status(1, Instant::now()).expect("job").done, N);
    println!(
        "replayed {N} outcomes in {} ms; journal {bytes} bytes, {:.1} bytes per outcome",
        replayed.took.as_millis(),
        (bytes - empty) as f64 / N as f64
    );
    journal.close();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every item of job `job` from `offset`, with the chunks' offsets.
fn items(store: &Store, job: JobId, offset: u64) -> (Vec<String>, Vec<u64>) {
    let (mut items, mut offsets) = (Vec::new(), Vec::new());
    store
        .read_items(job, offset, None, |chunk| {
            offsets.push(chunk.offset);
            items.extend(chunk.items_json);
            true
        })
        .expect("read");
    (items, offsets)
}

fn lines(items: &[&str]) -> Output {
    Output::Lines(items.iter().map(|s| s.to_string()).collect())
}

#[test]
fn list_outputs_are_replayed_kept_past_the_end_read_by_index_and_dropped_when_forgotten() {
    let (dir, path) = scratch_journal("farm-store-lists");
    let source = JobSource::Range { start: 0, end: 3, shard_size: 1 };
    let spec = JobSpec::new("hashchain", source, Params::default(), 0).expect("spec");
    let spec = submitted(spec);
    write(
        &path,
        vec![
            JournalOp::Submit { job: 1, spec, output: OutputShape::Lines, owner: "alice".into() },
            JournalOp::Outcome { job: 1, shard: 2, output: lines(&["e"]) },
            JournalOp::Outcome { job: 1, shard: 0, output: lines(&["a", "b"]) },
        ],
    );
    let (core, journal, replayed) = open(Some(&path), CoreConfig::default()).expect("reopen");
    assert_eq!((replayed.resumed, replayed.outcomes), (1, 2), "list outputs replay");
    let mut view = core.status(1, Instant::now()).expect("job");
    assert_eq!(view.done, 2);
    // A partial read (of a job that failed, say) marks each shard without an output.
    let partial = |offset| {
        let mut all = Vec::new();
        journal
            .store()
            .read_items(1, offset, Some(4), |chunk| {
                all.extend(chunk.items_json);
                true
            })
            .expect("read");
        all
    };
    let (one, three) = (r#"{"missing_shard":1}"#, r#"{"missing_shard":3}"#);
    assert_eq!(partial(0), [r#""a""#, r#""b""#, one, r#""e""#, three]);
    assert_eq!(partial(2), [one, r#""e""#, three]);
    journal.send(JournalOp::Outcome { job: 1, shard: 1, output: lines(&["c", "d"]) });
    view.state = JobState::Succeeded;
    view.result_in_store = true;
    journal.send(JournalOp::End(view));
    let store = journal.store();
    assert_eq!(journal.sender().barrier().blocking_recv().expect("writer"), Ok(()));
    let (all, offsets) = items(&store, 1, 0);
    assert_eq!(all, [r#""a""#, r#""b""#, r#""c""#, r#""d""#, r#""e""#], "in index order");
    assert_eq!(offsets, [0]);
    assert_eq!(items(&store, 1, 3), (vec![r#""d""#.into(), r#""e""#.into()], vec![3]));
    assert_eq!(items(&store, 1, 9).0.len(), 0, "past the end: nothing");
    journal.close();
    drop(store);

    let (core, journal, replayed) = open(Some(&path), CoreConfig::default()).expect("reopen");
    assert_eq!((replayed.ended, replayed.outcomes), (1, 0));
    let ended = core.status(1, Instant::now()).expect("ended job");
    assert!(ended.result_in_store && ended.result_json.is_none());
    let store = journal.store();
    assert_eq!(items(&store, 1, 0).0.len(), 5, "kept past the end");
    journal.send(JournalOp::Forget(1));
    assert_eq!(journal.sender().barrier().blocking_recv().expect("writer"), Ok(()));
    assert_eq!(items(&store, 1, 0).0.len(), 0, "dropped when forgotten");
    drop(store);
    journal.close();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_long_list_is_read_in_chunks_and_a_reader_that_stops_stops_the_read() {
    let path = std::env::temp_dir().join(format!("farm-store-chunks-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let (_, journal, _) = open(Some(&path), CoreConfig::default()).expect("open");
    let line = |i: u64| format!("{i:08}");
    for shard in 0..10u64 {
        let output = Output::Lines((shard * 1000..(shard + 1) * 1000).map(line).collect());
        journal.send(JournalOp::Outcome { job: 4, shard, output });
    }
    assert_eq!(journal.sender().barrier().blocking_recv().expect("writer"), Ok(()));
    let store = journal.store();
    let (all, offsets) = items(&store, 4, 1500);
    assert_eq!(all.len(), 8500);
    assert_eq!(all[0], format!("\"{}\"", line(1500)));
    assert_eq!(offsets, [1500, 1500 + CHUNK_ITEMS as u64, 1500 + 2 * CHUNK_ITEMS as u64]);
    let mut chunks = 0;
    let sent = store.read_items(4, 0, None, |_| {
        chunks += 1;
        false
    });
    assert_eq!((sent.expect("read"), chunks), (CHUNK_ITEMS as u64, 1));
    drop(store);
    journal.close();
    let _ = std::fs::remove_file(&path);
}

#[test]
fn shard_logs_are_kept_per_shard_read_by_query_and_dropped_when_forgotten() {
    let path = std::env::temp_dir().join(format!("farm-store-logs-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let (_, journal, _) = open(Some(&path), CoreConfig::default()).expect("open");
    let log = |shard: u64, failed: bool, text: &str| farm_proto::ShardLog {
        shard,
        failed,
        log: text.into(),
        ..Default::default()
    };
    for (job, shard, failed, text) in
        [(5, 2, true, "first run"), (5, 0, false, "a"), (5, 2, false, "rerun"), (6, 1, true, "b")]
    {
        journal.send(JournalOp::ShardLog { job, log: log(shard, failed, text) });
    }
    assert_eq!(journal.sender().barrier().blocking_recv().expect("writer"), Ok(()));
    let store = journal.store();
    let read = |job, query| {
        let mut logs = Vec::new();
        store
            .read_logs(job, query, |chunk| {
                logs.extend(chunk.into_iter().map(|l| (l.shard, l.log)));
                true
            })
            .expect("read");
        logs
    };
    let all = farm_proto::LogQuery::default();
    let texts = |v: &[(u64, &str)]| v.iter().map(|(s, t)| (*s, t.to_string())).collect::<Vec<_>>();
    assert_eq!(read(5, all), texts(&[(0, "a"), (2, "rerun")]), "a later run replaces a log");
    let mut runs = Vec::new();
    let query = farm_proto::LogQuery { shard: Some(2), failed_only: false };
    store
        .read_logs(5, query, |chunk| {
            runs.extend(chunk.into_iter().flat_map(|l| l.earlier).map(|e| (e.failed, e.log)));
            true
        })
        .expect("read");
    assert_eq!(runs, [(true, String::new())], "the earlier run stays, without its log");
    let failed = farm_proto::LogQuery { shard: None, failed_only: true };
    assert_eq!(read(5, failed), vec![]);
    assert_eq!(read(6, failed), texts(&[(1, "b")]));
    assert_eq!(
        read(5, farm_proto::LogQuery { shard: Some(0), failed_only: false }),
        texts(&[(0, "a")])
    );
    journal.send(JournalOp::Forget(5));
    assert_eq!(journal.sender().barrier().blocking_recv().expect("writer"), Ok(()));
    assert_eq!(read(5, all), vec![], "dropped when the job is forgotten");
    assert_eq!(read(6, all).len(), 1, "other jobs keep theirs");
    drop(store);
    journal.close();
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_snapshot_holds_what_was_journaled_before_it_and_nothing_after() {
    let (_core, journal, _) = open(None, CoreConfig::default()).expect("open");
    let outcome = |shard, output| JournalOp::Outcome { job: 1, shard, output };
    journal.send(outcome(0, Output::Count(1)));
    journal.send(outcome(1, lines(&["a"])));
    let snapshot = journal.sender().snapshot();
    journal.send(outcome(2, Output::Count(1)));
    journal.send(outcome(3, lines(&["b"])));
    let barrier = journal.sender().barrier();
    assert_eq!(barrier.blocking_recv().expect("writer"), Ok(()));
    let snapshot = snapshot.blocking_recv().expect("writer").expect("snapshot");
    let mut seen = Vec::new();
    let sent = snapshot.shard_outputs(1, |shard, _| {
        seen.push(shard);
        true
    });
    assert_eq!(sent.expect("read"), 2);
    assert_eq!(seen, [0, 1], "the outcomes journaled before it, counted and listed");
    let mut first = Vec::new();
    let sent = snapshot.shard_outputs(1, |shard, _| {
        first.push(shard);
        false
    });
    assert_eq!((sent.expect("read"), first), (0, vec![0]), "a reader that stops stops the read");
}
