//! CreateTopics (key 19), versions 2-7; flexible from 5 (CreateTopicsRequest.json,
//! CreateTopicsResponse.json).
//!
//! Version 5 answers each created topic with its partition count, replication factor and
//! configuration, 7 with its topic id.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct CreateTopicsRequest {
        pub topics: Vec<CreatableTopic>,
        pub timeout_ms: i32 = 60_000,
        pub validate_only: bool,
    }

    pub struct CreatableTopic {
        pub name: String,
        /// -1 asks for the broker's `num.partitions`.
        pub num_partitions: i32,
        /// -1 asks for the broker's `default.replication.factor`.
        pub replication_factor: i16,
        /// Manual assignments: partition index and its brokers.
        pub assignments: Vec<CreatableReplicaAssignment>,
        pub configs: Vec<CreatableTopicConfig>,
    }

    pub struct CreatableReplicaAssignment {
        pub partition_index: i32,
        pub broker_ids: Vec<i32>,
    }

    pub struct CreatableTopicConfig {
        pub name: String,
        pub value: Option<String>,
    }

    pub struct CreateTopicsResponse {
        pub throttle_time_ms: i32,
        pub topics: Vec<CreatableTopicResult>,
    }

    pub struct CreatableTopicResult {
        pub name: String,
        pub topic_id: [u8; 16] [7..],
        pub error: ErrorCode,
        pub error_message: Option<String>,
        pub num_partitions: i32 [5..] = -1,
        pub replication_factor: i16 [5..] = -1,
        /// Spate answers a failed creation with an empty array.
        pub configs: Option<Vec<CreatableTopicConfigs>> [5..],
        /// When the configuration is not returned, why.
        pub topic_config_error_code: Option<ErrorCode> [5.., tag 0],
    }

    pub struct CreatableTopicConfigs {
        pub name: String [5..],
        pub value: Option<String> [5..],
        pub read_only: bool [5..],
        pub config_source: i8 [5..] = -1,
        pub is_sensitive: bool [5..],
    }
}

impl Request for CreateTopicsRequest {
    const KEY: ApiKey = ApiKey::CreateTopics;
    const VERSIONS: (i16, i16) = (2, 7);
    const FLEXIBLE_FROM: i16 = 5;
    type Response = CreateTopicsResponse;
}
