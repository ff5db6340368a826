//! End to end: priorities hold while another job runs. A high-priority job submitted behind a
//! long low-priority one that fills every worker's window runs at once, beside it, and ends
//! while the low-priority job still has most of its work to do. (How fast is a figure in
//! BENCHMARKS.md, `farm-bench priority`, not an assertion here.)

use farm_tests::*;

#[test]
fn a_high_priority_job_overtakes_the_low_priority_work_that_filled_the_windows() {
    let master = Master::start(&["--workers", "2", "--threads", "2"]);
    master.wait_workers(2);
    // 80 CPU-seconds of 1 ms shards: cheap shards, so every worker's window grows deep.
    let spin = ["spin", "--range", "0..80000", "--shard-size", "1", "--param", "ms=1"];
    let low = master.submit(&spin);
    // Once the workers have answered many rounds, their windows are full of its shards.
    master.wait_done(&low, 1000);
    let before = master.status(&low)["done"].as_u64().unwrap_or(0);
    let high = ["primes", "--range", "0..1000", "--shard-size", "100", "--priority", "10"];
    let high = master.submit_wait(&high);
    let spun = master.status(&low);
    assert_eq!((high["state"].as_str(), high["result"].as_u64()), (Some("succeeded"), Some(168)));
    assert_eq!(spun["state"], "running", "{spun}");
    // The high job's shards run next on each thread: meanwhile the low job finishes what was
    // running and what overtook no shard. Before the fix, its shards found no free slot in
    // the windows for seconds, while the low job ran thousands of shards (4,600 in one run).
    let ran = spun["done"].as_u64().unwrap_or(u64::MAX).saturating_sub(before);
    assert!(ran < 1000, "the low job ran {ran} shards while the high job waited: {spun}");
    assert!(master.cli(&["cancel", &low]).status.success());
}
