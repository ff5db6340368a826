//! Job specs as a client puts them on the wire, for tests that talk gRPC directly.

use farm_proto::pb;

/// A range job: `kind` over `start..end` in shards of `shard_size`, everything else default.
pub fn range_spec(kind: &str, start: u64, end: u64, shard_size: u64) -> pb::JobSpec {
    pb::JobSpec { kind: kind.into(), start, end, shard_size, ..Default::default() }
}
