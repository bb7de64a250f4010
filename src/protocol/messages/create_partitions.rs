//! CreatePartitions (key 37), versions 0-3; flexible from 2 (CreatePartitionsRequest.json,
//! CreatePartitionsResponse.json).

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct CreatePartitionsRequest {
        pub topics: Vec<CreatePartitionsTopic>,
        pub timeout_ms: i32,
        pub validate_only: bool,
    }

    pub struct CreatePartitionsTopic {
        pub name: String,
        /// The new total partition count.
        pub count: i32,
        /// Manual assignments name brokers; a single broker has only itself, so they are read
        /// and checked only for shape.
        pub assignments: Option<Vec<CreatePartitionsAssignment>>,
    }

    pub struct CreatePartitionsAssignment {
        pub broker_ids: Vec<i32>,
    }

    pub struct CreatePartitionsResponse {
        pub throttle_time_ms: i32,
        pub results: Vec<CreatePartitionsTopicResult>,
    }

    pub struct CreatePartitionsTopicResult {
        pub name: String,
        pub error: ErrorCode,
        pub error_message: Option<String>,
    }
}

impl CreatePartitionsRequest {
    /// Each topic with its new total partition count, in request order (what the controller
    /// takes; the assignments are ignored).
    pub fn counts(&self) -> Vec<(String, i32)> {
        self.topics.iter().map(|t| (t.name.clone(), t.count)).collect()
    }
}

impl Request for CreatePartitionsRequest {
    const KEY: ApiKey = ApiKey::CreatePartitions;
    const VERSIONS: (i16, i16) = (0, 3);
    const FLEXIBLE_FROM: i16 = 2;
    type Response = CreatePartitionsResponse;
}
