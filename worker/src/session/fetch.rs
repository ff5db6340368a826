//! Jobs that wait for their module (a `wasm` job's, or the one a kernel's module param names):
//! the worker asks the master for a module's bytes once
//! (however many jobs need it) and holds those jobs' definitions and tasks until it arrives.

use farm_proto::session::{JobDef, ShardTask};
use std::collections::HashMap;

/// What waits for modules.
#[derive(Debug, Default)]
pub(crate) struct Fetching {
    /// The jobs waiting for each module, by its hash.
    by_module: HashMap<String, Vec<JobDef>>,
    /// The tasks of each waiting job; a job not here any more was cancelled or forgotten.
    held: HashMap<u64, Vec<ShardTask>>,
}

impl Fetching {
    /// Holds `def` until module `hash` arrives. True if the module must be asked for (no
    /// other job waits for it already).
    pub fn hold(&mut self, hash: String, def: JobDef) -> bool {
        self.held.insert(def.job_id, Vec::new());
        let jobs = self.by_module.entry(hash).or_default();
        jobs.push(def);
        jobs.len() == 1
    }

    /// Holds `task` if its job waits; gives it back otherwise.
    pub fn task(&mut self, task: ShardTask) -> Option<ShardTask> {
        match self.held.get_mut(&task.job_id) {
            Some(tasks) => {
                tasks.push(task);
                None
            }
            None => Some(task),
        }
    }

    /// Module `hash` arrived (or the master has none): the jobs that waited for it, each with
    /// its tasks, except those dropped meanwhile.
    pub fn arrived(&mut self, hash: &str) -> Vec<(JobDef, Vec<ShardTask>)> {
        let defs = self.by_module.remove(hash).unwrap_or_default();
        defs.into_iter()
            .filter_map(|def| self.held.remove(&def.job_id).map(|tasks| (def, tasks)))
            .collect()
    }

    /// Drops a waiting job and its tasks (it was cancelled or forgotten).
    pub fn drop_job(&mut self, job: u64) {
        self.held.remove(&job);
    }

    /// Drops everything; returns the tasks that were held, to hand back.
    pub fn take_all(&mut self) -> Vec<ShardTask> {
        self.by_module.clear();
        self.held.drain().flat_map(|(_, tasks)| tasks).collect()
    }
}
