//! Results of any size: a hashchain job whose list result (about 74 MiB of JSON) is larger
//! than the 64 MiB message limit succeeds with its result kept in the store only, is read back
//! with `farm results --ndjson --out FILE` item for item, and the master's resident memory
//! stays well under the result's size while it is produced and read.

use farm_tests::*;
use sha2::{Digest, Sha256};
use std::io::BufRead;

/// Digests in the result: 2,000,000 × 67 bytes of JSON ≈ 128 MiB, twice what the master may
/// grow by, so a master that kept the result would fail the bound below.
const ITEMS: u64 = 2_000_000;

#[test]
fn a_result_past_the_message_limit_is_streamed_to_a_file_with_flat_master_memory() {
    let master = Master::start(&["--workers", "2", "--threads", "1"]);
    master.wait_workers(2);
    let pid = master.proc.pid();
    let baseline = rss_kib(pid) / 1024;
    let started = std::time::Instant::now();
    let producing = Peak::start(pid);
    let range = format!("0..{ITEMS}");
    // Submitted, then polled: `submit --wait --json` would stream the whole list into its
    // output, and this test reads it with `farm results`.
    let id = master.submit(&[
        "hashchain",
        "--range",
        &range,
        "--shard-size",
        "2000",
        "--param",
        "rounds=1",
    ]);
    let done = wait_for(WAIT * 2, || {
        let status = master.status(&id);
        (status["state"] != "queued" && status["state"] != "running").then_some(status)
    })
    .expect("the job ends");
    let produced_mib = producing.stop();
    let produced = started.elapsed();
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["result"], serde_json::Value::Null, "too large to carry inline: {done}");
    assert_eq!(done["result_in_store"], true, "{done}");

    let dir = std::env::temp_dir().join(format!("{}-results", master.tag));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("digests.ndjson");
    let started = std::time::Instant::now();
    let reading = Peak::start(pid);
    let out = master.cli(&["results", &id, "--ndjson", "--out", file.to_str().expect("path")]);
    let read_mib = reading.stop();
    let read = started.elapsed();
    assert!(out.status.success(), "{out:?}");

    let mut lines = 0u64;
    let reader = std::io::BufReader::new(std::fs::File::open(&file).expect("file"));
    for (i, line) in reader.lines().enumerate() {
        assert_eq!(line.expect("line"), format!("\"{}\"", digest(i as u64)), "item {i}");
        lines += 1;
    }
    assert_eq!(lines, ITEMS);
    let bytes = std::fs::metadata(&file).map(|m| m.len() >> 20).unwrap_or(0);
    eprintln!(
        "{bytes} MiB result: master at {baseline} MiB idle; produced in {produced:?} (master \
         peak {produced_mib} MiB), read in {read:?} (master peak {read_mib} MiB)"
    );
    let grew = produced_mib.max(read_mib).saturating_sub(baseline);
    // Bounded, not proportional: the journal's backlog (32 MiB), redb's page cache (16 MiB),
    // a few chunks queued per stream, the allocator's arenas.
    assert!(
        grew < 64 && grew < bytes / 2,
        "the master grew by {grew} MiB for a {bytes} MiB result"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Digests past the 1 MiB a status carries inline (20,000 × 67 bytes of JSON).
const PAST_INLINE: u64 = 20_000;

/// The lowercase hex SHA-256 of `i`'s decimal text: hashchain's digest of index `i` with
/// `rounds=1`.
fn digest(i: u64) -> String {
    Sha256::digest(i.to_string().as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks that `text` is every digest of 0..PAST_INLINE, one a line, in order.
fn assert_every_digest(text: &[u8]) {
    let text = std::str::from_utf8(text).expect("utf-8");
    assert!(!text.contains("farm results"), "advice instead of the result: {text:.300}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() as u64, PAST_INLINE, "{text:.300}");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(*line, digest(i as u64), "item {i}");
    }
}

#[test]
fn farm_run_prints_a_result_past_the_status_limit_whole() {
    let tag = tag();
    let range = format!("0..{PAST_INLINE}");
    let args = ["run", "hashchain", "--range", &range, "--param", "rounds=1", "--workers", "1"];
    let out = run(&[&args[..], &["--threads", "2", "--http", "off"]].concat(), &tag);
    assert!(out.status.success(), "{out:?}");
    assert_every_digest(&out.stdout);
    // --json: the status object, its result the whole list streamed from the store.
    let out = run(&[&args[..], &["--threads", "2", "--http", "off", "--json"]].concat(), &tag);
    assert!(out.status.success(), "{:?}", String::from_utf8_lossy(&out.stderr));
    let status = json(&out);
    assert_eq!(status["result_in_store"], true, "past the inline limit");
    let items = status["result"].as_array().expect("the result is the list");
    assert_eq!(items.len() as u64, PAST_INLINE);
    assert_eq!(items[PAST_INLINE as usize - 1], digest(PAST_INLINE - 1));
    assert_none_left(&tag);
}

#[test]
fn submit_wait_and_watch_print_a_result_past_the_status_limit_whole() {
    let master = Master::start(&["--workers", "1", "--threads", "2", "--http", "off"]);
    let range = format!("0..{PAST_INLINE}");
    let job = ["hashchain", "--range", range.as_str(), "--param", "rounds=1"];
    let out = master.cli(&[&["submit"][..], &job, &["--wait"]].concat());
    assert!(out.status.success(), "{out:?}");
    assert_every_digest(&out.stdout);
    let id = master.submit(&job);
    let out = master.cli(&["watch", &id]);
    assert!(out.status.success(), "{out:?}");
    assert_every_digest(&out.stdout);
    // `status` sums it up instead.
    let out = master.cli(&["status", &id]);
    assert!(out.status.success() && out.stdout.len() < 4096, "{out:?}");
}

#[test]
fn whether_a_result_is_a_list_follows_the_kernels_output_shape() {
    let master =
        Master::start(&["--workers", "1", "--threads", "1", "--allow-exec", "--http", "off"]);
    master.wait_workers(1);
    // An exec job whose program prints `[x]`: a list of runs, read with `farm results`.
    let exec = master.submit_wait(&["exec", "--range", "0..1", "--param", "cmd=printf '[x]'"]);
    assert_eq!(exec["state"], "succeeded", "{exec}");
    let id = exec["job"].to_string();
    let out = master.cli(&["results", &id]);
    assert!(out.status.success(), "{out:?}");
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON list");
    assert_eq!(runs[0]["stdout"], "[x]", "{runs}");
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");

    // A count is its text, never read as a list: `farm results` prints it (a Results read of
    // it would be refused as not a list), with --ndjson too, and `run --out` writes it.
    let count = master.submit_wait(&["primes", "--range", "0..100"]);
    assert_eq!(count["result"], 25, "{count}");
    let id = count["job"].to_string();
    for extra in [&[][..], &["--ndjson"]] {
        let out = master.cli(&[&["results", id.as_str()][..], extra].concat());
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "25\n", "{out:?}");
    }
    let dir = std::env::temp_dir().join(format!("{}-shape", master.tag));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("count.json");
    let out = master.cli(&[
        "submit",
        "primes",
        "--range",
        "0..100",
        "--wait",
        "--out",
        file.to_str().expect("path"),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read_to_string(&file).expect("written"), "25\n");
    let _ = std::fs::remove_dir_all(&dir);
}
