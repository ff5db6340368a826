//! A job's accumulator: it reduces shard outputs into the job result, counting the bytes it
//! keeps. A list result is kept in RAM only up to `--inline-result-mib` (1 MiB); past it, it
//! lives only in the store (every list output is journaled in `list_outputs`) and is read with
//! `Results`.

use super::memory::{mib, Meter, ENTRY_OVERHEAD};
use farm_proto::{Output, OutputShape};
use std::collections::BTreeMap;

/// The byte limits a job's accumulator works under.
#[derive(Debug, Clone, Default)]
pub(crate) struct ByteLimits {
    /// Bytes held by jobs not yet ended.
    pub meter: Meter,
    /// Most bytes `meter` may reach (`CoreConfig::memory_budget`).
    pub budget: usize,
    /// Most bytes of a list result's JSON kept in RAM and carried in the job's status
    /// (`CoreConfig::inline_result_bytes`); past it the result is read from the store.
    pub max_result: usize,
}

/// Reduces shard outputs as the kernel's declared output shape says: counts and fractions are
/// summed as they arrive; each list output is rendered to its JSON fragment as it is accepted
/// (so the cost is spread over result batches) and the fragments are joined in index order at
/// the end. A kernel that declared no shape is reduced by the variant its first output has.
/// The fragments count against the master's memory budget, and only while they total under
/// the inline limit: past it they are dropped (the job's result is then read from the store,
/// where every list output is journaled) and later outputs are only checked, not rendered.
#[derive(Debug)]
pub(crate) struct Accumulator {
    /// What the kernel declared.
    shape: OutputShape,
    /// The sum of `Count` outputs, once one came.
    count: Option<u64>,
    /// The sums of `Fraction` outputs, once one came.
    fraction: Option<(u64, u64)>,
    /// The shape of the list outputs, once one came (an undeclared shape follows it).
    list: Option<OutputShape>,
    /// Each non-empty list output's JSON items without the brackets, by shard.
    fragments: BTreeMap<u64, String>,
    /// Bytes of the result JSON so far: fragments, commas, brackets.
    json_bytes: usize,
    /// Bytes this accumulator counted in the meter.
    pub(super) held: usize,
    /// The list passed the inline limit: fragments dropped, the result is in the store only.
    spilled: bool,
    /// The limits it checks each output against.
    limits: ByteLimits,
}

impl Accumulator {
    /// An empty accumulator for a kernel with this output shape, without byte limits.
    pub fn new(shape: OutputShape) -> Self {
        let limits =
            ByteLimits { budget: usize::MAX, max_result: usize::MAX, ..Default::default() };
        Accumulator::limited(shape, limits)
    }

    /// An empty accumulator that refuses outputs past `limits`.
    pub fn limited(shape: OutputShape, limits: ByteLimits) -> Self {
        Accumulator {
            shape,
            count: None,
            fraction: None,
            list: None,
            fragments: BTreeMap::new(),
            json_bytes: 2,
            held: 0,
            spilled: false,
            limits,
        }
    }

    /// Adds one shard's output; fails when the output is not of the declared shape, or of
    /// another variant than the others (a kernel bug), a sum overflows, or an inline result
    /// would pass the master's memory budget.
    pub fn add(&mut self, shard: u64, output: &Output) -> Result<(), String> {
        if !self.fits(output) {
            return Err(format!(
                "shard {shard} returned another kind of output than its kernel declares"
            ));
        }
        match output {
            &Output::Count(n) => {
                let sum = self.count.unwrap_or(0).checked_add(n);
                self.count = Some(sum.ok_or("job result overflows u64")?);
            }
            &Output::Fraction { hits, samples } => {
                let (h, s) = self.fraction.unwrap_or((0, 0));
                let sum = h.checked_add(hits).zip(s.checked_add(samples));
                self.fraction = Some(sum.ok_or("sample count overflows u64")?);
            }
            other => {
                self.list = list_shape(other);
                if self.spilled {
                    return Ok(());
                }
                let fragment = render(other)?;
                if !fragment.is_empty() {
                    self.keep(shard, fragment)?;
                }
            }
        }
        Ok(())
    }

    /// Keeps one shard's fragment if the budget allows it; past the inline limit, drops them
    /// all instead (the result is read from the store).
    fn keep(&mut self, shard: u64, fragment: String) -> Result<(), String> {
        let ByteLimits { meter, budget, max_result } = &self.limits;
        let json_bytes = self.json_bytes + fragment.len() + 1;
        if json_bytes > *max_result {
            meter.sub(self.held);
            self.held = 0;
            self.fragments = BTreeMap::new();
            self.spilled = true;
            return Ok(());
        }
        let cost = fragment.len() + ENTRY_OVERHEAD;
        if meter.get() + cost > *budget {
            return Err(format!(
                "master memory budget of {} MiB for job inputs and results is full \
                 (--memory-budget-mib): this job's result had reached {} MiB",
                mib(*budget),
                mib(self.json_bytes)
            ));
        }
        meter.add(cost);
        self.held += cost;
        self.json_bytes = json_bytes;
        self.fragments.insert(shard, fragment);
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
            (OutputShape::Any, _) => match (&self.count, &self.fraction, self.list) {
                (Some(_), _, _) => matches!(output, Output::Count(_)),
                (_, Some(_), _) => matches!(output, Output::Fraction { .. }),
                (_, _, Some(first)) => Some(first) == list_shape(output),
                _ => true,
            },
            _ => false,
        }
    }

    /// The shape the result has: the declared one, or for an undeclared one the shape of the
    /// outputs that came (a list when none came: the result is then `[]`).
    pub fn shape(&self) -> OutputShape {
        match (self.shape, self.count, self.list) {
            (OutputShape::Any, Some(_), _) => OutputShape::Count,
            (OutputShape::Any, None, Some(list)) => list,
            (OutputShape::Any, None, None) if self.fraction.is_some() => {
                OutputShape::Fraction { scale: 1.0 }
            }
            (OutputShape::Any, None, None) => OutputShape::Lines,
            (declared, _, _) => declared,
        }
    }

    /// The job result as JSON: a sum, an estimate, or the fragments joined in index order (one
    /// copy of bytes already rendered, bounded by the inline limit); `None` for a list that
    /// spilled to the store.
    pub fn finish(self) -> Option<String> {
        if self.spilled {
            return None;
        }
        Some(self.render())
    }

    /// [`Accumulator::finish`] of a result kept inline.
    fn render(self) -> String {
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
        let mut json = String::with_capacity(self.json_bytes);
        json.push('[');
        for (i, fragment) in self.fragments.into_values().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push_str(&fragment);
        }
        json.push(']');
        json
    }
}

/// The shape of a list output; `None` for a count or a fraction.
fn list_shape(output: &Output) -> Option<OutputShape> {
    match output {
        Output::Lines(_) => Some(OutputShape::Lines),
        Output::Rows(_) => Some(OutputShape::Rows),
        Output::Exec(_) => Some(OutputShape::Exec),
        Output::Count(_) | Output::Fraction { .. } => None,
    }
}

/// A list output's JSON items, without the surrounding brackets (empty for an empty list).
fn render(output: &Output) -> Result<String, String> {
    let array = match output {
        Output::Lines(lines) => serde_json::to_string(lines),
        Output::Rows(rows) => serde_json::to_string(rows),
        Output::Exec(runs) => serde_json::to_string(runs),
        Output::Count(_) | Output::Fraction { .. } => return Ok(String::new()),
    }
    .map_err(|e| format!("cannot render a shard's output as JSON: {e}"))?;
    Ok(array.get(1..array.len().saturating_sub(1)).unwrap_or_default().to_owned())
}

#[cfg(test)]
#[path = "accumulator_tests.rs"]
mod tests;
