//! The `sleep` kernel: waits a fixed wall-clock time per index, for testing scheduling
//! without using CPU.
//!
//! Parameter `ms` (default 10). For each index the kernel sleeps `ms` milliseconds of wall
//! time in slices of at most 5 ms, checking the cancel flag between slices.
//! The output is `Output::Count(number of indices done)`.

use std::time::{Duration, Instant};

use crate::kernels::params::Indices;
use crate::sdk::{
    CancelFlag, Kernel, KernelDescriptor, KernelError, Output, OutputShape, ParamSpec, Params,
    Prepared, ShardInput,
};

/// The `sleep` kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sleep;

/// The longest single sleep between two checks of the cancel flag.
const SLICE: Duration = Duration::from_millis(5);

impl Kernel for Sleep {
    fn name(&self) -> &str {
        "sleep"
    }

    fn describe(&self) -> KernelDescriptor {
        let help = "sleeps ms milliseconds of wall time per index (uses no CPU)";
        KernelDescriptor::new(self.name(), OutputShape::Count, help).param(ParamSpec::uint(
            "ms",
            10,
            0,
            u64::MAX,
            "wall milliseconds per index",
        ))
    }

    fn prepare(&self, params: &Params) -> Result<Box<dyn Prepared>, KernelError> {
        Ok(Box::new(PreparedSleep { per_index: Duration::from_millis(params.uint("ms")?) }))
    }
}

struct PreparedSleep {
    per_index: Duration,
}

impl Prepared for PreparedSleep {
    fn run(&self, shard: &ShardInput, cancel: &CancelFlag) -> Result<Output, KernelError> {
        cancel.check()?;
        let indices = Indices::of(shard)?;
        for _ in indices.iter() {
            let start = Instant::now();
            loop {
                cancel.check()?;
                let elapsed = start.elapsed();
                if elapsed >= self.per_index {
                    break;
                }
                std::thread::sleep((self.per_index - elapsed).min(SLICE));
            }
        }
        Ok(Output::Count(indices.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::params::tests::{assert_stops_when_cancelled, line, params, range};
    use crate::sdk::prepare_checked;

    #[test]
    fn sleeps_per_index() {
        let job = prepare_checked(&Sleep, &params(&[("ms", "12")])).unwrap();
        let start = Instant::now();
        assert_eq!(job.run(&range(0, 3), &CancelFlag::default()), Ok(Output::Count(3)));
        assert!(start.elapsed() >= Duration::from_millis(36));
        assert_eq!(job.run(&line(7, "123"), &CancelFlag::default()), Ok(Output::Count(1)));
        assert_eq!(job.run(&range(5, 5), &CancelFlag::default()), Ok(Output::Count(0)));
    }

    #[test]
    fn param_errors() {
        assert!(prepare_checked(&Sleep, &Params::default()).is_ok());
        assert_eq!(
            prepare_checked(&Sleep, &params(&[("ms", "-5")])).err(),
            Some(KernelError::BadParam(r#"bad param ms: "-5" is not a whole number"#.into()))
        );
        assert_eq!(
            prepare_checked(&Sleep, &params(&[("m", "5")])).err(),
            Some(KernelError::BadParam("unknown param m for kernel sleep; known: ms".into()))
        );
    }

    #[test]
    fn cancelled() {
        let job = prepare_checked(&Sleep, &params(&[("ms", "60000")])).unwrap();
        assert_stops_when_cancelled(job.as_ref(), &range(0, 1));
    }
}
