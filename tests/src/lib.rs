//! The shared harness for farm's end-to-end tests: builds the real binaries once, starts
//! masters on port 0 and workers against them, reads the address a server announces, runs CLI
//! commands, submits jobs and polls them, all with a deadline on every wait, and kills every
//! process it started when its handle drops.
//!
//! # Files
//!
//! One entry per source file under `src/` (a test in `tests/tests/docs.rs` fails when one
//! is missing or names a file that is gone):
//!
//! - `binaries.rs`: where the binaries under test are, built once per test run
//! - `cluster.rs`: a master on an ephemeral port and the workers and commands that go with it
//! - `fake_worker.rs`: a fake worker on the generated client, for hostile-worker tests
//! - `http.rs`: a small HTTP/1.1 client over a plain TCP stream, for the dashboard API and /metrics
//! - `net.rs`: addresses: the one a server announces on its first line of stdout
//! - `pki.rs`: throwaway certificates for the TLS tests: a CA and certificates it signed
//! - `process.rs`: processes a test starts: tagged so any left behind can be found
//! - `rss.rs`: a process's resident memory, read from /proc/PID/status, once or sampled for its
//!   peak
//! - `scratch.rs`: a scratch directory for one test (wasm modules, inputs, caches), removed when
//!   dropped
//! - `specs.rs`: job specs as a client puts them on the wire, for tests that talk gRPC directly
//! - `wait.rs`: waiting with a deadline: every wait in a test is bounded

mod binaries;
mod cluster;
mod fake_worker;
mod http;
mod net;
mod pki;
mod process;
mod rss;
mod scratch;
mod specs;
mod wait;

pub use binaries::{collatz_worker, farm};
pub use cluster::{json, listening_worker, Master};
pub use fake_worker::{fake_session, registration, FakeSession};
pub use http::{get, http, sample, Reply};
pub use net::{spawn_announcing, DialTrap};
pub use pki::Pki;
pub use process::{
    assert_none_left, run, spawn, start, start_with_env, tag, tagged_processes, wait_child, Proc,
    QUIET,
};
pub use rss::{rss_kib, Peak};
pub use scratch::Scratch;
pub use specs::range_spec;
pub use wait::{wait_for, wait_until, within, WAIT};
