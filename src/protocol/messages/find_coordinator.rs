//! FindCoordinator (key 10), versions 0-4; flexible from 3 (FindCoordinatorRequest.json,
//! FindCoordinatorResponse.json). Versions 5-6 (TRANSACTION_ABORTABLE, share groups) are not
//! served; they add no fields.
//!
//! Versions 0-3 ask for one key and answer with one coordinator at the top level; version 4
//! (KIP-699) batches: the request carries `CoordinatorKeys` and the response a `Coordinators`
//! array, one entry per key, each with its own error. Both forms are declared as the schema has
//! them; the handler sees every version as a list of keys (`FindCoordinatorRequest::keys`) and
//! answers with a list of coordinators (`FindCoordinatorResponse::from_coordinators`).

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

/// `KeyType` values.
pub const KEY_TYPE_GROUP: i8 = 0;
pub const KEY_TYPE_TRANSACTION: i8 = 1;

message! {
    pub struct FindCoordinatorRequest {
        /// Versions 0-3: the one key to look up.
        pub key: String [0..=3],
        /// 0 (group) or 1 (transaction); version 0 only asks for groups.
        pub key_type: i8 [1..],
        /// Version 4+: the keys to look up.
        pub coordinator_keys: Vec<String> [4..],
    }

    pub struct FindCoordinatorResponse {
        pub throttle_time_ms: i32 [1..],
        /// Versions 0-3: the one key's answer, at the top level.
        pub error: ErrorCode [0..=3],
        pub error_message: Option<String> [1..=3],
        pub node_id: i32 [0..=3],
        pub host: String [0..=3],
        pub port: i32 [0..=3],
        /// Version 4+: one answer per key.
        pub coordinators: Vec<Coordinator> [4..],
    }

    /// One key's answer.
    pub struct Coordinator {
        pub key: String,
        pub node_id: i32,
        pub host: String,
        pub port: i32,
        pub error: ErrorCode,
        pub error_message: Option<String>,
    }
}

impl FindCoordinatorRequest {
    /// The keys to look up in any version: exactly one for versions 0-3 (`key`), any number
    /// for 4+ (`coordinator_keys`).
    pub fn keys(&self, version: i16) -> &[String] {
        if version <= 3 {
            std::slice::from_ref(&self.key)
        } else {
            &self.coordinator_keys
        }
    }
}

impl FindCoordinatorResponse {
    /// The answer to `FindCoordinatorRequest::keys`: versions 0-3 answer the request's single
    /// key with `coordinators[0]` at the top level (none answers COORDINATOR_NOT_AVAILABLE,
    /// node -1, host "", port -1); version 4 carries every entry.
    pub fn from_coordinators(version: i16, mut coordinators: Vec<Coordinator>) -> FindCoordinatorResponse {
        if version >= 4 {
            return FindCoordinatorResponse { coordinators, ..Default::default() };
        }
        let c = if coordinators.is_empty() {
            Coordinator { node_id: -1, port: -1, error: ErrorCode::COORDINATOR_NOT_AVAILABLE, ..Default::default() }
        } else {
            coordinators.swap_remove(0)
        };
        FindCoordinatorResponse { error: c.error, error_message: c.error_message, node_id: c.node_id, host: c.host, port: c.port, ..Default::default() }
    }
}

impl Request for FindCoordinatorRequest {
    const KEY: ApiKey = ApiKey::FindCoordinator;
    const VERSIONS: (i16, i16) = (0, 4);
    const FLEXIBLE_FROM: i16 = 3;
    type Response = FindCoordinatorResponse;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::{Reader, Writer};
    use crate::protocol::wire::{Version, Wire};

    fn coordinator(key: &str) -> Coordinator {
        Coordinator { key: key.into(), node_id: 1, host: "localhost".into(), port: 9092, error: ErrorCode::NONE, error_message: None }
    }

    fn decode(w: Writer, version: i16, flexible: bool) -> FindCoordinatorRequest {
        let mut r = Reader::new(w.finish().freeze());
        let req = FindCoordinatorRequest::decode(&mut r, Version::new(version, flexible)).unwrap();
        assert_eq!(r.remaining(), 0, "v{version}");
        req
    }

    fn encode(response: &FindCoordinatorResponse, version: i16, flexible: bool) -> bytes::Bytes {
        let mut w = Writer::new();
        response.encode(&mut w, Version::new(version, flexible));
        w.finish().freeze()
    }

    #[test]
    fn decodes_v0_single_key() {
        let mut w = Writer::new();
        w.string(false, "group-a");
        let req = decode(w, 0, false);
        assert_eq!(req.key_type, KEY_TYPE_GROUP);
        assert_eq!(req.keys(0), &["group-a".to_string()][..]);
    }

    #[test]
    fn decodes_v3_first_flexible() {
        let mut w = Writer::new();
        w.string(true, "txn-1");
        w.i8(KEY_TYPE_TRANSACTION);
        w.tagged_fields(true);
        let req = decode(w, 3, true);
        assert_eq!(req.key_type, KEY_TYPE_TRANSACTION);
        assert_eq!(req.keys(3), &["txn-1".to_string()][..]);
    }

    #[test]
    fn decodes_v4_batched_keys() {
        let mut w = Writer::new();
        w.i8(KEY_TYPE_GROUP);
        w.array_len(true, Some(2));
        w.string(true, "g1");
        w.string(true, "g2");
        w.tagged_fields(true);
        let req = decode(w, 4, true);
        assert_eq!(req.keys(4), &["g1".to_string(), "g2".to_string()][..]);
    }

    #[test]
    fn encodes_v0_and_v4_responses() {
        let mut r = Reader::new(encode(&FindCoordinatorResponse::from_coordinators(0, vec![coordinator("g")]), 0, false));
        assert_eq!(r.i16().unwrap(), 0);
        assert_eq!(r.i32().unwrap(), 1);
        assert_eq!(r.string(false).unwrap(), "localhost");
        assert_eq!(r.i32().unwrap(), 9092);
        assert_eq!(r.remaining(), 0);

        let response = FindCoordinatorResponse::from_coordinators(4, vec![coordinator("g1"), coordinator("g2")]);
        let mut r = Reader::new(encode(&response, 4, true));
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

    /// A single-key version with no answer says COORDINATOR_NOT_AVAILABLE.
    #[test]
    fn no_coordinator_answers_not_available() {
        let mut r = Reader::new(encode(&FindCoordinatorResponse::from_coordinators(1, Vec::new()), 1, false));
        assert_eq!(r.i32().unwrap(), 0); // throttle
        assert_eq!(r.i16().unwrap(), ErrorCode::COORDINATOR_NOT_AVAILABLE.0);
        assert_eq!(r.nullable_string(false).unwrap(), None);
        assert_eq!(r.i32().unwrap(), -1);
        assert_eq!(r.string(false).unwrap(), "");
        assert_eq!(r.i32().unwrap(), -1);
        assert_eq!(r.remaining(), 0);
    }
}
