//! One module per API: its request as decoded from the wire and its response as encoded, both
//! version-gated field by field the way Kafka's JSON schemas describe them.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_transactions;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod write_txn_markers;

use super::codec::{DecodeResult, Reader};
use super::wire::{Request, Version, Wire};
use super::ApiKey;

/// Calls `$m!` with the request type of every API Spate serves.
macro_rules! every_request {
    ($m:ident) => {
        $m!(
            $crate::protocol::messages::produce::ProduceRequest,
            $crate::protocol::messages::fetch::FetchRequest,
            $crate::protocol::messages::list_offsets::ListOffsetsRequest,
            $crate::protocol::messages::metadata::MetadataRequest,
            $crate::protocol::messages::api_versions::ApiVersionsRequest,
            $crate::protocol::messages::create_topics::CreateTopicsRequest,
            $crate::protocol::messages::delete_topics::DeleteTopicsRequest,
            $crate::protocol::messages::init_producer_id::InitProducerIdRequest,
            $crate::protocol::messages::describe_configs::DescribeConfigsRequest,
            $crate::protocol::messages::create_partitions::CreatePartitionsRequest,
            $crate::protocol::messages::offset_commit::OffsetCommitRequest,
            $crate::protocol::messages::offset_fetch::OffsetFetchRequest,
            $crate::protocol::messages::find_coordinator::FindCoordinatorRequest,
            $crate::protocol::messages::join_group::JoinGroupRequest,
            $crate::protocol::messages::heartbeat::HeartbeatRequest,
            $crate::protocol::messages::leave_group::LeaveGroupRequest,
            $crate::protocol::messages::sync_group::SyncGroupRequest,
            $crate::protocol::messages::describe_groups::DescribeGroupsRequest,
            $crate::protocol::messages::list_groups::ListGroupsRequest,
            $crate::protocol::messages::delete_groups::DeleteGroupsRequest,
            $crate::protocol::messages::offset_delete::OffsetDeleteRequest,
            $crate::protocol::messages::describe_quorum::DescribeQuorumRequest,
            $crate::protocol::messages::describe_cluster::DescribeClusterRequest,
            $crate::protocol::messages::offset_for_leader_epoch::OffsetForLeaderEpochRequest,
            $crate::protocol::messages::describe_log_dirs::DescribeLogDirsRequest,
            $crate::protocol::messages::elect_leaders::ElectLeadersRequest,
            $crate::protocol::messages::alter_partition_reassignments::AlterPartitionReassignmentsRequest,
            $crate::protocol::messages::list_partition_reassignments::ListPartitionReassignmentsRequest,
            $crate::protocol::messages::add_partitions_to_txn::AddPartitionsToTxnRequest,
            $crate::protocol::messages::add_offsets_to_txn::AddOffsetsToTxnRequest,
            $crate::protocol::messages::end_txn::EndTxnRequest,
            $crate::protocol::messages::write_txn_markers::WriteTxnMarkersRequest,
            $crate::protocol::messages::describe_producers::DescribeProducersRequest,
            $crate::protocol::messages::describe_transactions::DescribeTransactionsRequest,
            $crate::protocol::messages::list_transactions::ListTransactionsRequest,
            $crate::protocol::messages::txn_offset_commit::TxnOffsetCommitRequest,
            $crate::protocol::messages::delete_records::DeleteRecordsRequest,
            $crate::protocol::messages::alter_configs::AlterConfigsRequest,
            $crate::protocol::messages::alter_configs::IncrementalAlterConfigsRequest
        )
    };
}

pub(crate) use every_request;

/// Decodes a request body of any API, for checks that must cover every API key and version
/// (the fuzz targets and their seeded runs in `cargo test`). The broker's handlers decode
/// their own request type, with the typed result.
pub fn decode_body(r: &mut Reader, api_key: ApiKey, version: i16, flexible: bool) -> DecodeResult<()> {
    let v = Version::new(version, flexible);
    macro_rules! decode_any {
        ($($t:ty),*) => {
            $(if api_key == <$t as Request>::KEY {
                return <$t as Wire>::decode(r, v).map(drop);
            })*
        };
    }
    every_request!(decode_any);
    unreachable!("every ApiKey has a request definition")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api::{decodable_min_version, SUPPORTED_APIS};
    use crate::protocol::codec::Writer;
    use crate::protocol::wire::{round_trip, Rng};
    use bytes::Bytes;

    /// Every API at every version Spate serves, in both directions: arbitrary requests and
    /// responses encode, decode to the same value and encode again to the same bytes.
    #[test]
    fn every_message_round_trips_at_every_version() {
        fn check<T: Request + PartialEq + std::fmt::Debug>(rng: &mut Rng)
        where
            T::Response: PartialEq + std::fmt::Debug,
        {
            let (low, high) = T::VERSIONS;
            for version in low..=high {
                let v = Version::new(version, version >= T::FLEXIBLE_FROM);
                for case in 0..64 {
                    let request = T::arbitrary(rng, v);
                    round_trip(&request, v).unwrap_or_else(|e| panic!("{:?} request v{version} case {case}: {e}", T::KEY));
                    let response = T::Response::arbitrary(rng, v);
                    round_trip(&response, v).unwrap_or_else(|e| panic!("{:?} response v{version} case {case}: {e}", T::KEY));
                }
            }
        }
        let mut rng = Rng(0x5eed_0f_a11_a915);
        macro_rules! check_all {
            ($($t:ty),*) => { $(check::<$t>(&mut rng);)* };
        }
        every_request!(check_all);
    }

    /// What ApiVersions advertises is what the definitions encode and decode: every served
    /// API has a definition whose versions cover the advertised range (from the lowest one
    /// decoded). (The first flexible version the broker's headers use is the definition's
    /// own: `SUPPORTED_APIS` takes it from there.)
    #[test]
    fn the_advertised_versions_are_the_defined_ones() {
        let mut defined: Vec<(ApiKey, (i16, i16))> = Vec::new();
        macro_rules! collect {
            ($($t:ty),*) => { $(defined.push((<$t as Request>::KEY, <$t as Request>::VERSIONS));)* };
        }
        every_request!(collect);
        assert_eq!(defined.len(), SUPPORTED_APIS.len(), "one definition per served API");
        for range in SUPPORTED_APIS {
            let &(_, (low, high)) = defined.iter().find(|d| d.0 == range.key).unwrap_or_else(|| panic!("{:?} has no definition", range.key));
            let served = decodable_min_version(range.key);
            assert!(
                low <= served && range.max_version <= high,
                "{:?}: serves {served}-{} but the definition covers {low}-{high}",
                range.key,
                range.max_version
            );
        }
    }

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
