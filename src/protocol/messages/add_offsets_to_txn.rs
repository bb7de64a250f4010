//! AddOffsetsToTxn (key 25), versions 0-4; flexible from 3 (AddOffsetsToTxnRequest.json,
//! AddOffsetsToTxnResponse.json). Version 1 is version 0 with the response sent before
//! throttling, 2 adds PRODUCER_FENCED, 3 is flexible, 4 adds TRANSACTION_ABORTABLE.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct AddOffsetsToTxnRequest {
        pub transactional_id: String,
        pub producer_id: i64,
        pub producer_epoch: i16,
        /// The group whose offsets the transaction will commit (its `__consumer_offsets`
        /// partition joins the transaction).
        pub group_id: String,
    }

    pub struct AddOffsetsToTxnResponse {
        pub throttle_time_ms: i32,
        pub error: ErrorCode,
    }
}

impl Request for AddOffsetsToTxnRequest {
    const KEY: ApiKey = ApiKey::AddOffsetsToTxn;
    const VERSIONS: (i16, i16) = (0, 4);
    const FLEXIBLE_FROM: i16 = 3;
    type Response = AddOffsetsToTxnResponse;
}
