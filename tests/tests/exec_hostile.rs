//! End to end: what an `exec` job can do to the worker that runs it, and what it is told. A
//! program that floods stdout fails its shard at the output limit without growing the
//! worker; programs do not see the worker's secrets; an input line is data in a `sh -c`
//! script, never code; a job no worker can run for want of `--allow-exec` says so.

use farm_tests::*;

/// The worker's peak resident memory so far, in bytes (`VmHWM`, which the kernel keeps).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("worker status");
    let kib = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).expect("VmHWM");
    kib.trim().trim_end_matches("kB").trim().parse::<u64>().expect("kB") << 10
}

#[test]
fn a_stdout_flood_fails_its_shard_at_the_limit_and_the_worker_stays_small() {
    let master = Master::start(&[]);
    let worker = master.worker(&["--threads", "1", "--allow-exec"]);
    master.wait_workers(1);
    let before = peak_rss(worker.pid());
    let flood = "cmd=head -c 400000000 /dev/zero";
    let v = master.submit_wait(&["exec", "--range", "0..1", "--param", flood, "--retries", "0"]);
    assert_eq!(v["state"], "failed", "{v}");
    let error = v["error"].as_str().unwrap_or_default();
    assert!(error.contains("stdout passed the 32 MiB output limit"), "{error}");
    // The limit, plus 64 MiB for everything else: it took 795 MB when stdout was read whole.
    let peak = peak_rss(worker.pid());
    eprintln!("worker peak RSS: {} MiB before the job, {} MiB after", before >> 20, peak >> 20);
    assert!(peak < (32 + 64) << 20, "worker peak RSS {} MiB", peak >> 20);
    // The worker goes on serving.
    let v = master.submit_wait(&["exec", "--range", "0..2", "--param", "cmd=echo {}"]);
    assert_eq!(v["result"][1]["stdout"], "1\n", "{v}");
}

#[test]
fn programs_do_not_see_the_workers_secrets() {
    let token = "s3cret-worker-token";
    let master = Master::start(&["--worker-token", token]);
    let env = [
        ("FARM_TOKEN", token),
        ("FARM_WORKER_TOKEN", "s3cret-other"),
        ("FARM_WORKER_TOKEN_FILE", "/s3cret/path"),
        ("FARM_NOT_A_SECRET", "kept"),
    ];
    let _worker = master.worker_with_env(&["--threads", "1", "--allow-exec"], &env);
    master.wait_workers(1);
    let v = master.submit_wait(&["exec", "--range", "7..8", "--param", "cmd=env"]);
    assert_eq!(v["state"], "succeeded", "{v}");
    let printed = v["result"][0]["stdout"].as_str().unwrap_or_default();
    let vars: Vec<&str> = printed.lines().collect();
    assert!(vars.contains(&"FARM_NOT_A_SECRET=kept"), "the environment was printed: {printed}");
    assert!(vars.contains(&"FARM_INPUT=7"), "{printed}");
    assert!(!printed.contains("s3cret"), "a secret reached the program: {printed}");
}

#[test]
fn an_input_line_is_data_in_a_shell_script_not_code() {
    let master = Master::start(&[]);
    let _worker = master.worker(&["--threads", "1", "--allow-exec"]);
    master.wait_workers(1);
    let inputs = std::env::temp_dir().join(format!("farm-inject-{}", std::process::id()));
    std::fs::write(&inputs, "it's; echo INJECTED\n$(echo INJECTED)\n").expect("inputs");
    let inputs_arg = inputs.to_str().expect("utf-8");
    let cmd = "cmd=sh -c 'echo {} | rev'";
    let v = master.submit_wait(&["exec", "--inputs", inputs_arg, "--param", cmd]);
    let _ = std::fs::remove_file(&inputs);
    assert_eq!(v["state"], "succeeded", "{v}");
    assert_eq!(v["result"][0]["stdout"], "DETCEJNI ohce ;s'ti\n", "{v}");
    assert_eq!(v["result"][1]["stdout"], ")DETCEJNI ohce($\n", "{v}");
}

#[test]
fn an_exec_job_no_worker_can_run_names_allow_exec() {
    let master = Master::start(&[]);
    let plain = master.worker(&["--threads", "1"]);
    master.wait_workers(1);
    let out = master.cli(&["submit", "exec", "--range", "0..1", "--param", "cmd=true"]);
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("started with --allow-exec"), "{stderr}");
    drop(plain);
    master.wait_workers(0);

    // Known from a worker that has left, the job waits, and says what would end the wait.
    let exec = master.worker(&["--threads", "1", "--allow-exec"]);
    master.wait_workers(1);
    drop(exec);
    master.wait_workers(0);
    let id = master.submit(&["exec", "--range", "0..1", "--param", "cmd=true"]);
    let mut last = serde_json::Value::Null;
    let said = wait_until(WAIT, || {
        last = master.status(&id);
        last["waiting"].as_str().is_some_and(|w| w.contains("started with --allow-exec"))
    });
    assert!(said, "status never named --allow-exec: {last}");
}
