//! The `hashchain` kernel: iterated SHA-256 per index, a CPU-bound job with checkable results.
//!
//! Parameter `rounds` (default 1, at least 1). For each index `i`:
//! `state = SHA-256(decimal ASCII of i)`, then `rounds - 1` more times
//! `state = SHA-256(state)` over the raw 32 bytes. The output is `Output::Lines` with the final
//! state of each index as 64 lowercase hex digits, in index order.

use sha2::{Digest, Sha256};

use crate::kernels::params::Indices;
use crate::sdk::{
    CancelFlag, Kernel, KernelDescriptor, KernelError, Output, OutputShape, ParamSpec, Params,
    Prepared, ShardInput,
};

/// The `hashchain` kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct HashChain;

impl Kernel for HashChain {
    fn name(&self) -> &str {
        "hashchain"
    }

    fn describe(&self) -> KernelDescriptor {
        let help = "iterated SHA-256 of each index's decimal text; one hex digest per index";
        KernelDescriptor::new(self.name(), OutputShape::Lines, help).param(ParamSpec::uint(
            "rounds",
            1,
            1,
            u64::MAX,
            "SHA-256 applications per index",
        ))
    }

    fn prepare(&self, params: &Params) -> Result<Box<dyn Prepared>, KernelError> {
        Ok(Box::new(PreparedHashChain { rounds: params.uint("rounds")? }))
    }
}

struct PreparedHashChain {
    rounds: u64,
}

impl Prepared for PreparedHashChain {
    fn run(&self, shard: &ShardInput, cancel: &CancelFlag) -> Result<Output, KernelError> {
        cancel.check()?;
        let indices = Indices::of(shard)?;
        let mut lines =
            Vec::with_capacity(usize::try_from(indices.len()).unwrap_or(0).min(1 << 20));
        let mut hashes: u64 = 0;
        for i in indices.iter() {
            let mut state: [u8; 32] = Sha256::digest(i.to_string().as_bytes()).into();
            for _ in 1..self.rounds {
                hashes += 1;
                if hashes.is_multiple_of(1024) {
                    cancel.check()?;
                }
                state = Sha256::digest(state).into();
            }
            hashes += 1;
            if hashes.is_multiple_of(1024) {
                cancel.check()?;
            }
            lines.push(to_hex(&state));
        }
        Ok(Output::Lines(lines))
    }
}

/// Lowercase hex of `bytes`.
fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::params::tests::{line, params, range};
    use crate::sdk::prepare_checked;

    const SHA_0: &str = "5feceb66ffc86f38d952786c6d696c79c2dbc239dd4e91b46729d73a27fb57e9";

    fn run(rounds: &str, shard: ShardInput) -> Result<Output, KernelError> {
        prepare_checked(&HashChain, &params(&[("rounds", rounds)]))?
            .run(&shard, &CancelFlag::default())
    }

    fn lines(v: &[&str]) -> Result<Output, KernelError> {
        Ok(Output::Lines(v.iter().map(|s| s.to_string()).collect()))
    }

    #[test]
    fn known_vectors() {
        assert_eq!(run("1", range(0, 1)), lines(&[SHA_0]));
        let out = prepare_checked(&HashChain, &Params::default())
            .unwrap()
            .run(&range(0, 1), &CancelFlag::default());
        assert_eq!(out, lines(&[SHA_0]));
        // SHA-256 of the raw digest, then again (computed independently).
        assert_eq!(
            run("2", range(0, 1)),
            lines(&["67050eeb5f95abf57449d92629dcf69f80c26247e207ad006a862d1e4e6498ff"])
        );
        assert_eq!(
            run("3", range(0, 1)),
            lines(&["86719778f5989f18c08b2e9f6f06032a74fa387bcb2162cf46fb3ccbde3abdaf"])
        );
    }

    #[test]
    fn order_and_input_lines() {
        let sha_12345 = "5994471abb01112afcc18159f6cc74b4f511b99806da59b3caf5a9c173cacfc5";
        let sha_max = "2cdb26265b4dc65e3b44d694f121fd6de99b9e4b8ae7f08d84bfa9537635ae43";
        assert_eq!(run("1", line(4, " 12345 ")), lines(&[sha_12345]));
        assert_eq!(run("1", line(4, "18446744073709551615")), lines(&[sha_max]));
        let Ok(Output::Lines(many)) = run("1", range(12344, 12346)) else {
            panic!("expected lines");
        };
        assert_eq!(many.len(), 2);
        assert_eq!(many[1], sha_12345);
        assert!(matches!(
            run("1", line(9, "0x10")),
            Err(KernelError::BadInput(m)) if m == r#"input line 9: "0x10" is not a whole number"#
        ));
    }

    #[test]
    fn param_errors() {
        assert_eq!(
            run("0", range(0, 1)),
            Err(KernelError::BadParam("bad param rounds: must be at least 1, got 0".into()))
        );
        assert_eq!(
            run("abc", range(0, 1)),
            Err(KernelError::BadParam(r#"bad param rounds: "abc" is not a whole number"#.into()))
        );
        let err = prepare_checked(&HashChain, &params(&[("round", "2")])).err().unwrap();
        assert_eq!(
            err,
            KernelError::BadParam("unknown param round for kernel hashchain; known: rounds".into())
        );
    }

    #[test]
    fn cancelled() {
        let job = prepare_checked(&HashChain, &params(&[("rounds", "1000000000000")])).unwrap();
        let cancel = CancelFlag::default();
        cancel.cancel();
        let start = std::time::Instant::now();
        assert_eq!(job.run(&range(0, 10), &cancel), Err(KernelError::Cancelled));
        // Also when the flag is set while the chain is running.
        let cancel = CancelFlag::default();
        let setter = cancel.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(30));
            setter.cancel();
        });
        assert_eq!(job.run(&range(0, 10), &cancel), Err(KernelError::Cancelled));
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        t.join().unwrap();
    }
}
