//! ListOffsets (key 2), versions 1-7; flexible from 6 (ListOffsetsRequest.json,
//! ListOffsetsResponse.json).
//!
//! The timestamp asked for is a time or one of the special values below; version 7 adds
//! `MAX_TIMESTAMP` (KIP-734). Version 0's fields (MaxNumOffsets, OldStyleOffsets) are not
//! served, nor is version 10's TimeoutMs.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

pub const LATEST_TIMESTAMP: i64 = -1;
pub const EARLIEST_TIMESTAMP: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;

message! {
    pub struct ListOffsetsRequest {
        /// -1 for a consumer (the schema has no default: clients set it).
        pub replica_id: i32,
        pub isolation_level: i8 [2..],
        pub topics: Vec<ListOffsetsTopic>,
    }

    pub struct ListOffsetsTopic {
        pub name: String,
        pub partitions: Vec<ListOffsetsPartition>,
    }

    pub struct ListOffsetsPartition {
        pub partition_index: i32,
        pub current_leader_epoch: i32 [4..] = -1,
        pub timestamp: i64,
    }

    pub struct ListOffsetsResponse {
        pub throttle_time_ms: i32 [2..],
        pub topics: Vec<ListOffsetsTopicResponse>,
    }

    pub struct ListOffsetsTopicResponse {
        pub name: String,
        pub partitions: Vec<ListOffsetsPartitionResponse>,
    }

    pub struct ListOffsetsPartitionResponse {
        pub partition_index: i32,
        pub error: ErrorCode,
        pub timestamp: i64 = -1,
        pub offset: i64 = -1,
        pub leader_epoch: i32 [4..] = -1,
    }
}

impl Request for ListOffsetsRequest {
    const KEY: ApiKey = ApiKey::ListOffsets;
    const VERSIONS: (i16, i16) = (1, 7);
    const FLEXIBLE_FROM: i16 = 6;
    type Response = ListOffsetsResponse;
}
