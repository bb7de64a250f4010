//! DeleteRecords (key 21), versions 0-2; flexible from 2 (DeleteRecordsRequest.json,
//! DeleteRecordsResponse.json; KIP-107).

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

/// The offset that means "the high watermark" (Kafka's `DeleteRecordsRequest.HIGH_WATERMARK`).
pub const HIGH_WATERMARK: i64 = -1;

message! {
    pub struct DeleteRecordsRequest {
        pub topics: Vec<DeleteRecordsTopic>,
        pub timeout_ms: i32,
    }

    pub struct DeleteRecordsTopic {
        pub name: String,
        pub partitions: Vec<DeleteRecordsPartition>,
    }

    pub struct DeleteRecordsPartition {
        pub partition_index: i32,
        pub offset: i64,
    }

    pub struct DeleteRecordsResponse {
        pub throttle_time_ms: i32,
        pub topics: Vec<DeleteRecordsTopicResult>,
    }

    pub struct DeleteRecordsTopicResult {
        pub name: String,
        pub partitions: Vec<DeleteRecordsPartitionResult>,
    }

    pub struct DeleteRecordsPartitionResult {
        pub partition_index: i32,
        pub low_watermark: i64,
        pub error: ErrorCode,
    }
}

impl Request for DeleteRecordsRequest {
    const KEY: ApiKey = ApiKey::DeleteRecords;
    const VERSIONS: (i16, i16) = (0, 2);
    const FLEXIBLE_FROM: i16 = 2;
    type Response = DeleteRecordsResponse;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::{Reader, Writer};
    use crate::protocol::wire::{Version, Wire};

    #[test]
    fn decodes_v2_as_kafka_writes_it() {
        let mut w = Writer::new();
        w.array_len(true, Some(1));
        w.string(true, "t");
        w.array_len(true, Some(1));
        w.i32(3);
        w.i64(-1);
        w.tagged_fields(true);
        w.tagged_fields(true);
        w.i32(30_000);
        w.tagged_fields(true);
        let mut r = Reader::new(w.finish().freeze());
        let req = DeleteRecordsRequest::decode(&mut r, Version::new(2, true)).unwrap();
        assert_eq!(r.remaining(), 0);
        assert_eq!(req.timeout_ms, 30_000);
        assert_eq!(req.topics[0].name, "t");
        assert_eq!(req.topics[0].partitions, vec![DeleteRecordsPartition { partition_index: 3, offset: HIGH_WATERMARK }]);
    }
}
