//! DescribeGroups (key 15), versions 0-5; flexible from 5.
//!
//! Version 3 adds authorized operations, 4 each member's `GroupInstanceId`. (Version 6, not
//! served, adds a per-group `ErrorMessage` after the error code.)

use bytes::Bytes;

use crate::protocol::codec::{DecodeResult, Reader, Writer};
use crate::protocol::error::ErrorCode;

/// `AuthorizedOperations` when the client did not ask for them.
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

#[derive(Debug)]
pub struct DescribeGroupsRequest {
    pub groups: Vec<String>,
    /// Version 3+.
    pub include_authorized_operations: bool,
}

pub fn decode_request(r: &mut Reader, version: i16, flexible: bool) -> DecodeResult<DescribeGroupsRequest> {
    let groups = r.array(flexible, if flexible { 1 } else { 2 }, |r| r.string(flexible))?;
    let include_authorized_operations = if version >= 3 { r.bool()? } else { false };
    r.tagged_fields(flexible)?;
    Ok(DescribeGroupsRequest { groups, include_authorized_operations })
}

#[derive(Debug, Clone)]
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
    /// Written from version 3; `AUTHORIZED_OPERATIONS_OMITTED` when not requested.
    pub authorized_operations: i32,
}

#[derive(Debug, Clone)]
pub struct DescribedGroupMember {
    pub member_id: String,
    /// Written from version 4.
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub member_metadata: Bytes,
    pub member_assignment: Bytes,
}

pub fn encode_response(w: &mut Writer, version: i16, flexible: bool, groups: &[DescribedGroup]) {
    if version >= 1 {
        w.i32(0); // throttle_time_ms
    }
    w.array_len(flexible, Some(groups.len()));
    for g in groups {
        w.i16(g.error.0);
        w.string(flexible, &g.group_id);
        w.string(flexible, &g.group_state);
        w.string(flexible, &g.protocol_type);
        w.string(flexible, &g.protocol_data);
        w.array_len(flexible, Some(g.members.len()));
        for m in &g.members {
            w.string(flexible, &m.member_id);
            if version >= 4 {
                w.nullable_string(flexible, m.group_instance_id.as_deref());
            }
            w.string(flexible, &m.client_id);
            w.string(flexible, &m.client_host);
            w.nullable_bytes(flexible, Some(&m.member_metadata));
            w.nullable_bytes(flexible, Some(&m.member_assignment));
            w.tagged_fields(flexible);
        }
        if version >= 3 {
            w.i32(g.authorized_operations);
        }
        w.tagged_fields(flexible);
    }
    w.tagged_fields(flexible);
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let req = decode_request(&mut r, version, flexible).unwrap();
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
        let mut w = Writer::new();
        encode_response(&mut w, 0, false, std::slice::from_ref(&group));
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
        encode_response(&mut w, 5, true, &[group]);
        let frame = w.finish().freeze();
        let mut r = Reader::new(frame.clone());
        assert_eq!(r.i32().unwrap(), 0);
        assert_eq!(r.array_len(true, 1).unwrap(), Some(1));
        // The group ends with authorized operations, its tagged fields, then the response's.
        assert_eq!(&frame[frame.len() - 6..], &[0x80, 0, 0, 0, 0, 0][..]);
    }
}
