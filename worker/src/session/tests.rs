//! The session state machine, driven by hand: the test plays the master and the pool, and
//! moves the clock itself.

use super::batch::{MAX_BATCH, MAX_OUTPUT_BYTES};
use super::machine::WELCOME_TIMEOUT;
use super::machine::{
    Action, Config, End, Event, Session, Task, CLOSE_TIMEOUT, COALESCE, COALESCE_MAX,
};
use crate::pool::{Finished, Report};
use crate::registry::Registry;
use crate::sdk::{KernelError, Output};
use farm_proto::session::{
    Assign, JobDef, ModuleBytes, Results, ShardOutcome, ShardTask, ToMaster, ToWorker, Welcome,
};
use farm_proto::Params;
use std::time::{Duration, Instant};

const HEARTBEAT: Duration = Duration::from_millis(100);
const DRAIN: Duration = Duration::from_secs(2);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A session and its clock's origin.
struct Rig {
    session: Session,
    t0: Instant,
}

impl Rig {
    /// A session with `threads` pool threads, welcomed at t0.
    fn welcomed(threads: usize) -> Rig {
        Rig::with(threads, Registry::builtin(false))
    }

    /// A session offering `registry`'s kernels, welcomed at t0.
    fn with(threads: usize, registry: Registry) -> Rig {
        let config =
            |_| Config { threads, drain_timeout: DRAIN, idle_timeout: None, stop_at: None };
        Rig::welcomed_with(registry, config)
    }

    /// A session offering `registry`'s kernels welcomed at t0, with the config `make` returns
    /// for t0.
    fn welcomed_with(registry: Registry, make: impl FnOnce(Instant) -> Config) -> Rig {
        let t0 = Instant::now();
        let config = make(t0);
        let mut session = Session::new(config, registry, t0);
        let welcome = Welcome { worker_id: 1, heartbeat: HEARTBEAT };
        assert!(session.handle(t0, Event::Master(ToWorker::Welcome(welcome))).is_empty());
        assert!(session.welcomed());
        Rig { session, t0 }
    }

    fn at(&self, offset: Duration) -> Instant {
        self.t0 + offset
    }

    fn handle(&mut self, offset: Duration, event: Event) -> Vec<Action> {
        self.session.handle(self.t0 + offset, event)
    }

    fn poll(&mut self, offset: Duration) -> Vec<Action> {
        self.session.poll(self.t0 + offset)
    }

    /// The master assigns `shards` shards of a new job `job_id` of `kind` with `params`.
    fn assign(&mut self, job_id: u64, kind: &str, params: &[&str], shards: u64) -> Vec<Action> {
        let def = JobDef {
            job_id,
            kind: kind.into(),
            params: Params::from_pairs(params).unwrap(),
            shard_timeout: None,
            record_runs: false,
            priority: 0,
        };
        self.handle(
            Duration::ZERO,
            Event::Master(ToWorker::Assign(assign(vec![def], job_id, shards))),
        )
    }

    /// The pool reports a shard's outcome at `offset`.
    fn finish(
        &mut self,
        offset: Duration,
        job_id: u64,
        shard: u64,
        outcome: Result<Output, KernelError>,
    ) -> Vec<Action> {
        self.finish_after(offset, job_id, shard, outcome, Duration::ZERO)
    }

    /// The pool reports a shard's outcome at `offset`, after it ran for `busy`.
    fn finish_after(
        &mut self,
        offset: Duration,
        job_id: u64,
        shard: u64,
        outcome: Result<Output, KernelError>,
        busy: Duration,
    ) -> Vec<Action> {
        let finished = Finished { job_id, shard, outcome, run: None, busy };
        self.handle(offset, Event::Pool(Report::Finished(finished)))
    }
}

fn assign(jobs: Vec<JobDef>, job_id: u64, shards: u64) -> Assign {
    let tasks =
        (0..shards).map(|shard| ShardTask { job_id, shard, lo: shard, hi: shard + 1, input: None });
    Assign { jobs, tasks: tasks.collect() }
}

fn runs(actions: &[Action]) -> Vec<&Task> {
    actions.iter().filter_map(|a| if let Action::Run(t) = a { Some(t) } else { None }).collect()
}

fn sent(actions: &[Action]) -> Vec<&ToMaster> {
    actions.iter().filter_map(|a| if let Action::Send(m) = a { Some(m) } else { None }).collect()
}

fn results(actions: &[Action]) -> Vec<&Results> {
    let sent = sent(actions);
    sent.into_iter()
        .filter_map(|m| if let ToMaster::Results(r) = m { Some(r) } else { None })
        .collect()
}

fn ended(actions: &[Action]) -> Option<&End> {
    actions.iter().find_map(|a| if let Action::End(e) = a { Some(e) } else { None })
}

fn heartbeats(actions: &[Action]) -> usize {
    sent(actions).iter().filter(|m| matches!(m, ToMaster::Heartbeat)).count()
}

#[test]
fn a_master_that_never_welcomes_is_given_up_on() {
    let t0 = Instant::now();
    let config = Config { threads: 1, drain_timeout: DRAIN, idle_timeout: None, stop_at: None };
    let mut session = Session::new(config, Registry::builtin(false), t0);
    assert_eq!(session.next_wake(), Some(t0 + WELCOME_TIMEOUT));
    assert!(session.poll(t0 + WELCOME_TIMEOUT - ms(1)).is_empty());
    let actions = session.poll(t0 + WELCOME_TIMEOUT);
    assert_eq!(ended(&actions), Some(&End::Lost("no welcome from the master in time".into())));
    assert!(!session.welcomed());
    assert_eq!(session.next_wake(), None);
}

#[test]
fn before_the_welcome_anything_else_ends_the_session() {
    let t0 = Instant::now();
    let config = Config { threads: 1, drain_timeout: DRAIN, idle_timeout: None, stop_at: None };
    let cases = [
        (Event::Master(ToWorker::Heartbeat), End::Lost("master did not welcome the worker".into())),
        (Event::Rejected("protocol 1".into()), End::Rejected("protocol 1".into())),
        (Event::Shutdown, End::Shutdown),
    ];
    for (event, end) in cases {
        let mut session = Session::new(config, Registry::builtin(false), t0);
        assert_eq!(ended(&session.handle(t0, event)), Some(&end));
    }
}

#[test]
fn heartbeats_go_out_each_period() {
    let mut rig = Rig::welcomed(1);
    assert_eq!(rig.session.next_wake(), Some(rig.at(HEARTBEAT)));
    assert_eq!(heartbeats(&rig.poll(ms(99))), 0);
    assert_eq!(heartbeats(&rig.poll(ms(100))), 1);
    assert_eq!(heartbeats(&rig.poll(ms(150))), 0);
    rig.handle(ms(150), Event::Master(ToWorker::Heartbeat));
    assert_eq!(rig.session.next_wake(), Some(rig.at(ms(200))));
    assert_eq!(heartbeats(&rig.poll(ms(200))), 1);
}

#[test]
fn three_silent_periods_lose_the_master() {
    let mut rig = Rig::welcomed(1);
    assert!(ended(&rig.poll(ms(299))).is_none());
    // Any message is a sign of life, even one that does not parse.
    rig.handle(ms(250), Event::Garbled("empty message".into()));
    assert!(ended(&rig.poll(ms(549))).is_none());
    let actions = rig.poll(ms(550));
    assert_eq!(ended(&actions), Some(&End::Lost("no heartbeat from the master".into())));
}

#[test]
fn assigned_shards_go_to_the_pool_and_their_outcomes_come_back_together() {
    let mut rig = Rig::welcomed(2);
    let actions = rig.assign(7, "noop", &[], 3);
    let shards: Vec<u64> = runs(&actions).iter().map(|t| t.shard).collect();
    assert_eq!(shards, [0, 1, 2]);
    rig.handle(ms(1), Event::Pool(Report::Started { job_id: 7, shard: 0 }));
    rig.handle(ms(1), Event::Pool(Report::Started { job_id: 7, shard: 2 }));
    rig.finish(ms(1), 7, 0, Ok(Output::Count(1)));
    rig.finish(ms(1), 7, 1, Err(KernelError::Failed("boom".into())));
    let sent = rig.poll(ms(1));
    let batches = results(&sent);
    assert_eq!(batches.len(), 1, "one message for everything ready: {sent:?}");
    let done =
        [(7, 0, ShardOutcome::Done(Output::Count(1))), (7, 1, ShardOutcome::Failed("boom".into()))];
    assert_eq!(batches[0].done, done);
    // Shard 0 started and finished in the batch: it is reported done only.
    assert_eq!(batches[0].started, [(7, 2)]);
    assert!(results(&rig.poll(ms(2))).is_empty(), "nothing left to send");
}

#[test]
fn results_wait_a_moment_only_while_more_is_queued_than_running() {
    let mut rig = Rig::welcomed(1);
    rig.assign(1, "noop", &[], 4);
    rig.finish(ms(10), 1, 0, Ok(Output::Count(1)));
    // Three shards are still in flight on one thread: the batch waits for company.
    assert!(results(&rig.poll(ms(10))).is_empty());
    assert_eq!(rig.session.next_wake(), Some(rig.at(ms(10)) + COALESCE));
    rig.finish(ms(10), 1, 1, Ok(Output::Count(1)));
    // Now two are in flight, more than the one thread: the batch waits out its moment.
    assert!(results(&rig.poll(ms(10))).is_empty());
    let batches = rig.poll(ms(10) + COALESCE);
    assert_eq!(results(&batches)[0].done.len(), 2);
    // The worker is about to run dry: a result goes out at once.
    rig.finish(ms(20), 1, 2, Ok(Output::Count(1)));
    assert_eq!(results(&rig.poll(ms(20)))[0].done.len(), 1);
}

#[test]
fn results_wait_longer_while_the_queue_keeps_the_threads_busy_and_carry_their_cost() {
    let mut rig = Rig::welcomed(1);
    rig.assign(1, "spin", &["ms=10"], 20);
    // Each shard costs 10 ms; after the first, 18 wait behind the running one: 180 ms of work.
    // (Their reports come 2 ms apart here; only their cost matters.)
    for shard in 0..8 {
        rig.finish_after(ms(10 + 2 * shard), 1, shard, Ok(Output::Count(1)), ms(10));
    }
    // The batch opened at 10 ms and the queue still holds more than COALESCE_MAX of work
    // (eleven shards, 110 ms), so it waits the long hold rather than the short one.
    assert!(results(&rig.poll(ms(10) + COALESCE)).is_empty(), "no short hold with a long queue");
    assert!(results(&rig.poll(ms(24))).is_empty());
    let sent = rig.poll(ms(10) + COALESCE_MAX);
    let batches = results(&sent);
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].done.len(), 8);
    let cost = &batches[0].costs;
    assert_eq!((cost.len(), cost[0].job_id, cost[0].runs), (1, 1, 8));
    assert_eq!(cost[0].busy_ns, 80_000_000);
    // Eight more: four in flight (three queued, 30 ms of work): short holds again.
    for shard in 8..16 {
        rig.finish_after(ms(70), 1, shard, Ok(Output::Count(1)), ms(10));
    }
    assert_eq!(rig.session.next_wake(), Some(rig.at(ms(70)) + COALESCE));
}

#[test]
fn a_full_batch_goes_out_without_waiting() {
    let mut rig = Rig::welcomed(1);
    let shards = MAX_BATCH as u64 + 10;
    rig.assign(1, "noop", &[], shards);
    let mut sent = Vec::new();
    for shard in 0..shards {
        sent.extend(rig.finish(ms(1), 1, shard, Ok(Output::Count(1))));
    }
    assert_eq!(results(&sent).len(), 1);
    assert_eq!(results(&sent)[0].done.len(), MAX_BATCH);
    assert_eq!(results(&rig.poll(ms(1)))[0].done.len(), 10);
}

#[test]
fn an_output_too_large_to_send_fails_its_shard() {
    let mut rig = Rig::welcomed(1);
    rig.assign(1, "noop", &[], 1);
    let huge = Output::Lines(vec!["x".repeat(MAX_OUTPUT_BYTES)]);
    rig.finish(ms(1), 1, 0, Ok(huge));
    let sent = rig.poll(ms(1));
    let ShardOutcome::Failed(why) = &results(&sent)[0].done[0].2 else { panic!("{sent:?}") };
    assert!(why.contains("use smaller shards"), "{why}");
}

#[test]
fn a_job_whose_params_the_kernel_refuses_is_refused_once_and_never_run() {
    let mut rig = Rig::welcomed(1);
    let actions = rig.assign(5, "sleep", &["bogus=1"], 3);
    assert!(runs(&actions).is_empty());
    let sent = sent(&actions);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let ToMaster::Refused { job_id: 5, reason } = sent[0] else { panic!("{sent:?}") };
    assert!(reason.contains("bogus"), "{reason}");
    // More of its shards, sent before the master took the refusal in: dropped, unreported.
    let more = assign(vec![], 5, 2);
    assert!(rig.handle(ms(1), Event::Master(ToWorker::Assign(more))).is_empty());
    assert!(results(&rig.poll(ms(1))).is_empty());
    // A task of a job never defined at all still fails, so the master hears of it.
    let stray = assign(vec![], 9, 1);
    rig.handle(ms(2), Event::Master(ToWorker::Assign(stray)));
    let sent = rig.poll(ms(2));
    assert!(matches!(&results(&sent)[0].done[0], (9, 0, ShardOutcome::Failed(_))));
}

#[test]
fn a_cancelled_job_has_its_flag_set() {
    let mut rig = Rig::welcomed(1);
    let actions = rig.assign(3, "noop", &[], 1);
    let flag = runs(&actions)[0].job.cancel.clone();
    let actions = rig.handle(ms(1), Event::Master(ToWorker::CancelJob(3)));
    let [Action::Cancel(cancel)] = &actions[..] else { panic!("{actions:?}") };
    cancel.cancel();
    assert!(flag.is_cancelled());
}

#[test]
fn a_drain_hands_back_queued_shards_cancels_at_the_timeout_then_closes() {
    let mut rig = Rig::welcomed(1);
    let actions = rig.assign(1, "noop", &[], 3);
    let flag = runs(&actions)[0].job.cancel.clone();
    rig.handle(ms(1), Event::Pool(Report::Started { job_id: 1, shard: 0 }));
    let actions = rig.handle(ms(10), Event::Master(ToWorker::Drain));
    assert!(matches!(actions[..], [Action::DrainPool, Action::Send(ToMaster::Draining)]));
    // A second request changes nothing.
    assert!(rig.handle(ms(11), Event::Shutdown).is_empty());
    // The pool hands back the two queued shards.
    rig.finish(ms(12), 1, 1, Err(KernelError::Cancelled));
    rig.finish(ms(12), 1, 2, Err(KernelError::Cancelled));
    let sent = rig.poll(ms(12));
    let handed_back = &results(&sent)[0];
    assert_eq!(handed_back.done.len(), 2);
    assert!(handed_back.done.iter().all(|d| d.2 == ShardOutcome::Cancelled));
    assert_eq!(handed_back.started, [(1, 0)]);
    // Shard 0 keeps running until the drain timeout (the master stays alive); then it is
    // cancelled.
    rig.handle(ms(10) + DRAIN - ms(1), Event::Master(ToWorker::Heartbeat));
    assert!(rig.poll(ms(10) + DRAIN - ms(1)).iter().all(|a| !matches!(a, Action::Cancel(_))));
    let actions = rig.poll(ms(10) + DRAIN);
    let [Action::Cancel(cancel)] = &actions[..] else { panic!("{actions:?}") };
    cancel.cancel();
    assert!(flag.is_cancelled());
    // Its outcome comes back: sent, then the worker closes its side and waits for the master.
    rig.handle(ms(2020), Event::Master(ToWorker::Heartbeat));
    rig.finish(ms(2020), 1, 0, Err(KernelError::Cancelled));
    let actions = rig.poll(ms(2020));
    assert_eq!(results(&actions)[0].done, [(1, 0, ShardOutcome::Cancelled)]);
    assert!(matches!(actions.last(), Some(Action::CloseSend)), "{actions:?}");
    // Late messages are ignored; the master closing its side ends the session.
    assert!(rig.handle(ms(2021), Event::Master(ToWorker::Heartbeat)).is_empty());
    let actions = rig.handle(ms(2022), Event::Closed("master closed the stream".into()));
    assert_eq!(ended(&actions), Some(&End::Shutdown));
}

#[test]
fn a_drain_ends_even_if_shards_never_come_back_or_the_master_never_closes() {
    let mut rig = Rig::welcomed(1);
    rig.assign(1, "noop", &[], 1);
    rig.handle(ms(0), Event::Shutdown);
    // Keep the master alive; the shard never reports.
    let give_up = DRAIN + CLOSE_TIMEOUT;
    for t in (100..give_up.as_millis() as u64).step_by(100) {
        rig.handle(ms(t), Event::Master(ToWorker::Heartbeat));
        assert!(!rig.poll(ms(t)).iter().any(|a| matches!(a, Action::CloseSend)), "at {t} ms");
    }
    assert!(matches!(rig.poll(give_up).last(), Some(Action::CloseSend)));
    assert_eq!(rig.session.next_wake(), Some(rig.at(give_up + CLOSE_TIMEOUT)));
    assert!(rig.poll(give_up + CLOSE_TIMEOUT - ms(1)).is_empty());
    assert_eq!(ended(&rig.poll(give_up + CLOSE_TIMEOUT)), Some(&End::Shutdown));
}

#[test]
fn losing_the_master_while_draining_still_ends_as_a_shutdown() {
    let mut rig = Rig::welcomed(1);
    rig.assign(1, "noop", &[], 1);
    rig.handle(ms(0), Event::Master(ToWorker::Drain));
    let actions = rig.handle(ms(5), Event::Closed("stream error: reset".into()));
    assert!(actions.iter().any(|a| matches!(a, Action::Cancel(_))));
    assert_eq!(ended(&actions), Some(&End::Shutdown));
    assert!(rig.handle(ms(6), Event::Shutdown).is_empty(), "an ended session does nothing");
}

fn drains(actions: &[Action]) -> bool {
    actions.iter().any(|a| matches!(a, Action::DrainPool))
        && sent(actions).iter().any(|m| matches!(m, ToMaster::Draining))
}

fn config(idle: Option<Duration>, stop_at: Option<Instant>) -> Config {
    Config { threads: 1, drain_timeout: DRAIN, idle_timeout: idle, stop_at }
}

#[test]
fn an_idle_worker_drains_and_leaves_after_its_idle_timeout() {
    let mut rig = Rig::welcomed_with(Registry::builtin(false), |_| config(Some(ms(250)), None));
    assert_eq!(rig.session.next_wake(), Some(rig.at(ms(100))), "the heartbeat comes first");
    rig.handle(ms(200), Event::Master(ToWorker::Heartbeat));
    assert!(!drains(&rig.poll(ms(249))));
    let actions = rig.poll(ms(250));
    assert!(drains(&actions), "{actions:?}");
    assert!(actions.iter().any(|a| matches!(a, Action::CloseSend)), "nothing held: it closes");
}

#[test]
fn work_restarts_the_idle_clock() {
    let mut rig = Rig::welcomed_with(Registry::builtin(false), |_| config(Some(ms(200)), None));
    assert_eq!(runs(&rig.assign(1, "noop", &[], 1)).len(), 1);
    rig.handle(ms(150), Event::Master(ToWorker::Heartbeat));
    rig.finish(ms(150), 1, 0, Ok(Output::Count(1)));
    rig.handle(ms(250), Event::Master(ToWorker::Heartbeat));
    assert!(!drains(&rig.poll(ms(300))), "busy until 150 ms: idle only from then");
    assert_eq!(rig.session.next_wake().map(|w| w <= rig.at(ms(350))), Some(true));
    assert!(drains(&rig.poll(ms(350))));
}

#[test]
fn a_worker_near_its_allocations_end_stops_taking_shards_and_drains() {
    let mut rig =
        Rig::welcomed_with(Registry::builtin(false), |t0| config(None, Some(t0 + ms(100))));
    assert_eq!(runs(&rig.assign(1, "noop", &[], 1)).len(), 1);
    assert_eq!(rig.session.next_wake(), Some(rig.at(ms(100))));
    let actions = rig.poll(ms(100));
    assert!(drains(&actions), "{actions:?}");
    assert!(!actions.iter().any(|a| matches!(a, Action::CloseSend)), "its shard finishes first");
    let mut actions = rig.finish(ms(120), 1, 0, Ok(Output::Count(1)));
    actions.extend(rig.poll(ms(120)));
    assert!(actions.iter().any(|a| matches!(a, Action::CloseSend)), "{actions:?}");
}

#[cfg(feature = "wasm")]
#[test]
fn a_wasm_job_waits_for_its_module_which_is_asked_for_once() {
    let mut registry = Registry::builtin(false);
    let config = crate::WasmConfig { cache_dir: None, ..Default::default() };
    registry.enable_wasm(config).expect("wasm");
    let mut rig = Rig::with(2, registry);
    let wat = r#"(module (func (export "farm_run") (param i64 i64) (result i64) (i64.const 1)))"#;
    let wasm = wat::parse_str(wat).expect("wat");
    let hash = farm_client_hash(&wasm);
    let module = format!("module={hash}");
    let first = rig.assign(1, "wasm", &[&module], 2);
    assert!(runs(&first).is_empty());
    assert!(matches!(sent(&first)[..], [ToMaster::FetchModule(h)] if *h == hash));
    // A second job of the same module asks for nothing more; a cancelled one never runs.
    let second = rig.assign(2, "wasm", &[&module], 1);
    assert!(sent(&second).is_empty() && runs(&second).is_empty());
    rig.handle(ms(1), Event::Master(ToWorker::CancelJob(2)));
    let bytes = ModuleBytes { sha256: hash.clone(), wasm: Ok(wasm) };
    let arrived = rig.handle(ms(2), Event::Master(ToWorker::Module(bytes)));
    let ran: Vec<(u64, u64)> = runs(&arrived).iter().map(|t| (t.job_id, t.shard)).collect();
    assert_eq!(ran, [(1, 0), (1, 1)]);
    // Held now: later jobs of it run at once.
    assert_eq!(runs(&rig.assign(4, "wasm", &[&module], 1)).len(), 1);
    // A module the master does not have refuses its job.
    let other = "0".repeat(64);
    let asked = rig.assign(3, "wasm", &[&format!("module={other}")], 1);
    assert!(matches!(sent(&asked)[..], [ToMaster::FetchModule(h)] if *h == other));
    let none = ModuleBytes { sha256: other.clone(), wasm: Err("no such module".into()) };
    let refused = rig.handle(ms(3), Event::Master(ToWorker::Module(none)));
    let reason = format!("module {other}: no such module");
    assert!(
        matches!(&sent(&refused)[..], [ToMaster::Refused { job_id: 3, reason: r }] if *r == reason),
        "{refused:?}"
    );
}

/// A kernel that needs a module (as the `python` kernel needs its pickled function): each shard
/// returns the module's bytes as a line.
struct Echo;

impl crate::sdk::Kernel for Echo {
    fn name(&self) -> &str {
        "echo"
    }
    fn describe(&self) -> crate::sdk::KernelDescriptor {
        let help = "the function";
        crate::sdk::KernelDescriptor::new("echo", crate::sdk::OutputShape::Lines, "echoes")
            .param(crate::sdk::ParamSpec::required_text("function", help))
    }
    fn module_param(&self) -> Option<&str> {
        Some("function")
    }
    fn prepare(&self, _: &Params) -> Result<Box<dyn crate::sdk::Prepared>, KernelError> {
        Err(KernelError::BadParam("prepare_with_module is the one called".into()))
    }
    fn prepare_with_module(
        &self,
        _: &Params,
        module: std::sync::Arc<[u8]>,
    ) -> Result<Box<dyn crate::sdk::Prepared>, KernelError> {
        Ok(Box::new(EchoJob(String::from_utf8_lossy(&module).into_owned())))
    }
}

struct EchoJob(String);

impl crate::sdk::Prepared for EchoJob {
    fn run(
        &self,
        _: &crate::sdk::ShardInput,
        _: &crate::sdk::CancelFlag,
    ) -> Result<Output, KernelError> {
        Ok(Output::Lines(vec![self.0.clone()]))
    }
}

/// What a task's prepared kernel returns for its shard.
fn output_of(task: &Task) -> Result<Output, KernelError> {
    let shard = crate::sdk::ShardInput { lo: 0, hi: 1, input: None };
    task.job.prepared.run(&shard, &crate::sdk::CancelFlag::new())
}

#[test]
fn a_kernel_that_names_a_module_gets_its_bytes_fetched_once() {
    let mut registry = Registry::builtin(false);
    registry.register(Box::new(Echo));
    let mut rig = Rig::with(2, registry);
    let bytes = b"pickled function".to_vec();
    let hash = farm_client_hash(&bytes);
    let function = format!("function={hash}");
    let first = rig.assign(1, "echo", &[&function], 2);
    assert!(runs(&first).is_empty(), "its shards wait for the module");
    assert!(matches!(sent(&first)[..], [ToMaster::FetchModule(h)] if *h == hash), "{first:?}");
    let second = rig.assign(2, "echo", &[&function], 1);
    assert!(sent(&second).is_empty() && runs(&second).is_empty(), "asked for once");
    let module = ModuleBytes { sha256: hash.clone(), wasm: Ok(bytes) };
    let arrived = rig.handle(ms(2), Event::Master(ToWorker::Module(module)));
    let ran: Vec<(u64, u64)> = runs(&arrived).iter().map(|t| (t.job_id, t.shard)).collect();
    assert_eq!(ran, [(1, 0), (1, 1), (2, 0)]);
    let line = Output::Lines(vec!["pickled function".into()]);
    assert_eq!(output_of(runs(&arrived)[0]), Ok(line.clone()));
    // Cached now: a later job runs at once, with the same bytes.
    let later = rig.assign(3, "echo", &[&function], 1);
    assert!(sent(&later).is_empty(), "{later:?}");
    assert_eq!(output_of(runs(&later)[0]), Ok(line));
    // A function the master lacks refuses its job with the reason; a malformed hash is
    // refused by the kernel's check without a fetch.
    let other = "1".repeat(64);
    let asked = rig.assign(4, "echo", &[&format!("function={other}")], 1);
    assert!(matches!(sent(&asked)[..], [ToMaster::FetchModule(h)] if *h == other));
    let none = ModuleBytes { sha256: other.clone(), wasm: Err("no module".into()) };
    let refused = rig.handle(ms(3), Event::Master(ToWorker::Module(none)));
    let reason = format!("module {other}: no module");
    assert!(
        matches!(&sent(&refused)[..], [ToMaster::Refused { job_id: 4, reason: r }] if *r == reason),
        "{refused:?}"
    );
    let bad = rig.assign(5, "echo", &["function=XYZ"], 1);
    assert!(
        matches!(&sent(&bad)[..], [ToMaster::Refused { job_id: 5, reason: r }] if r.contains("must be a SHA-256")),
        "{bad:?}"
    );
}

fn farm_client_hash(wasm: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(wasm).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(feature = "wasm")]
#[test]
fn a_drain_hands_back_the_shards_held_for_a_module_and_then_closes() {
    let mut registry = Registry::builtin(false);
    let config = crate::WasmConfig { cache_dir: None, ..Default::default() };
    registry.enable_wasm(config).expect("wasm");
    let mut rig = Rig::with(1, registry);
    let module = format!("module={}", "b".repeat(64));
    let held = rig.assign(1, "wasm", &[&module], 2);
    assert!(runs(&held).is_empty());
    rig.handle(ms(1), Event::Shutdown);
    let actions = rig.poll(ms(1));
    let back = &results(&actions)[0];
    assert_eq!(back.done, [(1, 0, ShardOutcome::Cancelled), (1, 1, ShardOutcome::Cancelled)]);
    assert!(matches!(actions.last(), Some(Action::CloseSend)), "{actions:?}");
    // The module arriving late starts nothing.
    let late = ModuleBytes { sha256: "b".repeat(64), wasm: Err("late".into()) };
    assert!(runs(&rig.handle(ms(2), Event::Master(ToWorker::Module(late)))).is_empty());
}
