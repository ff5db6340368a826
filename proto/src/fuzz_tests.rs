//! Property tests over what a client or a worker can put on the wire: any job spec, any bytes.
//! A wire spec is accepted exactly when it is valid, an accepted spec has shards that tile its
//! range and converts back to the same wire spec; any bytes either fail to decode or decode to a
//! message that re-encodes to itself, and a decoded shard output converts back unchanged. Any
//! registration and any result batch converts or is refused, never panics.

use crate::domain::{JobLimits, JobSource, JobSpec, Output};
use crate::kernel::{check_limits, KernelDescriptor};
use crate::pb;
use crate::session::{ShardOutcome, ToMaster};
use proptest::prelude::*;
use prost::Message;

fn edge_u64() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), Just(1), Just(u64::MAX), Just(u64::MAX - 1), any::<u64>(), 0u64..1000]
}

/// Whether `JobSpec::try_from` must accept `wire`, by the rules stated in `domain.rs`.
fn is_valid(wire: &pb::JobSpec) -> bool {
    let source_ok = !wire.inputs.is_empty() || (wire.shard_size > 0 && wire.start < wire.end);
    let limits_ok = wire.retries <= JobLimits::MAX_RETRIES
        && wire.max_crashes <= JobLimits::MAX_CRASHES
        && wire.verify_percent <= 100;
    let key_ok = |k: &String| {
        (1..=64).contains(&k.len())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
    };
    let value_ok = |v: &String| v.len() <= 256 && !v.chars().any(char::is_control);
    let requires_ok =
        wire.requires.len() <= 32 && wire.requires.iter().all(|(k, v)| key_ok(k) && value_ok(v));
    !wire.kind.trim().is_empty() && source_ok && limits_ok && requires_ok
}

/// Checks that the shards of an accepted spec tile its source: the first starts at its start,
/// the last ends at its end, none is empty or longer than the shard size, and neighbours meet.
fn assert_tiles(source: &JobSource) -> Result<(), TestCaseError> {
    let count = source.shard_count();
    prop_assert!(count >= 1);
    match source {
        JobSource::Range { start, end, shard_size } => {
            prop_assert_eq!(count, (end - start).div_ceil(*shard_size));
            prop_assert_eq!(source.shard(0).0, *start);
            prop_assert_eq!(source.shard(count - 1).1, *end);
            // All neighbours of a small job; a sample of a huge one.
            let checked: Vec<u64> = if count <= 64 {
                (0..count).collect()
            } else {
                vec![0, 1, count / 2, count - 2, count - 1]
            };
            for k in checked {
                let (lo, hi, line) = source.shard(k);
                prop_assert!(lo < hi && hi - lo <= *shard_size, "shard {} is {}..{}", k, lo, hi);
                prop_assert!(line.is_none());
                if k + 1 < count {
                    prop_assert_eq!(source.shard(k + 1).0, hi, "shard {} and the next meet", k);
                }
            }
        }
        JobSource::Inputs(lines) => {
            prop_assert_eq!(count, lines.len() as u64);
            for (k, expected) in lines.iter().enumerate() {
                prop_assert_eq!(
                    source.shard(k as u64),
                    (k as u64, k as u64 + 1, Some(&**expected))
                );
            }
        }
    }
    Ok(())
}

/// Checks a decoded prost message re-encodes to bytes that decode to the same message.
fn assert_reencodes<M: Message + Default + PartialEq + std::fmt::Debug>(
    bytes: &[u8],
) -> Result<(), TestCaseError> {
    if let Ok(message) = M::decode(bytes) {
        let again = M::decode(message.encode_to_vec().as_slice());
        prop_assert_eq!(again.as_ref().ok(), Some(&message));
    }
    Ok(())
}

proptest! {
    #[test]
    fn a_wire_spec_is_accepted_exactly_when_valid_and_then_tiles_its_range(
        start in edge_u64(),
        end in edge_u64(),
        shard_size in edge_u64(),
        kind in "[a-z ]{0,8}",
        inputs in prop::collection::vec(".{0,4}", 0..3),
        params in prop::collection::hash_map("[a-z]{1,3}", ".{0,3}", 0..3),
        priority in any::<i32>(),
        retries in prop_oneof![0u32..=200, any::<u32>()],
        max_crashes in prop_oneof![Just(0u32), 0u32..=200, any::<u32>()],
        verify_percent in prop_oneof![0u32..=120, any::<u32>()],
        shard_timeout_ms in prop_oneof![Just(0u64), any::<u64>()],
        no_worker_timeout_ms in prop_oneof![Just(0u64), any::<u64>()],
        record_runs in any::<bool>(),
        requires in prop::collection::hash_map("[a-z .]{0,3}", "[a-z\n]{0,3}", 0..3),
    ) {
        let wire = pb::JobSpec {
            kind, start, end, shard_size, inputs, params, priority, retries, max_crashes,
            shard_timeout_ms, verify_percent, no_worker_timeout_ms, record_runs, requires,
        };
        let valid = is_valid(&wire);
        let converted = JobSpec::try_from(wire.clone());
        prop_assert_eq!(converted.is_ok(), valid, "{:?} -> {:?}", wire, converted);
        let Ok(spec) = converted else { return Ok(()) };
        assert_tiles(&spec.source)?;
        let crashes = if max_crashes == 0 { JobLimits::DEFAULT_MAX_CRASHES } else { max_crashes };
        prop_assert_eq!(spec.limits.max_crashes, crashes);
        prop_assert_eq!(spec.limits.shard_timeout_ms, (shard_timeout_ms > 0).then_some(shard_timeout_ms));
        prop_assert_eq!(spec.limits.no_worker_timeout_ms, (no_worker_timeout_ms > 0).then_some(no_worker_timeout_ms));
        // Back on the wire and in again: the same spec.
        let back = JobSpec::try_from(pb::JobSpec::from(spec.clone()));
        prop_assert_eq!(back, Ok(spec));
    }

    #[test]
    fn arbitrary_bytes_fail_to_decode_or_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        assert_reencodes::<pb::WorkerMessage>(&bytes)?;
        assert_reencodes::<pb::MasterMessage>(&bytes)?;
        assert_reencodes::<pb::SubmitRequest>(&bytes)?;
        assert_reencodes::<pb::ShardOutput>(&bytes)?;
        if let Ok(pb::SubmitRequest { spec: Some(wire), .. }) = pb::SubmitRequest::decode(bytes.as_slice()) {
            let valid = is_valid(&wire);
            let converted = JobSpec::try_from(wire);
            prop_assert_eq!(converted.is_ok(), valid);
            if let Ok(spec) = converted {
                assert_tiles(&spec.source)?;
            }
        }
        if let Ok(wire) = pb::ShardOutput::decode(bytes.as_slice()) {
            let converted = Output::try_from(wire.clone());
            prop_assert_eq!(converted.is_ok(), wire.value.is_some());
            if let Ok(output) = converted {
                prop_assert_eq!(pb::ShardOutput::from(output), wire);
            }
        }
    }

    #[test]
    fn any_registration_is_refused_or_within_limits_and_round_trips(
        kernels in prop::collection::vec(wire_kernel(), 0..4),
        threads in edge_u32(),
    ) {
        let register = pb::Register { protocol_version: crate::PROTOCOL_VERSION, threads, kernels, ..Default::default() };
        let msg = pb::WorkerMessage { msg: Some(pb::worker_message::Msg::Register(register)) };
        match ToMaster::try_from(msg) {
            Ok(ToMaster::Register(reg)) => {
                // Accepted descriptors check params without panicking and go back unchanged.
                if check_limits(&reg.kernels).is_ok() {
                    for k in &reg.kernels {
                        let _ = k.check(&crate::Params::default());
                        let back = KernelDescriptor::try_from(pb::KernelDescriptor::from(k));
                        prop_assert_eq!(back.as_ref(), Ok(k));
                    }
                }
            }
            Ok(other) => prop_assert!(false, "a register became {:?}", other),
            Err(_) => {}
        }
    }

    #[test]
    fn any_result_batch_converts_or_is_refused_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(batch) = pb::ResultBatch::decode(bytes.as_slice()) {
            let n = batch.done.len();
            let msg = pb::WorkerMessage { msg: Some(pb::worker_message::Msg::Results(batch.clone())) };
            if let Ok(ToMaster::Results(results)) = ToMaster::try_from(msg) {
                prop_assert_eq!(results.done.len(), n);
                prop_assert_eq!(results.started.len(), batch.started.len());
            }
            // The master converts each outcome alone, so one bad entry fails only its shard.
            for done in batch.done {
                let _ = ShardOutcome::try_from(done.outcome);
            }
        }
    }
}

fn edge_u32() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0), Just(1), Just(u32::MAX), any::<u32>(), 0u32..5000]
}

/// A wire kernel descriptor with arbitrary (often invalid) fields.
fn wire_kernel() -> impl Strategy<Value = pb::KernelDescriptor> {
    let param = (
        ".{0,6}",
        0i32..5,
        prop::option::of(".{0,4}"),
        any::<bool>(),
        prop::option::of("-?[0-9]{0,3}"),
        prop::option::of("[0-9x]{0,3}"),
    )
        .prop_map(|(name, ty, default_value, required, min, max)| pb::ParamSpec {
            name,
            r#type: ty,
            default_value,
            required,
            min,
            max,
            help: String::new(),
            bounds_indices: false,
        });
    (".{0,6}", prop::collection::vec(param, 0..4), any::<bool>(), -1i32..7, any::<f64>()).prop_map(
        |(kind, params, open_params, output, fraction_scale)| pb::KernelDescriptor {
            kind,
            help: String::new(),
            params,
            open_params,
            output,
            fraction_scale,
            extra_params: false,
        },
    )
}
