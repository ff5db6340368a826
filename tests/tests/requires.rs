//! End to end: jobs that require worker labels (issue 25). A job submitted with `--require`
//! waits, saying which label no worker of its kind holds, while the connected workers lack it
//! (they keep running other jobs meanwhile), and runs on the worker that joins with it, and on
//! that one only. A python job's pickled function goes into the module store as a PICKLE
//! (opaque, journaled with its format), reaches only workers of the job's interpreter through
//! the SDK's module fetch, and is still there after a restart with `--journal`.

use farm_client::Client;
use farm_proto::{python, JobSource, JobSpec, Labels, ModuleFormat, OutputShape, Params};
use farm_tests::*;
use farm_worker::sdk::{
    CancelFlag, Kernel, KernelDescriptor, KernelError, Output, Prepared, ShardInput,
};
use farm_worker::{Registry, StopHandle, WorkerConfig};
use serde_json::Value;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

#[test]
fn a_job_waits_for_a_worker_with_its_labels_and_runs_only_on_it_when_it_joins() {
    let master = Master::start(&[]);
    let plain = master.worker(&["--threads", "1", "--label", "zone=a", "--name", "plain"]);
    let workers = master.wait_workers(1);
    assert_eq!(workers[0]["labels"], serde_json::json!({"zone": "a"}), "{workers:?}");
    let table = master.cli(&["workers"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("LABELS") && table.contains("zone=a"), "{table}");

    let args = ["sleep", "--range", "0..20", "--shard-size", "1", "--param", "ms=5"];
    let id = master.submit(&[&args[..], &["--require", "zone=b"]].concat());
    let why = "no worker offering kind sleep has zone=b";
    let mut last = Value::Null;
    let waiting = wait_until(WAIT, || {
        last = master.status(&id);
        last["waiting"] == why
    });
    assert!(waiting, "status never said what the job waits for: {last}");
    let text = master.cli(&["status", &id]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("waiting: {why}")), "{text}");
    // The worker without the label had its chances: it runs a job submitted after this one,
    // which passes through every dispatch, while this one gets none of its shards.
    let other = master.submit_wait(&args);
    assert_eq!(other["state"], "succeeded", "{other}");
    let v = master.status(&id);
    assert_eq!((v["done"].as_u64(), v["in_flight"].as_u64()), (Some(0), Some(0)), "{v}");
    assert_eq!(v["waiting"], why, "{v}");

    // A worker with the label joins: the wait ends and the job runs, all of it on that one.
    let labelled = master.worker(&["--threads", "2", "--label", "zone=b", "--label", "gpu=a100"]);
    let v = master.watch(&id);
    assert_eq!((v["state"].as_str(), v["result"].as_u64()), (Some("succeeded"), Some(20)), "{v}");
    assert!(v.get("waiting").is_none(), "{v}");
    let workers = master.wait_workers(2);
    let done = |pid: u32| Master::worker_by_pid(&workers, pid).and_then(|w| w["done"].as_u64());
    assert_eq!(done(labelled.pid()), Some(20), "{workers:?}");
    assert_eq!(done(plain.pid()), Some(20), "only the unlabelled job's shards: {workers:?}");

    // A bad label is refused with a one-line error naming it.
    let out = master.cli(&["submit", "sleep", "--range", "0..1", "--require", "zone"]);
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--require \"zone\" is not KEY=VALUE"), "{err}");
}

/// A `python` kernel as a Python worker offers it, minus Python: it names its module by the
/// `function` param, and each shard answers its input line and the module's bytes as text.
struct Echo;

impl Kernel for Echo {
    fn name(&self) -> &str {
        python::KIND
    }
    fn describe(&self) -> KernelDescriptor {
        python::descriptor()
    }
    fn module_param(&self) -> Option<&str> {
        Some(python::FUNCTION_PARAM)
    }
    fn prepare(&self, _: &farm_proto::Params) -> Result<Box<dyn Prepared>, KernelError> {
        Err(KernelError::BadParam("the function's bytes never came".into()))
    }
    fn prepare_with_module(
        &self,
        _: &farm_proto::Params,
        module: Arc<[u8]>,
    ) -> Result<Box<dyn Prepared>, KernelError> {
        Ok(Box::new(EchoJob(String::from_utf8_lossy(&module).into_owned())))
    }
}

struct EchoJob(String);

impl Prepared for EchoJob {
    fn run(&self, shard: &ShardInput, _: &CancelFlag) -> Result<Output, KernelError> {
        let input = shard.input.clone().unwrap_or_default();
        Ok(Output::Lines(vec![format!("{input}:{}", self.0)]))
    }
}

/// An SDK worker in this process, on its own thread, labelled as a Python worker of
/// `interpreter`; drained and joined when dropped.
struct PyWorker {
    stop: StopHandle,
    thread: Option<JoinHandle<()>>,
}

impl PyWorker {
    fn start(master: &str, interpreter: &str) -> PyWorker {
        let mut config = WorkerConfig::new(master);
        config.threads = 1;
        config.name = format!("py {interpreter}");
        config.drain_timeout = Duration::from_secs(1);
        config.max_backoff = Duration::from_millis(200);
        config.labels = Labels::from([(python::LABEL.to_string(), interpreter.to_string())]);
        let mut registry = Registry::builtin(false);
        registry.register(Box::new(Echo));
        let stop = StopHandle::new();
        let stopped = stop.stopped();
        let thread = std::thread::spawn(move || {
            let rt = farm_worker::cli::runtime().expect("runtime");
            rt.block_on(farm_worker::run(config, registry, stopped)).expect("worker ran");
        });
        PyWorker { stop, thread: Some(thread) }
    }
}

impl Drop for PyWorker {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// A python job over three input lines running function `hash` under `interpreter`.
fn python_job(hash: &str, interpreter: &str) -> JobSpec {
    let inputs = JobSource::Inputs(vec!["a".into(), "b".into(), "c".into()]);
    let params = Params::from_pairs([format!("{}={hash}", python::FUNCTION_PARAM)]).expect("p");
    let requires = Labels::from([(python::LABEL.to_string(), interpreter.to_string())]);
    let spec = JobSpec::new(python::KIND, inputs, params, 0).expect("spec");
    spec.with_requires(requires).expect("requires")
}

/// Polls job `id` until its status says it waits for `want`.
fn wait_waiting(rt: &tokio::runtime::Runtime, client: &mut Client, id: u64, want: &str) {
    let mut last = None;
    let seen = wait_until(WAIT, || {
        let status = rt.block_on(client.get(id)).expect("status");
        let hit = status.waiting.as_deref() == Some(want);
        last = Some(status);
        hit
    });
    assert!(seen, "job {id} never said {want:?}: {last:?}");
}

/// Waits for job `id` to end; its result's lines.
fn lines(rt: &tokio::runtime::Runtime, client: &mut Client, id: u64) -> Vec<String> {
    let waited = rt.block_on(async { tokio::time::timeout(WAIT, client.wait(id, |_| {})).await });
    let status = waited.expect("in time").expect("job ended");
    assert_eq!(status.state, farm_proto::JobState::Succeeded, "{status:?}");
    status.result.to::<Vec<String>>().expect("lines")
}

#[test]
fn a_pickled_function_reaches_only_workers_of_its_interpreter_and_survives_a_restart() {
    let tag = tag();
    let scratch = Scratch::new(&tag);
    let journal = scratch.0.join("farm.redb").display().to_string();
    let master = Master::start_tagged(&["--journal", &journal], &tag, "127.0.0.1:0");
    let rt = runtime();
    let mut client = rt.block_on(Client::connect(&master.url)).expect("client");

    // Opaque bytes: not a wasm module, stored as a pickle, its jobs' output lines.
    let pickle = b"\x80\x05 a pickled function".to_vec();
    let stored = rt.block_on(client.put_module_as(pickle.clone(), ModuleFormat::Pickle));
    let stored = stored.expect("pickle stored");
    assert_eq!((stored.format, stored.output), (ModuleFormat::Pickle, OutputShape::Lines));
    assert_eq!(stored.size, pickle.len() as u64);
    let hash = stored.sha256;
    assert!(rt.block_on(client.has_module(&hash)).expect("has"));
    // The same bytes as wasm would be refused: a pickle is no module of the farm ABI.
    let junk = rt.block_on(client.put_module(b"\x80\x05 other bytes".to_vec()));
    assert_eq!(junk.map_err(|e| e.code()).err(), Some(Some(tonic::Code::InvalidArgument)));

    // A python job naming a function the master lacks is refused at submit, naming it.
    let missing = "0".repeat(64);
    let err = rt.block_on(client.submit(python_job(&missing, "CPython 3.12"))).unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::NotFound), "{err}");
    assert!(err.to_string().contains(&missing), "{err}");

    // Before any Python worker connects the job is accepted and waits for its kind; a worker
    // of another interpreter makes it wait for its own.
    let id = rt.block_on(client.submit(python_job(&hash, "CPython 3.12"))).expect("submit").job;
    wait_waiting(&rt, &mut client, id, "no connected worker offers kind python");
    let old = PyWorker::start(&master.url, "CPython 3.11");
    wait_waiting(&rt, &mut client, id, "no worker runs CPython 3.12");
    let workers = master.wait_workers(1);
    assert_eq!(workers[0]["labels"]["python"], "CPython 3.11", "{workers:?}");
    // It had its chance: a job for its interpreter runs on it meanwhile.
    let other = rt.block_on(client.submit(python_job(&hash, "CPython 3.11"))).expect("submit");
    let text = String::from_utf8_lossy(&pickle).into_owned();
    let want: Vec<String> = ["a", "b", "c"].iter().map(|i| format!("{i}:{text}")).collect();
    assert_eq!(lines(&rt, &mut client, other.job), want);
    let status = rt.block_on(client.get(id)).expect("status");
    assert_eq!((status.done, status.waiting.as_deref()), (0, Some("no worker runs CPython 3.12")));

    // The worker of its interpreter joins: it fetches the function and runs the job.
    let new = PyWorker::start(&master.url, "CPython 3.12");
    assert_eq!(lines(&rt, &mut client, id), want);
    drop((old, new));

    // After a restart on the same journal the pickle is still there, still a pickle, and a
    // fresh worker (whose cache is empty) fetches it from the restarted master.
    let listen = master.url.trim_start_matches("http://").to_owned();
    drop(master);
    let master = Master::start_tagged(&["--journal", &journal], &tag, &listen);
    let mut client = rt.block_on(Client::connect(&master.url)).expect("client");
    assert!(rt.block_on(client.has_module(&hash)).expect("has"), "the pickle survived");
    let again = rt.block_on(client.put_module_as(pickle.clone(), ModuleFormat::Pickle));
    assert_eq!(again.expect("idempotent").format, ModuleFormat::Pickle);
    let _fresh = PyWorker::start(&master.url, "CPython 3.12");
    let id = rt.block_on(client.submit(python_job(&hash, "CPython 3.12"))).expect("submit").job;
    assert_eq!(lines(&rt, &mut client, id), want);
}
