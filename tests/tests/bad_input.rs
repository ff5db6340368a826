//! Bad input from clients and workers gets a specific gRPC status and a one-line message, the
//! CLI exits non-zero, and the master keeps serving everyone else.

use farm_proto::pb::{
    self, farm_service_client::FarmServiceClient, worker_service_client::WorkerServiceClient,
};
use farm_tests::range_spec as spec;
use farm_tests::*;
use tonic::Code;

async fn submit_code(
    client: &mut FarmServiceClient<tonic::transport::Channel>,
    req: pb::SubmitRequest,
) -> Code {
    match client.submit(req).await {
        Ok(_) => Code::Ok,
        Err(status) => {
            assert!(!status.message().is_empty() && !status.message().contains('\n'), "{status:?}");
            status.code()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_specific_status_codes_and_the_master_keeps_serving() {
    within(bad_requests_get_specific_status_codes_and_the_master_keeps_serving_body()).await;
}

async fn bad_requests_get_specific_status_codes_and_the_master_keeps_serving_body() {
    let master = Master::start(&["--workers", "1", "--threads", "1", "--max-shards", "1000000"]);
    let channel = tonic::transport::Endpoint::from_shared(master.url.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut client = FarmServiceClient::new(channel.clone()).max_decoding_message_size(usize::MAX);
    let req = |spec: pb::JobSpec| pb::SubmitRequest { spec: Some(spec), protocol_version: 0 };

    // A long job runs the whole time; it must be untouched by what follows.
    let long =
        client.submit(req(spec("noop", 0, 200_000, 100))).await.expect("submit").into_inner();

    // No worker offers it, but one that does may still connect: a precondition, not a bad
    // argument (the kinds come from the workers, not from a list in the master).
    assert_eq!(
        submit_code(&mut client, req(spec("nosuchkind", 0, 10, 1))).await,
        Code::FailedPrecondition
    );
    limits_and_huge_inputs_are_refused_briefly(&mut client, channel.clone()).await;
    // Empty and reversed ranges, a zero shard size.
    for (start, end, shard_size) in [(10, 10, 1), (10, 5, 1), (0, 10, 0)] {
        let bad = req(spec("primes", start, end, shard_size));
        assert_eq!(submit_code(&mut client, bad).await, Code::InvalidArgument);
    }
    assert_eq!(submit_code(&mut client, req(spec("", 0, 10, 1))).await, Code::InvalidArgument);
    assert_eq!(
        submit_code(&mut client, pb::SubmitRequest { spec: None, protocol_version: 0 }).await,
        Code::InvalidArgument
    );
    let mut bad_param = spec("hashchain", 0, 10, 1);
    bad_param.params.insert("rounds".into(), "many".into());
    assert_eq!(submit_code(&mut client, req(bad_param)).await, Code::InvalidArgument);
    assert_eq!(
        submit_code(&mut client, req(spec("noop", 0, u64::MAX, 1))).await,
        Code::ResourceExhausted
    );
    let mut exec = spec("exec", 0, 10, 1);
    exec.params.insert("cmd".into(), "true".into());
    assert_eq!(submit_code(&mut client, req(exec)).await, Code::FailedPrecondition);
    let other_version =
        pb::SubmitRequest { spec: Some(spec("noop", 0, 10, 1)), protocol_version: 99 };
    assert_eq!(submit_code(&mut client, other_version).await, Code::FailedPrecondition);
    assert_eq!(
        client.get(pb::GetRequest { job_id: 999 }).await.map(|_| ()).map_err(|s| s.code()),
        Err(Code::NotFound)
    );
    assert_eq!(
        client.cancel(pb::CancelRequest { job_id: 999 }).await.map(|_| ()).map_err(|s| s.code()),
        Err(Code::NotFound)
    );

    // An oversized message is refused by the transport, not by a crash.
    let big = pb::JobSpec {
        kind: "noop".into(),
        inputs: vec!["x".repeat(1 << 20); 70],
        ..Default::default()
    };
    assert_eq!(submit_code(&mut client, req(big)).await, Code::OutOfRange);

    bad_registrations_are_refused(channel).await;

    // The long job still completes exactly, and a new one is accepted.
    let mut client = farm_client::Client::connect(&master.url).await.expect("client");
    let status = tokio::time::timeout(WAIT, client.wait(long.job_id, |_| {}))
        .await
        .expect("in time")
        .expect("wait");
    assert_eq!(status.result, serde_json::json!(200_000));
    let source = farm_proto::JobSource::Range { start: 0, end: 100, shard_size: 7 };
    let spec = farm_proto::JobSpec::new("noop", source, Default::default(), 0).expect("spec");
    let job = client.submit(spec).await.expect("submit").job;
    let status =
        tokio::time::timeout(WAIT, client.wait(job, |_| {})).await.expect("in time").expect("wait");
    assert_eq!(status.result, serde_json::json!(100));
}

/// Limits on retries, crashes and verification are checked at the door; an error quotes a few
/// dozen bytes of a huge input; bytes that are not a request are a bad argument.
async fn limits_and_huge_inputs_are_refused_briefly(
    client: &mut FarmServiceClient<tonic::transport::Channel>,
    channel: tonic::transport::Channel,
) {
    let req = |spec: pb::JobSpec| pb::SubmitRequest { spec: Some(spec), protocol_version: 0 };
    for (retries, max_crashes, verify_percent) in [(101, 0, 0), (0, 101, 0), (0, 0, 101)] {
        let limited =
            pb::JobSpec { retries, max_crashes, verify_percent, ..spec("noop", 0, 10, 1) };
        assert_eq!(submit_code(client, req(limited)).await, Code::InvalidArgument);
    }
    // An error quotes a few dozen bytes of a huge input, never the whole of it.
    let mut huge = spec("hashchain", 0, 10, 1);
    huge.params.insert("r".repeat(10 << 20), "1".into());
    huge.params.insert("rounds".into(), "x".repeat(10 << 20));
    let refused = client.submit(req(huge)).await.expect_err("refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().len() < 400, "{} bytes", refused.message().len());
    assert!(refused.message().contains("bytes)"), "{}", refused.message());
    // Bytes that are not a SubmitRequest at all.
    assert_eq!(garbage_submit(channel.clone()).await, Code::InvalidArgument);
}

/// Workers of another protocol version, with an impossible thread count, offering too many
/// kernels, or whose first message is not a registration, are refused.
async fn bad_registrations_are_refused(channel: tonic::transport::Channel) {
    let mut workers = WorkerServiceClient::new(channel);
    for (version, threads, want) in [
        (99, 1, Code::FailedPrecondition),
        (farm_proto::PROTOCOL_VERSION, 0, Code::InvalidArgument),
        (farm_proto::PROTOCOL_VERSION, 1_000_000, Code::InvalidArgument),
        // 257 kernels: over the registration bound.
        (farm_proto::PROTOCOL_VERSION, 1, Code::InvalidArgument),
    ] {
        let kernels = if threads == 1 && version == farm_proto::PROTOCOL_VERSION {
            let open = |i: usize| pb::KernelDescriptor {
                kind: format!("k{i}"),
                open_params: true,
                ..Default::default()
            };
            (0..257).map(open).collect()
        } else {
            vec![]
        };
        let register =
            pb::Register { protocol_version: version, threads, kernels, ..Default::default() };
        let first = pb::WorkerMessage { msg: Some(pb::worker_message::Msg::Register(register)) };
        let result = workers.connect(once(first)).await;
        assert_eq!(
            result.map(|_| ()).map_err(|s| s.code()),
            Err(want),
            "version {version} threads {threads}"
        );
    }
    // A worker whose first message is not a registration is refused too.
    let beat =
        pb::WorkerMessage { msg: Some(pb::worker_message::Msg::Heartbeat(pb::Heartbeat {})) };
    assert_eq!(
        workers.connect(once(beat)).await.map(|_| ()).map_err(|s| s.code()),
        Err(Code::InvalidArgument)
    );
}

/// A worker stream of one message (that then stays open until dropped).
fn once(msg: pb::WorkerMessage) -> tokio_stream::Iter<std::vec::IntoIter<pb::WorkerMessage>> {
    tokio_stream::iter(vec![msg])
}

#[test]
fn the_cli_prints_one_line_errors_and_exits_non_zero() {
    let master = Master::start(&[]);
    let tag = master.tag.clone();
    let cases: [&[&str]; 6] = [
        &["submit", "nosuchkind", "--range", "0..10"],
        &["submit", "primes", "--range", "10..5"],
        &["submit", "primes", "--range", "a..b"],
        &["submit", "primes", "--range", "0..10", "--shard-size", "0"],
        &["submit", "primes", "--range", "0..10", "--param", "novalue"],
        &["status", "12345"],
    ];
    for args in cases {
        let mut all = vec!["--master", master.url.as_str()];
        all.extend_from_slice(args);
        let out = run(&all, &tag);
        assert!(!out.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
        assert!(lines[0].starts_with("error: "), "{args:?}: {stderr}");
    }
    let out = run(&["--master", "http://127.0.0.1:1", "jobs"], &tag);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach master"));
    // Still serving after all that.
    let out = master.cli(&["submit", "primes", "--range", "0..100", "--json"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out)["shards"], 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_clients_at_once_are_all_served_and_no_worker_is_lost() {
    let master = Master::start(&["--workers", "2", "--threads", "1", "--heartbeat", "1s"]);
    let before = tokio::task::block_in_place(|| master.wait_workers(2));
    let mut clients = Vec::new();
    for i in 0..100u64 {
        let url = master.url.clone();
        clients.push(tokio::spawn(async move {
            let mut client = farm_client::Client::connect(&url).await?;
            let source = farm_proto::JobSource::Range { start: 0, end: 1000 + i, shard_size: 100 };
            let spec = farm_proto::JobSpec::new("noop", source, Default::default(), 0)
                .expect("valid spec");
            let job = client.submit(spec).await?.job;
            client.wait(job, |_| {}).await
        }));
    }
    for (i, handle) in clients.into_iter().enumerate() {
        let status = tokio::time::timeout(WAIT, handle)
            .await
            .expect("served in time")
            .expect("client task")
            .expect("job finished");
        assert_eq!(status.result, serde_json::json!(1000 + i as u64));
    }
    // The same two sessions are still there: nobody was declared lost under the load.
    let after = tokio::task::block_in_place(|| master.wait_workers(2));
    let ids = |ws: &[serde_json::Value]| ws.iter().map(|w| w["worker"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&before), ids(&after));
}

/// Sends bytes that do not decode as a SubmitRequest to Submit; returns the status code.
async fn garbage_submit(channel: tonic::transport::Channel) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/farm.v1.FarmService/Submit");
    // Field 1 (spec) as a length-delimited field claiming 100 bytes that never come.
    let garbage = vec![0x0a, 100, 1, 2, 3];
    match grpc.unary::<_, Vec<u8>, _>(tonic::Request::new(garbage), path, RawCodec).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// Sends and receives raw bytes, to play a client that does not speak protobuf.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}
