//! Allocation queues on a real Slurm (the one-node cluster of `scripts/slurm-up.sh`): a master
//! with no workers of its own runs a job through workers Slurm started, and they leave within
//! their idle timeout; bad sbatch arguments pause the queue with Slurm's own message; sbatch
//! options the operator did not allow are denied by name, while allowed and fixed ones reach
//! Slurm. Without
//! Slurm these tests skip with a reason, except under CI=true, where they fail.

use farm_tests::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Whether a Slurm node takes jobs here. Under CI a missing Slurm fails the test instead of
/// skipping it, so CI cannot pass by skipping.
fn slurm_up() -> bool {
    let up = Command::new("sinfo").args(["-h", "-o", "%T"]).output().is_ok_and(|o| {
        let states = String::from_utf8_lossy(&o.stdout).to_string();
        o.status.success() && ["idle", "mixed", "allocated"].iter().any(|s| states.contains(s))
    });
    if !up {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but no Slurm node is up: .ci/run starts one with scripts/slurm-up.sh"
        );
        eprintln!("skipping: no Slurm node is up here (sinfo); scripts/slurm-up.sh starts one");
    }
    up
}

/// A queue's Slurm jobs, cancelled when the test ends however it ends, and its folder removed.
struct Cleanup {
    /// The Slurm job name of the queue's allocations.
    job_name: String,
    /// The master's --alloc-dir.
    dir: PathBuf,
}

impl Cleanup {
    fn new(master_tag: &str, queue: &str) -> Cleanup {
        let dir = std::env::temp_dir().join(format!("{master_tag}-alloc"));
        Cleanup { job_name: format!("farm-{queue}"), dir }
    }

    /// The queue's jobs Slurm still holds (not yet ended).
    fn live_jobs(&self) -> Vec<String> {
        let out = Command::new("squeue")
            .args(["-h", "-o", "%i %T", "-n", &self.job_name])
            .output()
            .expect("squeue runs");
        assert!(out.status.success(), "squeue failed: {out:?}");
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("scancel").args(["-n", &self.job_name]).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A unique queue name for this test run.
fn queue_name(what: &str) -> String {
    format!("{what}-{}", std::process::id())
}

/// `farm alloc list --json` as a list of queues.
fn alloc_list(master: &Master, token: &[&str]) -> Vec<Value> {
    let mut args = vec!["alloc", "list", "--json"];
    args.extend_from_slice(token);
    let out = master.cli(&args);
    assert!(out.status.success(), "alloc list failed: {out:?}");
    json(&out).as_array().cloned().unwrap_or_default()
}

#[test]
fn a_job_runs_on_workers_slurm_started_and_they_leave_when_idle() {
    if !slurm_up() {
        return;
    }
    let tag = tag();
    let queue = queue_name("e2e");
    let cleanup = Cleanup::new(&tag, &queue);
    let dir = cleanup.dir.display().to_string();
    let master =
        Master::start_tagged(&["--token", "s3cret", "--alloc-dir", &dir], &tag, "127.0.0.1:0");
    let token = ["--token", "s3cret"];
    let add = master.cli(&[
        "alloc",
        "add",
        "slurm",
        "--name",
        &queue,
        "--max-workers",
        "2",
        "--threads",
        "1",
        "--idle-timeout",
        "3s",
        "--time-limit",
        "10m",
        "--token",
        "s3cret",
    ]);
    assert!(add.status.success(), "alloc add failed: {add:?}");
    assert_eq!(String::from_utf8_lossy(&add.stdout).trim(), queue);
    assert!(master.cli(&["workers", "--json", "--token", "s3cret"]).stdout.starts_with(b"[]"));

    let started = Instant::now();
    let done = master.submit_wait(&[
        "sleep",
        "--range",
        "0..8",
        "--shard-size",
        "1",
        "--param",
        "ms=250",
        "--token",
        "s3cret",
    ]);
    eprintln!("job done through Slurm workers in {:?}", started.elapsed());
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["result"], 8, "{done}");

    // The work came from workers of this queue's allocations (at most two: --max-workers 2
    // with one worker each); one submitted late may still be starting.
    let queues = alloc_list(&master, &token);
    let allocs = queues[0]["allocations"].as_array().cloned().unwrap_or_default();
    assert!(!allocs.is_empty() && allocs.len() <= 2, "{queues:?}");
    assert!(allocs.iter().any(|a| a["workers_seen"] == 1), "{allocs:?}");

    // Idle for 3 s, every worker leaves; every allocation ends, and Slurm holds none.
    let ended = wait_for(WAIT, || {
        let q = alloc_list(&master, &token);
        let all_ended = q[0]["allocations"].as_array()?.iter().all(|a| a["state"] == "ended");
        (all_ended && cleanup.live_jobs().is_empty()).then_some(q)
    });
    let ended =
        ended.unwrap_or_else(|| panic!("allocations still alive: {:?}", cleanup.live_jobs()));
    eprintln!("every allocation ended {:?} after the submit", started.elapsed());
    // Each ended on its own once its worker idled out, or, still waiting in Slurm's queue
    // when the work was gone, was cancelled.
    let allocs = ended[0]["allocations"].as_array().cloned().unwrap_or_default();
    for a in &allocs {
        let done = a["detail"] == "COMPLETED" && a["workers_seen"] == 1;
        assert!(done || a["detail"] == "CANCELLED", "{a}");
    }
    assert!(allocs.iter().any(|a| a["detail"] == "COMPLETED"), "{allocs:?}");
    let workers = master.cli(&["workers", "--json", "--token", "s3cret"]);
    assert!(workers.stdout.starts_with(b"[]"), "{workers:?}");

    assert_token_stays_private(&cleanup, &queue);
}

/// The token reached the workers through a file only the master's user can read, never the
/// script.
fn assert_token_stays_private(cleanup: &Cleanup, queue: &str) {
    let host_dir = std::fs::read_dir(&cleanup.dir)
        .expect("alloc dir")
        .next()
        .expect("entry")
        .expect("entry")
        .path();
    let mode = std::fs::metadata(host_dir.join("token")).expect("token file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let script = std::fs::read_to_string(host_dir.join(queue).join("worker.sh")).expect("script");
    assert!(!script.contains("s3cret"), "{script}");
}

#[test]
fn bad_sbatch_arguments_pause_the_queue_with_slurms_message() {
    if !slurm_up() {
        return;
    }
    let tag = tag();
    let queue = queue_name("bad");
    let cleanup = Cleanup::new(&tag, &queue);
    let dir = cleanup.dir.display().to_string();
    let master =
        Master::start_logging(&["--alloc-dir", &dir], &tag, "127.0.0.1:0", "farm_master=info");
    let add = master.cli(&[
        "alloc",
        "add",
        "slurm",
        "--name",
        &queue,
        "--",
        "--partition=no-such-partition",
    ]);
    assert!(add.status.success(), "alloc add failed: {add:?}");
    master.submit(&["noop", "--range", "0..10"]);

    let mut last = Vec::new();
    let paused = wait_for(WAIT, || {
        last = alloc_list(&master, &[]);
        (last[0]["state"] == "paused").then(|| last[0].clone())
    });
    let paused = paused.unwrap_or_else(|| panic!("queue never paused: {last:?}"));
    let error = paused["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("Batch job submission failed: Invalid partition name specified"),
        "{error}"
    );
    assert_eq!(paused["failures"], 3, "{paused}");
    assert!(paused["allocations"].as_array().is_some_and(Vec::is_empty), "{paused}");
    master.proc.wait_for_log(WAIT, "the pause in the log", |l| {
        l.contains("allocation queue paused") && l.contains("Invalid partition name")
    });
    assert!(cleanup.live_jobs().is_empty());

    // The table shows it too, and the master serves on.
    let table = master.cli(&["alloc", "list"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("paused") && text.contains("Invalid partition name"), "{text}");
    assert!(master.cli(&["jobs"]).status.success());
}

#[test]
fn bad_queue_requests_get_a_one_line_error() {
    let master = Master::start(&[]);
    let cases: [(&[&str], &str); 4] = [
        (&["alloc", "remove", "nope"], "error: not found: no allocation queue nope"),
        (&["alloc", "add", "slurm", "--max-workers", "0"], "error: invalid argument: max workers must be 1..=10000"),
        (&["alloc", "add", "slurm", "--max-workers", "2", "--workers-per-alloc", "3"], "error: invalid argument: workers per allocation must be 1..=2 (the queue's max workers)"),
        (&["alloc", "add", "slurm", "--time-limit", "30s"], "error: invalid argument: time limit must be 1m..=366d (Slurm counts wall time in minutes)"),
    ];
    for (args, want) in cases {
        let out = master.cli(args);
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), want, "{args:?}");
    }
    let add = |name: &str| {
        master.cli(&["alloc", "add", "slurm", "--name", name, "--", "--partition=none"])
    };
    assert!(add("twice").status.success());
    let again = add("twice");
    assert_eq!(
        String::from_utf8_lossy(&again.stderr).trim(),
        "error: already exists: an allocation queue named twice exists"
    );
    let removed = master.cli(&["alloc", "remove", "twice", "--json"]);
    assert!(json(&removed)[0]["state"] == "removing", "{removed:?}");
    assert!(wait_until(Duration::from_secs(20), || alloc_list(&master, &[]).is_empty()));
}

/// `farm alloc add slurm --name queue -- args` on `master`.
fn add_with(master: &Master, queue: &str, args: &[&str]) -> std::process::Output {
    master.cli(&[&["alloc", "add", "slurm", "--name", queue, "--"][..], args].concat())
}

#[test]
fn sbatch_options_the_operator_did_not_allow_are_denied_by_name() {
    let master = Master::start(&["--alloc-allow-option", "partition,time"]);
    let cases: [(&[&str], &str); 6] = [
        (&["--export=LD_PRELOAD=/tmp/x.so"], "--export"),
        (&["--output=/tmp/x"], "--output"),
        (&["-o", "/tmp/x"], "--output"),
        (&["--partition=farm", "--account=me"], "--account"),
        (&["--exp=ALL"], "--exp"),
        (&["--wrap", "id"], "--wrap"),
    ];
    for (args, option) in cases {
        let out = add_with(&master, "denied", args);
        assert!(!out.status.success(), "{args:?}");
        let want = format!(
            "error: permission denied: sbatch option {option} is not allowed on this master \
             (it allows: --partition, --time; the operator sets them with --alloc-allow-option)"
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), want, "{args:?}");
    }
    let bad: [(&[&str], &str); 3] = [
        (
            &["/tmp/mine.sh"],
            "error: invalid argument: sbatch argument \"/tmp/mine.sh\" is not an option",
        ),
        (
            &["--partition", "a;b"],
            "error: invalid argument: the value \"a;b\" of sbatch option --partition",
        ),
        (&["-p"], "error: invalid argument: sbatch option --partition needs a value"),
    ];
    for (args, want) in bad {
        let out = add_with(&master, "bad", args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.starts_with(want), "{args:?}: {err}");
    }
    assert!(alloc_list(&master, &[]).is_empty(), "no queue was added");
    // A bad operator list stops the master at once.
    let args =
        ["master", "--listen", "127.0.0.1:0", "--http", "off", "--alloc-allow-option", "out put"];
    let out = run(&args, &tag());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--alloc-allow-option"), "{err}");
}

#[test]
fn an_allowed_partition_and_the_operators_fixed_arguments_reach_slurm() {
    if !slurm_up() {
        return;
    }
    let tag = tag();
    let queue = queue_name("allowed");
    let cleanup = Cleanup::new(&tag, &queue);
    let dir = cleanup.dir.display().to_string();
    let flags = ["--alloc-dir", &dir, "--alloc-fixed-arg=--comment=operator-fixed"];
    let master = Master::start_tagged(&flags, &tag, "127.0.0.1:0");
    let denied = add_with(&master, &queue, &["--export=LD_PRELOAD=/tmp/x.so"]);
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(err.starts_with("error: permission denied: sbatch option --export "), "{err}");
    let denied = add_with(&master, &queue, &["--output=/tmp/x"]);
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(err.starts_with("error: permission denied: sbatch option --output "), "{err}");

    let add = master.cli(&[
        "alloc",
        "add",
        "slurm",
        "--name",
        &queue,
        "--max-workers",
        "1",
        "--threads",
        "1",
        "--idle-timeout",
        "3s",
        "--",
        "-p",
        "farm",
    ]);
    assert!(add.status.success(), "alloc add failed: {add:?}");
    let queues = alloc_list(&master, &[]);
    assert_eq!(queues[0]["spec"]["extra_args"], serde_json::json!(["--partition=farm"]));
    let done = master.submit_wait(&["noop", "--range", "0..4"]);
    assert_eq!(done["state"], "succeeded", "{done}");
    let allocs = wait_allocs(&master, "a worker from the queue", |a| {
        a.iter().any(|x| x["workers_seen"] == 1)
    });
    let id = allocs[0]["id"].as_str().expect("id");
    let job = Command::new("scontrol").args(["show", "job", id]).output().expect("scontrol");
    let text = String::from_utf8_lossy(&job.stdout);
    assert!(text.contains("Partition=farm"), "{text}");
    assert!(text.contains("Comment=operator-fixed"), "{text}");
    wait_allocs(&master, "every allocation ended", |a| a.iter().all(|x| x["state"] == "ended"));
    assert!(wait_until(WAIT, || cleanup.live_jobs().is_empty()));
}

/// A master with an allocation queue `queue` (one worker at a time, one thread) and `extra`
/// queue flags; its folder is cleaned up with `Cleanup`.
fn master_with_queue(queue: &str, extra: &[&str]) -> (Master, Cleanup) {
    let tag = tag();
    let cleanup = Cleanup::new(&tag, queue);
    let dir = cleanup.dir.display().to_string();
    // Slurm passes the master's environment on, so its workers log at info too.
    let log = "farm_worker=info";
    let master = Master::start_logging(&["--alloc-dir", &dir], &tag, "127.0.0.1:0", log);
    let mut args = vec!["alloc", "add", "slurm", "--name", queue, "--max-workers", "1"];
    args.extend_from_slice(&["--threads", "1"]);
    args.extend_from_slice(extra);
    let add = master.cli(&args);
    assert!(add.status.success(), "alloc add failed: {add:?}");
    (master, cleanup)
}

/// Waits until the queue's allocations satisfy `cond`; returns them.
fn wait_allocs(master: &Master, what: &str, cond: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut last = Vec::new();
    let found = wait_for(Duration::from_secs(120), || {
        last = alloc_list(master, &[])[0]["allocations"].as_array().cloned().unwrap_or_default();
        cond(&last).then(|| last.clone())
    });
    found.unwrap_or_else(|| panic!("expected {what}, last saw {last:?}"))
}

#[test]
fn an_allocation_killed_mid_job_loses_no_shard() {
    if !slurm_up() {
        return;
    }
    let queue = queue_name("kill");
    let (master, cleanup) = master_with_queue(&queue, &["--idle-timeout", "5s"]);
    let job =
        master.submit(&["sleep", "--range", "0..20", "--shard-size", "1", "--param", "ms=300"]);
    master.wait_done(&job, 2);
    let first =
        wait_allocs(&master, "a running allocation", |a| a.len() == 1 && a[0]["workers"] == 1);
    let id = first[0]["id"].as_str().expect("id").to_string();
    // SIGKILL to every process of the allocation: its worker vanishes without a drain.
    let killed = Command::new("scancel").args(["-s", "KILL", &id]).status().expect("scancel");
    assert!(killed.success());

    let done = master.watch(&job);
    assert_eq!(
        (&done["state"], &done["result"]),
        (&Value::from("succeeded"), &Value::from(20)),
        "{done}"
    );
    let allocs = wait_allocs(&master, "the killed one ended", |a| a[0]["state"] == "ended");
    assert_eq!(allocs[0]["detail"], "CANCELLED", "{allocs:?}");
    assert!(
        allocs.len() >= 2 && allocs[1]["workers_seen"] == 1,
        "a new one finished the job: {allocs:?}"
    );
    wait_allocs(&master, "every allocation ended", |a| a.iter().all(|x| x["state"] == "ended"));
    assert!(wait_until(WAIT, || cleanup.live_jobs().is_empty()));
}

#[test]
fn workers_leave_before_their_allocations_time_limit() {
    if !slurm_up() {
        return;
    }
    let queue = queue_name("limit");
    let (master, cleanup) =
        master_with_queue(&queue, &["--idle-timeout", "5s", "--time-limit", "1m"]);
    // 50 s of work on one thread, in a 1-minute allocation whose worker stops taking shards
    // after 30 s (half its time: a drain timeout plus 10 s would not leave it half).
    let job =
        master.submit(&["sleep", "--range", "0..50", "--shard-size", "1", "--param", "ms=1000"]);
    let done = master.watch(&job);
    assert_eq!(
        (&done["state"], &done["result"]),
        (&Value::from("succeeded"), &Value::from(50)),
        "{done}"
    );
    let allocs = wait_allocs(&master, "the first allocation ended", |a| a[0]["state"] == "ended");
    assert_eq!(allocs[0]["detail"], "COMPLETED", "left on its own, not TIMEOUT: {allocs:?}");
    assert!(allocs.len() >= 2, "another allocation took the rest: {allocs:?}");
    let id = allocs[0]["id"].as_str().expect("id");
    let host_dir =
        std::fs::read_dir(&cleanup.dir).expect("dir").next().expect("entry").expect("entry");
    let log = std::fs::read_to_string(
        host_dir.path().join(&queue).join("logs").join(format!("{id}.log")),
    )
    .expect("the allocation's log");
    assert!(log.contains("the allocation ends soon: taking no more shards"), "{log}");
    wait_allocs(&master, "every allocation ended", |a| a.iter().all(|x| x["state"] == "ended"));
    assert!(wait_until(WAIT, || cleanup.live_jobs().is_empty()));
}

#[test]
fn a_wasm_job_with_no_worker_gets_an_allocation_and_succeeds() {
    if !slurm_up() {
        return;
    }
    let queue = queue_name("wasm");
    let (master, cleanup) = master_with_queue(&queue, &["--idle-timeout", "3s"]);
    assert!(master.cli(&["workers", "--json"]).stdout.starts_with(b"[]"));
    let module =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/wasm/primes.wat");
    let module = module.display().to_string();
    // Only an allocated worker can run it: the master has none of its own.
    let job = master.submit(&["wasm", "--module", &module, "--range", "0..100000"]);
    wait_allocs(&master, "an allocation for the wasm job", |a| !a.is_empty());
    let done = master.watch(&job);
    assert_eq!(
        (&done["state"], &done["result"]),
        (&Value::from("succeeded"), &Value::from(9592)),
        "{done}"
    );
    // Its worker came from the queue's allocation (which the list learns on its next poll).
    wait_allocs(&master, "the allocation's worker", |a| a.iter().any(|x| x["workers_seen"] == 1));
    wait_allocs(&master, "every allocation ended", |a| a.iter().all(|x| x["state"] == "ended"));
    assert!(wait_until(WAIT, || cleanup.live_jobs().is_empty()));
}
