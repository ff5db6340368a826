//! The farm master: a scheduler core without I/O, the gRPC services that adapt it to the
//! network, the HTTP endpoint (dashboard and Prometheus metrics), and the spawner that starts
//! and supervises local worker processes.
//!
//! # Files
//!
//! One entry per source file under `src/` (a test in `tests/tests/docs.rs` fails when one
//! is missing or names a file that is gone):
//!
//! - `access.rs`: who may do what: principals, token hashes, roles, and the role each call needs
//! - `access/file.rs`: the principals file: read with its mode and size checked, parsed, names
//!   checked
//! - `access/tests.rs`: tests of roles, principals files, tokens and the role each call needs
//! - `actor.rs`: the one task that owns the scheduler core, and `CoreHandle`, the way to talk to it
//! - `actor/effects.rs`: the side effects the core asks for: messages to sessions, watchers,
//!   journal writes
//! - `actor/task.rs`: the core's task itself: commands in drained batches, one dispatch per batch,
//!   ticks
//! - `actor/tests.rs`: the core's task under paused time: heartbeats, lost workers and shutdown
//! - `arenas.rs`: the master's use of glibc's allocator: how many arenas it may use, giving memory
//!   back
//! - `audit.rs`: the audit trail: a log line per mutating call, the last entries in memory and
//!   the store
//! - `autoalloc/machine.rs`: the allocator as a pure state machine (no I/O, no clock), the core's
//!   pattern
//! - `autoalloc/machine_tests.rs`: the allocator against a fake scheduler, with time passed in
//! - `autoalloc/mod.rs`: automatic worker allocation (`farm alloc`): queues that submit Slurm
//!   allocations
//! - `autoalloc/policy.rs`: which sbatch arguments a client may choose, and the operator's fixed
//!   ones
//! - `autoalloc/queue.rs`: one allocation queue: its settings, its allocations and the numbers it
//!   decides by
//! - `autoalloc/script.rs`: the batch script an allocation runs: `srun` of `farm worker`s dialing
//!   the master
//! - `autoalloc/slurm.rs`: the Slurm driver: `sbatch`, `squeue` and `scancel` as bounded child
//!   processes
//! - `autoalloc/task.rs`: the allocator's task: ticks, runs Slurm commands beside it, serves
//!   `Alloc*` calls
//! - `catalog.rs`: the kernels the cluster offers, from workers' descriptors, and a submission's
//!   check
//! - `clock.rs`: wall-clock time as milliseconds since the Unix epoch, the one `unix_ms`
//! - `connector.rs`: masters that dial their workers (`--connect`): one task per worker, with
//!   backoff
//! - `core/accumulator.rs`: a job's accumulator: shard outputs reduced into its result, the bytes
//!   it keeps, the inline limit
//! - `core/accumulator_tests.rs`: the accumulator: sums, joined lists, declared shapes, the inline
//!   limit and the spill
//! - `core/demand.rs`: what the allocator asks of the core on its tick: work waiting, room,
//!   allocations
//! - `core/dispatch.rs`: dispatch: handing pending shards to workers with free slots
//! - `core/fair.rs`: fair share: which priorities have pending jobs of several principals, and
//!   each one's share of a worker's window
//! - `core/job.rs`: one job in the core: its lazy shard cursor, shards in flight and its
//!   accumulator
//! - `core/limits.rs`: submit validation: the limits a job must fit before the core queues it
//! - `core/logs.rs`: per-shard log records of accepted outcomes, journaled to the `logs` table
//! - `core/membership.rs`: workers joining, heard from, draining and leaving, and the shards a
//!   lost worker held taken back
//! - `core/memory.rs`: what jobs hold in memory, in bytes: packed input lines, and the `Meter` of
//!   live jobs
//! - `core/memory_tests.rs`: memory bounded by bytes: retention, the memory budget, the per-job
//!   result limit
//! - `core/mod.rs`: the scheduler core: a synchronous state machine with no I/O, no clock, no
//!   runtime
//! - `core/overview.rs`: what the dashboard and metrics read of the core at one moment
//! - `core/owner.rs`: who a job belongs to: the `Owner` (name, fair-share weight) and its `Quota`
//! - `core/ranges.rs`: shards already done ahead of a job's cursor, as a sorted set of ranges
//! - `core/recording.rs`: the one recording outbox every core test uses, and `assert_quiet`
//! - `core/requires_tests.rs`: tests of jobs that require worker labels, under simulated time
//! - `core/restore.rs`: rebuilding the core from the journal at start
//! - `core/results.rs`: shard outcomes from workers, accepted only from the worker that holds the
//!   shard
//! - `core/retention.rs`: retention of ended jobs: how many, how many bytes, for how long
//! - `core/served.rs`: jobs no connected worker can run (none offers the kind, or none of those
//!   holds the labels the job requires), and `--no-worker-timeout`
//! - `core/served_tests.rs`: tests of jobs nothing can run, under simulated time
//! - `core/tests.rs`: core tests with simulated workers: a recording outbox, no sockets, no clock
//! - `core/tests/fair.rs`: fair share and quotas per principal on simulated workers and clock
//! - `core/tests/priority.rs`: priorities under load: simulated workers on a simulated clock
//! - `core/timers.rs`: what the tick enforces besides heartbeats: hold deadlines and retry backoff
//! - `core/types.rs`: the core's vocabulary: configuration, errors, event payloads, views, the
//!   `Outbox`
//! - `core/verify.rs`: `--verify N`: a deterministic sample of a job's shards runs twice, on two
//!   workers
//! - `core/window.rs`: how many shards of a job a worker may hold: its window
//! - `core/worker.rs`: a worker session as the core tracks it: what it holds, its rates, whether
//!   suspect
//! - `error.rs`: `Error`, the master's one domain error behind its edges, and `Kind`, how each edge
//!   maps it
//! - `error_tests.rs`: every error's gRPC code and HTTP status, pinned
//! - `grpc.rs`: the client service: thin adapters that hand a request to the core's task and map
//!   errors
//! - `grpc/convert.rs`: the client service's wire conversions: errors to statuses in one place,
//!   jobs and workers to what clients see
//! - `grpc/guard.rs`: the gRPC edge's access check, one tower service around both services
//! - `grpc/run.rs`: `Run`: submit a job and answer once it ended, or once the caller's wait is over
//! - `grpc/watch.rs`: the `Watch` stream: a job's subscription turned into events, after an
//!   optional replay
//! - `grpc_tests.rs`: the client service's own logic: what a List carries, the submit time
//! - `http/api.rs`: the handlers behind `/api/` and `/metrics`: thin adapters like the gRPC ones
//! - `http/feed.rs`: the dashboard's live feed: one overview a second while a browser listens
//! - `http/guard.rs`: the `Host` and `Origin` checks and the security headers of every response
//! - `http/mod.rs`: the HTTP endpoint (axum) on its own listener: the router and the token check
//! - `logs.rs`: per-shard logs as the master serves them: one query for gRPC `Logs` and HTTP
//! - `metrics.rs`: the master's Prometheus metrics (prometheus-client), served at `/metrics`
//! - `modules/check.rs`: the check of an uploaded module against the farm ABI, with `wasmparser`
//! - `modules/mod.rs`: the wasm module store's in-memory index (size, shape, last use), bounds and
//!   pins
//! - `modules/tests.rs`: the module store's bounds: idempotent uploads, the size limit, eviction
//! - `outgoing.rs`: the queue of messages from the master to one worker session, bounded by bytes
//! - `outgoing/tests.rs`: tests of the byte-bounded session queue
//! - `private.rs`: files only the master's user may read: the store, the allocation token, scripts
//! - `private/tests.rs`: tests of the private files' modes and owners
//! - `server.rs`: serving: client and worker services, health and reflection on one listener;
//!   shutdown
//! - `sessions.rs`: worker sessions on the master's side, whichever side dialed
//! - `spawner.rs`: local workers: N processes of the master's own executable, supervised and
//!   restarted
//! - `store/audit.rs`: the `audit` table: the audit trail's last entries, bounded
//! - `store/codec.rs`: the store's own encoding of a job's spec and summary (the `specs` and `jobs`
//!   tables)
//! - `store/codec_tests.rs`: round trips of the store's codec, for any summary and spec
//! - `store/logs.rs`: reading a job's per-shard logs back from the store's `logs` table
//! - `store/mod.rs`: the journal (redb): opening it and replaying it at start
//! - `store/modules.rs`: the `modules` table: wasm modules by the SHA-256 of their bytes
//! - `store/replay.rs`: a watcher's replay: a job's outputs from a snapshot taken where the watch
//!   began
//! - `store/results.rs`: reading a list job's result back from the `list_outputs` table, from an
//!   offset
//! - `store/tests.rs`: the journal on disk: what the core journals replays into a new core
//! - `store/writer.rs`: the journal's writer thread: queued ops applied in one transaction, group
//!   commits
//! - `tasks.rs`: every task the master spawns, tracked, so shutdown can signal and wait for them

pub mod access;
mod actor;
pub mod arenas;
pub mod audit;
pub mod autoalloc;
pub mod catalog;
mod clock;
mod connector;
pub mod core;
mod error;
mod grpc;
mod http;
pub(crate) mod logs;
pub mod metrics;
pub mod modules;
mod outgoing;
mod private;
mod server;
mod sessions;
pub mod spawner;
pub mod store;
mod tasks;

pub use error::{Error, Result};
pub use http::{HttpConfig, ACTION_HEADER};
pub use server::{serve, MasterConfig, MasterError};
pub use sessions::MAX_THREADS;
