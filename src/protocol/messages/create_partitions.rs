//! CreatePartitions (key 37), versions 0-3; flexible from 2.

use crate::protocol::codec::{DecodeResult, Reader, Writer};
use crate::protocol::error::ErrorCode;

#[derive(Debug)]
pub struct CreatePartitionsRequest {
    /// (topic, new total partition count)
    pub topics: Vec<(String, i32)>,
    pub timeout_ms: i32,
    pub validate_only: bool,
}

pub fn decode_request(r: &mut Reader, _version: i16, flexible: bool) -> DecodeResult<CreatePartitionsRequest> {
    let topics = r.array(flexible, 6, |r| {
        let name = r.string(flexible)?;
        let count = r.i32()?;
        // Manual assignments name brokers; a single broker has only itself, so they are read
        // and checked only for shape.
        r.nullable_array(flexible, 1, |r| {
            r.array(flexible, 4, |r| r.i32())?;
            r.tagged_fields(flexible)
        })?;
        r.tagged_fields(flexible)?;
        Ok((name, count))
    })?;
    let timeout_ms = r.i32()?;
    let validate_only = r.bool()?;
    r.tagged_fields(flexible)?;
    Ok(CreatePartitionsRequest { topics, timeout_ms, validate_only })
}

pub fn encode_response(w: &mut Writer, flexible: bool, results: &[(String, ErrorCode, Option<String>)]) {
    w.i32(0); // throttle_time_ms
    w.array_len(flexible, Some(results.len()));
    for (name, error, message) in results {
        w.string(flexible, name);
        w.i16(error.0);
        w.nullable_string(flexible, message.as_deref());
        w.tagged_fields(flexible);
    }
    w.tagged_fields(flexible);
}
