//! One job inside the scheduler core: its lazy shard cursor, the shards in flight, and the
//! accumulator that reduces shard outputs into the job result.

use super::{JobId, WorkerId};
use farm_proto::{JobSpec, Output, OutputShape};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Instant;

pub use farm_proto::JobState;

/// A job as the core tracks it. Shards are generated lazily: `next` is the first shard never
/// handed out, `requeued` holds shards handed back by lost workers.
#[derive(Debug)]
pub(crate) struct Job {
    /// Its id, for views.
    pub id: JobId,
    /// What was submitted: kind, params, source, limits.
    pub spec: JobSpec,
    /// Where it is in its life.
    pub state: JobState,
    /// Shards in all, computed once from the source.
    pub total: u64,
    /// The first shard never handed out.
    pub next: u64,
    /// Shards handed back, to go out before `next`.
    pub requeued: VecDeque<u64>,
    /// Shards assigned to a worker (in flight) and the worker that holds each.
    pub assigned: HashMap<u64, WorkerId>,
    /// Shards whose outcome was accepted as done.
    pub done: u64,
    /// Reduces accepted outputs into the result.
    pub acc: Accumulator,
    /// The reduced result, once succeeded.
    pub result_json: Option<String>,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
    /// When it was submitted, for elapsed time.
    pub submitted: Instant,
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
}

impl Job {
    /// A queued job, none of its shards handed out.
    pub fn new(id: JobId, spec: JobSpec, output: OutputShape, now: Instant) -> Self {
        let total = spec.source.shard_count();
        Job {
            id,
            spec,
            state: JobState::Queued,
            total,
            next: 0,
            requeued: VecDeque::new(),
            assigned: HashMap::new(),
            done: 0,
            acc: Accumulator::new(output),
            result_json: None,
            error: None,
            submitted: now,
            finished: None,
            known_by: HashSet::new(),
            crashes: HashMap::new(),
            failures: HashMap::new(),
            reruns: 0,
        }
    }

    /// Shards waiting to be handed out.
    pub fn pending(&self) -> u64 {
        self.requeued.len() as u64 + (self.total - self.next)
    }

    /// Puts a shard back at the end of the re-queued ones, to run again.
    pub fn requeue(&mut self, shard: u64) {
        self.requeued.push_back(shard);
        self.reruns += 1;
    }

    /// Takes the next shard to hand out: re-queued ones first, then the cursor.
    pub fn take_shard(&mut self) -> Option<u64> {
        if let Some(shard) = self.requeued.pop_front() {
            return Some(shard);
        }
        (self.next < self.total).then(|| {
            self.next += 1;
            self.next - 1
        })
    }

    /// Sets the final state and drops what only a going job needs (its queue, accumulator and
    /// per-shard counts); the result is rendered once here if it succeeded.
    pub fn end(&mut self, state: JobState, error: Option<String>, now: Instant) {
        self.state = state;
        self.error = error;
        self.finished = Some(now);
        self.requeued.clear();
        self.next = self.total;
        let acc = std::mem::replace(&mut self.acc, Accumulator::new(OutputShape::Any));
        if state == JobState::Succeeded {
            self.result_json = Some(acc.finish());
        }
        self.crashes = Default::default();
        self.failures = Default::default();
    }

    /// Milliseconds since submission, until it ended.
    pub fn elapsed_ms(&self, now: Instant) -> u64 {
        let end = self.finished.unwrap_or(now);
        end.saturating_duration_since(self.submitted).as_millis() as u64
    }
}

/// Reduces shard outputs as the kernel's declared output shape says: counts and fractions are
/// summed as they arrive, list outputs are kept by shard and joined in index order at the end.
/// A kernel that declared no shape is reduced by the variant its first output has.
#[derive(Debug)]
pub(crate) struct Accumulator {
    shape: OutputShape,
    count: Option<u64>,
    fraction: Option<(u64, u64)>,
    ordered: BTreeMap<u64, Output>,
}

impl Accumulator {
    /// An empty accumulator for a kernel with this output shape.
    pub fn new(shape: OutputShape) -> Self {
        Accumulator { shape, count: None, fraction: None, ordered: BTreeMap::new() }
    }

    /// Adds one shard's output; fails when the output is not of the declared shape, or of
    /// another variant than the others (a kernel bug), or a sum overflows.
    pub fn add(&mut self, shard: u64, output: Output) -> Result<(), String> {
        if !self.fits(&output) {
            return Err(format!(
                "shard {shard} returned another kind of output than its kernel declares"
            ));
        }
        match output {
            Output::Count(n) => {
                let sum = self.count.unwrap_or(0).checked_add(n);
                self.count = Some(sum.ok_or("job result overflows u64")?);
            }
            Output::Fraction { hits, samples } => {
                let (h, s) = self.fraction.unwrap_or((0, 0));
                let sum = h.checked_add(hits).zip(s.checked_add(samples));
                self.fraction = Some(sum.ok_or("sample count overflows u64")?);
            }
            other => {
                self.ordered.insert(shard, other);
            }
        }
        Ok(())
    }

    /// Whether `output` fits the declared shape, or, undeclared, the outputs so far.
    fn fits(&self, output: &Output) -> bool {
        match (self.shape, output) {
            (OutputShape::Count, Output::Count(_))
            | (OutputShape::Fraction { .. }, Output::Fraction { .. })
            | (OutputShape::Lines, Output::Lines(_))
            | (OutputShape::Rows, Output::Rows(_))
            | (OutputShape::Exec, Output::Exec(_)) => true,
            (OutputShape::Any, _) => {
                match (&self.count, &self.fraction, self.ordered.values().next()) {
                    (Some(_), _, _) => matches!(output, Output::Count(_)),
                    (_, Some(_), _) => matches!(output, Output::Fraction { .. }),
                    (_, _, Some(first)) => {
                        std::mem::discriminant(first) == std::mem::discriminant(output)
                    }
                    _ => true,
                }
            }
            _ => false,
        }
    }

    /// The job result as JSON.
    pub fn finish(self) -> String {
        if let Some(n) = self.count {
            return n.to_string();
        }
        if let Some((hits, samples)) = self.fraction {
            let scale = match self.shape {
                OutputShape::Fraction { scale } => scale,
                _ => 1.0,
            };
            let estimate = scale * hits as f64 / samples.max(1) as f64;
            return serde_json::json!({"hits": hits, "samples": samples, "estimate": estimate})
                .to_string();
        }
        let mut items = Vec::new();
        for output in self.ordered.into_values() {
            match output {
                Output::Lines(lines) => items.extend(lines.into_iter().map(Into::into)),
                Output::Rows(rows) => items.extend(rows.into_iter().map(|r| serde_json::json!(r))),
                Output::Exec(runs) => items
                    .extend(runs.into_iter().map(
                        |r| serde_json::json!({"exit_code": r.exit_code, "stdout": r.stdout}),
                    )),
                Output::Count(_) | Output::Fraction { .. } => {}
            }
        }
        serde_json::Value::Array(items).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use farm_proto::ExecRun;

    #[test]
    fn counts_are_summed_and_lists_joined_in_shard_order() {
        let mut acc = Accumulator::new(OutputShape::Any);
        acc.add(1, Output::Count(2)).expect("count");
        acc.add(0, Output::Count(3)).expect("count");
        assert!(acc.add(2, Output::Lines(vec![])).is_err());
        assert_eq!(acc.finish(), "5");

        let mut acc = Accumulator::new(OutputShape::Any);
        acc.add(1, Output::Lines(vec!["c".into()])).expect("lines");
        acc.add(0, Output::Lines(vec!["a".into(), "b".into()])).expect("lines");
        assert_eq!(acc.finish(), r#"["a","b","c"]"#);

        let mut acc = Accumulator::new(OutputShape::Any);
        acc.add(0, Output::Exec(vec![ExecRun { exit_code: 1, stdout: "x".into() }])).expect("exec");
        assert_eq!(acc.finish(), r#"[{"exit_code":1,"stdout":"x"}]"#);
    }

    #[test]
    fn fractions_reduce_to_a_scaled_estimate_and_overflow_is_an_error() {
        let mut acc = Accumulator::new(OutputShape::Fraction { scale: 4.0 });
        acc.add(0, Output::Fraction { hits: 3, samples: 4 }).expect("pi");
        acc.add(1, Output::Fraction { hits: 3, samples: 4 }).expect("pi");
        let v: serde_json::Value = serde_json::from_str(&acc.finish()).expect("json");
        assert_eq!(v["hits"], 6);
        assert_eq!(v["estimate"], 3.0);

        let mut acc = Accumulator::new(OutputShape::Any);
        acc.add(0, Output::Count(u64::MAX)).expect("count");
        assert!(acc.add(1, Output::Count(1)).is_err());
    }

    #[test]
    fn a_declared_shape_refuses_other_outputs() {
        let mut acc = Accumulator::new(OutputShape::Count);
        let err = acc.add(0, Output::Lines(vec![])).unwrap_err();
        assert!(err.contains("another kind of output than its kernel declares"), "{err}");
        let mut acc = Accumulator::new(OutputShape::Any);
        acc.add(0, Output::Fraction { hits: 1, samples: 2 }).expect("fraction");
        // Undeclared, a fraction's estimate is the plain ratio.
        let v: serde_json::Value = serde_json::from_str(&acc.finish()).expect("json");
        assert_eq!(v["estimate"], 0.5);
    }
}
