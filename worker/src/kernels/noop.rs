//! The `noop` kernel: does nothing, for measuring the farm's own per-shard overhead.
//!
//! It takes no parameters and does not allocate while running. The output is
//! `Output::Count(hi - lo)` for a range shard and `Output::Count(1)` for an input shard.

use crate::sdk::{
    CancelFlag, Kernel, KernelDescriptor, KernelError, Output, OutputShape, Params, Prepared,
    ShardInput,
};

/// The `noop` kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Noop;

impl Kernel for Noop {
    fn name(&self) -> &str {
        "noop"
    }

    fn describe(&self) -> KernelDescriptor {
        let help = "does nothing: measures the farm's own cost per shard";
        KernelDescriptor::new(self.name(), OutputShape::Count, help)
    }

    fn prepare(&self, _: &Params) -> Result<Box<dyn Prepared>, KernelError> {
        Ok(Box::new(PreparedNoop))
    }
}

struct PreparedNoop;

impl Prepared for PreparedNoop {
    fn run(&self, shard: &ShardInput, cancel: &CancelFlag) -> Result<Output, KernelError> {
        cancel.check()?;
        let count = match shard.input {
            Some(_) => 1,
            None => shard.hi.saturating_sub(shard.lo),
        };
        Ok(Output::Count(count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::params::tests::{line, params, range};
    use crate::sdk::prepare_checked;

    #[test]
    fn counts() {
        let job = prepare_checked(&Noop, &Params::default()).unwrap();
        let cancel = CancelFlag::default();
        assert_eq!(job.run(&range(10, 15), &cancel), Ok(Output::Count(5)));
        assert_eq!(job.run(&range(0, u64::MAX), &cancel), Ok(Output::Count(u64::MAX)));
        assert_eq!(job.run(&line(4, "anything"), &cancel), Ok(Output::Count(1)));
        cancel.cancel();
        assert_eq!(job.run(&range(10, 15), &cancel), Err(KernelError::Cancelled));
    }

    #[test]
    fn rejects_params() {
        assert_eq!(
            prepare_checked(&Noop, &params(&[("ms", "1")])).err(),
            Some(KernelError::BadParam("unknown param ms for kernel noop; known: none".into()))
        );
    }
}
