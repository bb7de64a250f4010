//! One module per API: its request as decoded from the wire and its response as encoded, both
//! version-gated field by field the way Kafka's JSON schemas describe them.

pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_topics;
pub mod describe_configs;
pub mod describe_groups;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod produce;
pub mod sync_group;

use super::codec::{DecodeResult, Reader};
use super::ApiKey;

/// Decodes a request body of any API, for checks that must cover every API key and version
/// (the fuzz targets and their seeded runs in `cargo test`). The broker's handlers call each
/// module's `decode_request` themselves, with the typed result.
pub fn decode_body(r: &mut Reader, api_key: ApiKey, version: i16, flexible: bool) -> DecodeResult<()> {
    fn done<T>(decoded: DecodeResult<T>) -> DecodeResult<()> {
        decoded.map(drop)
    }
    match api_key {
        ApiKey::Produce => done(produce::decode_request(r, version, flexible)),
        ApiKey::Fetch => done(fetch::decode_request(r, version, flexible)),
        ApiKey::ListOffsets => done(list_offsets::decode_request(r, version, flexible)),
        ApiKey::Metadata => done(metadata::decode_request(r, version, flexible)),
        ApiKey::ApiVersions => done(api_versions::decode_request(r, version)),
        ApiKey::CreateTopics => done(create_topics::decode_request(r, version, flexible)),
        ApiKey::DeleteTopics => done(delete_topics::decode_request(r, version, flexible)),
        ApiKey::InitProducerId => done(init_producer_id::decode_request(r, version, flexible)),
        ApiKey::DescribeConfigs => done(describe_configs::decode_request(r, version, flexible)),
        ApiKey::CreatePartitions => done(create_partitions::decode_request(r, version, flexible)),
        ApiKey::OffsetCommit => done(offset_commit::decode_request(r, version, flexible)),
        ApiKey::OffsetFetch => done(offset_fetch::decode_request(r, version, flexible)),
        ApiKey::FindCoordinator => done(find_coordinator::decode_request(r, version, flexible)),
        ApiKey::JoinGroup => done(join_group::decode_request(r, version, flexible)),
        ApiKey::Heartbeat => done(heartbeat::decode_request(r, version, flexible)),
        ApiKey::LeaveGroup => done(leave_group::decode_request(r, version, flexible)),
        ApiKey::SyncGroup => done(sync_group::decode_request(r, version, flexible)),
        ApiKey::DescribeGroups => done(describe_groups::decode_request(r, version, flexible)),
        ApiKey::ListGroups => done(list_groups::decode_request(r, version, flexible)),
        ApiKey::DeleteGroups => done(delete_groups::decode_request(r, version, flexible)),
        ApiKey::OffsetDelete => done(offset_delete::decode_request(r, version, flexible)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::Writer;
    use bytes::Bytes;

    /// Decodes `body` as `key` v`version` the way the broker does, from a frame of its own.
    fn decode(key: ApiKey, version: i16, body: impl Fn(&mut Writer)) -> crate::protocol::codec::DecodeResult<()> {
        let mut w = Writer::new();
        body(&mut w);
        let mut r = Reader::new(Bytes::from(w.finish().to_vec()));
        decode_body(&mut r, key, version, key.is_flexible(version))
    }

    /// An array of `n` strings, the i-th named `name(i)`.
    fn names(w: &mut Writer, flexible: bool, n: usize, name: impl Fn(usize) -> String) {
        w.array_len(flexible, Some(n));
        for i in 0..n {
            w.string(flexible, &name(i));
        }
    }

    /// Real clients send requests whose decoded form holds many times their bytes in heap: a
    /// list of short names. Each of these must decode within the heap budget.
    #[test]
    fn requests_of_many_short_names_decode_within_the_heap_budget() {
        // Metadata v9 (Java 2.4-2.7) for 500 two-letter topics: 40 bytes of heap per 4 bytes.
        decode(ApiKey::Metadata, 9, |w| {
            w.array_len(true, Some(500));
            for i in 0..500 {
                w.string(true, &format!("{:02}", i % 100));
                w.tagged_fields(true);
            }
            w.bool(false);
            w.bool(false);
            w.bool(false);
            w.tagged_fields(true);
        })
        .expect("Metadata v9, 500 short topics");
        // Metadata v4 (the non-flexible versions librdkafka and kafka-python send): 1000
        // one-letter topics fit the 64 KiB floor; 2000 of them (80 KB of heap for 6 KB of
        // frame) do not, and neither does any request holding more than 8 times its frame
        // above that floor: ARCHITECTURE.md lists it as a limit.
        let topics = |n: usize| {
            move |w: &mut Writer| {
                names(w, false, n, |i| format!("{}", i % 10));
                w.bool(false);
            }
        };
        decode(ApiKey::Metadata, 4, topics(1000)).expect("Metadata v4, 1000 one-letter topics");
        assert!(decode(ApiKey::Metadata, 4, topics(2000)).is_err(), "2000 one-letter topics exceed the budget");
        // Realistic names: 5000 topics named like `orders-123` fit any budget.
        decode(ApiKey::Metadata, 4, |w| {
            names(w, false, 5000, |i| format!("orders-{i}"));
            w.bool(false);
        })
        .expect("Metadata v4, 5000 topics");
        // DescribeGroups v5 for every group of a cluster with 1500 one-letter names.
        decode(ApiKey::DescribeGroups, 5, |w| {
            names(w, true, 1500, |i| format!("{}", i % 10));
            w.bool(false);
            w.tagged_fields(true);
        })
        .expect("DescribeGroups v5, 1500 groups");
        // DeleteTopics v5: 1000 topics of two letters.
        decode(ApiKey::DeleteTopics, 5, |w| {
            names(w, true, 1000, |i| format!("{:02}", i % 100));
            w.i32(30_000);
            w.tagged_fields(true);
        })
        .expect("DeleteTopics v5, 1000 topics");
    }
}
