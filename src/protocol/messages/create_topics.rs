//! CreateTopics (key 19), versions 2-7; flexible from 5.

use crate::protocol::codec::{DecodeResult, Reader, Writer};
use crate::protocol::error::ErrorCode;

#[derive(Debug)]
pub struct CreateTopicsRequest {
    pub topics: Vec<CreatableTopic>,
    pub timeout_ms: i32,
    pub validate_only: bool,
}

#[derive(Debug)]
pub struct CreatableTopic {
    pub name: String,
    /// -1 asks for the broker's `num.partitions`.
    pub num_partitions: i32,
    /// -1 asks for the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Manual assignments: partition index and its brokers.
    pub assignments: Vec<(i32, Vec<i32>)>,
    pub configs: Vec<(String, Option<String>)>,
}

pub fn decode_request(r: &mut Reader, version: i16, flexible: bool) -> DecodeResult<CreateTopicsRequest> {
    let topics = r.array(flexible, 8, |r| {
        let name = r.string(flexible)?;
        let num_partitions = r.i32()?;
        let replication_factor = r.i16()?;
        let assignments = r.array(flexible, 5, |r| {
            let index = r.i32()?;
            let brokers = r.array(flexible, 4, |r| r.i32())?;
            r.tagged_fields(flexible)?;
            Ok((index, brokers))
        })?;
        let configs = r.array(flexible, 2, |r| {
            let name = r.string(flexible)?;
            let value = r.nullable_string(flexible)?;
            r.tagged_fields(flexible)?;
            Ok((name, value))
        })?;
        r.tagged_fields(flexible)?;
        Ok(CreatableTopic { name, num_partitions, replication_factor, assignments, configs })
    })?;
    let timeout_ms = r.i32()?;
    let validate_only = if version >= 1 { r.bool()? } else { false };
    r.tagged_fields(flexible)?;
    Ok(CreateTopicsRequest { topics, timeout_ms, validate_only })
}

pub struct CreatableTopicResult {
    pub name: String,
    pub topic_id: [u8; 16],
    pub error: ErrorCode,
    pub error_message: Option<String>,
    pub num_partitions: i32,
    pub replication_factor: i16,
    /// (name, value, read_only, config_source, is_sensitive)
    pub configs: Vec<(String, Option<String>, bool, i8, bool)>,
}

pub fn encode_response(w: &mut Writer, version: i16, flexible: bool, topics: &[CreatableTopicResult]) {
    if version >= 2 {
        w.i32(0); // throttle_time_ms
    }
    w.array_len(flexible, Some(topics.len()));
    for t in topics {
        w.string(flexible, &t.name);
        if version >= 7 {
            w.uuid(&t.topic_id);
        }
        w.i16(t.error.0);
        if version >= 1 {
            w.nullable_string(flexible, t.error_message.as_deref());
        }
        if version >= 5 {
            w.i32(t.num_partitions);
            w.i16(t.replication_factor);
            w.array_len(flexible, Some(t.configs.len()));
            for (name, value, read_only, source, sensitive) in &t.configs {
                w.string(flexible, name);
                w.nullable_string(flexible, value.as_deref());
                w.bool(*read_only);
                w.i8(*source);
                w.bool(*sensitive);
                w.tagged_fields(flexible);
            }
        }
        w.tagged_fields(flexible);
    }
    w.tagged_fields(flexible);
}
