//! FindCoordinator (key 10), versions 0-4; flexible from 3.
//!
//! Versions 0-3 ask for one key and answer with one coordinator at the top level; version 4
//! (KIP-699) batches: the request carries `CoordinatorKeys` and the response a `Coordinators`
//! array, one entry per key, each with its own error.

use crate::protocol::codec::{DecodeResult, Reader, Writer};
use crate::protocol::error::ErrorCode;

/// `KeyType` values.
pub const KEY_TYPE_GROUP: i8 = 0;
pub const KEY_TYPE_TRANSACTION: i8 = 1;

#[derive(Debug)]
pub struct FindCoordinatorRequest {
    /// 0 (group) or 1 (transaction); version 0 only asks for groups.
    pub key_type: i8,
    /// The keys to look up: exactly one for versions 0-3 (`Key`), any number for 4+
    /// (`CoordinatorKeys`).
    pub keys: Vec<String>,
}

pub fn decode_request(r: &mut Reader, version: i16, flexible: bool) -> DecodeResult<FindCoordinatorRequest> {
    let single = if version <= 3 { Some(r.string(flexible)?) } else { None };
    let key_type = if version >= 1 { r.i8()? } else { KEY_TYPE_GROUP };
    let keys = if version >= 4 {
        // Each key is at least a compact length byte (version 4+ is always flexible).
        r.array(flexible, 1, |r| r.string(flexible))?
    } else {
        single.into_iter().collect()
    };
    r.tagged_fields(flexible)?;
    Ok(FindCoordinatorRequest { key_type, keys })
}

/// One key's answer.
#[derive(Debug, Clone)]
pub struct Coordinator {
    pub key: String,
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub error: ErrorCode,
    pub error_message: Option<String>,
}

/// Versions 0-3 answer the request's single key with `coordinators[0]` (an empty slice answers
/// COORDINATOR_NOT_AVAILABLE); version 4 writes every entry.
pub fn encode_response(w: &mut Writer, version: i16, flexible: bool, coordinators: &[Coordinator]) {
    if version >= 1 {
        w.i32(0); // throttle_time_ms
    }
    if version <= 3 {
        match coordinators.first() {
            Some(c) => {
                w.i16(c.error.0);
                if version >= 1 {
                    w.nullable_string(flexible, c.error_message.as_deref());
                }
                w.i32(c.node_id);
                w.string(flexible, &c.host);
                w.i32(c.port);
            }
            None => {
                w.i16(ErrorCode::COORDINATOR_NOT_AVAILABLE.0);
                if version >= 1 {
                    w.nullable_string(flexible, None);
                }
                w.i32(-1);
                w.string(flexible, "");
                w.i32(-1);
            }
        }
    } else {
        w.array_len(flexible, Some(coordinators.len()));
        for c in coordinators {
            w.string(flexible, &c.key);
            w.i32(c.node_id);
            w.string(flexible, &c.host);
            w.i32(c.port);
            w.i16(c.error.0);
            w.nullable_string(flexible, c.error_message.as_deref());
            w.tagged_fields(flexible);
        }
    }
    w.tagged_fields(flexible);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coordinator(key: &str) -> Coordinator {
        Coordinator { key: key.into(), node_id: 1, host: "localhost".into(), port: 9092, error: ErrorCode::NONE, error_message: None }
    }

    #[test]
    fn decodes_v0_single_key() {
        let mut w = Writer::new();
        w.string(false, "group-a");
        let mut r = Reader::new(w.finish().freeze());
        let req = decode_request(&mut r, 0, false).unwrap();
        assert_eq!(req.key_type, KEY_TYPE_GROUP);
        assert_eq!(req.keys, vec!["group-a".to_string()]);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn decodes_v3_first_flexible() {
        let mut w = Writer::new();
        w.string(true, "txn-1");
        w.i8(KEY_TYPE_TRANSACTION);
        w.tagged_fields(true);
        let mut r = Reader::new(w.finish().freeze());
        let req = decode_request(&mut r, 3, true).unwrap();
        assert_eq!(req.key_type, KEY_TYPE_TRANSACTION);
        assert_eq!(req.keys, vec!["txn-1".to_string()]);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn decodes_v4_batched_keys() {
        let mut w = Writer::new();
        w.i8(KEY_TYPE_GROUP);
        w.array_len(true, Some(2));
        w.string(true, "g1");
        w.string(true, "g2");
        w.tagged_fields(true);
        let mut r = Reader::new(w.finish().freeze());
        let req = decode_request(&mut r, 4, true).unwrap();
        assert_eq!(req.keys, vec!["g1".to_string(), "g2".to_string()]);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn encodes_v0_and_v4_responses() {
        let mut w = Writer::new();
        encode_response(&mut w, 0, false, &[coordinator("g")]);
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i16().unwrap(), 0);
        assert_eq!(r.i32().unwrap(), 1);
        assert_eq!(r.string(false).unwrap(), "localhost");
        assert_eq!(r.i32().unwrap(), 9092);
        assert_eq!(r.remaining(), 0);

        let mut w = Writer::new();
        encode_response(&mut w, 4, true, &[coordinator("g1"), coordinator("g2")]);
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i32().unwrap(), 0); // throttle
        let entries = r
            .array(true, 1, |r| {
                let key = r.string(true)?;
                let node = r.i32()?;
                let host = r.string(true)?;
                let port = r.i32()?;
                let error = r.i16()?;
                let message = r.nullable_string(true)?;
                r.tagged_fields(true)?;
                Ok((key, node, host, port, error, message))
            })
            .unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].0, "g2");
        assert_eq!(entries[1].3, 9092);
        assert_eq!(entries[1].5, None);
        r.tagged_fields(true).unwrap();
        assert_eq!(r.remaining(), 0);
    }
}
