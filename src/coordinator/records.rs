//! The records of `__consumer_offsets`, in Kafka's own key and value schemas, so the data means
//! what it does in Kafka:
//!
//! ```text
//! key   = i16 version, then      value = i16 version, then
//!   v0/v1: group, topic, partition   OffsetCommitValue v3: offset i64, leader_epoch i32,
//!                                      metadata string, commit_timestamp i64
//!   v2:    group                     GroupMetadataValue v3: protocol_type, generation i32,
//!                                      protocol?, leader?, current_state_timestamp i64,
//!                                      members [member_id, group_instance_id?, client_id,
//!                                      client_host, rebalance_timeout i32, session_timeout i32,
//!                                      subscription bytes, assignment bytes]
//! ```
//! A null value (tombstone) deletes the key. Kafka writes offset keys at version 1 with value
//! version 3, and group keys at version 2 with value version 3; Spate does the same.

use bytes::Bytes;

use crate::protocol::codec::{DecodeError, DecodeResult, Reader, Writer};

pub const OFFSET_KEY_VERSION: i16 = 1;
pub const GROUP_KEY_VERSION: i16 = 2;
pub const OFFSET_VALUE_VERSION: i16 = 3;
pub const GROUP_VALUE_VERSION: i16 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    Offset { group: String, topic: String, partition: i32 },
    Group { group: String },
}

impl RecordKey {
    pub fn group(&self) -> &str {
        match self {
            RecordKey::Offset { group, .. } | RecordKey::Group { group } => group,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp: i64,
    pub members: Vec<MemberValue>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout: i32,
    pub session_timeout: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

pub fn encode_key(key: &RecordKey) -> Vec<u8> {
    let mut w = Writer::new();
    match key {
        RecordKey::Offset { group, topic, partition } => {
            w.i16(OFFSET_KEY_VERSION);
            w.string(false, group);
            w.string(false, topic);
            w.i32(*partition);
        }
        RecordKey::Group { group } => {
            w.i16(GROUP_KEY_VERSION);
            w.string(false, group);
        }
    }
    w.finish().to_vec()
}

/// Decodes a key; `Ok(None)` for key versions Spate does not use (KIP-848 records), which a
/// reader skips.
pub fn decode_key(bytes: Bytes) -> DecodeResult<Option<RecordKey>> {
    let mut r = Reader::new(bytes);
    Ok(match r.i16()? {
        0 | 1 => Some(RecordKey::Offset { group: r.string(false)?, topic: r.string(false)?, partition: r.i32()? }),
        2 => Some(RecordKey::Group { group: r.string(false)? }),
        _ => None,
    })
}

pub fn encode_offset_value(v: &OffsetValue) -> Vec<u8> {
    let mut w = Writer::new();
    w.i16(OFFSET_VALUE_VERSION);
    w.i64(v.offset);
    w.i32(v.leader_epoch);
    w.string(false, &v.metadata);
    w.i64(v.commit_timestamp);
    w.finish().to_vec()
}

pub fn decode_offset_value(bytes: Bytes) -> DecodeResult<OffsetValue> {
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    let flexible = version >= 4;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string(flexible)?;
    let commit_timestamp = r.i64()?;
    if version == 1 {
        r.i64()?; // expire_timestamp
    }
    if !(0..=4).contains(&version) {
        return Err(DecodeError::InvalidLength(version as i64));
    }
    Ok(OffsetValue { offset, leader_epoch, metadata, commit_timestamp })
}

pub fn encode_group_value(v: &GroupValue) -> Vec<u8> {
    let mut w = Writer::new();
    w.i16(GROUP_VALUE_VERSION);
    w.string(false, &v.protocol_type);
    w.i32(v.generation);
    w.nullable_string(false, v.protocol.as_deref());
    w.nullable_string(false, v.leader.as_deref());
    w.i64(v.current_state_timestamp);
    w.array_len(false, Some(v.members.len()));
    for m in &v.members {
        w.string(false, &m.member_id);
        w.nullable_string(false, m.group_instance_id.as_deref());
        w.string(false, &m.client_id);
        w.string(false, &m.client_host);
        w.i32(m.rebalance_timeout);
        w.i32(m.session_timeout);
        w.nullable_bytes(false, Some(&m.subscription));
        w.nullable_bytes(false, Some(&m.assignment));
    }
    w.finish().to_vec()
}

pub fn decode_group_value(bytes: Bytes) -> DecodeResult<GroupValue> {
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    if !(0..=4).contains(&version) {
        return Err(DecodeError::InvalidLength(version as i64));
    }
    let flexible = version >= 4;
    let protocol_type = r.string(flexible)?;
    let generation = r.i32()?;
    let protocol = r.nullable_string(flexible)?;
    let leader = r.nullable_string(flexible)?;
    let current_state_timestamp = if version >= 2 { r.i64()? } else { -1 };
    let members = r.array(flexible, 14, |r| {
        let member_id = r.string(flexible)?;
        let group_instance_id = if version >= 3 { r.nullable_string(flexible)? } else { None };
        let client_id = r.string(flexible)?;
        let client_host = r.string(flexible)?;
        let rebalance_timeout = if version >= 1 { r.i32()? } else { -1 };
        let session_timeout = r.i32()?;
        let subscription = r.nullable_bytes(flexible)?.unwrap_or_default();
        let assignment = r.nullable_bytes(flexible)?.unwrap_or_default();
        r.tagged_fields(flexible)?;
        Ok(MemberValue { member_id, group_instance_id, client_id, client_host, rebalance_timeout, session_timeout, subscription, assignment })
    })?;
    r.tagged_fields(flexible)?;
    Ok(GroupValue { protocol_type, generation, protocol, leader, current_state_timestamp, members })
}

/// Walks the records of an uncompressed batch (the only kind the coordinator writes) with
/// `protocol::records::Records`: `(key, value)` pairs, value `None` for tombstones.
pub fn batch_records(batch: &[u8]) -> DecodeResult<Vec<(Bytes, Option<Bytes>)>> {
    use crate::protocol::record_batch::{BatchView, HEADER_BYTES};
    use crate::protocol::records::Records;
    let view = BatchView { bytes: batch };
    if batch.len() < HEADER_BYTES || view.compression() != 0 || view.is_control() {
        return Ok(Vec::new());
    }
    // One copy of the records; keys and values are slices of it.
    let body = Bytes::copy_from_slice(&batch[HEADER_BYTES..]);
    let count = view.record_count().max(0) as usize;
    let mut out = Vec::with_capacity(count.min(batch.len()));
    for record in Records::new(&body, view.record_count()) {
        // `DecodeError` carries no text: the varint reasons map to their own variant, the
        // others (lengths and counts that do not fit the record) to an invalid length.
        let record = record.map_err(|e| match e.reason {
            "truncated varint" | "varint too long" => DecodeError::InvalidVarint,
            _ => DecodeError::InvalidLength(-1),
        })?;
        let key = record.key.map_or_else(Bytes::new, |k| body.slice_ref(k));
        out.push((key, record.value.map(|v| body.slice_ref(v))));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip() {
        let key = RecordKey::Offset { group: "g".into(), topic: "t".into(), partition: 3 };
        assert_eq!(decode_key(Bytes::from(encode_key(&key))).unwrap(), Some(key));
        let key = RecordKey::Group { group: "g".into() };
        assert_eq!(decode_key(Bytes::from(encode_key(&key))).unwrap(), Some(key));
        let value = OffsetValue { offset: 42, leader_epoch: -1, metadata: "m".into(), commit_timestamp: 7 };
        assert_eq!(decode_offset_value(Bytes::from(encode_offset_value(&value))).unwrap(), value);
        let group = GroupValue {
            protocol_type: "consumer".into(),
            generation: 5,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp: 9,
            members: vec![MemberValue {
                member_id: "m1".into(),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout: 300_000,
                session_timeout: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        assert_eq!(decode_group_value(Bytes::from(encode_group_value(&group))).unwrap(), group);
    }

    #[test]
    fn unknown_key_versions_are_skipped() {
        assert_eq!(decode_key(Bytes::from_static(&[0, 9, 0, 1, b'g'])).unwrap(), None);
    }
}
