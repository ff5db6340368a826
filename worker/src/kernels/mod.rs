//! The built-in kernels of the farm worker and the registry functions that list them.

pub mod exec;
mod exec_cmd;
mod exec_groups;
mod exec_io;
mod exec_spawn;
mod exec_wait;
pub mod hashchain;
pub mod mandelbrot;
pub mod noop;
pub mod params;
pub mod pi;
pub mod primes;
pub mod sleep;
pub mod spin;

use crate::sdk::Kernel;
pub use exec_groups::{kill_running_programs, KillProgramsOnExit};

/// Every built-in kernel except `exec`, which runs arbitrary programs and is opt-in.
pub fn builtin() -> Vec<Box<dyn Kernel>> {
    vec![
        Box::new(primes::Primes),
        Box::new(pi::Pi),
        Box::new(hashchain::HashChain),
        Box::new(mandelbrot::Mandelbrot),
        Box::new(spin::Spin),
        Box::new(sleep::Sleep),
        Box::new(noop::Noop),
    ]
}

/// The `exec` kernel; the worker registers it only when started with `--allow-exec`.
pub fn exec_kernel() -> Box<dyn Kernel> {
    Box::new(exec::Exec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::params::tests::{params, range};
    use crate::registry::Registry;
    use crate::sdk::{prepare_checked, CancelFlag, KernelError, Params, ShardInput};
    use std::time::{Duration, Instant};

    /// Each built-in kernel with the most expensive params it accepts and a shard that would
    /// run for days with them.
    fn most_expensive() -> Vec<(Box<dyn Kernel>, Params, ShardInput)> {
        let max = u64::MAX.to_string();
        let inside_the_set = [("x0", "-0.1"), ("x1", "0.1"), ("y0", "-0.1"), ("y1", "0.1")];
        let mut mandel = vec![("width", "100000"), ("height", "1"), ("iterations", "4294967295")];
        mandel.extend(inside_the_set);
        vec![
            (Box::new(primes::Primes), params(&[]), range(u64::MAX - (1 << 40), u64::MAX)),
            (Box::new(pi::Pi), params(&[("samples", &max)]), range(0, 1)),
            (Box::new(hashchain::HashChain), params(&[("rounds", &max)]), range(0, 1)),
            (Box::new(mandelbrot::Mandelbrot), params(&mandel), range(0, 1)),
            (
                Box::new(spin::Spin),
                params(&[("ms", &(u64::MAX / 1_000_000).to_string())]),
                range(0, 1),
            ),
            (Box::new(sleep::Sleep), params(&[("ms", &max)]), range(0, 1)),
            (Box::new(noop::Noop), params(&[]), range(0, u64::MAX)),
            (exec_kernel(), params(&[("cmd", "sleep 100000")]), range(0, 1)),
        ]
    }

    /// How long a kernel may take to notice. The rule is 50 ms; the bound is wider so a loaded
    /// CI machine cannot fail it, and still tells a check inside the loop from none (days).
    const NOTICE: Duration = Duration::from_secs(2);

    #[test]
    fn every_kernel_stops_soon_after_a_cancel_at_its_most_expensive_params() {
        for (kernel, params, shard) in most_expensive() {
            let job = prepare_checked(kernel.as_ref(), &params).expect("accepted params");
            let cancel = CancelFlag::new();
            let setter = cancel.clone();
            let run = std::thread::spawn(move || {
                let result = job.run(&shard, &cancel);
                (result, Instant::now())
            });
            std::thread::sleep(Duration::from_millis(30));
            let cancelled_at = Instant::now();
            setter.cancel();
            let (result, returned_at) = run.join().expect("kernel thread");
            let name = kernel.name();
            if name == "noop" {
                assert!(result.is_ok(), "noop finishes at once");
                continue;
            }
            assert_eq!(result, Err(KernelError::Cancelled), "{name}");
            let late = returned_at.saturating_duration_since(cancelled_at);
            assert!(late < NOTICE, "{name} noticed the cancel after {late:?}");
        }
    }

    #[test]
    fn every_kernel_stops_at_its_shard_timeout_at_its_most_expensive_params() {
        for (kernel, params, shard) in most_expensive() {
            let job = prepare_checked(kernel.as_ref(), &params).expect("accepted params");
            let limit = Duration::from_millis(100);
            let start = Instant::now();
            let result = job.run(&shard, &CancelFlag::new().with_timeout(limit));
            let name = kernel.name();
            if name == "noop" {
                continue;
            }
            assert_eq!(result, Err(KernelError::TimedOut(100)), "{name}");
            let late = start.elapsed().saturating_sub(limit);
            assert!(late < NOTICE, "{name} stopped {late:?} after its timeout");
        }
    }

    #[test]
    fn every_kernel_describes_itself_and_accepts_its_defaults() {
        let mut kernels = builtin();
        kernels.push(exec_kernel());
        let mut names = std::collections::HashSet::new();
        for k in &kernels {
            let d = k.describe();
            assert_eq!(d.kind, k.name());
            assert!(names.insert(d.kind.clone()), "{} registered twice", d.kind);
            assert!(!d.help.is_empty(), "{} has no help", d.kind);
            assert!(d.params.is_some(), "{} declares its params", d.kind);
            let required = d.params.iter().flatten().any(|p| p.required);
            if !required {
                let job = prepare_checked(k.as_ref(), &Params::default());
                assert!(job.is_ok(), "{}", k.name());
            }
        }
        assert!(!Registry::builtin(false).contains("exec"));
        assert!(Registry::builtin(true).contains("exec"));
    }
}
