//! SyncGroup (key 14), versions 0-5; flexible from 4.
//!
//! The leader sends every member's assignment; followers send none. Version 3 adds
//! `GroupInstanceId`, version 5 the protocol type and name in both directions (KIP-559).

use bytes::Bytes;

use crate::protocol::codec::{DecodeError, DecodeResult, Reader, Writer};
use crate::protocol::error::ErrorCode;

#[derive(Debug)]
pub struct SyncGroupRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// Version 5+; the broker rejects the request when it disagrees with the group's.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<SyncGroupAssignment>,
}

#[derive(Debug, Clone)]
pub struct SyncGroupAssignment {
    pub member_id: String,
    /// Opaque to the broker (for consumers, a ConsumerProtocolAssignment); borrowed from the
    /// request frame.
    pub assignment: Bytes,
}

pub fn decode_request(r: &mut Reader, version: i16, flexible: bool) -> DecodeResult<SyncGroupRequest> {
    let group_id = r.string(flexible)?;
    let generation_id = r.i32()?;
    let member_id = r.string(flexible)?;
    let group_instance_id = if version >= 3 { r.nullable_string(flexible)? } else { None };
    let (protocol_type, protocol_name) = if version >= 5 { (r.nullable_string(flexible)?, r.nullable_string(flexible)?) } else { (None, None) };
    // Member id and assignment lengths (+ tagged fields when flexible).
    let min_assignment = if flexible { 3 } else { 6 };
    let assignments = r.array(flexible, min_assignment, |r| {
        let member_id = r.string(flexible)?;
        let assignment = r.nullable_bytes(flexible)?.ok_or(DecodeError::InvalidLength(-1))?;
        r.tagged_fields(flexible)?;
        Ok(SyncGroupAssignment { member_id, assignment })
    })?;
    r.tagged_fields(flexible)?;
    Ok(SyncGroupRequest { group_id, generation_id, member_id, group_instance_id, protocol_type, protocol_name, assignments })
}

#[derive(Debug, Clone)]
pub struct SyncGroupResponse {
    pub error: ErrorCode,
    /// Written from version 5.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// This member's assignment (empty on error).
    pub assignment: Bytes,
}

pub fn encode_response(w: &mut Writer, version: i16, flexible: bool, resp: &SyncGroupResponse) {
    if version >= 1 {
        w.i32(0); // throttle_time_ms
    }
    w.i16(resp.error.0);
    if version >= 5 {
        w.nullable_string(flexible, resp.protocol_type.as_deref());
        w.nullable_string(flexible, resp.protocol_name.as_deref());
    }
    w.nullable_bytes(flexible, Some(&resp.assignment));
    w.tagged_fields(flexible);
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let req = decode_request(&mut r, version, flexible).unwrap();
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
            error: ErrorCode::NONE,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignment: Bytes::from_static(b"assigned"),
        };
        let mut w = Writer::new();
        encode_response(&mut w, 5, true, &resp);
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i32().unwrap(), 0);
        assert_eq!(r.i16().unwrap(), 0);
        assert_eq!(r.nullable_string(true).unwrap().as_deref(), Some("consumer"));
        assert_eq!(r.nullable_string(true).unwrap().as_deref(), Some("range"));
        assert_eq!(r.nullable_bytes(true).unwrap().as_deref(), Some(&b"assigned"[..]));
        r.tagged_fields(true).unwrap();
        assert_eq!(r.remaining(), 0);

        let mut w = Writer::new();
        encode_response(&mut w, 0, false, &resp);
        assert_eq!(&w.finish()[..], &[0, 0, 0, 0, 0, 8, b'a', b's', b's', b'i', b'g', b'n', b'e', b'd'][..]);
    }
}
