use super::*;
use farm_proto::session::{ModuleBytes, ToWorker};
use futures::StreamExt;

/// A message of about `n` bytes on the wire.
fn module(n: usize) -> pb::MasterMessage {
    ToWorker::Module(ModuleBytes { sha256: "ab".repeat(32), wasm: Ok(vec![7; n]) }).into()
}

fn beat() -> pb::MasterMessage {
    ToWorker::Heartbeat.into()
}

/// The next item, which must be ready now.
fn next_now(rx: &mut WorkerRx) -> Option<Result<pb::MasterMessage, Status>> {
    futures::FutureExt::now_or_never(rx.next()).expect("the stream is ready")
}

#[tokio::test]
async fn messages_leave_in_order_and_their_bytes_are_counted() {
    let sent = Counter::default();
    let (tx, mut rx) = channel(1000, sent.clone());
    let (a, b) = (module(10), beat());
    let bytes = a.encoded_len() + b.encoded_len();
    tx.send(a.clone()).expect("queued");
    tx.send(b.clone()).expect("queued");
    assert_eq!(tx.queued(), bytes);
    assert_eq!(next_now(&mut rx).map(Result::ok), Some(Some(a)));
    assert_eq!(next_now(&mut rx).map(Result::ok), Some(Some(b)));
    assert_eq!(tx.queued(), 0);
    assert_eq!(sent.get(), bytes as u64);
    assert!(futures::FutureExt::now_or_never(rx.next()).is_none(), "open and empty: pending");
    // Every sender gone: the stream ends.
    drop(tx);
    assert!(next_now(&mut rx).is_none());
}

#[tokio::test]
async fn a_queue_over_its_bound_is_emptied_and_its_stream_fails() {
    let (tx, mut rx) = channel(1000, Counter::default());
    let reader = tx.clone();
    // One message larger than the bound still goes (the queue was under it)...
    tx.send(module(1500)).expect("queued");
    let queued = tx.queued();
    assert!(queued > 1000);
    // ...but nothing more until the transport takes it.
    assert_eq!(tx.send(beat()), Err(NotSent::FellBehind { queued }));
    assert_eq!(tx.queued(), 0, "the queue's memory is freed at once");
    assert_eq!(reader.closed().await, "fell behind: more than 1000 bytes queued");
    let Some(Err(status)) = next_now(&mut rx) else { panic!("the stream fails") };
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(next_now(&mut rx).is_none());
    assert_eq!(tx.send(beat()), Err(NotSent::Closed));
}

#[tokio::test]
async fn a_reader_that_keeps_up_is_never_cut_off() {
    let (tx, mut rx) = channel(1000, Counter::default());
    for _ in 0..100 {
        tx.send(module(600)).expect("queued");
        assert!(next_now(&mut rx).is_some_and(|m| m.is_ok()));
    }
}

#[tokio::test]
async fn a_close_delivers_what_is_queued_then_the_status() {
    let (tx, mut rx) = channel(1000, Counter::default());
    tx.send(beat()).expect("queued");
    tx.close(crate::error::Error::ShuttingDown);
    assert_eq!(tx.send(beat()), Err(NotSent::Closed));
    assert_eq!(tx.closed().await, "master is shutting down");
    assert!(next_now(&mut rx).is_some_and(|m| m.is_ok()));
    assert!(next_now(&mut rx).is_some_and(|m| m.is_err()));
    assert!(next_now(&mut rx).is_none());
}

#[tokio::test]
async fn a_stream_gone_frees_the_queue_and_refuses_sends() {
    let (tx, rx) = channel(1000, Counter::default());
    tx.send(module(500)).expect("queued");
    drop(rx);
    assert_eq!(tx.queued(), 0);
    assert_eq!(tx.send(beat()), Err(NotSent::Closed));
    assert_eq!(tx.closed().await, "stream to the worker gone");
}

#[tokio::test]
async fn a_waiting_stream_wakes_when_a_message_comes() {
    let (tx, mut rx) = channel(1000, Counter::default());
    let next = tokio::spawn(async move { rx.next().await.map(|m| m.is_ok()) });
    tokio::task::yield_now().await;
    tx.send(beat()).expect("queued");
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), next).await;
    assert_eq!(got.expect("woken").expect("joined"), Some(true));
}

#[test]
fn the_bound_leaves_room_for_two_modules() {
    assert_eq!(bound_for(1 << 20), MIN_QUEUE_BYTES);
    assert_eq!(bound_for(64 << 20), 128 << 20);
}
