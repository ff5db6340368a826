//! Property tests over what a client or a worker can put on the wire: any job spec, any bytes.
//! Nothing may panic; a spec that is accepted has shards that exactly tile its range.

use crate::domain::{JobSource, JobSpec, Output};
use crate::pb;
use proptest::prelude::*;
use prost::Message;

fn edge_u64() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), Just(1), Just(u64::MAX), Just(u64::MAX - 1), any::<u64>(), 0u64..1000]
}

proptest! {
    #[test]
    fn any_wire_spec_is_refused_or_tiles_its_range(
        start in edge_u64(),
        end in edge_u64(),
        shard_size in edge_u64(),
        kind in "[a-z]{0,8}",
        inputs in prop::collection::vec(".{0,4}", 0..3),
    ) {
        let wire = pb::JobSpec { kind, start, end, shard_size, inputs, ..Default::default() };
        let Ok(spec) = JobSpec::try_from(wire) else { return Ok(()) };
        let count = spec.source.shard_count();
        prop_assert!(count >= 1);
        match &spec.source {
            JobSource::Range { start, end, .. } => {
                let (first_lo, _, _) = spec.source.shard(0);
                let (last_lo, last_hi, _) = spec.source.shard(count - 1);
                prop_assert_eq!(first_lo, *start);
                prop_assert_eq!(last_hi, *end);
                prop_assert!(last_lo < last_hi);
            }
            JobSource::Inputs(lines) => prop_assert_eq!(count, lines.len() as u64),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = pb::WorkerMessage::decode(bytes.as_slice());
        let _ = pb::MasterMessage::decode(bytes.as_slice());
        let _ = pb::SubmitRequest::decode(bytes.as_slice()).map(|r| r.spec.map(JobSpec::try_from));
        if let Ok(out) = pb::ShardOutput::decode(bytes.as_slice()) {
            let _ = Output::try_from(out);
        }
    }
}
