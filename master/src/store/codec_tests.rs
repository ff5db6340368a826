//! The summary codec: whatever a job's view holds, restart reads back exactly that.

use super::*;
use crate::core::Submission;
use farm_proto::pb;
use farm_proto::{JobSource, Params};
use prop::option::of;
use proptest::prelude::*;
use prost::Message;

/// Wall-clock time of the write and of the read, in the property (the age is kept as a
/// submission time).
const NOW_MS: u64 = 1_800_000_000_000;

fn any_shape() -> impl Strategy<Value = OutputShape> {
    prop_oneof![
        Just(OutputShape::Any),
        Just(OutputShape::Count),
        (-1e9..1e9f64).prop_map(|scale| OutputShape::Fraction { scale }),
        Just(OutputShape::Lines),
        Just(OutputShape::Rows),
        Just(OutputShape::Exec),
    ]
}

fn any_state() -> impl Strategy<Value = JobState> {
    prop_oneof![
        Just(JobState::Queued),
        Just(JobState::Running),
        Just(JobState::Succeeded),
        Just(JobState::Failed),
        Just(JobState::Cancelled),
    ]
}

prop_compose! {
    fn any_view()(
        id in any::<u64>(), kind in ".{0,12}", state in any_state(),
        counts in any::<(u64, u64, u64, u64)>(), result in of(".{0,24}"),
        error in of(".{0,24}"), elapsed_ms in any::<u64>(), age_ms in 0..=NOW_MS,
        priority in any::<i32>(), result_in_store in any::<bool>(), waiting in of(".{0,24}"),
        output in any_shape(),
        owner in ".{1,12}",
    ) -> JobView {
        let (total, done, in_flight, reruns) = counts;
        JobView {
            id, kind, state, total, done, in_flight,
            result_json: result.map(Arc::from),
            result_in_store, error, elapsed_ms, age_ms, priority, reruns, waiting, output,
            owner: Arc::from(owner),
        }
    }
}

proptest! {
    #[test]
    fn a_summary_reads_back_as_the_view_written(view in any_view()) {
        let rec = JobRecord {
            ended: Some(encode_summary(view.clone(), NOW_MS)),
            ..JobRecord::submitted(OutputShape::Count, NOW_MS, &view.owner)
        };
        let bytes = rec.encode_to_vec();
        let back = JobRecord::decode(bytes.as_slice()).expect("decodes");
        prop_assert_eq!(back.owner().name, view.owner.clone());
        let summary = back.ended.expect("ended");
        // The record's declared shape differs from any the view holds: the summary's own wins.
        let declared = OutputShape::Fraction { scale: 0.5 };
        prop_assert_eq!(decode_summary(view.id, summary, declared, NOW_MS), Ok(view));
    }
}

#[test]
fn a_summary_written_as_a_job_status_before_reads_back() {
    // What schema 3 files hold: farm.proto's JobStatus, empty strings left out.
    let old = pb::JobStatus {
        job_id: 7,
        kind: "primes".into(),
        state: pb::JobState::Failed as i32,
        shards_total: 4,
        shards_done: 3,
        result_json: String::new(),
        error: "shard 3 failed".into(),
        elapsed_ms: 90,
        priority: -2,
        shards_rerun: 1,
        submitted_unix_ms: NOW_MS - 500,
        ..Default::default()
    };
    let summary = Summary::decode(old.encode_to_vec().as_slice()).expect("decodes");
    let view = decode_summary(7, summary, OutputShape::Rows, NOW_MS).expect("a view");
    assert_eq!(view.output, OutputShape::Rows, "the record's declared shape");
    assert_eq!(view.state, JobState::Failed);
    assert_eq!((view.kind.as_str(), view.total, view.done, view.reruns), ("primes", 4, 3, 1));
    assert_eq!(view.result_json, None);
    assert_eq!(view.error.as_deref(), Some("shard 3 failed"));
    assert_eq!((view.elapsed_ms, view.age_ms, view.priority), (90, 500, -2));
    // Jobs journaled before owners were kept belong to the one shared token's principal.
    assert_eq!(&*view.owner, ANONYMOUS);
    let record = JobRecord::submitted(OutputShape::Count, NOW_MS, "");
    assert_eq!(&*record.owner().name, ANONYMOUS);
}

#[test]
fn an_unknown_state_is_a_corrupt_record() {
    let summary = Summary { state: 0, ..Default::default() };
    assert!(decode_summary(1, summary, OutputShape::Count, NOW_MS).is_err());
}

#[test]
fn an_older_summary_of_an_undeclared_shape_takes_the_shape_of_its_result() {
    let old = |result: Option<&str>, result_in_store| Summary {
        state: state_code(JobState::Succeeded),
        result_json: result.map(String::from),
        result_in_store,
        ..Default::default()
    };
    let shape = |s| decode_summary(1, s, OutputShape::Any, NOW_MS).expect("a view").output;
    assert_eq!(shape(old(Some(r#"["[x]"]"#), false)), OutputShape::Lines);
    assert_eq!(shape(old(None, true)), OutputShape::Lines);
    assert_eq!(shape(old(Some("12"), false)), OutputShape::Count);
    assert_eq!(shape(old(Some(r#"{"hits":1}"#), false)), OutputShape::Fraction { scale: 1.0 });
    // A shape the summary holds is taken as it is, whatever the result looks like.
    let lines = Summary { output: Some(OutputShape::Count.to_wire().0), ..old(Some("[1]"), false) };
    assert_eq!(shape(lines), OutputShape::Count);
}

#[test]
fn a_spec_reads_back_as_submitted_inputs_and_params_included() {
    let lines = vec!["x".to_string(), String::new(), "zz".to_string()];
    let params = Params::from_pairs(["k=v", "n=1"]).expect("params");
    let mut inputs = JobSpec::new("noop", JobSource::Inputs(lines), params, 3).expect("spec");
    inputs.limits.retries = 2;
    let source = JobSource::Range { start: 5, end: 9, shard_size: 2 };
    let range = JobSpec::new("noop", source, Params::default(), 0).expect("spec");
    for spec in [inputs, range] {
        let job = Submission::new(spec.clone()).take_journal().expect("a new submission");
        let bytes = encode_spec(job);
        assert_eq!(decode_spec(&bytes), Ok(spec));
    }
}
