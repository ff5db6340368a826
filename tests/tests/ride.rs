//! Clients waiting for a job ride through a master restart: `farm submit --wait` reconnects
//! within its bound, looks the job up again and follows it, or says plainly why it cannot (the
//! master came back without the job, or did not come back).
//!
//! `ride_through_a_restart` is the whole scenario with the master's flags as a parameter: the
//! master with `--journal` is one more test, which expects the exact result (it runs only where
//! `farm master` has `--journal`).

use farm_tests::{farm, json, run, wait_for, Master, Proc, WAIT};
use std::process::Output;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A slow job with an exact result: 100 shards of 50 ms on one worker thread (about 5 s), the
/// count of indices run (100) when every shard counted once.
const SLOW_JOB: [&str; 7] = ["sleep", "--range", "0..100", "--shard-size", "1", "--param", "ms=50"];

/// A master that can be killed and started again on the same port with the same flags, as a
/// supervisor would, and a worker that dials it (and dials it again after a restart).
struct Supervised {
    master: Master,
    /// The master's flags, for every start.
    flags: Vec<String>,
    /// `127.0.0.1:PORT`, kept across restarts so clients and the worker find it again.
    listen: String,
    _worker: Proc,
}

impl Supervised {
    fn start(flags: &[&str]) -> Supervised {
        let master = Master::start(flags);
        let listen = master.url.trim_start_matches("http://").to_string();
        let worker = master.worker(&["--threads", "1"]);
        master.wait_workers(1);
        let flags = flags.iter().map(ToString::to_string).collect();
        Supervised { master, flags, listen, _worker: worker }
    }

    /// `kill -9` of the master, waiting until it is gone.
    fn kill(&mut self) {
        self.master.proc.signal(libc::SIGKILL);
        self.master.proc.wait(WAIT).expect("the killed master exits");
    }

    /// Starts the master again on its port. The port was freed by the kill; should something
    /// else take it meanwhile, the start fails and is tried again.
    fn restart(&mut self) {
        let flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        let tag = self.master.tag.clone();
        for attempt in 1.. {
            let started =
                std::panic::catch_unwind(|| Master::start_tagged(&flags, &tag, &self.listen));
            match started {
                Ok(master) => {
                    self.master = master;
                    return;
                }
                Err(panic) if attempt >= 5 => std::panic::resume_unwind(panic),
                Err(_) => std::thread::sleep(Duration::from_millis(200 * attempt)),
            }
        }
    }

    /// `farm submit <job> --wait --json --reconnect-for <bound>` on a thread; its output when
    /// it ends.
    fn submit_waiting(&self, job: &[&str], bound: &str) -> JoinHandle<Output> {
        let mut args = vec!["--master".to_string(), self.master.url.clone(), "submit".into()];
        args.extend(job.iter().map(ToString::to_string));
        args.extend(["--wait", "--json", "--reconnect-for", bound].map(String::from));
        let tag = self.master.tag.clone();
        std::thread::spawn(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run(&args, &tag)
        })
    }

    /// Waits until the master's one job has `n` shards done; returns its id.
    fn wait_done(&self, n: u64) -> u64 {
        let done = wait_for(WAIT, || {
            let out = self.master.cli(&["jobs", "--json"]);
            let jobs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).ok()?;
            let job = jobs.first()?;
            (job["done"].as_u64()? >= n).then(|| job["job"].as_u64()).flatten()
        });
        done.unwrap_or_else(|| panic!("no job with {n} shards done within {WAIT:?}"))
    }
}

/// Runs the slow job with a waiting `farm submit --wait`, kills the master mid-job and starts
/// it again with the same `flags`; returns the job's id and the waiter's output.
fn ride_through_a_restart(flags: &[&str]) -> (u64, Output) {
    let mut cluster = Supervised::start(flags);
    let waiter = cluster.submit_waiting(&SLOW_JOB, "30s");
    let id = cluster.wait_done(5);
    cluster.kill();
    cluster.restart();
    let out = waiter.join().expect("the waiter thread");
    (id, out)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_waiter_reconnects_to_a_master_restarted_without_a_journal_and_says_the_job_is_gone() {
    let (id, out) = ride_through_a_restart(&[]);
    let err = stderr(&out);
    assert!(!out.status.success(), "the job cannot end well: {out:?}");
    assert!(err.contains("lost the master; reconnecting for up to 30s"), "{err}");
    let gone = format!("job {id} is gone: the master restarted without --journal");
    assert!(err.contains(&gone), "{err}");
}

#[test]
fn a_waiter_whose_master_stays_away_gives_up_after_its_bound() {
    let mut cluster = Supervised::start(&[]);
    let waiter = cluster.submit_waiting(&SLOW_JOB, "2s");
    let id = cluster.wait_done(1);
    let killed = Instant::now();
    cluster.kill();
    let out = waiter.join().expect("the waiter thread");
    let waited = killed.elapsed();
    let err = stderr(&out);
    assert!(!out.status.success(), "{out:?}");
    assert!(err.contains("lost the master; reconnecting for up to 2s"), "{err}");
    let lost = format!("lost the master while waiting for job {id}: it was not back within 2s");
    assert!(err.contains(&lost), "{err}");
    assert!(waited >= Duration::from_secs(2), "gave up after {waited:?}, before its bound");
    // The master's stderr pipe and the exit take a moment; the bound is what matters.
    assert!(waited < Duration::from_secs(20), "gave up only after {waited:?}");
}

#[test]
fn a_waiter_follows_its_job_through_a_restart_with_a_journal_to_the_exact_result() {
    let help = std::process::Command::new(farm()).args(["master", "--help"]).output();
    if !help.is_ok_and(|h| String::from_utf8_lossy(&h.stdout).contains("--journal")) {
        eprintln!("skipped: this farm has no `master --journal`");
        return;
    }
    let dir = std::env::temp_dir().join(format!("farm-ride-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("journal dir");
    let journal = dir.join("journal.redb").display().to_string();
    let (id, out) = ride_through_a_restart(&["--journal", &journal]);
    let _ = std::fs::remove_dir_all(&dir);
    let err = stderr(&out);
    assert!(out.status.success(), "{out:?}");
    assert!(err.contains("lost the master; reconnecting for up to 30s"), "{err}");
    assert!(err.contains("the master is back; following the job again"), "{err}");
    // Its worker reconnected within the master's startup grace: the job never waited for one.
    assert!(!err.contains("waiting: no connected worker offers kind"), "{err}");
    let status = json(&out);
    assert_eq!((status["job"].as_u64(), status["state"].as_str()), (Some(id), Some("succeeded")));
    assert_eq!(status["result"], 100, "every shard counted exactly once: {status}");
}
