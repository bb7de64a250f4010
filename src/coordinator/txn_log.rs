//! The records of `__transaction_state`, in Kafka's own schemas (TransactionLogKey.json and
//! TransactionLogValue.json in Kafka's transaction-coordinator module), so the topic means
//! what it does in Kafka:
//!
//! ```text
//! key   = i16 version (0), transactional_id string
//! value = i16 version (0), producer_id i64, producer_epoch i16, transaction_timeout_ms i32,
//!         transaction_status i8, transaction_partitions [topic string, partition_ids [i32]]
//!         (nullable), transaction_last_update_timestamp_ms i64,
//!         transaction_start_timestamp_ms i64
//! ```
//! Version 1 of the value is flexible (compact strings and arrays, tagged fields: previous and
//! next producer id, client transaction version); Spate writes version 0, as Kafka does for
//! clients of transaction version 0 and 1, and reads both. A null value (tombstone) removes the
//! transactional id.

use bytes::Bytes;

use super::txn::{TxnMetadata, TxnState};
use crate::protocol::codec::{DecodeError, DecodeResult, Reader, Writer};

pub const KEY_VERSION: i16 = 0;
pub const VALUE_VERSION: i16 = 0;

pub fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut w = Writer::new();
    w.i16(KEY_VERSION);
    w.string(false, transactional_id);
    w.finish().to_vec()
}

/// The transactional id of a key, or `None` for a key version Spate does not know.
pub fn decode_key(bytes: Bytes) -> DecodeResult<Option<String>> {
    let mut r = Reader::new(bytes);
    Ok(match r.i16()? {
        0 => Some(r.string(false)?),
        _ => None,
    })
}

pub fn encode_value(m: &TxnMetadata) -> Vec<u8> {
    let mut w = Writer::new();
    w.i16(VALUE_VERSION);
    w.i64(m.producer_id);
    w.i16(m.producer_epoch);
    w.i32(m.timeout_ms);
    w.i8(m.state as i8);
    // Kafka writes no partitions (null would do too) for a transaction without any.
    let mut by_topic: std::collections::BTreeMap<&str, Vec<i32>> = std::collections::BTreeMap::new();
    for (topic, partition) in &m.partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    w.array_len(false, Some(by_topic.len()));
    for (topic, partitions) in by_topic {
        w.string(false, topic);
        w.array_len(false, Some(partitions.len()));
        for p in partitions {
            w.i32(p);
        }
    }
    w.i64(m.last_update_ms);
    w.i64(m.start_ms);
    w.finish().to_vec()
}

pub fn decode_value(transactional_id: &str, bytes: Bytes) -> DecodeResult<TxnMetadata> {
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    if !(0..=1).contains(&version) {
        return Err(DecodeError::InvalidLength(version as i64));
    }
    let flexible = version >= 1;
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let status = r.i8()?;
    let state = TxnState::from_id(status).ok_or(DecodeError::InvalidLength(status as i64))?;
    let mut partitions = std::collections::BTreeSet::new();
    if let Some(n) = r.array_len(flexible, 6)? {
        for _ in 0..n {
            let topic = r.string(flexible)?;
            if let Some(m) = r.array_len(flexible, 4)? {
                for _ in 0..m {
                    partitions.insert((topic.clone(), r.i32()?));
                }
            }
            r.tagged_fields(flexible)?;
        }
    }
    let last_update_ms = r.i64()?;
    let start_ms = r.i64()?;
    r.tagged_fields(flexible)?;
    Ok(TxnMetadata {
        transactional_id: transactional_id.to_string(),
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_ms,
        start_ms,
        pending: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_in_kafkas_version_0_layout() {
        let m = TxnMetadata {
            transactional_id: "tx".into(),
            producer_id: 1234,
            producer_epoch: 5,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: [("a".to_string(), 1), ("a".to_string(), 0), ("b".to_string(), 2)].into_iter().collect(),
            last_update_ms: 2_000,
            start_ms: 1_000,
            pending: false,
        };
        let bytes = encode_value(&m);
        // version, id, epoch, timeout, status (1: Ongoing), then 2 topics.
        assert_eq!(&bytes[0..2], &[0, 0]);
        assert_eq!(&bytes[2..10], &1234i64.to_be_bytes());
        assert_eq!(bytes[16], 1);
        assert_eq!(&bytes[17..21], &2i32.to_be_bytes());
        assert_eq!(decode_value("tx", Bytes::from(bytes)).unwrap(), m);
        assert_eq!(decode_key(Bytes::from(encode_key("tx"))).unwrap().as_deref(), Some("tx"));
    }
}
