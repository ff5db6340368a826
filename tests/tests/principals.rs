//! Many users, one farm (issue 26): principals from a file made with `farm token new`, each
//! seeing and cancelling only its own jobs; `operate` acting on everyone's; a worker's token
//! good for connecting only; a missing role refused with PermissionDenied naming it on gRPC,
//! on HTTP and in the CLI; every mutating call in the audit trail; owners and the trail kept
//! across a restart with `--journal`; and a principals file others may read refused.

use farm_proto::pb::{self, farm_service_client::FarmServiceClient};
use farm_tests::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

/// A gRPC request carrying `token`.
fn with_token<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    let value = format!("Bearer {token}").parse().expect("header value");
    req.metadata_mut().insert("authorization", value);
    req
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// `farm token new NAME --role ROLE --principals FILE`: the token it printed.
fn new_token(file: &Path, name: &str, role: &str, tag: &str) -> String {
    let file = file.display().to_string();
    let out = run(&["token", "new", name, "--role", role, "--principals", &file], tag);
    assert!(out.status.success(), "token new {name}: {}", stderr_of(&out));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(token.len(), 64, "one token of 64 hex digits on stdout: {token:?}");
    token
}

/// A client command run with `token`.
fn as_(master: &Master, token: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--token", token];
    all.extend_from_slice(args);
    master.cli(&all)
}

/// The ids and owners of the jobs `token` lists.
fn jobs_of(master: &Master, token: &str, extra: &[&str]) -> Vec<(u64, String)> {
    let mut args = vec!["jobs", "--json"];
    args.extend_from_slice(extra);
    let out = as_(master, token, &args);
    assert!(out.status.success(), "jobs: {}", stderr_of(&out));
    let mut jobs: Vec<(u64, String)> = json(&out)
        .as_array()
        .expect("a list")
        .iter()
        .map(|j| (j["job"].as_u64().expect("id"), j["owner"].as_str().unwrap_or("").to_string()))
        .collect();
    jobs.sort();
    jobs
}

/// Submits a job nothing runs yet (no worker offers `noop` until one connects): it stays
/// queued, so it can be cancelled.
fn submit(master: &Master, token: &str) -> u64 {
    let out = as_(master, token, &["submit", "noop", "--range", "0..10", "--json"]);
    assert!(out.status.success(), "submit: {}", stderr_of(&out));
    json(&out)["job"].as_u64().expect("job id")
}

/// A refusal: failed, and its one line names PermissionDenied and `needs`.
fn assert_denied(out: &std::process::Output, needs: &str) {
    let err = stderr_of(out);
    assert!(!out.status.success(), "refused: {err}");
    assert!(err.starts_with("error: permission denied: "), "{err}");
    assert!(err.contains(needs), "names {needs:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn principals_see_and_act_on_their_own_jobs_and_operate_on_everyones() {
    let tag = tag();
    let dir = std::env::temp_dir().join(format!("{tag}-principals"));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("principals.toml");
    let journal = dir.join("farm.redb").display().to_string();
    let (alice, bob, ops, reader, worker, carol) = tokio::task::block_in_place(|| {
        (
            new_token(&file, "alice", "submit", &tag),
            new_token(&file, "bob", "submit", &tag),
            new_token(&file, "ops", "operate", &tag),
            new_token(&file, "reader", "read", &tag),
            new_token(&file, "rack1", "worker", &tag),
            new_token(&file, "carol", "submit", &tag),
        )
    });
    // Carol may hold one job queued or running.
    let mut text = std::fs::read_to_string(&file).expect("read");
    text.push_str("jobs = 1\n");
    std::fs::write(&file, text).expect("write");
    let mode = std::fs::metadata(&file).expect("file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "farm token new creates the file for its owner only");
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(!text.contains(&alice), "the file holds hashes, never a token");
    let again = run(
        &["token", "new", "alice", "--role", "read", "--principals", &file.display().to_string()],
        &tag,
    );
    assert!(!again.status.success() && stderr_of(&again).contains("already"));

    let file_arg = file.display().to_string();
    let args = ["--principals", &file_arg, "--journal", &journal, "--http", "127.0.0.1:0"];
    let master = Master::start_tagged(&args, &tag, "127.0.0.1:0");
    let dash = master.http.clone().expect("dashboard");

    let (a, b, c) = tokio::task::block_in_place(|| {
        (submit(&master, &alice), submit(&master, &bob), submit(&master, &carol))
    });
    tokio::task::block_in_place(|| {
        // Past her quota, carol is refused, naming it; the others submit on.
        let out = as_(&master, &carol, &["submit", "noop", "--range", "0..10"]);
        let err = stderr_of(&out);
        assert!(!out.status.success(), "{err}");
        assert!(err.starts_with("error: resource exhausted: quota: principal carol"), "{err}");
    });
    tokio::task::block_in_place(|| {
        // Each sees only its own; operate sees both, with their owners.
        assert_eq!(jobs_of(&master, &alice, &[]), vec![(a, "alice".to_string())]);
        assert_eq!(jobs_of(&master, &bob, &[]), vec![(b, "bob".to_string())]);
        let both = vec![(a, "alice".to_string()), (b, "bob".to_string()), (c, "carol".to_string())];
        assert_eq!(jobs_of(&master, &ops, &[]), both);
        assert!(jobs_of(&master, &ops, &["--mine"]).is_empty(), "ops submitted nothing");
        assert_eq!(jobs_of(&master, &reader, &[]), vec![]);

        // Another's job: no status, no cancel, no logs without operate.
        let b_id = b.to_string();
        assert_denied(&as_(&master, &alice, &["cancel", &b_id]), "needs role operate");
        assert_denied(&as_(&master, &alice, &["status", &b_id]), "needs role operate");
        assert_denied(&as_(&master, &alice, &["logs", &b_id]), "needs role operate");
        let out = as_(&master, &ops, &["status", &b_id, "--json"]);
        assert_eq!(json(&out)[0]["state"], "queued", "the refused cancel did nothing");
        // Its own: yes. Anyone's, with operate: yes.
        let out = as_(&master, &alice, &["cancel", &a.to_string(), "--json"]);
        assert_eq!(json(&out)[0]["state"], "cancelled", "{}", stderr_of(&out));
        let out = as_(&master, &ops, &["cancel", &b_id, "--json"]);
        assert_eq!(json(&out)[0]["state"], "cancelled", "{}", stderr_of(&out));

        // A missing role, in the CLI: named.
        let out = as_(&master, &reader, &["submit", "noop", "--range", "0..10"]);
        assert_denied(&out, "needs role submit");
        assert_denied(&as_(&master, &alice, &["audit"]), "needs role operate");

        // The worker's token connects a worker, and does nothing else.
        let out = as_(&master, &worker, &["jobs"]);
        assert!(stderr_of(&out).contains("unauthenticated"), "{}", stderr_of(&out));
        let _w = master.worker(&["--token", &worker, "--threads", "1"]);
        let connected = || {
            let out = as_(&master, &ops, &["workers", "--json"]);
            json(&out).as_array().map_or(0, |w| w.len())
        };
        assert!(wait_until(WAIT, || connected() == 1), "the worker connected");
        let out = as_(&master, &alice, &["workers", "drain", "1"]);
        assert_denied(&out, "needs role operate");
    });

    // On gRPC: PermissionDenied, the role named.
    let channel =
        within(tonic::transport::Endpoint::from_shared(master.url.clone()).expect("url").connect())
            .await
            .expect("connect");
    let mut client = FarmServiceClient::new(channel);
    let req = with_token(pb::DrainWorkerRequest { worker_id: 1 }, &alice);
    let refused = within(client.drain_worker(req)).await.expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert!(refused.message().contains("needs role operate"), "{}", refused.message());
    let req = with_token(pb::AuditRequest::default(), &reader);
    let refused = within(client.audit(req)).await.expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    tokio::task::block_in_place(|| {
        // On HTTP: 403, the role named; the state shows alice her jobs only.
        let auth = format!("Authorization: Bearer {alice}");
        let drain = http("POST", &dash, "/api/workers/1/drain", &[&auth, "x-farm-action: 1"])
            .expect("drain");
        assert_eq!(drain.status, 403, "{}", drain.body);
        assert!(drain.body.contains("needs role operate"), "{}", drain.body);
        let cancel =
            http("POST", &dash, &format!("/api/jobs/{b}/cancel"), &[&auth, "x-farm-action: 1"])
                .expect("cancel");
        assert_eq!(cancel.status, 403, "{}", cancel.body);
        let state: Value =
            serde_json::from_str(&get(&dash, "/api/state", Some(&alice)).body).expect("json");
        let owners: Vec<&str> = state["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .filter_map(|j| j["owner"].as_str())
            .collect();
        assert_eq!(owners, vec!["alice"], "{state}");
        let me: Value =
            serde_json::from_str(&get(&dash, "/api/me", Some(&alice)).body).expect("json");
        assert_eq!((me["name"].as_str(), me["may_drain"].as_bool()), (Some("alice"), Some(false)));
        let state: Value =
            serde_json::from_str(&get(&dash, "/api/state", Some(&ops)).body).expect("json");
        assert_eq!(state["jobs"].as_array().map(Vec::len), Some(3), "{state}");
    });

    // The audit trail: accepted and refused mutating calls, by whom, on what.
    let trail = tokio::task::block_in_place(|| audit(&master, &ops));
    let has = |who: &str, action: &str, target: &str, outcome: &str| {
        trail.iter().any(|e| {
            e["principal"] == who
                && e["action"] == action
                && e["target"] == target
                && e["outcome"] == outcome
        })
    };
    assert!(has("alice", "submit", &format!("job {a}"), "accepted"), "{trail:?}");
    assert!(has("alice", "cancel", &format!("job {b}"), "refused"), "{trail:?}");
    assert!(has("ops", "cancel", &format!("job {b}"), "accepted"), "{trail:?}");
    assert!(has("reader", "submit", "-", "refused"), "{trail:?}");
    assert!(has("alice", "drain", "-", "refused"), "{trail:?}");
    assert!(has("carol", "submit", "-", "refused"), "the quota refusal: {trail:?}");

    // A restart with the journal keeps the owners and the trail.
    tokio::task::block_in_place(|| {
        let mut master = master;
        master.proc.signal(libc::SIGTERM);
        assert!(master.proc.wait(Duration::from_secs(20)).is_some(), "the master stops on SIGTERM");
        let master = Master::start_tagged(&args, &tag, "127.0.0.1:0");
        let both = vec![(a, "alice".to_string()), (b, "bob".to_string()), (c, "carol".to_string())];
        assert_eq!(jobs_of(&master, &ops, &[]), both);
        assert_eq!(jobs_of(&master, &bob, &[]), vec![(b, "bob".to_string())]);
        let kept = audit(&master, &ops);
        assert_eq!(kept.len(), trail.len(), "the trail survived the restart: {kept:?}");
        // Ended jobs restored from the journal still belong to their owners.
        assert_denied(&as_(&master, &alice, &["status", &b.to_string()]), "needs role operate");
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// `farm audit --json` as `token`.
fn audit(master: &Master, token: &str) -> Vec<Value> {
    let out = as_(master, token, &["audit", "--json", "--since", "1h"]);
    assert!(out.status.success(), "audit: {}", stderr_of(&out));
    json(&out).as_array().expect("a list").clone()
}

#[test]
fn a_principals_file_others_can_read_is_refused() {
    let tag = tag();
    let dir = std::env::temp_dir().join(format!("{tag}-principals"));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("principals.toml");
    new_token(&file, "alice", "submit", &tag);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let file_arg = file.display().to_string();
    let out = run(&["master", "--listen", "127.0.0.1:0", "--principals", &file_arg], &tag);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("others may read it") && err.contains("chmod 600"), "{err}");
    assert_none_left(&tag);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `farm master --principals FILE --workers 2`: the local workers get a token the master mints
/// for them (there is no shared worker token to hand them), connect, and run a job a `submit`
/// principal sends. Their token is good for connecting as a worker and nothing else, is in no
/// file, and shows in no log.
#[test]
fn local_workers_of_a_master_with_principals_connect_with_a_minted_token() {
    let tag = tag();
    let dir = std::env::temp_dir().join(format!("{tag}-principals"));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("principals.toml");
    let alice = new_token(&file, "alice", "submit", &tag);
    let reader = new_token(&file, "reader", "read", &tag);
    let mode = std::fs::metadata(&file).expect("file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let file_arg = file.display().to_string();
    let master = Master::start_logging(
        &["--principals", &file_arg, "--workers", "2", "--threads", "1", "--http", "off"],
        &tag,
        "127.0.0.1:0",
        "farm=info",
    );

    let out = as_(&master, &alice, &["submit", "primes", "--range", "0..1000", "--wait", "--json"]);
    let job = json(&out);
    assert_eq!(
        (job["state"].as_str(), &job["result"]),
        (Some("succeeded"), &Value::from(168)),
        "{job}"
    );
    assert_eq!(job["owner"], "alice", "{job}");

    let listed = |token: &str| {
        let out = as_(&master, token, &["workers", "--json"]);
        assert!(out.status.success(), "workers: {}", stderr_of(&out));
        json(&out).as_array().expect("a list").clone()
    };
    let mut workers = Vec::new();
    let two = wait_until(WAIT, || {
        workers = listed(&reader);
        workers.len() == 2
    });
    assert!(two, "farm workers lists the 2 local workers: {workers:?}");

    // The minted token, as a worker holds it: a 64-hex-digit token of its own.
    let pid = workers[0]["pid"].as_u64().expect("pid");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("worker environment");
    let minted = environ
        .split(|b| *b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix("FARM_TOKEN="))
        .expect("the local worker's FARM_TOKEN")
        .to_string();
    assert_eq!(minted.len(), 64, "256 random bits as hex");
    assert!(minted != alice && minted != reader);
    // It opens no client call.
    let out = as_(&master, &minted, &["jobs"]);
    assert!(!out.status.success(), "a worker's token lists no jobs");
    assert!(stderr_of(&out).contains("unauthenticated"), "{}", stderr_of(&out));
    // Never on disk (the principals file holds no hash of it either), never in the log.
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(!text.contains(&minted), "not in the principals file");
    assert_eq!(master.proc.log_count(|l| l.contains(&minted)), 0, "not in the master's log");
    // No local worker was refused on the way (each was refused at most once before this fix,
    // then restarted for ever; the job ran, so they had their chance).
    assert_eq!(master.proc.log_count(|l| l.contains("missing token")), 0, "refused once");

    drop(master);
    assert!(wait_until(WAIT, || tagged_processes(&tag).is_empty()), "the workers stop with it");
    let _ = std::fs::remove_dir_all(&dir);
}
