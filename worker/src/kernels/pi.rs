//! The `pi` kernel: Monte Carlo estimate of pi from reproducible per-index random streams.
//!
//! Parameter `samples` (default 1_000_000, at least 1). For each index `i`, a SplitMix64
//! generator is seeded with `state = i` and draws `samples` points. Standard SplitMix64, all
//! arithmetic wrapping on u64:
//!
//! ```text
//! next():
//!     state = state + 0x9E3779B97F4A7C15
//!     z = state
//!     z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
//!     z = (z ^ (z >> 27)) * 0x94D049BB133111EB
//!     return z ^ (z >> 31)
//! ```
//!
//! A point is `x = (next() >> 11) as f64 * 2^-53`, then `y` likewise (x is drawn first); it is
//! a hit when `x*x + y*y <= 1.0` (IEEE double, no fused multiply-add). The first three outputs
//! for seed 0 are 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f.
//! The output is `Output::Fraction { hits, samples: samples * number_of_indices }`.

use crate::kernels::params::Indices;
use crate::sdk::{
    CancelFlag, Kernel, KernelDescriptor, KernelError, Output, OutputShape, ParamSpec, Params,
    Prepared, ShardInput,
};

/// The `pi` kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pi;

impl Kernel for Pi {
    fn name(&self) -> &str {
        "pi"
    }

    fn describe(&self) -> KernelDescriptor {
        let help = "Monte Carlo estimate of pi: each index seeds a SplitMix64 stream of points";
        KernelDescriptor::new(self.name(), OutputShape::Fraction { scale: 4.0 }, help)
            .param(ParamSpec::uint("samples", 1_000_000, 1, u64::MAX, "points drawn per index"))
    }

    fn prepare(&self, params: &Params) -> Result<Box<dyn Prepared>, KernelError> {
        Ok(Box::new(PreparedPi { samples: params.uint("samples")? }))
    }
}

struct PreparedPi {
    samples: u64,
}

impl Prepared for PreparedPi {
    fn run(&self, shard: &ShardInput, cancel: &CancelFlag) -> Result<Output, KernelError> {
        cancel.check()?;
        let indices = Indices::of(shard)?;
        let total = self.samples.checked_mul(indices.len()).ok_or_else(|| {
            KernelError::Failed(format!(
                "{} samples for {} indices overflow a u64",
                self.samples,
                indices.len()
            ))
        })?;
        let mut hits = 0;
        for i in indices.iter() {
            let mut rng = SplitMix64::new(i);
            for s in 0..self.samples {
                if s % 4096 == 0 {
                    cancel.check()?;
                }
                let x = rng.next_unit();
                let y = rng.next_unit();
                hits += u64::from(x * x + y * y <= 1.0);
            }
        }
        Ok(Output::Fraction { hits, samples: total })
    }
}

/// The SplitMix64 generator described in the module doc.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose state starts at `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64-bit output.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The next double in [0, 1): the top 53 bits of `next_u64` times 2^-53.
    pub fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::params::tests::{line, params, range};
    use crate::sdk::prepare_checked;

    fn run(samples: &str, shard: ShardInput) -> Result<Output, KernelError> {
        prepare_checked(&Pi, &params(&[("samples", samples)]))?.run(&shard, &CancelFlag::default())
    }

    #[test]
    fn generator_reference_values() {
        let mut g = SplitMix64::new(0);
        assert_eq!(g.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(g.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(g.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn reference_hit_counts() {
        // Values computed independently with a Python reimplementation of the contract.
        assert_eq!(run("1000", range(0, 1)), Ok(Output::Fraction { hits: 807, samples: 1000 }));
        assert_eq!(run("10000", line(3, "7")), Ok(Output::Fraction { hits: 7895, samples: 10000 }));
        assert_eq!(run("2500", range(0, 4)), Ok(Output::Fraction { hits: 7919, samples: 10000 }));
    }

    #[test]
    fn estimate_is_close() {
        let Ok(Output::Fraction { hits, samples }) = run("50000", range(100, 104)) else {
            panic!("expected a pi output");
        };
        assert_eq!(samples, 200_000);
        let estimate = 4.0 * hits as f64 / samples as f64;
        assert!((estimate - std::f64::consts::PI).abs() < 0.02, "{estimate}");
    }

    #[test]
    fn param_errors() {
        assert_eq!(
            run("0", range(0, 1)),
            Err(KernelError::BadParam("bad param samples: must be at least 1, got 0".into()))
        );
        assert_eq!(
            run("many", range(0, 1)),
            Err(KernelError::BadParam(r#"bad param samples: "many" is not a whole number"#.into()))
        );
        let err = prepare_checked(&Pi, &params(&[("sample", "5")])).err().unwrap();
        assert_eq!(
            err,
            KernelError::BadParam("unknown param sample for kernel pi; known: samples".into())
        );
        assert!(prepare_checked(&Pi, &Params::default()).is_ok());
    }

    #[test]
    fn cancelled() {
        let cancel = CancelFlag::default();
        let job = prepare_checked(&Pi, &params(&[("samples", "100000000000")])).unwrap();
        let setter = cancel.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(30));
            setter.cancel();
        });
        let start = std::time::Instant::now();
        assert_eq!(job.run(&range(0, 1), &cancel), Err(KernelError::Cancelled));
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        t.join().unwrap();
    }
}
