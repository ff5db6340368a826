//! `Run`, submit-and-wait in one call, against a real master: the answer is the job's final
//! status as Get has it (a failed job's too), a bad request gets the code Submit gives it, a
//! wait that runs out answers with the running job's status, and a caller that goes away
//! leaves the job running to its end.

use farm_client::{Client, JobState};
use farm_proto::pb::{self, farm_service_client::FarmServiceClient};
use farm_proto::{JobSource, JobSpec, Params};
use farm_tests::range_spec as spec;
use farm_tests::*;
use std::time::Duration;
use tonic::Code;

/// The generated gRPC client on `url`, for what the typed client does not expose.
async fn raw_client(url: &str) -> FarmServiceClient<tonic::transport::Channel> {
    let endpoint = tonic::transport::Endpoint::from_shared(url.to_string()).expect("url");
    FarmServiceClient::new(endpoint.connect().await.expect("connect"))
}

/// A range job of the typed client.
fn job(kind: &str, end: u64, shard_size: u64, params: &[&str]) -> JobSpec {
    let source = JobSource::Range { start: 0, end, shard_size };
    let params = Params::from_pairs(params).expect("params");
    JobSpec::new(kind, source, params, 0).expect("valid spec")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_answers_with_the_final_status_of_a_job_that_succeeded_or_failed() {
    within(run_answers_body()).await;
}

async fn run_answers_body() {
    let master = Master::start(&["--workers", "1", "--threads", "2", "--allow-exec"]);
    let mut client = Client::connect(&master.url).await.expect("client");

    // Queued before the worker registers: Run waits for it as long as it takes.
    let done = client.run(job("primes", 1000, 100, &[]), None).await.expect("run");
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    assert_eq!(done.result, serde_json::json!(168));
    assert_eq!((done.done, done.shards, done.in_flight), (10, 10, 0));
    let got = client.get(done.job).await.expect("get");
    assert_eq!((got.state, got.result.as_str()), (done.state, done.result.as_str()));

    // A failed job is an answer, not an error: its status says why.
    let failing = job("exec", 2, 1, &["cmd=sh -c 'exit 3'"]);
    let failed = client.run(failing, None).await.expect("run of a failing job");
    assert_eq!(failed.state, JobState::Failed, "{failed:?}");
    let error = failed.error.clone().unwrap_or_default();
    assert!(error.contains("exited with code 3"), "{failed:?}");
    assert_eq!(client.get(failed.job).await.expect("get").error, failed.error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_refuses_what_submit_refuses_with_the_same_codes() {
    within(run_refuses_body()).await;
}

async fn run_refuses_body() {
    let master = Master::start(&["--workers", "1", "--threads", "1"]);
    let mut farm = raw_client(&master.url).await;
    let mut bad_param = spec("hashchain", 0, 10, 1);
    bad_param.params.insert("rounds".into(), "many".into());
    let cases = [
        (Some(spec("primes", 10, 5, 1)), 0, Code::InvalidArgument),
        (Some(spec("primes", 0, 10, 0)), 0, Code::InvalidArgument),
        (None, 0, Code::InvalidArgument),
        (Some(bad_param), 0, Code::InvalidArgument),
        (Some(spec("nosuchkind", 0, 10, 1)), 0, Code::FailedPrecondition),
        (Some(spec("noop", 0, 10, 1)), 9999, Code::FailedPrecondition),
    ];
    for (spec, protocol_version, code) in cases {
        let what = format!("{spec:?} at protocol {protocol_version}");
        let submit = pb::SubmitRequest { spec: spec.clone(), protocol_version };
        let submitted = farm.submit(submit).await.expect_err(&what);
        let run = pb::RunRequest { spec, protocol_version, wait_ms: 0 };
        let ran = farm.run(run).await.expect_err(&what);
        assert_eq!((submitted.code(), ran.code()), (code, code), "{what}: {ran:?}");
        assert_eq!(submitted.message(), ran.message(), "{what}");
    }
    // None of them left a job behind.
    let jobs = farm.list(pb::ListRequest::default()).await.expect("list").into_inner().jobs;
    assert!(jobs.is_empty(), "{jobs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_that_runs_out_or_a_caller_that_leaves_lets_the_job_run_on() {
    within(run_out_body()).await;
}

async fn run_out_body() {
    let master = Master::start(&["--workers", "1", "--threads", "1"]);
    let mut client = Client::connect(&master.url).await.expect("client");
    // About 1.5 s of work on one thread: far longer than either wait below.
    let long = || job("spin", 30, 1, &["ms=50"]);

    let waited = Duration::from_millis(100);
    let running = client.run(long(), Some(waited)).await.expect("run with a wait");
    assert!(matches!(running.state, JobState::Queued | JobState::Running), "{running:?}");
    assert!(running.done < 30, "{running:?}");
    let ended = client.wait(running.job, |_| {}).await.expect("wait");
    assert_eq!((ended.state, ended.done), (JobState::Succeeded, 30), "{ended:?}");

    // A caller whose deadline passes goes away without the job's id: the job runs to its end.
    let mut farm = raw_client(&master.url).await;
    let mut request =
        tonic::Request::new(pb::RunRequest { spec: Some(long().into()), ..Default::default() });
    request.set_timeout(waited);
    let gone = farm.run(request).await.expect_err("the deadline passes first");
    // The server ends the call at the deadline (tonic says Cancelled, others DeadlineExceeded).
    assert!(matches!(gone.code(), Code::Cancelled | Code::DeadlineExceeded), "{gone:?}");
    let jobs = client.list().await.expect("list");
    let left = jobs.iter().map(|j| j.job).max().expect("the job was submitted");
    assert_ne!(left, running.job);
    let ended = client.wait(left, |_| {}).await.expect("wait");
    assert_eq!((ended.state, ended.done), (JobState::Succeeded, 30), "{ended:?}");
}
