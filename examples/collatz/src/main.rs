//! An example of a user kernel in its own worker binary, built on the farm-worker SDK.
//!
//! `collatz` counts, for each index n of its shard, the steps n takes to reach 1 under
//! n → n/2 (even) or 3n+1 (odd), and returns the total; the job result is the sum over the
//! range. With `--inputs`, each line is a number n and its shard counts the steps for n. The
//! binary takes every flag `farm worker` takes (token, TLS, --listen, --drain-timeout, …) and
//! drains on Ctrl-C or SIGTERM, because its `main` hands the registry to the SDK:
//!
//! ```text
//! cargo run -p farm-example-collatz -- --master http://127.0.0.1:7070 --threads 2
//! farm submit collatz --range 1..1000000 --wait
//! ```

use farm_worker::sdk::{
    CancelFlag, Kernel, KernelDescriptor, KernelError, Output, OutputShape, Params, Prepared,
    ShardInput,
};
use farm_worker::Registry;

fn main() -> std::process::ExitCode {
    let mut registry = Registry::builtin(false);
    registry.register(Box::new(Collatz));
    farm_worker::cli::main_with(registry)
}

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
        for n in numbers(shard)? {
            if n % 1024 == 0 {
                cancel.check()?;
            }
            let steps =
                steps(n).ok_or_else(|| KernelError::Failed(format!("{n} overflows u128")))?;
            if shard.input.is_some() {
                // The shard's log, which `farm logs JOB` shows (one line per input here; a
                // range shard logs nothing, so it costs nothing).
                cancel.log().line(format!("{n} takes {steps} steps"));
            }
            total += steps;
        }
        Ok(Output::Count(total))
    }
}

/// The numbers a shard covers: its range, or the one number on its input line.
fn numbers(shard: &ShardInput) -> Result<Box<dyn Iterator<Item = u64>>, KernelError> {
    let Some(line) = &shard.input else { return Ok(Box::new(shard.lo..shard.hi)) };
    let n: u64 = line.trim().parse().map_err(|_| {
        KernelError::Failed(format!("input line {}: {line:?} is not a whole number", shard.lo))
    })?;
    Ok(Box::new(std::iter::once(n)))
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

    #[test]
    fn an_input_line_is_one_number() {
        let line = |text: &str| ShardInput { lo: 4, hi: 5, input: Some(text.into()) };
        let cancel = CancelFlag::default();
        assert_eq!(Collatz.run(&line(" 27 "), &cancel), Ok(Output::Count(111)));
        assert_eq!(cancel.log().contents(), ("27 takes 111 steps\n".into(), None));
        match Collatz.run(&line("x"), &CancelFlag::default()) {
            Err(KernelError::Failed(m)) => {
                assert_eq!(m, "input line 4: \"x\" is not a whole number")
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }
}
