//! Jobs and tasks as they arrive: defining a job (or refusing it once), holding a job that
//! names a module (a `wasm` job's, a `python` job's function) until the module is fetched, and
//! handing tasks to the pool.

use super::*;

impl Session {
    /// Prepares the new jobs (refusing, once, those whose params the kernel rejects; holding
    /// those whose module must be fetched first) and hands the tasks to the pool.
    pub(super) fn assign(&mut self, now: Instant, assign: Assign, out: &mut Vec<Action>) {
        for def in assign.jobs {
            match self.registry.needs_module(&def.kind, &def.params) {
                Some(hash) => {
                    debug!(job = def.job_id, module = %hash, "fetching the job's module");
                    if self.fetching.hold(hash.clone(), def) {
                        out.push(Action::Send(ToMaster::FetchModule(hash)));
                    }
                }
                None => self.define(def, out),
            }
        }
        for task in assign.tasks {
            if let Some(task) = self.fetching.task(task) {
                self.start(now, task, out);
            }
        }
    }

    /// A module arrived (its jobs start) or the master has none (its jobs are refused).
    pub(super) fn module(&mut self, now: Instant, module: ModuleBytes, out: &mut Vec<Action>) {
        let waiting = self.fetching.arrived(&module.sha256);
        if let Err(why) = &module.wasm {
            let reason = format!("module {}: {why}", module.sha256);
            waiting.into_iter().for_each(|(def, _)| self.refuse(def.job_id, reason.clone(), out));
            return;
        }
        if let Ok(bytes) = module.wasm {
            let kinds: Vec<&str> = waiting.iter().map(|(def, _)| def.kind.as_str()).collect();
            self.registry.module_arrived(&module.sha256, bytes, &kinds);
        }
        for (def, tasks) in waiting {
            self.define(def, out);
            tasks.into_iter().for_each(|task| self.start(now, task, out));
        }
    }

    /// Prepares a job, or refuses it once.
    pub(super) fn define(&mut self, def: JobDef, out: &mut Vec<Action>) {
        match self.registry.prepare(&def.kind, &def.params) {
            Ok(prepared) => {
                let (timeout, record_runs) = (def.shard_timeout, def.record_runs);
                let cancel = CancelFlag::new();
                let priority = def.priority;
                let entry = JobEntry { prepared, cancel, timeout, record_runs, priority };
                self.jobs.insert(def.job_id, Arc::new(entry));
            }
            Err(e) => {
                warn!(job = def.job_id, kind = %def.kind, error = %e, "job refused");
                self.refuse(def.job_id, e.to_string(), out);
            }
        }
    }

    pub(super) fn refuse(&mut self, job_id: u64, reason: String, out: &mut Vec<Action>) {
        self.refused.insert(job_id);
        out.push(Action::Send(ToMaster::Refused { job_id, reason }));
    }

    /// Hands a task of a defined job to the pool (fails one of a job never defined).
    pub(super) fn start(&mut self, now: Instant, task: ShardTask, out: &mut Vec<Action>) {
        let input = ShardInput { lo: task.lo, hi: task.hi, input: task.input };
        if let Some(job) = self.jobs.get(&task.job_id) {
            self.in_flight += 1;
            self.idle_since = None;
            let (job_id, shard, job) = (task.job_id, task.shard, job.clone());
            out.push(Action::Run(Task { job_id, shard, job, input }));
        } else if !self.refused.contains(&task.job_id) {
            let error = format!("job {} was never defined", task.job_id);
            self.batch.finished(now, task.job_id, task.shard, ShardOutcome::Failed(error));
            self.send_if_full(out);
        }
    }
}
