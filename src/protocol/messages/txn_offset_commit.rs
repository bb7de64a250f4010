//! TxnOffsetCommit (key 28), versions 0-4; flexible from 3 (TxnOffsetCommitRequest.json,
//! TxnOffsetCommitResponse.json). Version 2 adds the committed leader epoch, 3 the group
//! generation and member (KIP-447, so that a zombie member's commit is fenced), 4
//! TRANSACTION_ABORTABLE.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct TxnOffsetCommitRequest {
        pub transactional_id: String,
        pub group_id: String,
        pub producer_id: i64,
        pub producer_epoch: i16,
        pub generation_id: i32 [3..] = -1,
        pub member_id: String [3..],
        pub group_instance_id: Option<String> [3..],
        pub topics: Vec<TxnOffsetCommitRequestTopic>,
    }

    pub struct TxnOffsetCommitRequestTopic {
        pub name: String,
        pub partitions: Vec<TxnOffsetCommitRequestPartition>,
    }

    pub struct TxnOffsetCommitRequestPartition {
        pub partition_index: i32,
        pub committed_offset: i64,
        pub committed_leader_epoch: i32 [2..] = -1,
        pub committed_metadata: Option<String>,
    }

    pub struct TxnOffsetCommitResponse {
        pub throttle_time_ms: i32,
        pub topics: Vec<TxnOffsetCommitResponseTopic>,
    }

    pub struct TxnOffsetCommitResponseTopic {
        pub name: String,
        pub partitions: Vec<TxnOffsetCommitResponsePartition>,
    }

    pub struct TxnOffsetCommitResponsePartition {
        pub partition_index: i32,
        pub error: ErrorCode,
    }
}

impl Request for TxnOffsetCommitRequest {
    const KEY: ApiKey = ApiKey::TxnOffsetCommit;
    const VERSIONS: (i16, i16) = (0, 4);
    const FLEXIBLE_FROM: i16 = 3;
    type Response = TxnOffsetCommitResponse;
}
