//! The client service's own logic: what a List carries, the submit time.

use super::*;
use crate::clock::unix_ms;
use farm_proto::LIST_RESULT_BYTES;

fn view(result: Option<&str>, age_ms: u64) -> JobView {
    JobView {
        id: 1,
        kind: "hashchain".into(),
        state: JobState::Succeeded,
        total: 1,
        done: 1,
        in_flight: 0,
        result_json: result.map(std::sync::Arc::from),
        result_in_store: false,
        error: None,
        elapsed_ms: 5,
        age_ms,
        priority: 0,
        reruns: 0,
        waiting: None,
        output: OutputShape::Lines,
        owner: std::sync::Arc::from("default"),
    }
}

#[test]
fn a_list_carries_short_results_and_says_when_it_left_one_out() {
    let short = listed_status(view(Some("[\"ab\"]"), 0));
    assert_eq!(short.result, serde_json::json!(["ab"]));
    assert!(!short.result_left_out);
    let long = format!("[\"{}\"]", "x".repeat(LIST_RESULT_BYTES));
    let listed = listed_status(view(Some(&long), 0));
    assert!(listed.result.is_null() && listed.result_left_out);
    // Get carries it whole.
    assert_eq!(job_status(view(Some(&long), 0)).result.as_str(), long);
}

#[test]
fn the_submit_time_is_now_less_the_age() {
    let status = job_status(view(None, 60_000));
    let expected = unix_ms() - 60_000;
    assert!(status.submitted_unix_ms.abs_diff(expected) < 5_000, "{status:?}");
}
