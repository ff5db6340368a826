//! Round trips of the client-facing types through their prost forms, refusals of what the
//! domain cannot hold, and the `--json` shapes.

use crate::pb;
use crate::status::*;
use crate::Output;

fn wire_status(state: pb::JobState, result_json: &str, error: &str) -> pb::JobStatus {
    pb::JobStatus {
        job_id: 7,
        kind: "primes".into(),
        state: state as i32,
        shards_total: 100,
        shards_done: 60,
        shards_running: 4,
        result_json: result_json.into(),
        error: error.into(),
        elapsed_ms: 1234,
        priority: -2,
        shards_rerun: 3,
        result_in_store: false,
        submitted_unix_ms: 1_700_000_000_000,
        result_left_out: false,
        waiting: String::new(),
    }
}

fn wire_worker(dialed_by: &str) -> pb::WorkerInfo {
    pb::WorkerInfo {
        worker_id: 4,
        name: "w".into(),
        hostname: "h".into(),
        pid: 99,
        threads: 2,
        shards_running: 1,
        shards_done: 10,
        kinds: vec!["noop".into(), "primes".into()],
        connected_secs: 5,
        address: "127.0.0.1:1".into(),
        restarts: 1,
        draining: true,
        dialed_by: dialed_by.into(),
        suspect: "held shard 3 of job 1 for over 5s".into(),
        labels: [("gpu".to_string(), "a100".to_string())].into(),
    }
}

#[test]
fn job_statuses_round_trip_in_every_state() {
    let states = [
        (pb::JobState::Queued, JobState::Queued, "", ""),
        (pb::JobState::Running, JobState::Running, "", ""),
        (pb::JobState::Succeeded, JobState::Succeeded, r#"{"estimate":3.0,"hits":3}"#, ""),
        (pb::JobState::Failed, JobState::Failed, "", "shard 3 failed"),
        (pb::JobState::Cancelled, JobState::Cancelled, "", "cancelled"),
    ];
    for (wire_state, state, result, error) in states {
        let wire = wire_status(wire_state, result, error);
        let status = JobStatus::try_from(wire.clone()).expect("valid status");
        assert_eq!(status.state, state);
        assert_eq!(status.is_final(), state.is_final());
        assert_eq!(status.error.is_some(), !error.is_empty());
        assert_eq!(status.result.is_null(), result.is_empty());
        assert_eq!(pb::JobStatus::from(status), wire);
    }
}

#[test]
fn bad_job_statuses_are_refused() {
    let unspecified = wire_status(pb::JobState::Unspecified, "", "");
    assert!(JobStatus::try_from(unspecified).is_err());
    let unknown = pb::JobStatus { state: 99, ..wire_status(pb::JobState::Queued, "", "") };
    let err = JobStatus::try_from(unknown).expect_err("unknown state");
    assert!(err.to_string().contains("unknown job state 99"), "{err}");
    let not_json = wire_status(pb::JobState::Succeeded, "[1,", "");
    assert!(JobStatus::try_from(not_json).is_err());
}

#[test]
fn workers_round_trip_and_unknown_dialers_are_refused() {
    for (word, dialed_by) in [("worker", DialedBy::Worker), ("master", DialedBy::Master)] {
        let info = WorkerInfo::try_from(wire_worker(word)).expect("valid worker");
        assert_eq!(info.dialed_by, dialed_by);
        let json = serde_json::to_value(&info).expect("json");
        assert_eq!(json["dialed_by"], word);
        assert_eq!(pb::WorkerInfo::from(info), wire_worker(word));
    }
    assert!(WorkerInfo::try_from(wire_worker("")).is_err());
    assert!(WorkerInfo::try_from(wire_worker("Worker")).is_err());
}

#[test]
fn job_events_round_trip_and_empty_ones_are_refused() {
    let finished =
        JobStatus::try_from(wire_status(pb::JobState::Succeeded, "42", "")).expect("valid status");
    let events = [
        JobEvent::Progress(Progress { done: 1, total: 2, in_flight: 1, waiting: None }),
        JobEvent::Shard { shard: 3, output: Output::Lines(vec!["ab".into()]) },
        JobEvent::Finished(finished),
    ];
    for event in events {
        let wire = pb::JobEvent::from(event.clone());
        assert_eq!(JobEvent::try_from(wire).expect("valid event"), event);
    }
    assert!(JobEvent::try_from(pb::JobEvent { event: None }).is_err());
    let no_output = pb::ShardResult { shard: 1, output: None };
    let wire = pb::JobEvent { event: Some(pb::job_event::Event::Shard(no_output)) };
    assert!(JobEvent::try_from(wire).is_err());
    let bad_status =
        pb::JobEvent { event: Some(pb::job_event::Event::Finished(pb::JobStatus::default())) };
    assert!(JobEvent::try_from(bad_status).is_err());
}

#[test]
fn lists_convert_whole_or_not_at_all() {
    let jobs = pb::ListResponse {
        jobs: vec![
            wire_status(pb::JobState::Running, "", ""),
            wire_status(pb::JobState::Queued, "", ""),
        ],
    };
    let domain = Vec::<JobStatus>::try_from(jobs.clone()).expect("valid list");
    assert_eq!(pb::ListResponse::from(domain), jobs);
    let mut bad = jobs;
    bad.jobs[1].state = 0;
    assert!(Vec::<JobStatus>::try_from(bad).is_err());

    let workers = pb::ListWorkersResponse { workers: vec![wire_worker("worker")] };
    let domain = Vec::<WorkerInfo>::try_from(workers.clone()).expect("valid list");
    assert_eq!(pb::ListWorkersResponse::from(domain), workers);
    let bad = pb::ListWorkersResponse { workers: vec![wire_worker("nobody")] };
    assert!(Vec::<WorkerInfo>::try_from(bad).is_err());
}

#[test]
fn the_json_shape_of_a_status_is_the_one_the_readme_shows() {
    let wire = pb::JobStatus {
        job_id: 1,
        kind: "primes".into(),
        state: pb::JobState::Succeeded as i32,
        shards_total: 100,
        shards_done: 100,
        result_json: "78498".into(),
        elapsed_ms: 74,
        submitted_unix_ms: 1_700_000_000_000,
        ..Default::default()
    };
    let status = JobStatus::try_from(wire).expect("valid status");
    assert_eq!(
        serde_json::to_string(&status).expect("json"),
        r#"{"job":1,"kind":"primes","state":"succeeded","shards":100,"done":100,"in_flight":0,"result":78498,"elapsed_ms":74,"priority":0,"reruns":0,"submitted_unix_ms":1700000000000}"#
    );
    assert_eq!(status.result, serde_json::json!(78498));
    let failed = JobStatus::try_from(wire_status(pb::JobState::Failed, "", "boom")).expect("valid");
    let v = serde_json::to_value(&failed).expect("json");
    assert_eq!(v["result"], serde_json::Value::Null);
    assert_eq!(v["error"], "boom");
    assert_eq!(v["state"], "failed");
}

#[test]
fn words_pad_in_tables_and_results_keep_their_text() {
    assert_eq!(format!("[{:<10}]", JobState::Cancelled), "[cancelled ]");
    assert_eq!(format!("[{:<8}]", DialedBy::Master), "[master  ]");
    let pi = JsonText::parse(r#"{"estimate":3.14,"hits":1}"#.into()).expect("json");
    assert_eq!(pi.to_string(), r#"{"estimate":3.14,"hits":1}"#);
    assert_eq!(pi.value().expect("json")["hits"], 1);
    let rows: Vec<Vec<u32>> =
        JsonText::parse("[[1,2],[3,4]]".into()).expect("json").to().expect("rows");
    assert_eq!(rows, vec![vec![1, 2], vec![3, 4]]);
    assert!(JsonText::parse("".into()).is_err());
    assert!(JsonText::default().is_null());
}

#[test]
fn a_waiting_job_says_why_in_its_status_and_progress() {
    let why = "no connected worker offers kind collatz";
    let wire = pb::JobStatus { waiting: why.into(), ..wire_status(pb::JobState::Running, "", "") };
    let status = JobStatus::try_from(wire.clone()).expect("valid status");
    assert_eq!(status.waiting.as_deref(), Some(why));
    assert_eq!(serde_json::to_value(&status).expect("json")["waiting"], why);
    assert_eq!(pb::JobStatus::from(status), wire);
    let not_waiting = JobStatus::try_from(wire_status(pb::JobState::Running, "", "")).expect("ok");
    assert!(serde_json::to_value(&not_waiting).expect("json").get("waiting").is_none());
    let p = Progress { done: 1, total: 2, in_flight: 0, waiting: Some(why.into()) };
    assert_eq!(Progress::from(pb::Progress::from(p.clone())), p);
}
