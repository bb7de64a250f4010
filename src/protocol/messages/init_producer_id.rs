//! InitProducerId (key 22), versions 0-4; flexible from 2 (InitProducerIdRequest.json,
//! InitProducerIdResponse.json).
//!
//! Version 3 lets a producer resume its id and epoch; version 5 (KIP-890, no new field) is
//! not served.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct InitProducerIdRequest {
        /// `None` for an idempotent (non-transactional) producer.
        pub transactional_id: Option<String>,
        pub transaction_timeout_ms: i32,
        pub producer_id: i64 [3..] = -1,
        pub producer_epoch: i16 [3..] = -1,
    }

    pub struct InitProducerIdResponse {
        pub throttle_time_ms: i32,
        pub error: ErrorCode,
        pub producer_id: i64 = -1,
        pub producer_epoch: i16,
    }
}

impl Request for InitProducerIdRequest {
    const KEY: ApiKey = ApiKey::InitProducerId;
    const VERSIONS: (i16, i16) = (0, 4);
    const FLEXIBLE_FROM: i16 = 2;
    type Response = InitProducerIdResponse;
}
