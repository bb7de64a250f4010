//! Fetch (key 1), versions 4-12; flexible from 12 (FetchRequest.json, FetchResponse.json).
//! Versions 13+ (topic ids instead of names) are not served.
//!
//! The response's record sets are `RecordSet`s: the broker encodes each as a hole
//! (`RecordSet::Spliced`) that the network layer fills from the segment file, so the bytes
//! built in memory are only the headers; the client decodes them as bytes of the frame.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::{RecordSet, Request};
use crate::protocol::ApiKey;

message! {
    pub struct FetchRequest {
        pub cluster_id: Option<String> [12.., tag 0],
        pub replica_id: i32 = -1,
        pub max_wait_ms: i32,
        pub min_bytes: i32,
        pub max_bytes: i32 = i32::MAX,
        pub isolation_level: i8,
        pub session_id: i32 [7..],
        pub session_epoch: i32 [7..] = -1,
        pub topics: Vec<FetchTopic>,
        /// Only meaningful inside fetch sessions, which Spate does not create (it answers
        /// session id 0).
        pub forgotten_topics_data: Vec<ForgottenTopic> [7..],
        pub rack_id: String [11..],
    }

    pub struct FetchTopic {
        pub name: String,
        pub partitions: Vec<FetchPartition>,
    }

    pub struct FetchPartition {
        pub partition: i32,
        pub current_leader_epoch: i32 [9..] = -1,
        pub fetch_offset: i64,
        pub last_fetched_epoch: i32 [12..] = -1,
        /// Followers only.
        pub log_start_offset: i64 [5..] = -1,
        pub partition_max_bytes: i32,
    }

    pub struct ForgottenTopic {
        pub topic: String,
        pub partitions: Vec<i32>,
    }

    pub struct FetchResponse {
        pub throttle_time_ms: i32,
        pub error: ErrorCode [7..],
        pub session_id: i32 [7..],
        pub topics: Vec<FetchTopicResponse>,
    }

    pub struct FetchTopicResponse {
        pub name: String,
        pub partitions: Vec<FetchPartitionResponse>,
    }

    pub struct FetchPartitionResponse {
        pub partition_index: i32,
        pub error: ErrorCode,
        pub high_watermark: i64,
        pub last_stable_offset: i64 = -1,
        pub log_start_offset: i64 [5..] = -1,
        pub diverging_epoch: Option<EpochEndOffset> [12.., tag 0],
        pub current_leader: Option<LeaderIdAndEpoch> [12.., tag 1],
        pub snapshot_id: Option<SnapshotId> [12.., tag 2],
        pub aborted_transactions: Option<Vec<AbortedTransaction>>,
        pub preferred_read_replica: i32 [11..] = -1,
        pub records: Option<RecordSet>,
    }

    pub struct EpochEndOffset {
        pub epoch: i32 = -1,
        pub end_offset: i64 = -1,
    }

    pub struct LeaderIdAndEpoch {
        pub leader_id: i32 = -1,
        pub leader_epoch: i32 = -1,
    }

    pub struct SnapshotId {
        pub end_offset: i64 = -1,
        pub epoch: i32 = -1,
    }

    pub struct AbortedTransaction {
        pub producer_id: i64,
        pub first_offset: i64,
    }
}

impl Request for FetchRequest {
    const KEY: ApiKey = ApiKey::Fetch;
    const VERSIONS: (i16, i16) = (4, 12);
    const FLEXIBLE_FROM: i16 = 12;
    type Response = FetchResponse;
}
