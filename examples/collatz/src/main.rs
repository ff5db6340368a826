//! An example of a user kernel in its own worker binary, built on the farm-worker SDK.
//!
//! `collatz` counts, for each index n ≥ 1 of its shard, the steps n takes to reach 1 under
//! n → n/2 (even) or 3n+1 (odd), and returns the total; the job result is the sum over the
//! range. Run it like `farm worker`, then submit `collatz` jobs to the master:
//!
//! ```text
//! cargo run -p farm-example-collatz -- --master http://127.0.0.1:7070 --threads 2
//! farm submit collatz --range 1..1000000 --wait
//! ```

use clap::Parser;
use farm_worker::sdk::{
    CancelFlag, Kernel, KernelDescriptor, KernelError, Output, OutputShape, Params, Prepared,
    ShardInput,
};
use farm_worker::{Registry, WorkerConfig};

struct Collatz;

impl Kernel for Collatz {
    fn name(&self) -> &str {
        "collatz"
    }

    // What the master checks submissions against and `farm kinds` shows: no params (so any
    // --param is refused at submit), and a count output, summed into the job result.
    fn describe(&self) -> KernelDescriptor {
        KernelDescriptor::new(self.name(), OutputShape::Count, "total Collatz steps to reach 1")
    }

    fn prepare(&self, _: &Params) -> Result<Box<dyn Prepared>, KernelError> {
        Ok(Box::new(Collatz))
    }
}

impl Prepared for Collatz {
    fn run(&self, shard: &ShardInput, cancel: &CancelFlag) -> Result<Output, KernelError> {
        let mut total = 0u64;
        for n in shard.lo..shard.hi {
            if n % 1024 == 0 {
                cancel.check()?;
            }
            total += steps(n).ok_or_else(|| KernelError::Failed(format!("{n} overflows u128")))?;
        }
        Ok(Output::Count(total))
    }
}

/// Steps from n to 1 (0 for n = 0 and n = 1); `None` if an intermediate value overflows.
fn steps(n: u64) -> Option<u64> {
    let (mut x, mut count) = (u128::from(n), 0);
    while x > 1 {
        x = if x % 2 == 0 { x / 2 } else { x.checked_mul(3)?.checked_add(1)? };
        count += 1;
    }
    Some(count)
}

/// A farm worker that also offers the `collatz` kernel.
#[derive(Parser)]
struct Args {
    /// The master to dial.
    #[arg(long, env = "FARM_MASTER", default_value = "http://127.0.0.1:7070")]
    master: String,
    /// Threads in the pool [default: available cores].
    #[arg(long)]
    threads: Option<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let args = Args::parse();
    let mut config = WorkerConfig::new(args.master);
    config.threads = args.threads.unwrap_or(config.threads);
    config.name = "collatz-example".into();
    let mut registry = Registry::builtin(false);
    registry.register(Box::new(Collatz));
    farm_worker::run(config, registry, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_step_counts() {
        assert_eq!(steps(1), Some(0));
        assert_eq!(steps(6), Some(8));
        assert_eq!(steps(27), Some(111));
        // Steps for 1..8: 0, 1, 7, 2, 5, 8, 16.
        let out = Collatz.run(&ShardInput { lo: 1, hi: 8, input: None }, &CancelFlag::default());
        assert_eq!(out, Ok(Output::Count(1 + 7 + 2 + 5 + 8 + 16)));
    }
}
