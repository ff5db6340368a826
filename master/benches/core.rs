//! Micro-benchmarks of the scheduler core alone: what one shard costs the master's core on its
//! way through dispatch and completion, and what queueing a huge range job costs.
//! Run with `cargo bench -p farm-master`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use farm_master::core::{
    Core, CoreConfig, Counted, JobDef, JobId, JobView, JournalOp, Outbox, Owner, ShardOutcome,
    ShardTask, WorkerId, WorkerSpec,
};
use farm_proto::{JobSource, JobSpec, Output, Params};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Keeps each worker's assigned tasks, like a worker would, and nothing else.
#[derive(Default)]
struct Queues(BTreeMap<WorkerId, Vec<ShardTask>>);

impl Outbox for Queues {
    fn assign(&mut self, worker: WorkerId, _defs: Vec<JobDef>, tasks: Vec<ShardTask>) {
        self.0.entry(worker).or_default().extend(tasks);
    }
    // The rest costs nothing here: the benchmark measures the core alone.
    fn cancel_job(&mut self, _: WorkerId, _: JobId) {}
    fn forget_job(&mut self, _: WorkerId, _: JobId) {}
    fn shard_output(&mut self, _: JobId, _: u64, _: &Output) {}
    fn job_changed(&mut self, _: &JobView) {}
    fn drop_worker(&mut self, _: WorkerId, _: &str) {}
    fn drain_worker(&mut self, _: WorkerId) {}
    fn journal(&mut self, _: JournalOp) {}
    fn counted(&mut self, _: JobId, _: &str, _: Counted) {}
}

fn noop_job(shards: u64) -> JobSpec {
    let source = JobSource::Range { start: 0, end: shards, shard_size: 1 };
    JobSpec::new("noop", source, Params::default(), 0).expect("valid spec")
}

fn worker() -> WorkerSpec {
    WorkerSpec { threads: 1, kinds: vec!["noop".into()], ..Default::default() }
}

/// Dispatch and completion of every shard of a 100,000-shard job over two workers that answer
/// in batches, as the master's core sees it (no network, no encoding).
fn dispatch_and_complete(c: &mut Criterion) {
    const SHARDS: u64 = 100_000;
    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Elements(SHARDS));
    group.bench_function("dispatch_and_complete_100k_shards", |b| {
        b.iter_batched(
            || Core::new(CoreConfig::default()),
            |mut core| {
                let mut out = Queues::default();
                let mut now = Instant::now();
                let workers = [
                    core.worker_joined(worker(), now, &mut out),
                    core.worker_joined(worker(), now, &mut out),
                ];
                core.submit(
                    noop_job(SHARDS),
                    Owner::anonymous(),
                    farm_proto::OutputShape::Count,
                    now,
                    &mut Queues::default(),
                )
                .expect("submit");
                core.dispatch(now, &mut out);
                let mut done = 0;
                while done < SHARDS {
                    now += Duration::from_micros(200);
                    for w in workers {
                        let tasks = std::mem::take(out.0.entry(w).or_default());
                        done += tasks.len() as u64;
                        let outcomes = tasks.into_iter().map(|t| {
                            (t.job_id, t.shard, ShardOutcome::Done(Output::Count(t.hi - t.lo)))
                        });
                        core.results(w, outcomes, now, &mut out).expect("results");
                    }
                    // Both batches arrive in one drained batch of commands: one dispatch.
                    core.dispatch(now, &mut out);
                }
                core
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// Queueing a 10,000,000-shard range job: lazy, so constant in the job's size.
fn submit_huge_range(c: &mut Criterion) {
    c.bench_function("core/submit_10m_shard_range_job", |b| {
        b.iter_batched(
            || Core::new(CoreConfig::default()),
            |mut core| {
                let mut out = Queues::default();
                core.submit(
                    noop_job(10_000_000),
                    Owner::anonymous(),
                    farm_proto::OutputShape::Count,
                    Instant::now(),
                    &mut Queues::default(),
                )
                .expect("submit");
                core.dispatch(Instant::now(), &mut out);
                core
            },
            BatchSize::PerIteration,
        )
    });
}

criterion_group!(benches, dispatch_and_complete, submit_huge_range);
criterion_main!(benches);
