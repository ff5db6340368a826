//! End to end: a worker built on the SDK (the collatz example) takes every flag `farm worker`
//! takes. It joins a token-protected master over TLS, runs its own kernel on `--inputs` lines,
//! offers `exec` with `--allow-exec`, and drains on SIGTERM: the shard in flight finishes, the
//! worker exits 0, and the job completes without running it again.

use farm_tests::*;
use std::path::Path;
use std::process::Stdio;

const TOKEN: &str = "sdk-s3cret";

/// Steps from n to 1 under the Collatz map.
fn steps(mut n: u64) -> u64 {
    let mut count = 0;
    while n > 1 {
        n = if n.is_multiple_of(2) { n / 2 } else { 3 * n + 1 };
        count += 1;
    }
    count
}

/// Runs a client command against the TLS master with the token (after the subcommand, so the
/// flags read the same whether they are global or the command's own).
fn cli(master: &Master, pki: &Pki, args: &[&str]) -> std::process::Output {
    let ca = pki.file("ca.pem");
    let mut all = args.to_vec();
    all.extend_from_slice(&["--tls-ca", &ca, "--token", TOKEN]);
    master.cli(&all)
}

#[test]
fn an_sdk_worker_joins_over_tls_with_a_token_runs_inputs_and_drains_on_sigterm() {
    let tag = tag();
    let pki = Pki::new(&tag);
    let (cert, key) = (pki.file("server.pem"), pki.file("server.key"));
    let master_args = ["--tls-cert", cert.as_str(), "--tls-key", key.as_str(), "--token", TOKEN];
    let mut master = Master::start_tagged(&master_args, &tag, "127.0.0.1:0");
    master.url = master.url.replacen("http://", "https://", 1);
    let dir = std::env::temp_dir().join(format!("{tag}-sdk"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token file");

    let ca = pki.file("ca.pem");
    let token_arg = token_file.to_string_lossy().to_string();
    let worker_args = [
        "--master",
        master.url.as_str(),
        "--tls-ca",
        ca.as_str(),
        "--token-file",
        token_arg.as_str(),
        "--threads",
        "1",
        "--name",
        "collatz-tls",
        "--allow-exec",
    ];
    let mut worker = start(&collatz_worker(), &worker_args, &tag, QUIET, Stdio::null());
    let joined = wait_for(WAIT, || {
        let out = cli(&master, &pki, &["workers", "--json"]);
        let workers: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).ok()?;
        (workers.len() == 1).then(|| workers[0].clone())
    });
    let joined = joined.expect("the SDK worker joined the TLS master with its token");
    assert_eq!(joined["name"], "collatz-tls");

    // Its own kernel over input lines: one number a line.
    let inputs = dir.join("inputs.txt");
    std::fs::write(&inputs, "27\n97\n\n871\n").expect("inputs");
    let path = inputs.to_string_lossy().to_string();
    let out = cli(&master, &pki, &["submit", "collatz", "--inputs", &path, "--wait", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let v = json(&out);
    assert_eq!(v["result"], steps(27) + steps(97) + steps(871));
    // Its log lines (the SDK's ShardLog) reach `farm logs`.
    let logs = json(&cli(&master, &pki, &["logs", &v["job"].to_string(), "--json"]));
    let lines: Vec<&str> =
        logs.as_array().into_iter().flatten().filter_map(|l| l["log"].as_str()).collect();
    assert_eq!(lines, ["27 takes 111 steps\n", "97 takes 118 steps\n", "871 takes 178 steps\n"]);

    drains_on_sigterm(&master, &pki, &mut worker, &dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A shard that is running when the worker gets SIGTERM finishes; the worker exits 0 and the
/// job succeeds with no rerun.
fn drains_on_sigterm(master: &Master, pki: &Pki, worker: &mut Proc, dir: &Path) {
    let marker = dir.join("started");
    let cmd = format!("cmd=sh -c 'touch {}; sleep 2; echo finished {{}}'", marker.display());
    let out = cli(master, pki, &["submit", "exec", "--range", "0..1", "--param", &cmd]);
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(out.status.success() && id.parse::<u64>().is_ok(), "{out:?}");
    assert!(wait_until(WAIT, || marker.exists()), "the shard never started");

    worker.signal(libc::SIGTERM);
    let status = worker.wait(WAIT).expect("the worker exits after draining");
    assert!(status.success(), "a drained SDK worker exits 0: {status:?}");
    let out = cli(master, pki, &["status", &id, "--json"]);
    let v = json(&out)[0].clone();
    assert_eq!(v["state"], "succeeded", "the in-flight shard finished: {v}");
    assert_eq!((v["done"].as_u64(), v["reruns"].as_u64()), (Some(1), Some(0)), "{v}");
    let out = cli(master, pki, &["watch", &id, "--json"]);
    assert_eq!(json(&out)["result"][0]["stdout"], "finished 0\n");
}
