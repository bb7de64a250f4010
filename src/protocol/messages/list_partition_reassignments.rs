//! ListPartitionReassignments (key 46), version 0; flexible from 0
//! (ListPartitionReassignmentsRequest.json, ListPartitionReassignmentsResponse.json): the
//! partition moves under way (KIP-455), with the replicas each is adding and removing, as
//! `kafka-reassign-partitions.sh --verify` and the admin client's
//! `listPartitionReassignments` ask for them.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct ListPartitionReassignmentsRequest {
        pub timeout_ms: i32 = 60_000,
        /// The partitions to list the moves of, or null for every move.
        pub topics: Option<Vec<ListReassignmentsTopic>>,
    }

    /// The schema's ListPartitionReassignmentsTopics.
    pub struct ListReassignmentsTopic {
        pub name: String,
        pub partition_indexes: Vec<i32>,
    }

    pub struct ListPartitionReassignmentsResponse {
        pub throttle_time_ms: i32,
        pub error: ErrorCode,
        pub error_message: Option<String>,
        pub topics: Vec<ListReassignmentsOngoingTopic>,
    }

    /// The schema's OngoingTopicReassignment.
    pub struct ListReassignmentsOngoingTopic {
        pub name: String,
        pub partitions: Vec<ListReassignmentsOngoingPartition>,
    }

    /// The schema's OngoingPartitionReassignment.
    pub struct ListReassignmentsOngoingPartition {
        pub partition_index: i32,
        /// The current replica set.
        pub replicas: Vec<i32>,
        pub adding_replicas: Vec<i32>,
        pub removing_replicas: Vec<i32>,
    }
}

impl Request for ListPartitionReassignmentsRequest {
    const KEY: ApiKey = ApiKey::ListPartitionReassignments;
    const VERSIONS: (i16, i16) = (0, 0);
    const FLEXIBLE_FROM: i16 = 0;
    type Response = ListPartitionReassignmentsResponse;
}
