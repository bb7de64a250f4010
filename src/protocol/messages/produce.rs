//! Produce (key 0), versions 0-9; flexible from 9. Records are borrowed from the frame.

use bytes::Bytes;

use crate::protocol::codec::{DecodeResult, Reader, Writer};
use crate::protocol::error::ErrorCode;

#[derive(Debug)]
pub struct ProduceRequest {
    pub transactional_id: Option<String>,
    pub acks: i16,
    pub timeout_ms: i32,
    pub topics: Vec<ProduceTopic>,
}

#[derive(Debug)]
pub struct ProduceTopic {
    pub name: String,
    pub partitions: Vec<ProducePartition>,
}

#[derive(Debug)]
pub struct ProducePartition {
    pub index: i32,
    pub records: Option<Bytes>,
}

pub fn decode_request(r: &mut Reader, version: i16, flexible: bool) -> DecodeResult<ProduceRequest> {
    let transactional_id = if version >= 3 { r.nullable_string(flexible)? } else { None };
    let acks = r.i16()?;
    let timeout_ms = r.i32()?;
    let topics = r.array(flexible, 2, |r| {
        let name = r.string(flexible)?;
        let partitions = r.array(flexible, 5, |r| {
            let index = r.i32()?;
            let records = r.nullable_bytes(flexible)?;
            r.tagged_fields(flexible)?;
            Ok(ProducePartition { index, records })
        })?;
        r.tagged_fields(flexible)?;
        Ok(ProduceTopic { name, partitions })
    })?;
    r.tagged_fields(flexible)?;
    Ok(ProduceRequest { transactional_id, acks, timeout_ms, topics })
}

#[derive(Debug, Clone)]
pub struct ProducePartitionResponse {
    pub index: i32,
    pub error: ErrorCode,
    pub base_offset: i64,
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
    /// KIP-467 (v8+): the records that caused an INVALID_RECORD, as (index in the batch,
    /// message).
    pub record_errors: Vec<(i32, Option<String>)>,
    pub error_message: Option<String>,
}

pub struct ProduceTopicResponse {
    pub name: String,
    pub partitions: Vec<ProducePartitionResponse>,
}

pub fn encode_response(w: &mut Writer, version: i16, flexible: bool, topics: &[ProduceTopicResponse]) {
    w.array_len(flexible, Some(topics.len()));
    for t in topics {
        w.string(flexible, &t.name);
        w.array_len(flexible, Some(t.partitions.len()));
        for p in &t.partitions {
            w.i32(p.index);
            w.i16(p.error.0);
            w.i64(p.base_offset);
            if version >= 2 {
                w.i64(p.log_append_time_ms);
            }
            if version >= 5 {
                w.i64(p.log_start_offset);
            }
            if version >= 8 {
                w.array_len(flexible, Some(p.record_errors.len()));
                for (batch_index, message) in &p.record_errors {
                    w.i32(*batch_index);
                    w.nullable_string(flexible, message.as_deref());
                    w.tagged_fields(flexible);
                }
                w.nullable_string(flexible, p.error_message.as_deref());
            }
            w.tagged_fields(flexible);
        }
        w.tagged_fields(flexible);
    }
    if version >= 1 {
        w.i32(0); // throttle_time_ms
    }
    w.tagged_fields(flexible);
}
