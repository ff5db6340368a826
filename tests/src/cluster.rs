//! A master on an ephemeral port and the workers and commands that go with it: start, list
//! workers, submit and poll jobs.

use crate::net::{announced_lines, spawn_announcing};
use crate::process::{run, start, start_with_env, tag, Proc, QUIET};
use crate::wait::{wait_for, WAIT};
use serde_json::Value;
use std::process::{Output, Stdio};

/// A master on an ephemeral port; killed (with the workers it spawned) when dropped.
pub struct Master {
    /// The master process.
    pub proc: Proc,
    /// `http://127.0.0.1:PORT` (a TLS test turns it into https).
    pub url: String,
    /// The tag its processes and the test's commands carry.
    pub tag: String,
    /// `http://127.0.0.1:PORT` of its dashboard and `/metrics`, when the test asked for one
    /// with `--http ADDR`.
    pub http: Option<String>,
}

impl Master {
    /// Starts `farm master --listen 127.0.0.1:0 <extra>` under a fresh tag.
    pub fn start(extra: &[&str]) -> Master {
        Master::start_tagged(extra, &tag(), "127.0.0.1:0")
    }

    /// Starts `farm master --listen <listen> <extra>` under `tag` and waits for its address.
    pub fn start_tagged(extra: &[&str], tag: &str, listen: &str) -> Master {
        Master::start_logging(extra, tag, listen, QUIET)
    }

    /// Like `start_tagged`, with extra log directives (`farm_master=debug`) so the test can
    /// wait for a log line with `proc.wait_for_log`.
    pub fn start_logging(extra: &[&str], tag: &str, listen: &str, log: &str) -> Master {
        let mut args = vec!["master", "--listen", listen];
        args.extend_from_slice(extra);
        let mut proc = start(&crate::farm(), &args, tag, log, Stdio::piped());
        // A master prints its dashboard's address on a second line when it serves one; a
        // test that gives no `--http` gets the default (127.0.0.1:7080, else a free port),
        // whose line is left unread.
        let http = extra.windows(2).any(|w| w[0] == "--http" && w[1] != "off");
        let mut lines = announced_lines(&mut proc, if http { 2 } else { 1 }).into_iter();
        let url = format!("http://{}", lines.next().expect("the gRPC address"));
        let http = lines.next().map(|addr| format!("http://{addr}"));
        Master { proc, url, tag: tag.to_string(), http }
    }

    /// Starts a `farm worker` dialing this master.
    pub fn worker(&self, extra: &[&str]) -> Proc {
        self.worker_with_env(extra, &[])
    }

    /// Starts a `farm worker` dialing this master, with `env` added to its environment.
    pub fn worker_with_env(&self, extra: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut args = vec!["worker", "--master", &self.url];
        args.extend_from_slice(extra);
        start_with_env(&crate::farm(), &args, env, &self.tag, QUIET, Stdio::null())
    }

    /// Runs a client command against this master.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut all = vec!["--master", self.url.as_str()];
        all.extend_from_slice(args);
        run(&all, &self.tag)
    }

    /// `farm workers --json` now (empty if the command fails).
    pub fn workers(&self) -> Vec<Value> {
        let out = self.cli(&["workers", "--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    }

    /// Waits until exactly `n` workers are connected; returns `farm workers --json`.
    pub fn wait_workers(&self, n: usize) -> Vec<Value> {
        self.wait_workers_where(&format!("{n} workers"), |ws| ws.len() == n)
    }

    /// Waits until `farm workers --json` satisfies `cond`; returns it, or panics naming `what`.
    pub fn wait_workers_where(&self, what: &str, cond: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let mut last = Vec::new();
        let found = wait_for(WAIT, || {
            last = self.workers();
            cond(&last).then(|| last.clone())
        });
        found.unwrap_or_else(|| panic!("expected {what}, last saw {last:?}"))
    }

    /// The listed worker whose process is `pid`, if any.
    pub fn worker_by_pid(workers: &[Value], pid: u32) -> Option<&Value> {
        workers.iter().find(|w| w["pid"].as_u64() == Some(u64::from(pid)))
    }

    /// `farm submit <args>` without waiting; returns the job id it printed.
    pub fn submit(&self, args: &[&str]) -> String {
        let mut all = vec!["submit"];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            out.status.success() && id.parse::<u64>().is_ok(),
            "submit printed {id:?}: {out:?}"
        );
        id
    }

    /// `farm submit <args> --wait --json`: the finished job.
    pub fn submit_wait(&self, args: &[&str]) -> Value {
        let mut all = vec!["submit"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--wait", "--json"]);
        json(&self.cli(&all))
    }

    /// `farm status <id> --json`: the job now.
    pub fn status(&self, id: &str) -> Value {
        json(&self.cli(&["status", id, "--json"]))[0].clone()
    }

    /// Waits until job `id` has at least `n` shards done.
    pub fn wait_done(&self, id: &str, n: u64) {
        let mut last = Value::Null;
        let reached = wait_for(WAIT, || {
            last = self.status(id);
            (last["done"].as_u64() >= Some(n)).then_some(())
        });
        assert!(reached.is_some(), "job {id} never had {n} shards done: {last}");
    }

    /// `farm watch <id> --json`: waits for the job to end and returns it.
    pub fn watch(&self, id: &str) -> Value {
        json(&self.cli(&["watch", id, "--json"]))
    }
}

/// Starts `farm worker --listen <listen> --threads 1 <extra>` under `tag`, waiting for it to
/// announce its address.
pub fn listening_worker(tag: &str, listen: &str, extra: &[&str]) -> (Proc, String) {
    let mut args = vec!["worker", "--listen", listen, "--threads", "1"];
    args.extend_from_slice(extra);
    spawn_announcing(&args, tag)
}

/// Parses a command's stdout as one JSON value.
pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("stdout is not JSON ({e}): {:?}", String::from_utf8_lossy(&out.stdout))
    })
}
