//! OffsetForLeaderEpoch (key 23), versions 2-4; flexible from 4 (OffsetForLeaderEpochRequest.json,
//! OffsetForLeaderEpochResponse.json): the end offset of a leader epoch in a partition's log,
//! which consumers ask for to detect log truncation after a leader change (KIP-320) and
//! followers to find where their log diverges from the leader's.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct OffsetForLeaderEpochRequest {
        /// The follower's broker id, -1 for a consumer; -2 (the schema's default) before v3.
        pub replica_id: i32 [3..] = -2,
        pub topics: Vec<OffsetForLeaderTopic>,
    }

    pub struct OffsetForLeaderTopic {
        pub topic: String,
        pub partitions: Vec<OffsetForLeaderPartition>,
    }

    pub struct OffsetForLeaderPartition {
        pub partition: i32,
        /// The epoch the client knows the leader by (fencing), -1 when it knows none.
        pub current_leader_epoch: i32 = -1,
        /// The epoch whose end offset is asked for.
        pub leader_epoch: i32,
    }

    pub struct OffsetForLeaderEpochResponse {
        pub throttle_time_ms: i32,
        pub topics: Vec<OffsetForLeaderTopicResult>,
    }

    pub struct OffsetForLeaderTopicResult {
        pub topic: String,
        pub partitions: Vec<OffsetForLeaderPartitionResult>,
    }

    /// The schema's EpochEndOffset.
    pub struct OffsetForLeaderPartitionResult {
        pub error: ErrorCode,
        pub partition: i32,
        /// The largest epoch not above the one asked for, -1 when there is none.
        pub leader_epoch: i32 = -1,
        /// The offset after that epoch's last record, -1 when unknown.
        pub end_offset: i64 = -1,
    }
}

impl Request for OffsetForLeaderEpochRequest {
    const KEY: ApiKey = ApiKey::OffsetForLeaderEpoch;
    const VERSIONS: (i16, i16) = (2, 4);
    const FLEXIBLE_FROM: i16 = 4;
    type Response = OffsetForLeaderEpochResponse;
}
