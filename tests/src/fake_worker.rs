//! A fake worker on the generated client: it registers as a test tells it to and hands back
//! both directions of its session, for tests that play a hostile or lying worker.

use farm_proto::pb::{self, worker_message, worker_service_client};
use farm_proto::KernelDescriptor;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// The way to send a fake worker's messages, and its stream from the master.
pub type FakeSession = (mpsc::Sender<pb::WorkerMessage>, tonic::Streaming<pb::MasterMessage>);

/// A registration as `name` on `hostname` with `threads` threads offering `kernels`.
pub fn registration(
    name: &str,
    hostname: &str,
    threads: u32,
    kernels: &[KernelDescriptor],
) -> pb::Register {
    pb::Register {
        protocol_version: farm_proto::PROTOCOL_VERSION,
        threads,
        kernels: kernels.iter().map(pb::KernelDescriptor::from).collect(),
        name: name.to_string(),
        hostname: hostname.to_string(),
        pid: 1,
        restarts: 0,
        allocation: String::new(),
        labels: Default::default(),
    }
}

/// Opens a worker session at `url` and registers with `register`: the session, or the
/// master's refusal of the registration.
pub async fn fake_session(url: &str, register: pb::Register) -> Result<FakeSession, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut client = worker_service_client::WorkerServiceClient::new(channel);
    let (tx, rx) = mpsc::channel(64);
    let msg = pb::WorkerMessage { msg: Some(worker_message::Msg::Register(register)) };
    tx.send(msg).await.expect("register");
    let inbound = client.connect(ReceiverStream::new(rx)).await?.into_inner();
    Ok((tx, inbound))
}
