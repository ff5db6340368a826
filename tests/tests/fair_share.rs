//! End to end (issue 26): fair share between principals. Alice queues 2,000 shards of 10 ms on
//! one worker of 2 threads; once hers run, Bob submits 20. With fair share Bob's job ends
//! within 0.5 s of its ideal time and Alice's result stays exact; without it (`--fair-share
//! off`) Bob waits for most of Alice's job, which the failure message shows for contrast.
//! Quotas: a principal at its limit is refused with ResourceExhausted naming the quota, while
//! the other principal's job runs on.

use farm_tests::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// `farm token new NAME --role submit --principals FILE`: the token it printed.
fn new_token(file: &Path, name: &str, tag: &str) -> String {
    new_token_for(file, name, "submit", tag)
}

/// `farm token new NAME --role ROLE --principals FILE`: the token it printed.
fn new_token_for(file: &Path, name: &str, role: &str, tag: &str) -> String {
    let file = file.display().to_string();
    let out = run(&["token", "new", name, "--role", role, "--principals", &file], tag);
    assert!(out.status.success(), "token new {name}: {}", stderr_of(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A client command run with `token`.
fn as_(master: &Master, token: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--token", token];
    all.extend_from_slice(args);
    master.cli(&all)
}

/// `farm submit ARGS --json` as `token`: the new job's id.
fn submit(master: &Master, token: &str, args: &[&str]) -> String {
    let mut all = vec!["submit"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = as_(master, token, &all);
    assert!(out.status.success(), "submit: {}", stderr_of(&out));
    json(&out)["job"].as_u64().expect("job id").to_string()
}

/// `farm status ID --json` as `token`.
fn status(master: &Master, token: &str, id: &str) -> Value {
    json(&as_(master, token, &["status", id, "--json"]))[0].clone()
}

/// A scratch directory with a principals file; removed when dropped.
struct Principals {
    dir: PathBuf,
    file: String,
    /// The token of principal `rack`, role worker.
    worker: String,
}

impl Principals {
    /// A file holding principal `rack` (worker); the test adds the others.
    fn new(tag: &str) -> Principals {
        let dir = std::env::temp_dir().join(format!("{tag}-fair"));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("principals.toml").display().to_string();
        let worker = new_token_for(Path::new(&file), "rack", "worker", tag);
        Principals { dir, file, worker }
    }

    /// A master with this file and `extra`, and one worker of 2 threads connected to it.
    fn master(&self, extra: &[&str], tag: &str) -> (Master, Proc) {
        let mut args = vec!["--principals", self.file.as_str()];
        args.extend_from_slice(extra);
        let master = Master::start_tagged(&args, tag, "127.0.0.1:0");
        let worker = master.worker(&["--token", &self.worker, "--threads", "2"]);
        (master, worker)
    }
}

impl Drop for Principals {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The scenario with `--fair-share on|off`: Bob's final status, and Alice's.
fn alice_then_bob(fair_share: &str) -> (Value, Value) {
    let tag = tag();
    let principals = Principals::new(&tag);
    let path = Path::new(&principals.file);
    let (alice, bob) = (new_token(path, "alice", &tag), new_token(path, "bob", &tag));
    let (master, _worker) = principals.master(&["--fair-share", fair_share], &tag);
    // 2,000 shards of 10 ms of sleep (no CPU: the timing holds on a loaded machine).
    let sleep = |n: &str| {
        ["sleep", "--range", n, "--shard-size", "1", "--param", "ms=10"].map(String::from)
    };
    let a_args = sleep("0..2000");
    let a = submit(&master, &alice, &a_args.iter().map(String::as_str).collect::<Vec<_>>());
    // Once Alice's shards have run for a while, the worker's window is deep in hers.
    let mut last = Value::Null;
    let running = wait_for(WAIT, || {
        last = status(&master, &alice, &a);
        (last["done"].as_u64() >= Some(100)).then_some(())
    });
    assert!(running.is_some(), "alice's job never ran 100 shards: {last}");
    let b_args = sleep("0..20");
    let mut b_cmd: Vec<&str> = vec!["submit"];
    b_cmd.extend(b_args.iter().map(String::as_str));
    b_cmd.extend(["--wait", "--json"]);
    let b = json(&as_(&master, &bob, &b_cmd));
    let a_end = json(&as_(&master, &alice, &["watch", &a, "--json"]));
    (b, a_end)
}

#[test]
fn a_principal_who_submits_later_is_not_starved_by_one_who_queued_thousands_first() {
    let (bob, alice) = alice_then_bob("on");
    let (unfair_bob, unfair_alice) = alice_then_bob("off");
    // Bob's 20 shards of 10 ms alone on 2 threads: 100 ms.
    let ideal_ms = 100;
    let took = bob["elapsed_ms"].as_u64().unwrap_or(u64::MAX);
    let unfair = unfair_bob["elapsed_ms"].as_u64().unwrap_or(0);
    let contrast = format!(
        "with fair share bob's job took {took} ms, without it {unfair} ms (ideally {ideal_ms} \
         ms): {bob} / {unfair_bob}"
    );
    for (b, a) in [(&bob, &alice), (&unfair_bob, &unfair_alice)] {
        assert_eq!((b["state"].as_str(), b["result"].as_u64()), (Some("succeeded"), Some(20)));
        assert_eq!(b["owner"], "bob");
        // Alice's result is exact: every shard counted once.
        assert_eq!((a["state"].as_str(), a["result"].as_u64()), (Some("succeeded"), Some(2000)));
        assert_eq!(a["owner"], "alice");
    }
    assert!(took <= ideal_ms + 500, "{contrast}");
    // Without fair share he waited behind most of alice's 19 s of work on 2 threads.
    assert!(unfair >= 3000, "{contrast}");
    println!("{contrast}");
}

#[test]
fn a_principal_at_a_quota_is_refused_naming_it_while_the_others_job_runs_on() {
    let tag = tag();
    let principals = Principals::new(&tag);
    let path = Path::new(&principals.file);
    let (alice, bob) = (new_token(path, "alice", &tag), new_token(path, "bob", &tag));
    // Alice may have one job queued or running.
    let text = std::fs::read_to_string(path).expect("principals file");
    let limited = text.replacen("name = \"alice\"", "name = \"alice\"\njobs = 1", 1);
    assert_ne!(text, limited, "the entry farm token new wrote names alice: {text}");
    std::fs::write(path, limited).expect("write");
    let (master, _worker) = principals.master(&[], &tag);
    let long = ["sleep", "--range", "0..100000", "--param", "ms=10"];
    let a = submit(&master, &alice, &long);
    let b = submit(&master, &bob, &["sleep", "--range", "0..200", "--param", "ms=10"]);
    let out = as_(&master, &alice, &["submit", "noop", "--range", "0..10"]);
    assert!(!out.status.success());
    assert_eq!(
        stderr_of(&out),
        "error: resource exhausted: quota: principal alice has 1 jobs queued or running, its \
         limit is 1 (jobs)"
    );
    // Bob is not affected: his job runs on to its end beside hers.
    let done = json(&as_(&master, &bob, &["watch", &b, "--json"]));
    assert_eq!((done["state"].as_str(), done["result"].as_u64()), (Some("succeeded"), Some(200)));
    assert_eq!(status(&master, &alice, &a)["state"], "running");
    // Alice's job ended: she may submit again.
    assert!(as_(&master, &alice, &["cancel", &a]).status.success());
    let again = submit(&master, &alice, &["noop", "--range", "0..10"]);
    let done = json(&as_(&master, &alice, &["watch", &again, "--json"]));
    assert_eq!(done["result"], 10);
}
