//! `farm showdown` runs every configuration as a real `farm run`, agrees with itself, and
//! leaves no process behind. A small range keeps it fast; the full showdown is for people.

use farm_tests::*;

#[test]
fn a_small_showdown_runs_every_mode_and_the_results_agree() {
    let tag = tag();
    let out = run(
        &[
            "showdown",
            "--range",
            "0..20000",
            "--shard-size",
            "5000",
            "--sleep-ms",
            "5",
            "--no-python",
            "--cores",
            "2",
            "--json",
        ],
        &tag,
    );
    assert!(out.status.success(), "showdown failed: {:?}", String::from_utf8_lossy(&out.stdout));
    let report = json(&out);
    assert_eq!(report["cores"], 2);
    let rows = report["rows"].as_array().expect("rows");
    let shapes: Vec<(&str, &str, u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["kernel"].as_str().expect("kernel"),
                r["mode"].as_str().expect("mode"),
                r["workers"].as_u64().expect("workers"),
                r["threads"].as_u64().expect("threads"),
            )
        })
        .collect();
    assert_eq!(
        shapes,
        [
            ("primes", "serial", 1, 1),
            ("primes", "threads", 1, 2),
            ("primes", "processes", 2, 1),
            ("primes", "composed", 2, 2),
            ("sleep", "serial", 1, 1),
            ("sleep", "threads", 1, 2),
            ("sleep", "processes", 2, 1),
            ("sleep", "composed", 2, 2),
            ("sleep", "composed wide", 2, 8),
        ]
    );
    for r in rows {
        // 2262 primes below 20000; 200 sleep indices.
        let expected = if r["kernel"] == "primes" { 2262 } else { 200 };
        assert_eq!(r["result"], expected, "{r}");
        assert!(r["wall_s"].as_f64().expect("wall") > 0.0, "{r}");
        assert!(r["elapsed_ms"].is_u64(), "{r}");
        assert!(r["speedup"].as_f64().expect("speedup") > 0.0, "{r}");
        assert!(r["efficiency"].as_f64().expect("efficiency") > 0.0, "{r}");
    }
    assert_eq!(rows[0]["speedup"], 1.0);
    assert_eq!(rows[4]["speedup"], 1.0);
    assert_none_left(&tag);
}
