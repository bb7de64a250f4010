//! DescribeProducers (key 61), version 0; flexible from 0 (DescribeProducersRequest.json,
//! DescribeProducersResponse.json, KIP-664): the idempotent and transactional producers a
//! partition replica knows, with each one's open transaction, as `kafka-transactions.sh
//! describe-producers` and `find-hanging` ask for them.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct DescribeProducersRequest {
        pub topics: Vec<DescribeProducersTopic>,
    }

    pub struct DescribeProducersTopic {
        pub name: String,
        pub partition_indexes: Vec<i32>,
    }

    pub struct DescribeProducersResponse {
        pub throttle_time_ms: i32,
        pub topics: Vec<DescribeProducersTopicResponse>,
    }

    pub struct DescribeProducersTopicResponse {
        pub name: String,
        pub partitions: Vec<DescribeProducersPartitionResponse>,
    }

    pub struct DescribeProducersPartitionResponse {
        pub partition_index: i32,
        pub error: ErrorCode,
        pub error_message: Option<String>,
        pub active_producers: Vec<ProducerState>,
    }

    /// One producer of a partition.
    pub struct ProducerState {
        pub producer_id: i64,
        /// An int32 on the wire, although epochs are int16 everywhere else.
        pub producer_epoch: i32,
        /// The last sequence number written; -1 for none (a producer known only by its
        /// markers).
        pub last_sequence: i32 = -1,
        pub last_timestamp: i64 = -1,
        /// The epoch of the coordinator that wrote the producer's last marker here; -1 for
        /// none yet.
        pub coordinator_epoch: i32,
        /// The first offset of the producer's transaction open here; -1 for none.
        pub current_txn_start_offset: i64 = -1,
    }
}

impl Request for DescribeProducersRequest {
    const KEY: ApiKey = ApiKey::DescribeProducers;
    const VERSIONS: (i16, i16) = (0, 0);
    const FLEXIBLE_FROM: i16 = 0;
    type Response = DescribeProducersResponse;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::{Reader, Writer};
    use crate::protocol::wire::{Version, Wire};

    const V0: Version = Version { v: 0, flexible: true };

    #[test]
    fn decodes_a_request_as_the_java_admin_sends_it() {
        let mut w = Writer::new();
        w.array_len(true, Some(1));
        w.string(true, "orders");
        w.array_len(true, Some(2));
        w.i32(0);
        w.i32(3);
        w.tagged_fields(true);
        w.tagged_fields(true);
        let mut r = Reader::new(w.finish().freeze());
        let req = DescribeProducersRequest::decode(&mut r, V0).unwrap();
        assert_eq!(r.remaining(), 0);
        assert_eq!(req.topics.len(), 1);
        assert_eq!((req.topics[0].name.as_str(), req.topics[0].partition_indexes.clone()), ("orders", vec![0, 3]));
    }

    #[test]
    fn encodes_a_partition_with_its_producers() {
        let response = DescribeProducersResponse {
            throttle_time_ms: 0,
            topics: vec![DescribeProducersTopicResponse {
                name: "t".into(),
                partitions: vec![DescribeProducersPartitionResponse {
                    partition_index: 2,
                    error: ErrorCode::NONE,
                    error_message: None,
                    active_producers: vec![ProducerState {
                        producer_id: 7,
                        producer_epoch: 1,
                        last_sequence: 9,
                        last_timestamp: 1_000,
                        coordinator_epoch: -1,
                        current_txn_start_offset: 40,
                    }],
                }],
            }],
        };
        let mut w = Writer::new();
        response.encode(&mut w, V0);
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i32().unwrap(), 0);
        assert_eq!(r.array_len(true, 3).unwrap(), Some(1));
        assert_eq!(r.string(true).unwrap(), "t");
        assert_eq!(r.array_len(true, 3).unwrap(), Some(1));
        assert_eq!((r.i32().unwrap(), r.i16().unwrap()), (2, 0));
        assert_eq!(r.nullable_string(true).unwrap(), None);
        assert_eq!(r.array_len(true, 3).unwrap(), Some(1));
        assert_eq!((r.i64().unwrap(), r.i32().unwrap(), r.i32().unwrap(), r.i64().unwrap()), (7, 1, 9, 1_000));
        assert_eq!((r.i32().unwrap(), r.i64().unwrap()), (-1, 40));
        for _ in 0..4 {
            r.tagged_fields(true).unwrap(); // producer, partition, topic, response
        }
        assert_eq!(r.remaining(), 0);
    }
}
