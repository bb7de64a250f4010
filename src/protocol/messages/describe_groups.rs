//! DescribeGroups (key 15), versions 0-5; flexible from 5 (DescribeGroupsRequest.json,
//! DescribeGroupsResponse.json).
//!
//! Version 3 adds authorized operations, 4 each member's `GroupInstanceId`. (Version 6, not
//! served, adds a per-group `ErrorMessage` after the error code; it is left out.)

use bytes::Bytes;

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

/// `AuthorizedOperations` when the client did not ask for them.
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

message! {
    pub struct DescribeGroupsRequest {
        pub groups: Vec<String>,
        pub include_authorized_operations: bool [3..],
    }

    pub struct DescribeGroupsResponse {
        pub throttle_time_ms: i32 [1..],
        pub groups: Vec<DescribedGroup>,
    }

    pub struct DescribedGroup {
        pub error: ErrorCode,
        pub group_id: String,
        /// "Dead" for an unknown group (Kafka answers unknown groups with NONE and state Dead
        /// before version 6).
        pub group_state: String,
        pub protocol_type: String,
        /// The chosen protocol name (only filled in when Stable).
        pub protocol_data: String,
        pub members: Vec<DescribedGroupMember>,
        /// `AUTHORIZED_OPERATIONS_OMITTED` when not requested.
        pub authorized_operations: i32 [3..] = AUTHORIZED_OPERATIONS_OMITTED,
    }

    pub struct DescribedGroupMember {
        pub member_id: String,
        pub group_instance_id: Option<String> [4..],
        pub client_id: String,
        pub client_host: String,
        pub member_metadata: Bytes,
        pub member_assignment: Bytes,
    }
}

impl Request for DescribeGroupsRequest {
    const KEY: ApiKey = ApiKey::DescribeGroups;
    const VERSIONS: (i16, i16) = (0, 5);
    const FLEXIBLE_FROM: i16 = 5;
    type Response = DescribeGroupsResponse;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::{Reader, Writer};
    use crate::protocol::wire::{Version, Wire};

    #[test]
    fn decodes_v0_v3_v5() {
        for (version, flexible) in [(0, false), (3, false), (5, true)] {
            let mut w = Writer::new();
            w.array_len(flexible, Some(2));
            w.string(flexible, "g1");
            w.string(flexible, "g2");
            if version >= 3 {
                w.bool(true);
            }
            w.tagged_fields(flexible);
            let mut r = Reader::new(w.finish().freeze());
            let req = DescribeGroupsRequest::decode(&mut r, Version::new(version, flexible)).unwrap();
            assert_eq!(r.remaining(), 0, "v{version}");
            assert_eq!(req.groups, vec!["g1".to_string(), "g2".to_string()]);
            assert_eq!(req.include_authorized_operations, version >= 3);
        }
    }

    #[test]
    fn encodes_response() {
        let group = DescribedGroup {
            error: ErrorCode::NONE,
            group_id: "g".into(),
            group_state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol_data: "range".into(),
            members: vec![DescribedGroupMember {
                member_id: "m1".into(),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                member_metadata: Bytes::from_static(b"md"),
                member_assignment: Bytes::from_static(b"as"),
            }],
            authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        };
        let response = DescribeGroupsResponse { throttle_time_ms: 0, groups: vec![group] };
        let mut w = Writer::new();
        response.encode(&mut w, Version::new(0, false));
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i32().unwrap(), 1); // group count: no throttle in v0
        assert_eq!(r.i16().unwrap(), 0);
        assert_eq!(r.string(false).unwrap(), "g");
        assert_eq!(r.string(false).unwrap(), "Stable");
        assert_eq!(r.string(false).unwrap(), "consumer");
        assert_eq!(r.string(false).unwrap(), "range");
        assert_eq!(r.i32().unwrap(), 1);
        assert_eq!(r.string(false).unwrap(), "m1");
        assert_eq!(r.string(false).unwrap(), "c");
        assert_eq!(r.string(false).unwrap(), "/127.0.0.1");
        assert_eq!(r.nullable_bytes(false).unwrap().as_deref(), Some(&b"md"[..]));
        assert_eq!(r.nullable_bytes(false).unwrap().as_deref(), Some(&b"as"[..]));
        assert_eq!(r.remaining(), 0);

        let mut w = Writer::new();
        response.encode(&mut w, Version::new(5, true));
        let frame = w.finish().freeze();
        let mut r = Reader::new(frame.clone());
        assert_eq!(r.i32().unwrap(), 0);
        assert_eq!(r.array_len(true, 1).unwrap(), Some(1));
        // The group ends with authorized operations, its tagged fields, then the response's.
        assert_eq!(&frame[frame.len() - 6..], &[0x80, 0, 0, 0, 0, 0][..]);
    }

    /// Authorized operations default to "not requested" (the schema's default).
    #[test]
    fn authorized_operations_default_to_omitted() {
        assert_eq!(DescribedGroup::default().authorized_operations, AUTHORIZED_OPERATIONS_OMITTED);
    }
}
