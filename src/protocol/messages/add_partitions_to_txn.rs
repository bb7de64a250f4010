//! AddPartitionsToTxn (key 24), versions 0-5; flexible from 3 (AddPartitionsToTxnRequest.json,
//! AddPartitionsToTxnResponse.json).
//!
//! Versions 0-3 are the client's: one transaction (the `v3_and_below_*` fields) and results by
//! topic. Version 1 is version 0 with the response sent before throttling, 2 adds the
//! PRODUCER_FENCED error, 3 is flexible. Version 4 (KIP-890) is the brokers': a partition
//! leader batches several transactions into one request (`transactions`, each with
//! `verify_only` to ask whether its partitions are already in the transaction rather than add
//! them), answered by transaction, with a top-level error. Version 5 adds the
//! TRANSACTION_ABORTABLE error, no field. Both forms are declared as the schema has them.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct AddPartitionsToTxnRequest {
        /// Version 4+ (brokers): the transactions to add partitions to, or to verify.
        pub transactions: Vec<AddPartitionsToTxnTransaction> [4..],
        /// Versions 0-3 (clients): the one transaction.
        pub v3_and_below_transactional_id: String [0..=3],
        pub v3_and_below_producer_id: i64 [0..=3],
        pub v3_and_below_producer_epoch: i16 [0..=3],
        pub v3_and_below_topics: Vec<AddPartitionsToTxnTopic> [0..=3],
    }

    /// One transaction of a version 4+ request.
    pub struct AddPartitionsToTxnTransaction {
        pub transactional_id: String,
        pub producer_id: i64,
        pub producer_epoch: i16,
        /// Only check that the partitions are in the transaction (a leader verifying a
        /// transactional produce, KIP-890), rather than add them.
        pub verify_only: bool = false,
        pub topics: Vec<AddPartitionsToTxnTopic>,
    }

    pub struct AddPartitionsToTxnTopic {
        pub name: String,
        pub partitions: Vec<i32>,
    }

    pub struct AddPartitionsToTxnResponse {
        pub throttle_time_ms: i32,
        /// Version 4+: an error for the whole request.
        pub error: ErrorCode [4..],
        /// Version 4+: the results of each transaction.
        pub results_by_transaction: Vec<AddPartitionsToTxnResult> [4..],
        /// Versions 0-3: the results of the one transaction.
        pub results_by_topic_v3_and_below: Vec<AddPartitionsToTxnTopicResult> [0..=3],
    }

    pub struct AddPartitionsToTxnResult {
        pub transactional_id: String,
        pub topic_results: Vec<AddPartitionsToTxnTopicResult>,
    }

    pub struct AddPartitionsToTxnTopicResult {
        pub name: String,
        pub results_by_partition: Vec<AddPartitionsToTxnPartitionResult>,
    }

    pub struct AddPartitionsToTxnPartitionResult {
        pub partition_index: i32,
        pub error: ErrorCode,
    }
}

impl Request for AddPartitionsToTxnRequest {
    const KEY: ApiKey = ApiKey::AddPartitionsToTxn;
    const VERSIONS: (i16, i16) = (0, 5);
    const FLEXIBLE_FROM: i16 = 3;
    type Response = AddPartitionsToTxnResponse;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::{Reader, Writer};
    use crate::protocol::wire::{Version, Wire};

    fn topic(w: &mut Writer, flexible: bool, name: &str, partitions: &[i32]) {
        w.string(flexible, name);
        w.array_len(flexible, Some(partitions.len()));
        for &p in partitions {
            w.i32(p);
        }
        w.tagged_fields(flexible);
    }

    #[test]
    fn decodes_the_client_form_v2_v3() {
        for (version, flexible) in [(2, false), (3, true)] {
            let mut w = Writer::new();
            w.string(flexible, "txn");
            w.i64(4000);
            w.i16(3);
            w.array_len(flexible, Some(2));
            topic(&mut w, flexible, "a", &[0, 2]);
            topic(&mut w, flexible, "b", &[]);
            w.tagged_fields(flexible);
            let mut r = Reader::new(w.finish().freeze());
            let req = AddPartitionsToTxnRequest::decode(&mut r, Version::new(version, flexible)).unwrap();
            assert_eq!(r.remaining(), 0, "v{version}");
            assert!(req.transactions.is_empty());
            assert_eq!(req.v3_and_below_transactional_id, "txn");
            assert_eq!((req.v3_and_below_producer_id, req.v3_and_below_producer_epoch), (4000, 3));
            let topics: Vec<_> = req.v3_and_below_topics.iter().map(|t| (t.name.as_str(), t.partitions.clone())).collect();
            assert_eq!(topics, vec![("a", vec![0, 2]), ("b", vec![])]);
        }
    }

    #[test]
    fn decodes_the_broker_form_v4() {
        let mut w = Writer::new();
        w.array_len(true, Some(2));
        for (id, pid, verify) in [("t1", 7i64, true), ("t2", 8, false)] {
            w.string(true, id);
            w.i64(pid);
            w.i16(1);
            w.bool(verify);
            w.array_len(true, Some(1));
            topic(&mut w, true, "a", &[5]);
            w.tagged_fields(true);
        }
        w.tagged_fields(true);
        let mut r = Reader::new(w.finish().freeze());
        let req = AddPartitionsToTxnRequest::decode(&mut r, Version::new(4, true)).unwrap();
        assert_eq!(r.remaining(), 0);
        assert_eq!(req.v3_and_below_transactional_id, "");
        assert!(req.v3_and_below_topics.is_empty());
        let txns: Vec<_> = req.transactions.iter().map(|t| (t.transactional_id.as_str(), t.producer_id, t.producer_epoch, t.verify_only)).collect();
        assert_eq!(txns, vec![("t1", 7, 1, true), ("t2", 8, 1, false)]);
        assert_eq!(req.transactions[1].topics[0].partitions, vec![5]);
    }

    fn topic_result() -> AddPartitionsToTxnTopicResult {
        AddPartitionsToTxnTopicResult {
            name: "a".into(),
            results_by_partition: vec![
                AddPartitionsToTxnPartitionResult { partition_index: 0, error: ErrorCode::NONE },
                AddPartitionsToTxnPartitionResult { partition_index: 2, error: ErrorCode(48) },
            ],
        }
    }

    #[test]
    fn encodes_response_v3_and_v4() {
        let response = AddPartitionsToTxnResponse { throttle_time_ms: 5, results_by_topic_v3_and_below: vec![topic_result()], ..Default::default() };
        let mut w = Writer::new();
        response.encode(&mut w, Version::new(3, true));
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i32().unwrap(), 5);
        assert_eq!(r.array_len(true, 3).unwrap(), Some(1));
        assert_eq!(r.string(true).unwrap(), "a");
        let parts = r
            .array(true, 7, |r| {
                let p = (r.i32()?, r.i16()?);
                r.tagged_fields(true)?;
                Ok(p)
            })
            .unwrap();
        assert_eq!(parts, vec![(0, 0), (2, 48)]);
        r.tagged_fields(true).unwrap();
        r.tagged_fields(true).unwrap();
        assert_eq!(r.remaining(), 0);

        let response = AddPartitionsToTxnResponse {
            throttle_time_ms: 0,
            error: ErrorCode::NONE,
            results_by_transaction: vec![AddPartitionsToTxnResult { transactional_id: "t1".into(), topic_results: vec![topic_result()] }],
            // Not in version 4: not written.
            results_by_topic_v3_and_below: vec![topic_result()],
        };
        let mut w = Writer::new();
        response.encode(&mut w, Version::new(4, true));
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i32().unwrap(), 0);
        assert_eq!(r.i16().unwrap(), 0);
        assert_eq!(r.array_len(true, 3).unwrap(), Some(1));
        assert_eq!(r.string(true).unwrap(), "t1");
        assert_eq!(r.array_len(true, 3).unwrap(), Some(1));
        assert_eq!(r.string(true).unwrap(), "a");
        assert_eq!(r.array_len(true, 7).unwrap(), Some(2));
        assert_eq!((r.i32().unwrap(), r.i16().unwrap()), (0, 0));
        r.tagged_fields(true).unwrap();
        assert_eq!((r.i32().unwrap(), r.i16().unwrap()), (2, 48));
        for _ in 0..4 {
            r.tagged_fields(true).unwrap(); // partition, topic, transaction, response
        }
        assert_eq!(r.remaining(), 0);
    }
}
