//! Retention of ended jobs: how many, how many bytes of results and errors, and for how long
//! the core keeps them for `Get` and `List`. Forgetting one journals `Forget`, which deletes
//! its rows from the store.

use super::{Core, JournalOp, Outbox};
use std::time::Instant;

impl Core {
    /// Forgets the oldest ended jobs while more than `keep_finished` are kept or they keep
    /// more than `keep_finished_bytes` (the newest stays whatever its size, so the client
    /// that waited for it can read it).
    pub(super) fn retain_ended(&mut self, out: &mut impl Outbox) {
        let (count, bytes) = (self.config.keep_finished, self.config.keep_finished_bytes);
        while self.ended.len() > count || (self.ended_bytes > bytes && self.ended.len() > 1) {
            if !self.forget_oldest(out) {
                break;
            }
        }
    }

    /// Forgets ended jobs older than `keep_finished_for` (ended jobs are kept in the order
    /// they ended, so only the front is looked at).
    pub(super) fn forget_old(&mut self, now: Instant, out: &mut impl Outbox) {
        let keep_for = self.config.keep_finished_for;
        while let Some(&old) = self.ended.front() {
            let ended_at = self.jobs.get(&old).and_then(|j| j.finished);
            if ended_at.is_some_and(|at| now.saturating_duration_since(at) < keep_for) {
                break;
            }
            self.forget_oldest(out);
        }
    }

    /// Forgets the job that ended first; false if none is kept.
    fn forget_oldest(&mut self, out: &mut impl Outbox) -> bool {
        let Some(old) = self.ended.pop_front() else { return false };
        if let Some(job) = self.jobs.remove(&old) {
            self.ended_bytes = self.ended_bytes.saturating_sub(job.kept_bytes());
            out.journal(JournalOp::Forget(old));
        }
        true
    }

    /// Bytes held by jobs not yet ended, and bytes kept by ended ones.
    pub fn memory(&self) -> (usize, usize) {
        (self.meter.get(), self.ended_bytes)
    }
}
