//! The shared harness for farm's end-to-end tests: builds the real binaries once, starts
//! masters on port 0 and workers against them, reads the address a server announces, runs CLI
//! commands, submits jobs and polls them, all with a deadline on every wait, and kills every
//! process it started when its handle drops.

mod binaries;
mod cluster;
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
