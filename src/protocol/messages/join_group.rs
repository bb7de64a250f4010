//! JoinGroup (key 11), versions 0-9; flexible from 6 (JoinGroupRequest.json,
//! JoinGroupResponse.json).
//!
//! Version 4+ clients join twice: an empty member id is answered with MEMBER_ID_REQUIRED and a
//! fresh id (KIP-394). Version 5 adds static membership (`GroupInstanceId`), 7 the protocol type
//! in the response (KIP-559), 8 the `Reason`, 9 `SkipAssignment`.

use bytes::Bytes;

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct JoinGroupRequest {
        pub group_id: String,
        pub session_timeout_ms: i32,
        /// Version 0 has none; Kafka uses the session timeout in its place (the handler does).
        pub rebalance_timeout_ms: i32 [1..] = -1,
        pub member_id: String,
        pub group_instance_id: Option<String> [5..],
        pub protocol_type: String,
        pub protocols: Vec<JoinGroupProtocol>,
        pub reason: Option<String> [8..],
    }

    pub struct JoinGroupProtocol {
        pub name: String,
        /// Opaque to the broker (for consumers, a ConsumerProtocolSubscription); borrowed from
        /// the request frame.
        pub metadata: Bytes,
    }

    pub struct JoinGroupResponse {
        pub throttle_time_ms: i32 [2..],
        pub error: ErrorCode,
        pub generation_id: i32 = -1,
        pub protocol_type: Option<String> [7..],
        /// Nullable from version 7; written as "" when `None` below that.
        pub protocol_name: Option<String> [0.., nullable 7..],
        pub leader: String,
        pub skip_assignment: bool [9..],
        pub member_id: String,
        /// Non-empty only in the leader's response.
        pub members: Vec<JoinGroupResponseMember>,
    }

    pub struct JoinGroupResponseMember {
        pub member_id: String,
        pub group_instance_id: Option<String> [5..],
        pub metadata: Bytes,
    }
}

impl Request for JoinGroupRequest {
    const KEY: ApiKey = ApiKey::JoinGroup;
    const VERSIONS: (i16, i16) = (0, 9);
    const FLEXIBLE_FROM: i16 = 6;
    type Response = JoinGroupResponse;
}
