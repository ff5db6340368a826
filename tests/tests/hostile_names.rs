//! End to end: names a worker registers cannot forge lines. A fake worker built on the
//! generated client registers a kind shaped to end its Prometheus label and start a series of
//! its own, then names and hostnames holding a newline or an escape; each registration is
//! refused with InvalidArgument naming what is wrong, and `/metrics` holds exactly the series
//! of the real worker's job.

use farm_proto::KernelDescriptor;
use farm_tests::*;

/// A kind that, written raw into a label, ends it and adds the series `farm_injected_total`.
const FORGED_KIND: &str = "x\"} 1\nfarm_injected_total{job=\"1\"} 1\nfarm_z{a=\"";

/// Registers a fake worker named `name` on `hostname` offering the built-in kernels and
/// `extra`; the master's answer to the registration.
fn register(url: &str, name: &str, hostname: &str, extra: &[&str]) -> Result<(), tonic::Status> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let mut kernels = farm_worker::Registry::builtin(false).descriptors();
    kernels.extend(extra.iter().map(|k| KernelDescriptor::open(*k)));
    rt.block_on(fake_session(url, registration(name, hostname, 1, &kernels))).map(drop)
}

#[test]
fn hostile_kinds_and_names_are_refused_and_metrics_hold_only_real_series() {
    let master = Master::start(&["--http", "127.0.0.1:0", "--metrics-open"]);
    let refused = |name: &str, hostname: &str, extra: &[&str]| {
        let status = register(&master.url, name, hostname, extra).expect_err("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        status.message().to_string()
    };
    let why = refused("w", "h", &[FORGED_KIND]);
    assert!(why.contains(r#"kind "x\"} 1\nfarm_injected_total{"#), "{why}");
    assert!(why.contains("may hold only letters, digits"), "{why}");
    assert!(refused("w", "h", &["has space"]).contains("\"has space\""));
    let why = refused("w\nfarm_injected_total 1", "h", &[]);
    assert!(why.starts_with(r#"worker name "w\nfarm_injected_total 1" holds a control"#), "{why}");
    let why = refused("w", "h\u{1b}]0;owned\u{7}", &[]);
    assert!(why.starts_with("worker hostname"), "{why}");
    // A fair name passes the same door.
    register(&master.url, "fake-ok", "host.example", &["user.kind:v2"]).expect("registered");

    let _real = master.worker(&["--threads", "1", "--name", "real"]);
    let listed =
        master.wait_workers_where("the real worker", |ws| ws.iter().any(|w| w["name"] == "real"));
    assert!(listed.iter().all(|w| w["name"] == "real" || w["name"] == "fake-ok"), "{listed:?}");
    let v = master.submit_wait(&["noop", "--range", "0..10", "--shard-size", "5"]);
    assert_eq!(v["state"], "succeeded", "{v}");

    let metrics = get(master.http.as_deref().expect("http"), "/metrics", None).body;
    let mut shards: Vec<&str> =
        metrics.lines().filter(|l| l.starts_with("farm_shards_completed_total")).collect();
    shards.sort();
    assert_eq!(
        shards,
        [
            r#"farm_shards_completed_total{kind="noop",outcome="done"} 2"#,
            r#"farm_shards_completed_total{kind="noop",outcome="failed"} 0"#,
            r#"farm_shards_completed_total{kind="noop",outcome="rerun"} 0"#,
        ],
        "{metrics}"
    );
    // Every sample line belongs to a family the master declares.
    let families: Vec<&str> =
        metrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).collect();
    for line in metrics.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        assert!(families.iter().any(|f| name.starts_with(f)), "a line of no family: {line}");
    }
    assert!(!metrics.contains("farm_injected"), "{metrics}");
}
