//! End to end: priorities hold while another job runs. A high-priority job submitted behind a
//! long low-priority one that fills every worker's window runs at once, beside it, and ends
//! while the low-priority job still has most of its work to do. (How fast is a figure in
//! BENCHMARKS.md, `farm-bench priority`, not an assertion here.)

use farm_tests::*;

#[test]
fn a_high_priority_job_ends_while_the_low_priority_job_that_filled_the_windows_runs() {
    let master = Master::start(&["--workers", "2", "--threads", "2"]);
    master.wait_workers(2);
    // 80 CPU-seconds of 10 ms shards: 20 s on 2 x 2 threads, longer on a busy machine.
    let spin = "0..8000";
    let low = master.submit(&["spin", "--range", spin, "--shard-size", "1", "--param", "ms=10"]);
    // Once the workers have answered a few rounds, they hold deep windows of its shards.
    master.wait_done(&low, 100);
    let high = master.submit_wait(&[
        "primes",
        "--range",
        "0..1000",
        "--shard-size",
        "100",
        "--priority",
        "10",
    ]);
    let spun = master.status(&low);
    assert_eq!((high["state"].as_str(), high["result"].as_u64()), (Some("succeeded"), Some(168)));
    // Before the fix it waited until the low job had handed out nearly all its shards.
    assert_eq!(spun["state"], "running", "{spun}");
    let done = spun["done"].as_u64().unwrap_or(u64::MAX);
    assert!(done < 4000, "the high job waited for the low one: {done} of 8000 done: {spun}");
    assert!(master.cli(&["cancel", &low]).status.success());
}
