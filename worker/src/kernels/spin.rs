//! The `spin` kernel: burns a fixed amount of this thread's CPU time per index.
//!
//! Parameter `ms` (default 10). For each index the kernel busy-loops until the calling
//! thread's CPU clock (`CLOCK_THREAD_CPUTIME_ID`) has advanced by `ms` milliseconds. Because it
//! measures CPU time rather than wall time, an oversubscribed worker cannot finish faster than
//! the work really takes. The cancel flag is checked on every pass of the loop.
//! The output is `Output::Count(number of indices done)`.

use crate::kernels::params::Indices;
use crate::sdk::{
    CancelFlag, Kernel, KernelDescriptor, KernelError, Output, OutputShape, ParamSpec, Params,
    Prepared, ShardInput,
};

/// The `spin` kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spin;

impl Kernel for Spin {
    fn name(&self) -> &str {
        "spin"
    }

    fn describe(&self) -> KernelDescriptor {
        let help = "burns ms milliseconds of the thread's own CPU time per index";
        let ms = ParamSpec::uint("ms", 10, 0, u64::MAX / 1_000_000, "CPU milliseconds per index");
        KernelDescriptor::new(self.name(), OutputShape::Count, help).param(ms)
    }

    fn prepare(&self, params: &Params) -> Result<Box<dyn Prepared>, KernelError> {
        // The descriptor's bound keeps the product in range.
        let nanos = params.uint("ms")?.saturating_mul(1_000_000);
        Ok(Box::new(PreparedSpin { nanos }))
    }
}

struct PreparedSpin {
    nanos: u64,
}

impl Prepared for PreparedSpin {
    fn run(&self, shard: &ShardInput, cancel: &CancelFlag) -> Result<Output, KernelError> {
        cancel.check()?;
        let indices = Indices::of(shard)?;
        for _ in indices.iter() {
            let start = thread_cpu_nanos();
            loop {
                cancel.check()?;
                if thread_cpu_nanos().saturating_sub(start) >= self.nanos {
                    break;
                }
                for _ in 0..64 {
                    std::hint::spin_loop();
                }
            }
        }
        Ok(Output::Count(indices.len()))
    }
}

/// CPU time consumed so far by the calling thread, in nanoseconds.
pub fn thread_cpu_nanos() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec and the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::params::tests::{assert_stops_when_cancelled, line, params, range};
    use crate::sdk::prepare_checked;

    #[test]
    fn burns_thread_cpu_time() {
        let job = prepare_checked(&Spin, &params(&[("ms", "20")])).unwrap();
        let before = thread_cpu_nanos();
        assert_eq!(job.run(&range(0, 1), &CancelFlag::default()), Ok(Output::Count(1)));
        let used = thread_cpu_nanos() - before;
        assert!(used >= 20_000_000, "used only {used} ns of CPU");
        let before = thread_cpu_nanos();
        let job = prepare_checked(&Spin, &params(&[("ms", "5")])).unwrap();
        assert_eq!(job.run(&range(10, 13), &CancelFlag::default()), Ok(Output::Count(3)));
        assert!(thread_cpu_nanos() - before >= 15_000_000);
    }

    #[test]
    fn input_lines_and_params() {
        let job = prepare_checked(&Spin, &params(&[("ms", "0")])).unwrap();
        assert_eq!(job.run(&line(2, "77"), &CancelFlag::default()), Ok(Output::Count(1)));
        assert!(matches!(
            job.run(&line(2, "x"), &CancelFlag::default()),
            Err(KernelError::Failed(_))
        ));
        assert!(prepare_checked(&Spin, &Params::default()).is_ok());
        assert_eq!(
            prepare_checked(&Spin, &params(&[("ms", "1e3")])).err(),
            Some(KernelError::BadParam(r#"bad param ms: "1e3" is not a whole number"#.into()))
        );
        assert_eq!(
            prepare_checked(&Spin, &params(&[("ms", "18446744073709551615")])).err(),
            Some(KernelError::BadParam(
                "bad param ms: must be at most 18446744073709, got 18446744073709551615".into()
            ))
        );
        assert_eq!(
            prepare_checked(&Spin, &params(&[("secs", "1")])).err(),
            Some(KernelError::BadParam("unknown param secs for kernel spin; known: ms".into()))
        );
    }

    #[test]
    fn cancelled() {
        let job = prepare_checked(&Spin, &params(&[("ms", "60000")])).unwrap();
        assert_stops_when_cancelled(job.as_ref(), &range(0, 5));
    }
}
