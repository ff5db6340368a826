//! Token authentication: a master with a token refuses clients and workers without it (or with
//! another), with Unauthenticated and a one-line message, and keeps serving the ones that have
//! it; a separate worker token keeps the two roles apart; listening workers check masters.

use farm_proto::pb::{self, worker_host_client::WorkerHostClient};
use farm_tests::*;

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

#[test]
fn clients_need_the_token_and_get_a_clear_error_without_it() {
    let master = Master::start(&["--token", "s3cret", "--workers", "1", "--threads", "1"]);
    let url = master.url.clone();
    let missing = run(&["--master", &url, "jobs"], &master.tag);
    assert!(!missing.status.success());
    assert_eq!(
        stderr_of(&missing),
        "error: unauthenticated: missing token (authorization: Bearer TOKEN)"
    );
    let wrong = run(&["--master", &url, "--token", "s3cres", "jobs"], &master.tag);
    assert!(!wrong.status.success());
    assert_eq!(stderr_of(&wrong), "error: unauthenticated: wrong token");

    // The local worker got the token from its master; the right token works end to end.
    let token_file = std::env::temp_dir().join(format!("{}-token", master.tag));
    std::fs::write(&token_file, "s3cret\n").expect("token file");
    let file_arg = token_file.to_string_lossy().to_string();
    let ok = run(
        &[
            "--master",
            &url,
            "--token-file",
            &file_arg,
            "submit",
            "primes",
            "--range",
            "0..1000",
            "--wait",
            "--json",
        ],
        &master.tag,
    );
    assert_eq!(json(&ok)["result"], 168);
    let _ = std::fs::remove_file(token_file);
}

#[test]
fn a_separate_worker_token_keeps_workers_and_clients_apart() {
    let master = Master::start(&["--token", "client-t", "--worker-token", "worker-t"]);
    let url = master.url.clone();
    // A worker holding the client token is refused and stops (retrying cannot help).
    let refused = run(&["worker", "--master", &url, "--token", "client-t"], &master.tag);
    assert!(!refused.status.success());
    assert!(
        stderr_of(&refused).ends_with("master refused the worker: wrong token"),
        "{}",
        stderr_of(&refused)
    );
    // The worker token registers a worker but cannot submit.
    let _w = master.worker(&["--token", "worker-t", "--threads", "1"]);
    let list = || run(&["--master", &url, "--token", "client-t", "workers", "--json"], &master.tag);
    assert!(wait_until(WAIT, || json(&list()).as_array().is_some_and(|w| w.len() == 1)));
    let submit = run(
        &["--master", &url, "--token", "worker-t", "submit", "noop", "--range", "0..10"],
        &master.tag,
    );
    assert!(!submit.status.success());
    assert!(stderr_of(&submit).contains("unauthenticated"), "{}", stderr_of(&submit));
    let ok = run(
        &[
            "--master", &url, "--token", "client-t", "submit", "noop", "--range", "0..10",
            "--wait", "--json",
        ],
        &master.tag,
    );
    assert_eq!(json(&ok)["result"], 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listening_worker_requires_the_token_from_masters() {
    let tag = tag();
    let (_w, addr) = listening_worker(&tag, "127.0.0.1:0", &["--token", "wt"]);
    // Without the token, the worker refuses to be attached.
    let channel = within(
        tonic::transport::Endpoint::from_shared(format!("http://{addr}")).expect("url").connect(),
    )
    .await
    .expect("connect");
    let refused = within(
        WorkerHostClient::new(channel).attach(tokio_stream::iter(Vec::<pb::MasterMessage>::new())),
    )
    .await
    .map(|_| ())
    .expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    // A master with the worker token attaches it and runs a job on it.
    let master =
        Master::start_tagged(&["--connect", &addr, "--worker-token", "wt"], &tag, "127.0.0.1:0");
    tokio::task::block_in_place(|| {
        master.wait_workers(1);
        assert_eq!(master.submit_wait(&["primes", "--range", "0..1000"])["result"], 168);
    });
}
