//! One job inside the scheduler core: its lazy shard cursor, the shards in flight, and its
//! accumulator (`accumulator.rs`), which reduces shard outputs into the job result.

use super::accumulator::{Accumulator, ByteLimits};
use super::memory::{Inputs, Meter, Submission, JOB_OVERHEAD};
use super::ranges::Ranges;
use super::window::ShardCost;
use super::JobView;
use super::Owner;
use super::{JobId, WorkerId};
use farm_proto::{JobLimits, JobSource, JobSpec, OutputShape, Params};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use farm_proto::JobState;

/// A job as the core tracks it. Shards are generated lazily: `next` is the first shard never
/// handed out, `requeued` holds shards handed back by lost workers.
#[derive(Debug)]
pub(crate) struct Job {
    /// Its id, for views.
    pub id: JobId,
    /// The principal that submitted it: its weight and quotas apply to the job.
    pub owner: Owner,
    /// Its owner's account in the core (set by the core when it takes the job).
    pub principal: super::owner::PrincipalId,
    /// What was submitted: kind, params, source (a range; an input job's lines are in
    /// `inputs`), limits. Params are dropped when the job ends.
    pub spec: JobSpec,
    /// The input lines of an input job, packed (shared with the journal until it wrote
    /// them); dropped when the job ends.
    pub inputs: Arc<Inputs>,
    /// Bytes of the spec and inputs counted in the meter while the job is live.
    pub spec_bytes: usize,
    /// Bytes held by jobs not yet ended; this job's share leaves it when the job ends.
    meter: Meter,
    /// Where it is in its life.
    pub state: JobState,
    /// Shards in all, computed once from the source.
    pub total: u64,
    /// The first shard never handed out.
    pub next: u64,
    /// Shards handed back, to go out before `next`.
    pub requeued: VecDeque<u64>,
    /// Shards at or beyond `next` already done (restored from the journal): never handed out.
    pub skip: Ranges,
    /// Shards assigned to a worker (in flight) and the worker that holds each.
    pub assigned: HashMap<u64, WorkerId>,
    /// Shards whose outcome was accepted as done.
    pub done: u64,
    /// Reduces accepted outputs into the result.
    pub acc: Accumulator,
    /// How its outputs are reduced: the kernel's shape; once the job ended, an undeclared
    /// one becomes the shape its outputs had ([`Accumulator::shape`]).
    pub output: OutputShape,
    /// The reduced result, once succeeded; shared with every view, so a `Get` of a large
    /// result does not copy it on the core's task.
    pub result_json: Option<Arc<str>>,
    /// Its result is a list too large to keep inline: it is read from the store only.
    pub result_in_store: bool,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
    /// When it was submitted, for elapsed time.
    pub submitted: Instant,
    /// When it was submitted, for its age: `submitted`, except for an ended job restored from
    /// the journal, whose elapsed time is counted from its restore.
    pub born: Instant,
    /// When it ended, to freeze elapsed time.
    pub finished: Option<Instant>,
    /// Workers that were sent this job's definition and have not been told to forget it.
    pub known_by: HashSet<WorkerId>,
    /// Per shard: workers lost while it was started on them (only shards that have any).
    pub crashes: HashMap<u64, u32>,
    /// Per shard: failed runs (only shards that have any).
    pub failures: HashMap<u64, u32>,
    /// Shards put back in the queue to run again.
    pub reruns: u64,
    /// Since when no connected worker can run it: none offers its kind, or none of those
    /// holds the labels it requires (`None` while one can).
    pub waiting_since: Option<Instant>,
    /// Why it waits, when no worker offering its kind holds the labels it requires (`None`
    /// when it waits for its kind, or does not wait): `no worker runs CPython 3.12`.
    pub waiting_why: Option<String>,
    /// Whether its `--verify` copies wait with no second worker of its kind to run them.
    pub verify_blocked: bool,
    /// Bytes of shard logs journaled for it, against `CoreConfig::shard_log_bytes`.
    pub log_bytes: usize,
    /// What its shards cost a pool thread, as workers report it: sizes windows.
    pub cost: ShardCost,
}

impl Job {
    /// A queued job, none of its shards handed out; its bytes are counted in `limits.meter`.
    pub fn new(
        id: JobId,
        sub: Submission,
        owner: Owner,
        output: OutputShape,
        limits: ByteLimits,
        now: Instant,
    ) -> Self {
        let spec_bytes = sub.bytes();
        limits.meter.add(spec_bytes);
        let total = sub.shards();
        Job {
            id,
            owner,
            principal: 0,
            spec: sub.spec,
            inputs: sub.inputs,
            spec_bytes,
            meter: limits.meter.clone(),
            state: JobState::Queued,
            total,
            next: 0,
            requeued: VecDeque::new(),
            skip: Ranges::default(),
            assigned: HashMap::new(),
            done: 0,
            acc: Accumulator::limited(output, limits),
            output,
            result_json: None,
            result_in_store: false,
            error: None,
            submitted: now,
            born: now,
            finished: None,
            known_by: HashSet::new(),
            crashes: HashMap::new(),
            failures: HashMap::new(),
            reruns: 0,
            waiting_since: None,
            waiting_why: None,
            verify_blocked: false,
            log_bytes: 0,
            cost: ShardCost::default(),
        }
    }

    /// An ended job as the journal summarised it: what `Get` and `List` show, nothing more.
    pub fn ended(v: JobView, now: Instant) -> Self {
        let source = JobSource::Range { start: 0, end: v.total, shard_size: 1 };
        let spec = JobSpec {
            kind: v.kind,
            source,
            params: Params::default(),
            priority: v.priority,
            limits: JobLimits::default(),
            requires: Default::default(),
        };
        let submitted = now.checked_sub(Duration::from_millis(v.elapsed_ms)).unwrap_or(now);
        let sub = Submission::restored(spec);
        let owner = Owner::named(&v.owner);
        let limits = ByteLimits::default();
        let mut job = Job::new(v.id, sub, owner, OutputShape::Any, limits, submitted);
        job.meter = Meter::default();
        job.spec_bytes = 0;
        job.state = v.state;
        job.next = job.total;
        job.done = v.done;
        job.result_json = v.result_json;
        job.result_in_store = v.result_in_store;
        job.error = v.error;
        job.finished = Some(now);
        job.reruns = v.reruns;
        job.output = v.output;
        job.born = now.checked_sub(Duration::from_millis(v.age_ms)).unwrap_or(submitted);
        job
    }

    /// Shards waiting to be handed out.
    pub fn pending(&self) -> u64 {
        self.requeued.len() as u64 + (self.total - self.next) - self.skip.len()
    }

    /// Puts a shard back at the end of the re-queued ones, to run again.
    pub fn requeue(&mut self, shard: u64) {
        self.requeued.push_back(shard);
        self.reruns += 1;
    }

    /// Takes the next shard to hand out: re-queued ones first, then the cursor (which jumps
    /// over shards already done).
    pub fn take_shard(&mut self) -> Option<u64> {
        if let Some(shard) = self.requeued.pop_front() {
            return Some(shard);
        }
        if let Some(end) = self.skip.skip(self.next) {
            self.next = end;
        }
        (self.next < self.total).then(|| {
            self.next += 1;
            self.next - 1
        })
    }

    /// Shard `shard`'s indices `lo..hi` and, for an input job, its input line.
    pub fn shard(&self, shard: u64) -> (u64, u64, Option<&str>) {
        let (lo, hi, _) = self.spec.source.shard(shard);
        (lo, hi, self.inputs.line(shard))
    }

    /// Shard `shard` as errors name it: `shard 2 (indices 20..30)`, or for an input job
    /// `shard 2 (input line 3)`, counting lines from 1 as people (and editors) do.
    pub fn describe(&self, shard: u64) -> String {
        match self.shard(shard) {
            (_, _, Some(_)) => format!("shard {shard} (input line {})", shard + 1),
            (lo, hi, None) => format!("shard {shard} (indices {lo}..{hi})"),
        }
    }

    /// Sets the final state and drops what only a going job needs (its queue, inputs, params,
    /// accumulator and per-shard counts), taking its bytes off the meter; the accumulated
    /// fragments are joined into the result here if it succeeded (unless the result spilled
    /// to the store).
    pub fn end(&mut self, state: JobState, error: Option<String>, now: Instant) {
        self.state = state;
        self.error = error;
        self.finished = Some(now);
        self.requeued.clear();
        self.skip = Ranges::default();
        self.next = self.total;
        let acc = std::mem::replace(&mut self.acc, Accumulator::new(OutputShape::Any));
        self.output = acc.shape();
        self.meter.sub(self.spec_bytes + acc.held);
        self.spec_bytes = 0;
        if state == JobState::Succeeded {
            match acc.finish() {
                Some(json) => self.result_json = Some(json.into()),
                None => self.result_in_store = true,
            }
        }
        self.inputs = Arc::default();
        self.spec.params = Params::default();
        self.crashes = Default::default();
        self.failures = Default::default();
    }

    /// The bytes an ended job keeps (result, error, record), for retention by bytes.
    pub fn kept_bytes(&self) -> usize {
        let result = self.result_json.as_ref().map_or(0, |r| r.len());
        JOB_OVERHEAD + result + self.error.as_ref().map_or(0, String::len)
    }

    /// Milliseconds since submission, until now.
    pub fn age_ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.born).as_millis() as u64
    }

    /// Milliseconds since submission, until it ended.
    pub fn elapsed_ms(&self, now: Instant) -> u64 {
        let end = self.finished.unwrap_or(now);
        end.saturating_duration_since(self.submitted).as_millis() as u64
    }
}
