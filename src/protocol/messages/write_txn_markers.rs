//! WriteTxnMarkers (key 27), version 1; flexible from 1 (WriteTxnMarkersRequest.json,
//! WriteTxnMarkersResponse.json). A broker's request: the transaction coordinator asks each
//! partition leader to write the commit or abort markers of transactions (and so does
//! `kafka-transactions.sh abort`). Kafka 4 removed version 0 (KIP-896); version 2 (KIP-1228's
//! `TransactionVersion`) is not served.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct WriteTxnMarkersRequest {
        pub markers: Vec<WritableTxnMarker>,
    }

    pub struct WritableTxnMarker {
        pub producer_id: i64,
        pub producer_epoch: i16,
        /// True for a commit marker, false for an abort.
        pub transaction_result: bool,
        pub topics: Vec<WritableTxnMarkerTopic>,
        /// The epoch of the coordinator that writes the marker: a marker from an older one is
        /// refused.
        pub coordinator_epoch: i32,
    }

    pub struct WritableTxnMarkerTopic {
        pub name: String,
        pub partition_indexes: Vec<i32>,
    }

    pub struct WriteTxnMarkersResponse {
        pub markers: Vec<WritableTxnMarkerResult>,
    }

    pub struct WritableTxnMarkerResult {
        pub producer_id: i64,
        pub topics: Vec<WritableTxnMarkerTopicResult>,
    }

    pub struct WritableTxnMarkerTopicResult {
        pub name: String,
        pub partitions: Vec<WritableTxnMarkerPartitionResult>,
    }

    pub struct WritableTxnMarkerPartitionResult {
        pub partition_index: i32,
        pub error: ErrorCode,
    }
}

impl Request for WriteTxnMarkersRequest {
    const KEY: ApiKey = ApiKey::WriteTxnMarkers;
    const VERSIONS: (i16, i16) = (1, 1);
    const FLEXIBLE_FROM: i16 = 1;
    type Response = WriteTxnMarkersResponse;
}
