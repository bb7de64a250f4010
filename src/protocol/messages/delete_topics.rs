//! DeleteTopics (key 20), versions 1-6; flexible from 4. From version 6 topics may be named
//! by id instead of name.

use crate::protocol::codec::{DecodeResult, Reader, Writer};
use crate::protocol::error::ErrorCode;

#[derive(Debug)]
pub struct DeleteTopicsRequest {
    /// Each topic by name or (v6+) by id with a null name.
    pub topics: Vec<(Option<String>, [u8; 16])>,
    pub timeout_ms: i32,
}

pub fn decode_request(r: &mut Reader, version: i16, flexible: bool) -> DecodeResult<DeleteTopicsRequest> {
    let topics = if version >= 6 {
        r.array(flexible, 17, |r| {
            let name = r.nullable_string(flexible)?;
            let id = r.uuid()?;
            r.tagged_fields(flexible)?;
            Ok((name, id))
        })?
    } else {
        r.array(flexible, 1, |r| Ok((Some(r.string(flexible)?), [0u8; 16])))?
    };
    let timeout_ms = r.i32()?;
    r.tagged_fields(flexible)?;
    Ok(DeleteTopicsRequest { topics, timeout_ms })
}

pub struct DeletableTopicResult {
    pub name: Option<String>,
    pub topic_id: [u8; 16],
    pub error: ErrorCode,
    pub error_message: Option<String>,
}

pub fn encode_response(w: &mut Writer, version: i16, flexible: bool, results: &[DeletableTopicResult]) {
    if version >= 1 {
        w.i32(0); // throttle_time_ms
    }
    w.array_len(flexible, Some(results.len()));
    for t in results {
        if version >= 6 {
            w.nullable_string(flexible, t.name.as_deref());
            w.uuid(&t.topic_id);
        } else {
            w.string(flexible, t.name.as_deref().unwrap_or(""));
        }
        w.i16(t.error.0);
        if version >= 5 {
            w.nullable_string(flexible, t.error_message.as_deref());
        }
        w.tagged_fields(flexible);
    }
    w.tagged_fields(flexible);
}
