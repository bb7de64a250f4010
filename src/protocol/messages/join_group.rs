//! JoinGroup (key 11), versions 0-9; flexible from 6.
//!
//! Version 4+ clients join twice: an empty member id is answered with MEMBER_ID_REQUIRED and a
//! fresh id (KIP-394). Version 5 adds static membership (`GroupInstanceId`), 7 the protocol type
//! in the response (KIP-559), 8 the `Reason`, 9 `SkipAssignment`.

use bytes::Bytes;

use crate::protocol::codec::{DecodeError, DecodeResult, Reader, Writer};
use crate::protocol::error::ErrorCode;

#[derive(Debug)]
pub struct JoinGroupRequest {
    pub group_id: String,
    pub session_timeout_ms: i32,
    /// Version 0 has no rebalance timeout; Kafka uses the session timeout in its place.
    pub rebalance_timeout_ms: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub protocol_type: String,
    pub protocols: Vec<JoinGroupProtocol>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct JoinGroupProtocol {
    pub name: String,
    /// Opaque to the broker (for consumers, a ConsumerProtocolSubscription); borrowed from the
    /// request frame.
    pub metadata: Bytes,
}

fn bytes(r: &mut Reader, flexible: bool) -> DecodeResult<Bytes> {
    r.nullable_bytes(flexible)?.ok_or(DecodeError::InvalidLength(-1))
}

pub fn decode_request(r: &mut Reader, version: i16, flexible: bool) -> DecodeResult<JoinGroupRequest> {
    let group_id = r.string(flexible)?;
    let session_timeout_ms = r.i32()?;
    let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { session_timeout_ms };
    let member_id = r.string(flexible)?;
    let group_instance_id = if version >= 5 { r.nullable_string(flexible)? } else { None };
    let protocol_type = r.string(flexible)?;
    // Name and metadata lengths (+ tagged fields when flexible).
    let min_protocol = if flexible { 3 } else { 6 };
    let protocols = r.array(flexible, min_protocol, |r| {
        let name = r.string(flexible)?;
        let metadata = bytes(r, flexible)?;
        r.tagged_fields(flexible)?;
        Ok(JoinGroupProtocol { name, metadata })
    })?;
    let reason = if version >= 8 { r.nullable_string(flexible)? } else { None };
    r.tagged_fields(flexible)?;
    Ok(JoinGroupRequest { group_id, session_timeout_ms, rebalance_timeout_ms, member_id, group_instance_id, protocol_type, protocols, reason })
}

#[derive(Debug, Clone)]
pub struct JoinGroupResponse {
    pub error: ErrorCode,
    pub generation_id: i32,
    /// Written from version 7.
    pub protocol_type: Option<String>,
    /// Nullable from version 7; written as "" when `None` below that.
    pub protocol_name: Option<String>,
    pub leader: String,
    /// Written from version 9.
    pub skip_assignment: bool,
    pub member_id: String,
    /// Non-empty only in the leader's response.
    pub members: Vec<JoinGroupResponseMember>,
}

#[derive(Debug, Clone)]
pub struct JoinGroupResponseMember {
    pub member_id: String,
    /// Written from version 5.
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

pub fn encode_response(w: &mut Writer, version: i16, flexible: bool, resp: &JoinGroupResponse) {
    if version >= 2 {
        w.i32(0); // throttle_time_ms
    }
    w.i16(resp.error.0);
    w.i32(resp.generation_id);
    if version >= 7 {
        w.nullable_string(flexible, resp.protocol_type.as_deref());
        w.nullable_string(flexible, resp.protocol_name.as_deref());
    } else {
        w.string(flexible, resp.protocol_name.as_deref().unwrap_or(""));
    }
    w.string(flexible, &resp.leader);
    if version >= 9 {
        w.bool(resp.skip_assignment);
    }
    w.string(flexible, &resp.member_id);
    w.array_len(flexible, Some(resp.members.len()));
    for m in &resp.members {
        w.string(flexible, &m.member_id);
        if version >= 5 {
            w.nullable_string(flexible, m.group_instance_id.as_deref());
        }
        w.nullable_bytes(flexible, Some(&m.metadata));
        w.tagged_fields(flexible);
    }
    w.tagged_fields(flexible);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(version: i16, flexible: bool) -> Bytes {
        let mut w = Writer::new();
        w.string(flexible, "group");
        w.i32(10_000);
        if version >= 1 {
            w.i32(60_000);
        }
        w.string(flexible, "");
        if version >= 5 {
            w.nullable_string(flexible, Some("instance-1"));
        }
        w.string(flexible, "consumer");
        w.array_len(flexible, Some(2));
        for (name, meta) in [("range", &b"sub-r"[..]), ("roundrobin", &b""[..])] {
            w.string(flexible, name);
            w.nullable_bytes(flexible, Some(meta));
            w.tagged_fields(flexible);
        }
        if version >= 8 {
            w.nullable_string(flexible, Some("rebalance"));
        }
        w.tagged_fields(flexible);
        w.finish().freeze()
    }

    #[test]
    fn decodes_v0_v6_v9() {
        for (version, flexible) in [(0, false), (6, true), (9, true)] {
            let mut r = Reader::new(request(version, flexible));
            let req = decode_request(&mut r, version, flexible).unwrap();
            assert_eq!(r.remaining(), 0, "v{version}");
            assert_eq!(req.group_id, "group");
            assert_eq!(req.session_timeout_ms, 10_000);
            assert_eq!(req.rebalance_timeout_ms, if version >= 1 { 60_000 } else { 10_000 });
            assert_eq!(req.member_id, "");
            assert_eq!(req.group_instance_id.as_deref(), if version >= 5 { Some("instance-1") } else { None });
            assert_eq!(req.protocol_type, "consumer");
            assert_eq!(req.protocols.len(), 2);
            assert_eq!(req.protocols[0].name, "range");
            assert_eq!(&req.protocols[0].metadata[..], b"sub-r");
            assert!(req.protocols[1].metadata.is_empty());
            assert_eq!(req.reason.as_deref(), if version >= 8 { Some("rebalance") } else { None });
        }
    }

    #[test]
    fn encodes_leader_response() {
        let resp = JoinGroupResponse {
            error: ErrorCode::NONE,
            generation_id: 3,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            leader: "m1".into(),
            skip_assignment: false,
            member_id: "m1".into(),
            members: vec![JoinGroupResponseMember { member_id: "m1".into(), group_instance_id: None, metadata: Bytes::from_static(b"sub") }],
        };
        let mut w = Writer::new();
        encode_response(&mut w, 9, true, &resp);
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i32().unwrap(), 0);
        assert_eq!(r.i16().unwrap(), 0);
        assert_eq!(r.i32().unwrap(), 3);
        assert_eq!(r.nullable_string(true).unwrap().as_deref(), Some("consumer"));
        assert_eq!(r.nullable_string(true).unwrap().as_deref(), Some("range"));
        assert_eq!(r.string(true).unwrap(), "m1");
        assert!(!r.bool().unwrap());
        assert_eq!(r.string(true).unwrap(), "m1");
        let members = r
            .array(true, 3, |r| {
                let id = r.string(true)?;
                let instance = r.nullable_string(true)?;
                let meta = bytes(r, true)?;
                r.tagged_fields(true)?;
                Ok((id, instance, meta))
            })
            .unwrap();
        assert_eq!(members.len(), 1);
        assert_eq!(&members[0].2[..], b"sub");
        r.tagged_fields(true).unwrap();
        assert_eq!(r.remaining(), 0);

        // Version 0: no throttle, no protocol type, non-nullable protocol name.
        let mut w = Writer::new();
        encode_response(&mut w, 0, false, &JoinGroupResponse { protocol_name: None, members: vec![], ..resp });
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i16().unwrap(), 0);
        assert_eq!(r.i32().unwrap(), 3);
        assert_eq!(r.string(false).unwrap(), "");
        assert_eq!(r.string(false).unwrap(), "m1");
        assert_eq!(r.string(false).unwrap(), "m1");
        assert_eq!(r.i32().unwrap(), 0);
        assert_eq!(r.remaining(), 0);
    }
}
