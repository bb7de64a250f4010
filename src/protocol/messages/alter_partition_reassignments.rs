//! AlterPartitionReassignments (key 45), versions 0-1; flexible from 0
//! (AlterPartitionReassignmentsRequest.json, AlterPartitionReassignmentsResponse.json): moves
//! partitions to new replica sets, or cancels pending moves (KIP-455), as
//! `kafka-reassign-partitions.sh --execute` and the admin client's
//! `alterPartitionReassignments` ask for it. Version 1 says whether a move may change a
//! partition's replication factor (KIP-860).

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct AlterPartitionReassignmentsRequest {
        pub timeout_ms: i32 = 60_000,
        pub allow_replication_factor_change: bool [1..] = true,
        pub topics: Vec<AlterReassignmentsTopic>,
    }

    /// The schema's ReassignableTopic.
    pub struct AlterReassignmentsTopic {
        pub name: String,
        pub partitions: Vec<AlterReassignmentsPartition>,
    }

    /// The schema's ReassignablePartition.
    pub struct AlterReassignmentsPartition {
        pub partition_index: i32,
        /// The new replicas (broker ids), or null to cancel the partition's pending move.
        pub replicas: Option<Vec<i32>>,
    }

    pub struct AlterPartitionReassignmentsResponse {
        pub throttle_time_ms: i32,
        pub allow_replication_factor_change: bool [1..] = true,
        pub error: ErrorCode,
        pub error_message: Option<String>,
        pub responses: Vec<AlterReassignmentsTopicResponse>,
    }

    /// The schema's ReassignableTopicResponse.
    pub struct AlterReassignmentsTopicResponse {
        pub name: String,
        pub partitions: Vec<AlterReassignmentsPartitionResponse>,
    }

    /// The schema's ReassignablePartitionResponse.
    pub struct AlterReassignmentsPartitionResponse {
        pub partition_index: i32,
        pub error: ErrorCode,
        pub error_message: Option<String>,
    }
}

impl Request for AlterPartitionReassignmentsRequest {
    const KEY: ApiKey = ApiKey::AlterPartitionReassignments;
    const VERSIONS: (i16, i16) = (0, 1);
    const FLEXIBLE_FROM: i16 = 0;
    type Response = AlterPartitionReassignmentsResponse;
}
