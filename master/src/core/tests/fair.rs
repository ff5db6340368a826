//! Fair share and quotas per principal, on the simulated workers and clock of the priority
//! tests (`priority.rs`): workers that run what they hold highest priority first, then first
//! come first served, as the real pool does.

use super::priority::Cluster;
use super::*;

fn alice() -> Owner {
    Owner::named("alice")
}

fn bob() -> Owner {
    Owner::named("bob")
}

/// The scenario on one worker of 2 threads: alice queues 2,000 shards of 10 ms, bob
/// submits 20 a second later. Returns when bob's first shard started and how long his job
/// took, both from his submit, and checks that alice's result is exact.
fn alice_then_bob(fair_share: bool) -> (Duration, Duration) {
    let t0 = Instant::now();
    let config = CoreConfig { fair_share, ..CoreConfig::default() };
    let mut c = Cluster::with(config, 1, 2, t0);
    let a = c.submit_as(spec("noop", 0, 2000, 1, 0), alice(), 10 * MS).expect("alice's job");
    c.run(t0 + Duration::from_secs(1), a);
    let submitted = c.now;
    let b = c.submit_as(spec("noop", 0, 20, 1, 0), bob(), 10 * MS).expect("bob's job");
    c.run(submitted + Duration::from_secs(60), b);
    let view = c.sim.status(b, c.now);
    assert_eq!((view.state, view.result_json.as_deref()), (JobState::Succeeded, Some("20")));
    assert_eq!(&*view.owner, "bob");
    let took = c.now - submitted;
    let w = c.sim.core.workers(c.now)[0].id;
    let started = c.first_start[&(b, w)] - submitted;
    c.run(c.now + Duration::from_secs(60), a);
    let view = c.sim.status(a, c.now);
    assert_eq!(view.state, JobState::Succeeded);
    assert_eq!((view.result_json.as_deref(), view.reruns), (Some("2000"), 0), "exact");
    (started, took)
}

#[test]
fn a_principal_who_submits_later_is_not_starved_by_one_who_queued_thousands_first() {
    let (started, took) = alice_then_bob(true);
    let (unfair_started, unfair_took) = alice_then_bob(false);
    // Alone, bob's 20 shards of 10 ms on 2 threads would take 100 ms. He starts behind what
    // alice already had queued on the worker (its window: 150 ms of work per thread at
    // most), then shares the threads.
    let ideal = 100 * MS;
    let queue_target = CoreConfig::default().queue_target;
    let contrast = format!(
        "with fair share bob started after {started:?} and took {took:?}; without, he started \
         after {unfair_started:?} and took {unfair_took:?} (alone: {ideal:?})"
    );
    assert!(started <= queue_target + 10 * MS, "{contrast}");
    // The bound is its ideal plus 0.5 s; the simulation, with no network and no
    // result batching, does better: it waits behind alice's queue once, then shares.
    assert!(took <= ideal + 2 * queue_target + 10 * MS, "{contrast}");
    // Without it, bob waits for the end of alice's job: 9 s of it were left.
    assert!(unfair_took >= Duration::from_secs(5), "{contrast}");
}

#[test]
fn principals_share_the_threads_in_proportion_to_their_weights() {
    let t0 = Instant::now();
    let mut c = Cluster::with(CoreConfig::default(), 2, 2, t0);
    let heavy = Owner { weight: 2, ..alice() };
    let a = c.submit_as(spec("noop", 0, 100_000, 1, 0), heavy, 10 * MS).expect("alice");
    let b = c.submit_as(spec("noop", 0, 100_000, 1, 0), bob(), 10 * MS).expect("bob");
    // Past the first windows, over 10 s: about 4,000 shards done in all.
    c.run(t0 + Duration::from_secs(1), a);
    let (a0, b0) = (c.sim.status(a, c.now).done, c.sim.status(b, c.now).done);
    c.run(t0 + Duration::from_secs(11), a);
    let (a1, b1) = (c.sim.status(a, c.now).done - a0, c.sim.status(b, c.now).done - b0);
    let ratio = a1 as f64 / b1 as f64;
    assert!((1.7..=2.3).contains(&ratio), "alice (weight 2) ran {a1}, bob (weight 1) {b1}");
    assert!(a1 + b1 >= 3900, "the threads stay busy: {} shards in 10 s", a1 + b1);
}

#[test]
fn priorities_keep_their_meaning_inside_and_between_principals() {
    let t0 = Instant::now();
    let mut c = Cluster::with(CoreConfig::default(), 1, 2, t0);
    let a = c.submit_as(spec("noop", 0, 10_000, 1, 0), alice(), 10 * MS).expect("alice");
    c.submit_as(spec("noop", 0, 10_000, 1, 0), bob(), 10 * MS).expect("bob");
    c.run(t0 + Duration::from_secs(1), a);
    // Alice's urgent job overtakes what both of them queued.
    let submitted = c.now;
    let urgent = c.submit_as(spec("noop", 0, 20, 1, 5), alice(), 10 * MS).expect("urgent");
    c.run(submitted + Duration::from_secs(10), urgent);
    let w = c.sim.core.workers(c.now)[0].id;
    assert!(c.first_start[&(urgent, w)] - submitted <= 10 * MS);
    let took = c.now - submitted;
    assert!(took <= 120 * MS, "the urgent job had both threads: {took:?}");
}

#[test]
fn a_single_principal_is_dispatched_as_without_fair_share() {
    // Same events, fair share on and off: the same assignments, shard for shard.
    let run = |fair_share| {
        let t0 = Instant::now();
        let config = CoreConfig { fair_share, ..CoreConfig::default() };
        let mut c = Cluster::with(config, 2, 3, t0);
        let a = c.submit_as(spec("noop", 0, 3000, 1, 0), alice(), 7 * MS).expect("a");
        let b = c.submit_as(spec("noop", 0, 500, 1, 0), alice(), 3 * MS).expect("b");
        c.run(t0 + Duration::from_secs(60), a);
        c.run(t0 + Duration::from_secs(60), b);
        (c.now - t0, c.sim.status(a, c.now).done, c.sim.status(b, c.now).done)
    };
    assert_eq!(run(true), run(false));
}

#[test]
fn a_principal_at_its_job_quota_is_refused_and_others_are_not() {
    let (mut sim, now) = sim();
    let quota = Quota { jobs: Some(2), ..Quota::default() };
    let limited = Owner { quota, ..alice() };
    let first = sim.submit_as(spec("noop", 0, 4, 1, 0), limited.clone(), now).expect("first");
    sim.submit_as(spec("noop", 0, 4, 1, 0), limited.clone(), now).expect("second");
    let err = sim.submit_as(spec("noop", 0, 4, 1, 0), limited.clone(), now).unwrap_err();
    let msg = "quota: principal alice has 2 jobs queued or running, its limit is 2 (jobs)";
    assert_eq!(err, CoreError::Quota(msg.into()));
    sim.submit_as(spec("noop", 0, 4, 1, 0), bob(), now).expect("bob is not limited");
    // A job of hers ended: room for one more.
    sim.cancel(first, now).expect("cancel");
    sim.submit_as(spec("noop", 0, 4, 1, 0), limited, now).expect("room again");
}

#[test]
fn a_principal_past_its_input_bytes_quota_is_refused_and_gets_room_back_when_jobs_end() {
    let (mut sim, now) = sim();
    let lines = |n: usize| {
        let inputs = vec!["x".repeat(1000); n];
        JobSpec::new("noop", JobSource::Inputs(inputs), Params::default(), 0).expect("spec")
    };
    let quota = Quota { input_bytes: Some(4 * 1024), ..Quota::default() };
    let limited = Owner { quota, ..alice() };
    let first = sim.submit_as(lines(2), limited.clone(), now).expect("2 kB");
    let err = sim.submit_as(lines(3), limited.clone(), now).unwrap_err();
    let CoreError::Quota(msg) = err else { panic!("not a quota error: {err:?}") };
    assert!(msg.starts_with("quota: principal alice's jobs hold "), "{msg}");
    assert!(msg.ends_with("its limit is 4096 bytes (input_mib)"), "{msg}");
    sim.submit_as(lines(3), bob(), now).expect("bob is not limited");
    sim.cancel(first, now).expect("cancel");
    sim.submit_as(lines(3), limited, now).expect("her bytes were given back");
}

#[test]
fn dispatch_holds_back_a_principal_at_its_shards_in_flight_quota_and_serves_others() {
    let (mut sim, now) = sim();
    let w = sim.join(worker(8), now);
    let quota = Quota { shards_in_flight: Some(3), ..Quota::default() };
    let limited = Owner { quota, ..alice() };
    let a = sim.submit_as(spec("noop", 0, 100, 1, 0), limited, now).expect("alice");
    assert_eq!(sim.status(a, now).in_flight, 3, "only her quota goes out");
    let b = sim.submit_as(spec("noop", 0, 100, 1, 0), bob(), now).expect("bob");
    assert!(sim.status(b, now).in_flight > 0, "bob is served at once");
    // One of hers done: one more of hers goes out, never more than 3 at once.
    let mine = sim.rec.queues[&w].iter().position(|t| t.job_id == a).expect("hers");
    let task = sim.rec.queues.get_mut(&w).and_then(|q| q.remove(mine)).expect("task");
    let done = ShardOutcome::Done(Output::Count(1));
    sim.results(w, [(task.job_id, task.shard, done)], now).expect("results");
    assert_eq!(sim.status(a, now).in_flight, 3);
    assert_eq!(sim.status(a, now).done, 1);
}

/// Bob's shards on a second worker that joins once Alice (when `capped`, at her
/// `shards_in_flight` quota of 3, all held on the first worker) and Bob have work queued.
fn bobs_on_a_second_worker(capped: bool) -> usize {
    let (mut sim, now) = sim();
    sim.join(worker(8), now);
    let quota = Quota { shards_in_flight: Some(3), ..Quota::default() };
    let limited = Owner { quota, ..alice() };
    let a = sim.submit_as(spec("noop", 0, 100_000, 1, 0), limited, now).expect("alice");
    if !capped {
        sim.cancel(a, now).expect("cancel");
    }
    let b = sim.submit_as(spec("noop", 0, 100_000, 1, 0), bob(), now).expect("bob");
    let w2 = sim.join(worker(8), now);
    sim.rec.queues.get(&w2).map_or(0, |q| q.iter().filter(|t| t.job_id == b).count())
}

#[test]
fn a_principal_at_its_shards_in_flight_quota_reserves_no_share_it_cannot_use() {
    // Alice can take no more shards: on the second worker Bob gets its whole room, as if she
    // had no work queued, not his half of it with her half left idle.
    let alone = bobs_on_a_second_worker(false);
    assert!(alone > 0);
    assert_eq!(bobs_on_a_second_worker(true), alone, "a capped principal reserved a share");
}
