//! LeaveGroup (key 13), versions 0-5; flexible from 4.
//!
//! Versions 0-2 name one member at the top level; version 3 batches members (with their
//! `GroupInstanceId`) and answers per member; version 5 adds a per-member `Reason` (KIP-800).

use crate::protocol::codec::{DecodeResult, Reader, Writer};
use crate::protocol::error::ErrorCode;

#[derive(Debug)]
pub struct LeaveGroupRequest {
    pub group_id: String,
    /// The leaving members. Versions 0-2 carry exactly one (`MemberId`), without instance id or
    /// reason.
    pub members: Vec<MemberIdentity>,
}

#[derive(Debug, Clone)]
pub struct MemberIdentity {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// Version 5+.
    pub reason: Option<String>,
}

pub fn decode_request(r: &mut Reader, version: i16, flexible: bool) -> DecodeResult<LeaveGroupRequest> {
    let group_id = r.string(flexible)?;
    let members = if version <= 2 {
        let member_id = r.string(flexible)?;
        vec![MemberIdentity { member_id, group_instance_id: None, reason: None }]
    } else {
        // Member id and instance id (+ tagged fields when flexible).
        let min_member = if flexible { 3 } else { 4 };
        r.array(flexible, min_member, |r| {
            let member_id = r.string(flexible)?;
            let group_instance_id = r.nullable_string(flexible)?;
            let reason = if version >= 5 { r.nullable_string(flexible)? } else { None };
            r.tagged_fields(flexible)?;
            Ok(MemberIdentity { member_id, group_instance_id, reason })
        })?
    };
    r.tagged_fields(flexible)?;
    Ok(LeaveGroupRequest { group_id, members })
}

#[derive(Debug, Clone)]
pub struct MemberResponse {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub error: ErrorCode,
}

/// `members` is written from version 3; below that only the top-level error is.
pub fn encode_response(w: &mut Writer, version: i16, flexible: bool, error: ErrorCode, members: &[MemberResponse]) {
    if version >= 1 {
        w.i32(0); // throttle_time_ms
    }
    w.i16(error.0);
    if version >= 3 {
        w.array_len(flexible, Some(members.len()));
        for m in members {
            w.string(flexible, &m.member_id);
            w.nullable_string(flexible, m.group_instance_id.as_deref());
            w.i16(m.error.0);
            w.tagged_fields(flexible);
        }
    }
    w.tagged_fields(flexible);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_v0_single_member() {
        let mut w = Writer::new();
        w.string(false, "group");
        w.string(false, "m1");
        let mut r = Reader::new(w.finish().freeze());
        let req = decode_request(&mut r, 0, false).unwrap();
        assert_eq!(r.remaining(), 0);
        assert_eq!(req.group_id, "group");
        assert_eq!(req.members.len(), 1);
        assert_eq!(req.members[0].member_id, "m1");
    }

    #[test]
    fn decodes_v3_v4_v5_batches() {
        for (version, flexible) in [(3, false), (4, true), (5, true)] {
            let mut w = Writer::new();
            w.string(flexible, "group");
            w.array_len(flexible, Some(2));
            for (member, instance) in [("m1", None), ("", Some("i2"))] {
                w.string(flexible, member);
                w.nullable_string(flexible, instance);
                if version >= 5 {
                    w.nullable_string(flexible, Some("shutdown"));
                }
                w.tagged_fields(flexible);
            }
            w.tagged_fields(flexible);
            let mut r = Reader::new(w.finish().freeze());
            let req = decode_request(&mut r, version, flexible).unwrap();
            assert_eq!(r.remaining(), 0, "v{version}");
            assert_eq!(req.members.len(), 2);
            assert_eq!(req.members[0].member_id, "m1");
            assert_eq!(req.members[1].group_instance_id.as_deref(), Some("i2"));
            assert_eq!(req.members[1].reason.as_deref(), if version >= 5 { Some("shutdown") } else { None });
        }
    }

    #[test]
    fn encodes_response() {
        let members = [MemberResponse { member_id: "m1".into(), group_instance_id: None, error: ErrorCode(25) }];
        let mut w = Writer::new();
        encode_response(&mut w, 0, false, ErrorCode::NONE, &members);
        assert_eq!(&w.finish()[..], &[0, 0][..]);

        let mut w = Writer::new();
        encode_response(&mut w, 5, true, ErrorCode::NONE, &members);
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i32().unwrap(), 0);
        assert_eq!(r.i16().unwrap(), 0);
        let decoded = r
            .array(true, 4, |r| {
                let id = r.string(true)?;
                let instance = r.nullable_string(true)?;
                let error = r.i16()?;
                r.tagged_fields(true)?;
                Ok((id, instance, error))
            })
            .unwrap();
        assert_eq!(decoded, vec![("m1".to_string(), None, 25)]);
        r.tagged_fields(true).unwrap();
        assert_eq!(r.remaining(), 0);
    }
}
