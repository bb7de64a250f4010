//! Produce (key 0), versions 3-9; flexible from 9 (ProduceRequest.json, ProduceResponse.json).
//! Versions 10+ (KIP-951's tagged `CurrentLeader` and `NodeEndpoints`) are not served.
//!
//! Records are `Bytes` borrowed from the request frame: the broker validates them where they
//! lie and appends them as received, and the client's writer leaves them as holes that it sends
//! by reference (`Writer::leaving_holes_over`).

use bytes::Bytes;

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct ProduceRequest {
        pub transactional_id: Option<String>,
        pub acks: i16,
        pub timeout_ms: i32,
        pub topics: Vec<ProduceTopic>,
    }

    pub struct ProduceTopic {
        pub name: String,
        pub partitions: Vec<ProducePartition>,
    }

    pub struct ProducePartition {
        pub index: i32,
        pub records: Option<Bytes>,
    }

    pub struct ProduceResponse {
        pub topics: Vec<ProduceTopicResponse>,
        pub throttle_time_ms: i32 [1..],
    }

    pub struct ProduceTopicResponse {
        pub name: String,
        pub partitions: Vec<ProducePartitionResponse>,
    }

    pub struct ProducePartitionResponse {
        pub index: i32,
        pub error: ErrorCode,
        pub base_offset: i64,
        pub log_append_time_ms: i64 [2..] = -1,
        pub log_start_offset: i64 [5..] = -1,
        /// KIP-467: the records that caused an INVALID_RECORD.
        pub record_errors: Vec<BatchIndexAndErrorMessage> [8..],
        pub error_message: Option<String> [8..],
    }

    pub struct BatchIndexAndErrorMessage {
        /// The record's index in its batch.
        pub batch_index: i32,
        pub batch_index_error_message: Option<String>,
    }
}

impl Request for ProduceRequest {
    const KEY: ApiKey = ApiKey::Produce;
    const VERSIONS: (i16, i16) = (3, 9);
    const FLEXIBLE_FROM: i16 = 9;
    type Response = ProduceResponse;
}
