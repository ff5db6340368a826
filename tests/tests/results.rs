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
    let done = master.submit_wait(&[
        "hashchain",
        "--range",
        &range,
        "--shard-size",
        "2000",
        "--param",
        "rounds=1",
    ]);
    let produced_mib = producing.stop();
    let produced = started.elapsed();
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["result"], serde_json::Value::Null, "too large to carry inline: {done}");
    assert_eq!(done["result_in_store"], true, "{done}");

    let dir = std::env::temp_dir().join(format!("{}-results", master.tag));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("digests.ndjson");
    let id = done["job"].to_string();
    let started = std::time::Instant::now();
    let reading = Peak::start(pid);
    let out = master.cli(&["results", &id, "--ndjson", "--out", file.to_str().expect("path")]);
    let read_mib = reading.stop();
    let read = started.elapsed();
    assert!(out.status.success(), "{out:?}");

    let mut lines = 0u64;
    let reader = std::io::BufReader::new(std::fs::File::open(&file).expect("file"));
    for (i, line) in reader.lines().enumerate() {
        let digest: String =
            Sha256::digest(i.to_string().as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(line.expect("line"), format!("\"{digest}\""), "item {i}");
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
