//! The `primes` kernel: counts the primes among a shard's indices.
//!
//! Each index `i` is tested for primality (0 and 1 are not prime) and the shard's output is
//! `Output::Count(number of primes)`. The test is exact for every u64: trial division by the
//! primes below 100, then deterministic Miller-Rabin with the bases 2, 325, 9375, 28178,
//! 450775, 9780504 and 1795265022 (no strong pseudoprime to all of them exists below 2^64).
//! The kernel takes no parameters.

use crate::kernels::params::Indices;
use crate::sdk::{
    CancelFlag, Kernel, KernelDescriptor, KernelError, Output, OutputShape, Params, Prepared,
    ShardInput,
};

/// The `primes` kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Primes;

impl Kernel for Primes {
    fn name(&self) -> &str {
        "primes"
    }

    fn describe(&self) -> KernelDescriptor {
        let help = "counts the primes among the indices (exact for every u64)";
        KernelDescriptor::new(self.name(), OutputShape::Count, help)
    }

    fn prepare(&self, _: &Params) -> Result<Box<dyn Prepared>, KernelError> {
        Ok(Box::new(PreparedPrimes))
    }
}

struct PreparedPrimes;

impl Prepared for PreparedPrimes {
    fn run(&self, shard: &ShardInput, cancel: &CancelFlag) -> Result<Output, KernelError> {
        cancel.check()?;
        let mut count = 0;
        for (k, i) in Indices::of(shard)?.iter().enumerate() {
            if k % 1024 == 1023 {
                cancel.check()?;
            }
            count += u64::from(is_prime(i));
        }
        Ok(Output::Count(count))
    }
}

/// The primes below 100, used as a trial-division filter.
const SMALL_PRIMES: [u64; 25] = [
    2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
];

/// Miller-Rabin bases that are deterministic for every u64 (Jim Sinclair's set).
const MR_BASES: [u64; 7] = [2, 325, 9375, 28178, 450775, 9780504, 1795265022];

/// Returns whether `n` is prime; exact for every u64.
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    for p in SMALL_PRIMES {
        if n == p {
            return true;
        }
        if n.is_multiple_of(p) {
            return false;
        }
    }
    // No factor below 100 and n < 101^2: n is prime.
    if n < 101 * 101 {
        return true;
    }
    if n <= u64::from(u32::MAX) {
        miller_rabin(n, |a, b| a * b % n)
    } else {
        miller_rabin(n, |a, b| ((u128::from(a) * u128::from(b)) % u128::from(n)) as u64)
    }
}

/// Deterministic Miller-Rabin for odd `n > 10_000` with no factor below 100; `mul` is
/// multiplication modulo n (plain u64 when n < 2^32, u128 otherwise).
fn miller_rabin(n: u64, mul: impl Fn(u64, u64) -> u64) -> bool {
    let d = (n - 1) >> (n - 1).trailing_zeros();
    let s = (n - 1).trailing_zeros();
    'bases: for base in MR_BASES {
        let a = base % n;
        // A base that is a multiple of n says nothing. Every base has at most one prime factor
        // above 100, so such an n is either that prime or was already rejected by trial division.
        if a == 0 {
            continue;
        }
        let mut x = pow_mod(a, d, &mul);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul(x, x);
            if x == n - 1 {
                continue 'bases;
            }
        }
        return false;
    }
    true
}

/// `base^exp` modulo n, with `mul` the modular multiplication.
fn pow_mod(mut base: u64, mut exp: u64, mul: &impl Fn(u64, u64) -> u64) -> u64 {
    let mut acc = 1;
    while exp > 0 {
        if exp & 1 == 1 {
            acc = mul(acc, base);
        }
        base = mul(base, base);
        exp >>= 1;
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::params::tests::{line, params, range};
    use crate::sdk::prepare_checked;

    fn trial_division(n: u64) -> bool {
        if n < 2 {
            return false;
        }
        let mut d = 2u64;
        while d * d <= n {
            if n.is_multiple_of(d) {
                return false;
            }
            d += 1;
        }
        true
    }

    fn count(shard: ShardInput) -> Result<Output, KernelError> {
        prepare_checked(&Primes, &Params::default()).unwrap().run(&shard, &CancelFlag::default())
    }

    #[test]
    fn counts_below_powers_of_ten() {
        assert_eq!(count(range(0, 10)), Ok(Output::Count(4)));
        assert_eq!(count(range(0, 10_000)), Ok(Output::Count(1229)));
        assert_eq!(count(range(0, 1_000_000)), Ok(Output::Count(78498)));
        // Split shards add up.
        let parts: u64 = [(0, 333_333), (333_333, 1_000_000)]
            .iter()
            .map(|&(lo, hi)| match count(range(lo, hi)) {
                Ok(Output::Count(c)) => c,
                other => panic!("{other:?}"),
            })
            .sum();
        assert_eq!(parts, 78498);
    }

    #[test]
    fn matches_trial_division() {
        let windows = [
            (0, 20_000),
            (1_000_000_000_000, 1_000_000_001_000),
            ((1 << 32) - 1000, (1 << 32) + 1000),
        ];
        for (lo, hi) in windows {
            for n in lo..hi {
                assert_eq!(is_prime(n), trial_division(n), "n = {n}");
            }
        }
    }

    #[test]
    fn known_primes_and_pseudoprimes() {
        let primes = [
            2,
            97,
            101,
            10_007,
            4_294_967_291,
            (1u64 << 61) - 1,
            299_210_837,
            407_521,
            18_446_744_073_709_551_557,
        ];
        for p in primes {
            assert!(is_prime(p), "{p} is prime");
        }
        let composites = [
            0,
            1,
            341,
            561,
            2047,
            10_201,
            3_215_031_751,
            3_825_123_056_546_413_051,
            4_294_967_291 * 4_294_967_279,
            18_446_744_073_709_551_615,
            18_446_744_073_709_551_559,
            1_795_265_022,
            9_780_504,
        ];
        for c in composites {
            assert!(!is_prime(c), "{c} is composite");
        }
    }

    #[test]
    fn input_lines_and_errors() {
        assert_eq!(count(line(0, " 7919\n")), Ok(Output::Count(1)));
        assert_eq!(count(line(1, "7917")), Ok(Output::Count(0)));
        assert!(
            matches!(count(line(2, "seven")), Err(KernelError::BadInput(m)) if m.contains("input line 2"))
        );
        let err = prepare_checked(&Primes, &params(&[("foo", "1")])).err().unwrap();
        assert_eq!(
            err,
            KernelError::BadParam("unknown param foo for kernel primes; known: none".into())
        );
    }

    #[test]
    fn cancelled() {
        let cancel = CancelFlag::default();
        cancel.cancel();
        let run = prepare_checked(&Primes, &Params::default()).unwrap();
        assert_eq!(run.run(&range(0, u64::MAX), &cancel), Err(KernelError::Cancelled));
    }
}
