//! EndTxn (key 26), versions 0-4; flexible from 3 (EndTxnRequest.json, EndTxnResponse.json).
//! Version 5 (KIP-890's epoch bump at every transaction's end, with `transaction.version` 2) is
//! not served: clients then stay with versions 0-4.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct EndTxnRequest {
        pub transactional_id: String,
        pub producer_id: i64,
        pub producer_epoch: i16,
        /// True to commit, false to abort.
        pub committed: bool,
    }

    pub struct EndTxnResponse {
        pub throttle_time_ms: i32,
        pub error: ErrorCode,
    }
}

impl Request for EndTxnRequest {
    const KEY: ApiKey = ApiKey::EndTxn;
    const VERSIONS: (i16, i16) = (0, 4);
    const FLEXIBLE_FROM: i16 = 3;
    type Response = EndTxnResponse;
}
