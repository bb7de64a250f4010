//! ElectLeaders (key 43), versions 0-2; flexible from 2 (ElectLeadersRequest.json,
//! ElectLeadersResponse.json): a preferred (or, from version 1, unclean) leader election for
//! some partitions or all of them, as `kafka-leader-election.sh` and the admin client's
//! `electLeaders` ask for it.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

/// `ElectLeadersRequest::election_type`: the preferred replica.
pub const PREFERRED: i8 = 0;
/// `ElectLeadersRequest::election_type`: the first live replica when none is in sync.
pub const UNCLEAN: i8 = 1;

message! {
    pub struct ElectLeadersRequest {
        /// `PREFERRED` or `UNCLEAN`; version 0 elects the preferred replica.
        pub election_type: i8 [1..],
        /// The partitions to elect leaders for, or null for every partition.
        pub topic_partitions: Option<Vec<ElectLeadersTopic>>,
        pub timeout_ms: i32 = 60_000,
    }

    pub struct ElectLeadersTopic {
        pub topic: String,
        pub partitions: Vec<i32>,
    }

    pub struct ElectLeadersResponse {
        pub throttle_time_ms: i32,
        pub error: ErrorCode [1..],
        pub replica_election_results: Vec<ElectLeadersResult>,
    }

    pub struct ElectLeadersResult {
        pub topic: String,
        pub partition_result: Vec<ElectLeadersPartitionResult>,
    }

    pub struct ElectLeadersPartitionResult {
        pub partition_id: i32,
        pub error: ErrorCode,
        pub error_message: Option<String>,
    }
}

impl Request for ElectLeadersRequest {
    const KEY: ApiKey = ApiKey::ElectLeaders;
    const VERSIONS: (i16, i16) = (0, 2);
    const FLEXIBLE_FROM: i16 = 2;
    type Response = ElectLeadersResponse;
}
