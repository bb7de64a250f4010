//! LeaveGroup (key 13), versions 0-5; flexible from 4 (LeaveGroupRequest.json,
//! LeaveGroupResponse.json).
//!
//! Versions 0-2 name one member at the top level; version 3 batches members (with their
//! `GroupInstanceId`) and answers per member; version 5 adds a per-member `Reason` (KIP-800).
//! Both request forms are declared as the schema has them; the handler sees every version as a
//! list of members through `LeaveGroupRequest::into_members`. Below version 3 the response has
//! only the top-level error, which carries the one member's.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct LeaveGroupRequest {
        pub group_id: String,
        /// Versions 0-2: the one leaving member.
        pub member_id: String [0..=2],
        /// Version 3+: the leaving members.
        pub members: Vec<MemberIdentity> [3..],
    }

    pub struct MemberIdentity {
        pub member_id: String,
        pub group_instance_id: Option<String>,
        pub reason: Option<String> [5..],
    }

    pub struct LeaveGroupResponse {
        pub throttle_time_ms: i32 [1..],
        pub error: ErrorCode,
        /// Written from version 3.
        pub members: Vec<MemberResponse> [3..],
    }

    pub struct MemberResponse {
        pub member_id: String,
        pub group_instance_id: Option<String>,
        pub error: ErrorCode,
    }
}

impl LeaveGroupRequest {
    /// The leaving members in any version. Versions 0-2 carry exactly one (`member_id`),
    /// without instance id or reason.
    pub fn into_members(self, version: i16) -> Vec<MemberIdentity> {
        if version <= 2 {
            vec![MemberIdentity { member_id: self.member_id, group_instance_id: None, reason: None }]
        } else {
            self.members
        }
    }
}

impl Request for LeaveGroupRequest {
    const KEY: ApiKey = ApiKey::LeaveGroup;
    const VERSIONS: (i16, i16) = (0, 5);
    const FLEXIBLE_FROM: i16 = 4;
    type Response = LeaveGroupResponse;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::{Reader, Writer};
    use crate::protocol::wire::{Version, Wire};

    #[test]
    fn decodes_v0_single_member() {
        let mut w = Writer::new();
        w.string(false, "group");
        w.string(false, "m1");
        let mut r = Reader::new(w.finish().freeze());
        let req = LeaveGroupRequest::decode(&mut r, Version::new(0, false)).unwrap();
        assert_eq!(r.remaining(), 0);
        assert_eq!(req.group_id, "group");
        let members = req.into_members(0);
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].member_id, "m1");
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
            let req = LeaveGroupRequest::decode(&mut r, Version::new(version, flexible)).unwrap();
            assert_eq!(r.remaining(), 0, "v{version}");
            let members = req.into_members(version);
            assert_eq!(members.len(), 2);
            assert_eq!(members[0].member_id, "m1");
            assert_eq!(members[1].group_instance_id.as_deref(), Some("i2"));
            assert_eq!(members[1].reason.as_deref(), if version >= 5 { Some("shutdown") } else { None });
        }
    }

    #[test]
    fn encodes_response() {
        let response = LeaveGroupResponse {
            throttle_time_ms: 0,
            error: ErrorCode::NONE,
            members: vec![MemberResponse { member_id: "m1".into(), group_instance_id: None, error: ErrorCode(25) }],
        };
        let mut w = Writer::new();
        response.encode(&mut w, Version::new(0, false));
        assert_eq!(&w.finish()[..], &[0, 0][..]);

        let mut w = Writer::new();
        response.encode(&mut w, Version::new(5, true));
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
