//! The APIs Spate serves, with the version ranges it advertises and the first flexible
//! version of each (its message definition's, `protocol::messages`).

use super::messages::*;
use super::wire::Request;

/// A Kafka API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i16)]
pub enum ApiKey {
    Produce = 0,
    Fetch = 1,
    ListOffsets = 2,
    Metadata = 3,
    ApiVersions = 18,
    CreateTopics = 19,
    DeleteTopics = 20,
    InitProducerId = 22,
    DescribeConfigs = 32,
    CreatePartitions = 37,
    OffsetCommit = 8,
    OffsetFetch = 9,
    FindCoordinator = 10,
    JoinGroup = 11,
    Heartbeat = 12,
    LeaveGroup = 13,
    SyncGroup = 14,
    DescribeGroups = 15,
    ListGroups = 16,
    DeleteGroups = 42,
    OffsetDelete = 47,
    DescribeQuorum = 55,
    DescribeCluster = 60,
    OffsetForLeaderEpoch = 23,
    DescribeLogDirs = 35,
    ElectLeaders = 43,
    AlterPartitionReassignments = 45,
    ListPartitionReassignments = 46,
    AddPartitionsToTxn = 24,
    AddOffsetsToTxn = 25,
    EndTxn = 26,
    WriteTxnMarkers = 27,
    TxnOffsetCommit = 28,
    DescribeProducers = 61,
    DescribeTransactions = 65,
    ListTransactions = 66,
    DeleteRecords = 21,
    AlterConfigs = 33,
    IncrementalAlterConfigs = 44,
}

/// What Spate advertises for one API.
#[derive(Debug, Clone, Copy)]
pub struct ApiRange {
    pub key: ApiKey,
    pub min_version: i16,
    pub max_version: i16,
    /// The first version that uses flexible encoding (compact fields, tagged fields): the
    /// request definition's `FLEXIBLE_FROM`.
    pub flexible_from: i16,
}

/// Every API Spate serves. The minimum versions are Kafka 4's (KIP-896), with the exception
/// Kafka 4 also makes: Produce is advertised from version 0 because librdkafka's feature
/// detection looks for it, although versions below 3 are answered with UNSUPPORTED_VERSION.
/// The maximum versions are the newest Spate decodes (below Kafka 4's in places).
pub const SUPPORTED_APIS: &[ApiRange] = &[
    ApiRange { key: ApiKey::Produce, min_version: 0, max_version: 9, flexible_from: produce::ProduceRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::Fetch, min_version: 4, max_version: 12, flexible_from: fetch::FetchRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::ListOffsets, min_version: 1, max_version: 7, flexible_from: list_offsets::ListOffsetsRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::Metadata, min_version: 0, max_version: 12, flexible_from: metadata::MetadataRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::ApiVersions, min_version: 0, max_version: 3, flexible_from: api_versions::ApiVersionsRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::CreateTopics, min_version: 2, max_version: 7, flexible_from: create_topics::CreateTopicsRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::DeleteTopics, min_version: 1, max_version: 6, flexible_from: delete_topics::DeleteTopicsRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::InitProducerId, min_version: 0, max_version: 4, flexible_from: init_producer_id::InitProducerIdRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::DescribeConfigs, min_version: 0, max_version: 4, flexible_from: describe_configs::DescribeConfigsRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::CreatePartitions, min_version: 0, max_version: 3, flexible_from: create_partitions::CreatePartitionsRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::OffsetCommit, min_version: 2, max_version: 8, flexible_from: offset_commit::OffsetCommitRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::OffsetFetch, min_version: 1, max_version: 8, flexible_from: offset_fetch::OffsetFetchRequest::FLEXIBLE_FROM },
    // librdkafka (up to 2.10) enables its group consumer only when version 0 of these five is
    // advertised.
    ApiRange { key: ApiKey::FindCoordinator, min_version: 0, max_version: 4, flexible_from: find_coordinator::FindCoordinatorRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::JoinGroup, min_version: 0, max_version: 9, flexible_from: join_group::JoinGroupRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::Heartbeat, min_version: 0, max_version: 4, flexible_from: heartbeat::HeartbeatRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::LeaveGroup, min_version: 0, max_version: 5, flexible_from: leave_group::LeaveGroupRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::SyncGroup, min_version: 0, max_version: 5, flexible_from: sync_group::SyncGroupRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::DescribeGroups, min_version: 0, max_version: 5, flexible_from: describe_groups::DescribeGroupsRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::ListGroups, min_version: 0, max_version: 4, flexible_from: list_groups::ListGroupsRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::DeleteGroups, min_version: 0, max_version: 2, flexible_from: delete_groups::DeleteGroupsRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::OffsetDelete, min_version: 0, max_version: 0, flexible_from: offset_delete::OffsetDeleteRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::DescribeQuorum, min_version: 0, max_version: 2, flexible_from: describe_quorum::DescribeQuorumRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::DescribeCluster, min_version: 0, max_version: 1, flexible_from: describe_cluster::DescribeClusterRequest::FLEXIBLE_FROM },
    ApiRange {
        key: ApiKey::OffsetForLeaderEpoch,
        min_version: 2,
        max_version: 4,
        flexible_from: offset_for_leader_epoch::OffsetForLeaderEpochRequest::FLEXIBLE_FROM,
    },
    ApiRange { key: ApiKey::DescribeLogDirs, min_version: 1, max_version: 5, flexible_from: describe_log_dirs::DescribeLogDirsRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::ElectLeaders, min_version: 0, max_version: 2, flexible_from: elect_leaders::ElectLeadersRequest::FLEXIBLE_FROM },
    ApiRange {
        key: ApiKey::AlterPartitionReassignments,
        min_version: 0,
        max_version: 1,
        flexible_from: alter_partition_reassignments::AlterPartitionReassignmentsRequest::FLEXIBLE_FROM,
    },
    ApiRange {
        key: ApiKey::ListPartitionReassignments,
        min_version: 0,
        max_version: 0,
        flexible_from: list_partition_reassignments::ListPartitionReassignmentsRequest::FLEXIBLE_FROM,
    },
    // The transaction APIs: versions 4-5 of AddPartitionsToTxn are the brokers' (KIP-890's
    // verification); clients send 0-3.
    ApiRange {
        key: ApiKey::AddPartitionsToTxn,
        min_version: 0,
        max_version: 5,
        flexible_from: add_partitions_to_txn::AddPartitionsToTxnRequest::FLEXIBLE_FROM,
    },
    ApiRange { key: ApiKey::AddOffsetsToTxn, min_version: 0, max_version: 4, flexible_from: add_offsets_to_txn::AddOffsetsToTxnRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::EndTxn, min_version: 0, max_version: 4, flexible_from: end_txn::EndTxnRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::WriteTxnMarkers, min_version: 1, max_version: 1, flexible_from: write_txn_markers::WriteTxnMarkersRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::TxnOffsetCommit, min_version: 0, max_version: 4, flexible_from: txn_offset_commit::TxnOffsetCommitRequest::FLEXIBLE_FROM },
    // The transaction admin APIs (KIP-664), as kafka-transactions.sh uses them.
    ApiRange { key: ApiKey::DescribeProducers, min_version: 0, max_version: 0, flexible_from: describe_producers::DescribeProducersRequest::FLEXIBLE_FROM },
    ApiRange {
        key: ApiKey::DescribeTransactions,
        min_version: 0,
        max_version: 0,
        flexible_from: describe_transactions::DescribeTransactionsRequest::FLEXIBLE_FROM,
    },
    ApiRange { key: ApiKey::ListTransactions, min_version: 0, max_version: 2, flexible_from: list_transactions::ListTransactionsRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::DeleteRecords, min_version: 0, max_version: 2, flexible_from: delete_records::DeleteRecordsRequest::FLEXIBLE_FROM },
    ApiRange { key: ApiKey::AlterConfigs, min_version: 0, max_version: 2, flexible_from: alter_configs::AlterConfigsRequest::FLEXIBLE_FROM },
    ApiRange {
        key: ApiKey::IncrementalAlterConfigs,
        min_version: 0,
        max_version: 1,
        flexible_from: alter_configs::IncrementalAlterConfigsRequest::FLEXIBLE_FROM,
    },
];

/// The lowest version Spate decodes; it differs from the advertised minimum only for Produce.
pub fn decodable_min_version(key: ApiKey) -> i16 {
    match key {
        ApiKey::Produce => 3,
        other => other.range().min_version,
    }
}

impl ApiKey {
    pub fn from_i16(v: i16) -> Option<ApiKey> {
        Some(match v {
            0 => ApiKey::Produce,
            1 => ApiKey::Fetch,
            2 => ApiKey::ListOffsets,
            3 => ApiKey::Metadata,
            18 => ApiKey::ApiVersions,
            19 => ApiKey::CreateTopics,
            20 => ApiKey::DeleteTopics,
            22 => ApiKey::InitProducerId,
            32 => ApiKey::DescribeConfigs,
            37 => ApiKey::CreatePartitions,
            8 => ApiKey::OffsetCommit,
            9 => ApiKey::OffsetFetch,
            10 => ApiKey::FindCoordinator,
            11 => ApiKey::JoinGroup,
            12 => ApiKey::Heartbeat,
            13 => ApiKey::LeaveGroup,
            14 => ApiKey::SyncGroup,
            15 => ApiKey::DescribeGroups,
            16 => ApiKey::ListGroups,
            42 => ApiKey::DeleteGroups,
            47 => ApiKey::OffsetDelete,
            55 => ApiKey::DescribeQuorum,
            60 => ApiKey::DescribeCluster,
            23 => ApiKey::OffsetForLeaderEpoch,
            35 => ApiKey::DescribeLogDirs,
            43 => ApiKey::ElectLeaders,
            45 => ApiKey::AlterPartitionReassignments,
            46 => ApiKey::ListPartitionReassignments,
            24 => ApiKey::AddPartitionsToTxn,
            25 => ApiKey::AddOffsetsToTxn,
            26 => ApiKey::EndTxn,
            27 => ApiKey::WriteTxnMarkers,
            28 => ApiKey::TxnOffsetCommit,
            61 => ApiKey::DescribeProducers,
            65 => ApiKey::DescribeTransactions,
            66 => ApiKey::ListTransactions,
            21 => ApiKey::DeleteRecords,
            33 => ApiKey::AlterConfigs,
            44 => ApiKey::IncrementalAlterConfigs,
            _ => return None,
        })
    }

    pub fn range(self) -> &'static ApiRange {
        SUPPORTED_APIS.iter().find(|r| r.key == self).expect("every ApiKey has a range")
    }

    /// Whether `version` of this API uses the flexible encoding.
    pub fn is_flexible(self, version: i16) -> bool {
        version >= self.range().flexible_from
    }

    pub fn supports(self, version: i16) -> bool {
        version >= decodable_min_version(self) && version <= self.range().max_version
    }
}
