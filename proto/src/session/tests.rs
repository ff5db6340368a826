//! Round trips of every session message, sizes against prost's own, and malformed input.

use super::*;
use crate::domain::ExecRun;
use crate::kernel::{OutputShape, ParamSpec};
use prost::Message;

fn outputs() -> Vec<Output> {
    vec![
        Output::Count(0),
        Output::Count(u64::MAX),
        Output::Fraction { hits: 0, samples: 7 },
        Output::Fraction { hits: 300, samples: 1 << 40 },
        Output::Lines(vec![]),
        Output::Lines(vec![String::new(), "ab".into(), "x".repeat(200)]),
        Output::Rows(vec![vec![], vec![0, 1, 300, u32::MAX]]),
        Output::Exec(vec![
            ExecRun { exit_code: 0, stdout: String::new() },
            ExecRun { exit_code: -9, stdout: "out".into() },
            ExecRun { exit_code: 2, stdout: "y".repeat(1000) },
        ]),
    ]
}

#[test]
fn outcome_sizes_match_what_prost_encodes() {
    let mut outcomes: Vec<ShardOutcome> = outputs().into_iter().map(ShardOutcome::Done).collect();
    outcomes.extend([
        ShardOutcome::Failed(String::new()),
        ShardOutcome::Failed("e".repeat(300)),
        ShardOutcome::Invalid("bad param".into()),
        ShardOutcome::Cancelled,
    ]);
    for outcome in outcomes {
        let ours = outcome.encoded_len();
        let wire = shard_done((0, 0, outcome.clone()));
        assert_eq!(ours, wire.encoded_len(), "{outcome:?}");
    }
}

#[test]
fn master_messages_round_trip() {
    let messages = [
        ToWorker::Welcome(Welcome { worker_id: 3, heartbeat: Duration::from_millis(500) }),
        ToWorker::Assign(Assign {
            jobs: vec![JobDef {
                job_id: 1,
                kind: "sleep".into(),
                params: Params::from_pairs(["ms=5"]).unwrap(),
                shard_timeout: Some(Duration::from_millis(250)),
                record_runs: true,
                priority: 7,
            }],
            tasks: vec![
                ShardTask { job_id: 1, shard: 0, lo: 0, hi: 10, input: None },
                ShardTask { job_id: 1, shard: 1, lo: 1, hi: 2, input: Some("line".into()) },
            ],
        }),
        ToWorker::CancelJob(4),
        ToWorker::ForgetJob(5),
        ToWorker::Drain,
        ToWorker::Heartbeat,
        ToWorker::Module(ModuleBytes { sha256: "ab".repeat(32), wasm: Ok(vec![0, 97, 115, 109]) }),
        ToWorker::Module(ModuleBytes { sha256: "cd".repeat(32), wasm: Err("gone".into()) }),
    ];
    for msg in messages {
        let wire = pb::MasterMessage::from(msg.clone());
        assert_eq!(ToWorker::try_from(wire).unwrap(), msg);
    }
}

#[test]
fn worker_messages_round_trip() {
    let kernel = KernelDescriptor::new("sleep", OutputShape::Count, "sleeps")
        .param(ParamSpec::uint("ms", 10, 0, 1000, "per index"));
    let messages = [
        ToMaster::Register(Register {
            protocol_version: crate::PROTOCOL_VERSION,
            threads: 4,
            kernels: vec![kernel, KernelDescriptor::open("user")],
            name: "w".into(),
            hostname: "h".into(),
            pid: 42,
            restarts: 1,
            allocation: "17".into(),
            labels: [("python".to_string(), "CPython 3.12".to_string())].into(),
        }),
        ToMaster::Heartbeat,
        ToMaster::Results(Results {
            done: outputs()
                .into_iter()
                .map(ShardOutcome::Done)
                .chain([
                    ShardOutcome::Failed("boom".into()),
                    ShardOutcome::Invalid("not a number".into()),
                    ShardOutcome::Cancelled,
                ])
                .enumerate()
                .map(|(i, o)| (9, i as u64, o))
                .collect(),
            started: vec![(9, 100), (10, 0)],
            runs: vec![ShardRun {
                job_id: 9,
                shard: 1,
                started_unix_ms: 1_700_000_000_000,
                duration_ms: 12,
                exit_code: Some(3),
                log: "warning: x\n".into(),
            }],
            costs: vec![JobCost { job_id: 9, runs: 3, busy_ns: 2_500_000 }],
        }),
        ToMaster::Draining,
        ToMaster::Refused { job_id: 7, reason: "bad param ms".into() },
        ToMaster::FetchModule("ef".repeat(32)),
    ];
    for msg in messages {
        let wire = pb::WorkerMessage::from(msg.clone());
        assert_eq!(ToMaster::try_from(wire).unwrap(), msg);
    }
}

#[test]
fn malformed_messages_are_errors_not_panics() {
    assert!(ToWorker::try_from(pb::MasterMessage { msg: None }).is_err());
    assert!(ToMaster::try_from(pb::WorkerMessage { msg: None }).is_err());
    let no_outcome = pb::ShardDone { job_id: 1, shard: 2, ..Default::default() };
    let no_value = pb::ShardDone {
        job_id: 1,
        shard: 3,
        outcome: Some(Outcome::Output(pb::ShardOutput { value: None })),
        deterministic: false,
    };
    for done in [no_outcome, no_value] {
        let batch = pb::ResultBatch { done: vec![done.clone()], ..Default::default() };
        let msg = pb::WorkerMessage { msg: Some(Out::Results(batch)) };
        assert!(ToMaster::try_from(msg).is_err());
        assert!(ShardOutcome::try_from(done.outcome).is_err());
    }
    let mut bad = pb::KernelDescriptor::from(
        &KernelDescriptor::new("k", OutputShape::Count, "")
            .param(ParamSpec::uint("n", 1, 0, 9, "")),
    );
    bad.params[0].r#type = 99;
    let register = pb::Register { kernels: vec![bad], ..Default::default() };
    assert!(ToMaster::try_from(pb::WorkerMessage { msg: Some(Out::Register(register)) }).is_err());
}
