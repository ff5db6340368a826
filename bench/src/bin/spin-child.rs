//! `spin-child MS`: a program that costs MS milliseconds of CPU, its own start-up included.
//! The external program of the `exec` and `peers` figures' 10 ms rows.
//!
//! It spins until the process's CPU clock, which counts from the moment the process was
//! created (its exec and its dynamic loading too), reaches MS: a run costs the machine MS of
//! the program's own CPU whatever its start-up costs, so the efficiency of running 400 of them
//! measures the runner (spawn, wait, reap, messages), not the program. It uses nothing but
//! `libc`, so it stays a small binary that starts in a fraction of a millisecond.

use std::process::ExitCode;

/// CPU time this process has used so far, in nanoseconds.
fn process_cpu_nanos() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes only into `ts`, which lives for the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return u64::MAX;
    }
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}

fn main() -> ExitCode {
    let Some(ms) = std::env::args().nth(1).and_then(|ms| ms.parse::<u64>().ok()) else {
        eprintln!("usage: spin-child MS");
        return ExitCode::from(2);
    };
    let nanos = ms.saturating_mul(1_000_000);
    while process_cpu_nanos() < nanos {
        for _ in 0..64 {
            std::hint::spin_loop();
        }
    }
    ExitCode::SUCCESS
}
