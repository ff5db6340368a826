//! The built-in kernels of the farm worker and the registry functions that list them.

pub mod exec;
pub mod hashchain;
pub mod mandelbrot;
pub mod noop;
pub mod params;
pub mod pi;
pub mod primes;
pub mod sleep;
pub mod spin;

use crate::sdk::Kernel;

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
    use crate::sdk::Params;

    #[test]
    fn registry_names() {
        let names: Vec<String> = builtin().iter().map(|k| k.name().to_string()).collect();
        assert_eq!(names, ["primes", "pi", "hashchain", "mandelbrot", "spin", "sleep", "noop"]);
        assert_eq!(exec_kernel().name(), "exec");
        // Every built-in kernel accepts its defaults.
        for k in builtin() {
            assert!(k.prepare(&Params::default()).is_ok(), "{}", k.name());
        }
    }
}
