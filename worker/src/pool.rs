//! The worker's thread pool: exactly T OS threads that run kernels, so CPU work never touches
//! the async runtime. Shards come in over a channel; outcomes go back to the session over
//! another, as each shard finishes.

use crate::sdk::{CancelFlag, KernelError, Output, Prepared, ShardInput};
use crossbeam_channel::{Receiver, Sender};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// A job as the worker holds it: its prepared kernel and the flag that cancels its shards.
pub(crate) struct JobEntry {
    /// The kernel with the job's parameters parsed.
    pub prepared: Box<dyn Prepared>,
    /// Set when the master cancels the job or the session ends.
    pub cancel: CancelFlag,
}

/// One shard to run and where to send its outcome.
pub(crate) struct Work {
    pub job_id: u64,
    pub shard: u64,
    pub job: Arc<JobEntry>,
    pub input: ShardInput,
    /// The session that asked for it; a closed receiver means the session is gone.
    pub reply: UnboundedSender<Finished>,
}

/// A shard's outcome.
pub(crate) struct Finished {
    pub job_id: u64,
    pub shard: u64,
    pub outcome: Result<Output, KernelError>,
}

/// A fixed set of OS threads. Dropping the pool lets the threads finish their current shard and
/// exit; it does not wait for them (a kernel stuck in a loop must not hang the worker's exit).
pub(crate) struct Pool {
    tx: Sender<Work>,
}

impl Pool {
    /// Starts `threads` OS threads.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded::<Work>();
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new().name(format!("farm-kernel-{i}")).spawn(move || run(rx))?;
        }
        Ok(Pool { tx })
    }

    /// Queues a shard; it runs when a thread is free.
    pub fn submit(&self, work: Work) {
        // The threads only stop once `tx` is dropped, so the send cannot fail while we hold it.
        let _ = self.tx.send(work);
    }
}

fn run(rx: Receiver<Work>) {
    while let Ok(work) = rx.recv() {
        if work.job.cancel.is_cancelled() || work.reply.is_closed() {
            continue;
        }
        let outcome =
            catch_unwind(AssertUnwindSafe(|| work.job.prepared.run(&work.input, &work.job.cancel)))
                .unwrap_or_else(|panic| Err(KernelError::Failed(panic_message(&panic))));
        let _ = work.reply.send(Finished { job_id: work.job_id, shard: work.shard, outcome });
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let msg = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".into());
    format!("kernel panicked: {msg}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    struct Panics;
    impl Prepared for Panics {
        fn run(&self, shard: &ShardInput, _: &CancelFlag) -> Result<Output, KernelError> {
            if shard.lo == 1 {
                panic!("bad index {}", shard.lo);
            }
            Ok(Output::Count(shard.hi - shard.lo))
        }
    }

    #[tokio::test]
    async fn a_panicking_kernel_fails_its_shard_and_the_pool_keeps_running() {
        let pool = Pool::new(2).expect("threads");
        let job = Arc::new(JobEntry { prepared: Box::new(Panics), cancel: CancelFlag::default() });
        let (reply, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for lo in 0..4 {
            let input = ShardInput { lo, hi: lo + 1, input: None };
            pool.submit(Work {
                job_id: 7,
                shard: lo,
                job: job.clone(),
                input,
                reply: reply.clone(),
            });
        }
        let mut outcomes = Vec::new();
        for _ in 0..4 {
            let done = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("outcome in time")
                .expect("channel open");
            outcomes.push((done.shard, done.outcome));
        }
        outcomes.sort_by_key(|o| o.0);
        assert_eq!(outcomes[0].1, Ok(Output::Count(1)));
        assert_eq!(outcomes[1].1, Err(KernelError::Failed("kernel panicked: bad index 1".into())));
        assert_eq!(outcomes[3].1, Ok(Output::Count(1)));
    }
}
