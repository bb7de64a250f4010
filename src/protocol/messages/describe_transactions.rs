//! DescribeTransactions (key 65), version 0; flexible from 0 (DescribeTransactionsRequest.json,
//! DescribeTransactionsResponse.json, KIP-664): what a transaction coordinator holds for each
//! transactional id asked (state, timeout, start, producer id and epoch, partitions), each with
//! its own error.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct DescribeTransactionsRequest {
        pub transactional_ids: Vec<String>,
    }

    pub struct DescribeTransactionsResponse {
        pub throttle_time_ms: i32,
        pub transaction_states: Vec<DescribedTransaction>,
    }

    /// One transactional id's state.
    pub struct DescribedTransaction {
        pub error: ErrorCode,
        pub transactional_id: String,
        /// Kafka's name of the state ("Ongoing", "CompleteCommit", ...).
        pub transaction_state: String,
        pub transaction_timeout_ms: i32,
        /// When the open (or last) transaction began; -1 for none.
        pub transaction_start_time_ms: i64 = -1,
        pub producer_id: i64 = -1,
        pub producer_epoch: i16 = -1,
        /// The partitions in the transaction.
        pub topics: Vec<DescribedTransactionTopic>,
    }

    pub struct DescribedTransactionTopic {
        pub topic: String,
        pub partitions: Vec<i32>,
    }
}

impl Request for DescribeTransactionsRequest {
    const KEY: ApiKey = ApiKey::DescribeTransactions;
    const VERSIONS: (i16, i16) = (0, 0);
    const FLEXIBLE_FROM: i16 = 0;
    type Response = DescribeTransactionsResponse;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::{Reader, Writer};
    use crate::protocol::wire::{Version, Wire};

    const V0: Version = Version { v: 0, flexible: true };

    #[test]
    fn decodes_a_request_and_encodes_its_answer() {
        let mut w = Writer::new();
        w.array_len(true, Some(2));
        w.string(true, "t1");
        w.string(true, "t2");
        w.tagged_fields(true);
        let mut r = Reader::new(w.finish().freeze());
        let req = DescribeTransactionsRequest::decode(&mut r, V0).unwrap();
        assert_eq!(r.remaining(), 0);
        assert_eq!(req.transactional_ids, vec!["t1".to_string(), "t2".to_string()]);

        let response = DescribeTransactionsResponse {
            throttle_time_ms: 0,
            transaction_states: vec![DescribedTransaction {
                error: ErrorCode::NONE,
                transactional_id: "t1".into(),
                transaction_state: "Ongoing".into(),
                transaction_timeout_ms: 60_000,
                transaction_start_time_ms: 5,
                producer_id: 4000,
                producer_epoch: 2,
                topics: vec![DescribedTransactionTopic { topic: "a".into(), partitions: vec![0, 1] }],
            }],
        };
        let mut w = Writer::new();
        response.encode(&mut w, V0);
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i32().unwrap(), 0);
        assert_eq!(r.array_len(true, 3).unwrap(), Some(1));
        assert_eq!(r.i16().unwrap(), 0);
        assert_eq!(r.string(true).unwrap(), "t1");
        assert_eq!(r.string(true).unwrap(), "Ongoing");
        assert_eq!((r.i32().unwrap(), r.i64().unwrap(), r.i64().unwrap(), r.i16().unwrap()), (60_000, 5, 4000, 2));
        assert_eq!(r.array_len(true, 3).unwrap(), Some(1));
        assert_eq!(r.string(true).unwrap(), "a");
        assert_eq!(r.array(true, 4, |r| r.i32()).unwrap(), vec![0, 1]);
        for _ in 0..3 {
            r.tagged_fields(true).unwrap(); // topic, transaction, response
        }
        assert_eq!(r.remaining(), 0);
    }
}
