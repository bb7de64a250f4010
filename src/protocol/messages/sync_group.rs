//! SyncGroup (key 14), versions 0-5; flexible from 4 (SyncGroupRequest.json,
//! SyncGroupResponse.json).
//!
//! The leader sends every member's assignment; followers send none. Version 3 adds
//! `GroupInstanceId`, version 5 the protocol type and name in both directions (KIP-559).

use bytes::Bytes;

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct SyncGroupRequest {
        pub group_id: String,
        pub generation_id: i32,
        pub member_id: String,
        pub group_instance_id: Option<String> [3..],
        /// The broker rejects the request when it disagrees with the group's.
        pub protocol_type: Option<String> [5..],
        pub protocol_name: Option<String> [5..],
        pub assignments: Vec<SyncGroupAssignment>,
    }

    pub struct SyncGroupAssignment {
        pub member_id: String,
        /// Opaque to the broker (for consumers, a ConsumerProtocolAssignment); borrowed from
        /// the request frame.
        pub assignment: Bytes,
    }

    pub struct SyncGroupResponse {
        pub throttle_time_ms: i32 [1..],
        pub error: ErrorCode,
        pub protocol_type: Option<String> [5..],
        pub protocol_name: Option<String> [5..],
        /// This member's assignment (empty on error).
        pub assignment: Bytes,
    }
}

impl Request for SyncGroupRequest {
    const KEY: ApiKey = ApiKey::SyncGroup;
    const VERSIONS: (i16, i16) = (0, 5);
    const FLEXIBLE_FROM: i16 = 4;
    type Response = SyncGroupResponse;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::{Reader, Writer};
    use crate::protocol::wire::{Version, Wire};

    fn request(version: i16, flexible: bool) -> Bytes {
        let mut w = Writer::new();
        w.string(flexible, "group");
        w.i32(7);
        w.string(flexible, "m1");
        if version >= 3 {
            w.nullable_string(flexible, None);
        }
        if version >= 5 {
            w.nullable_string(flexible, Some("consumer"));
            w.nullable_string(flexible, Some("range"));
        }
        w.array_len(flexible, Some(2));
        for (member, assignment) in [("m1", &b"a1"[..]), ("m2", &b"a2"[..])] {
            w.string(flexible, member);
            w.nullable_bytes(flexible, Some(assignment));
            w.tagged_fields(flexible);
        }
        w.tagged_fields(flexible);
        w.finish().freeze()
    }

    #[test]
    fn decodes_v0_v4_v5() {
        for (version, flexible) in [(0, false), (4, true), (5, true)] {
            let mut r = Reader::new(request(version, flexible));
            let req = SyncGroupRequest::decode(&mut r, Version::new(version, flexible)).unwrap();
            assert_eq!(r.remaining(), 0, "v{version}");
            assert_eq!(req.group_id, "group");
            assert_eq!(req.generation_id, 7);
            assert_eq!(req.member_id, "m1");
            assert_eq!(req.group_instance_id, None);
            assert_eq!(req.protocol_name.as_deref(), if version >= 5 { Some("range") } else { None });
            assert_eq!(req.assignments.len(), 2);
            assert_eq!(req.assignments[1].member_id, "m2");
            assert_eq!(&req.assignments[1].assignment[..], b"a2");
        }
    }

    #[test]
    fn encodes_response() {
        let resp = SyncGroupResponse {
            throttle_time_ms: 0,
            error: ErrorCode::NONE,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignment: Bytes::from_static(b"assigned"),
        };
        let mut w = Writer::new();
        resp.encode(&mut w, Version::new(5, true));
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i32().unwrap(), 0);
        assert_eq!(r.i16().unwrap(), 0);
        assert_eq!(r.nullable_string(true).unwrap().as_deref(), Some("consumer"));
        assert_eq!(r.nullable_string(true).unwrap().as_deref(), Some("range"));
        assert_eq!(r.nullable_bytes(true).unwrap().as_deref(), Some(&b"assigned"[..]));
        r.tagged_fields(true).unwrap();
        assert_eq!(r.remaining(), 0);

        let mut w = Writer::new();
        resp.encode(&mut w, Version::new(0, false));
        assert_eq!(&w.finish()[..], &[0, 0, 0, 0, 0, 8, b'a', b's', b's', b'i', b'g', b'n', b'e', b'd'][..]);
    }
}
