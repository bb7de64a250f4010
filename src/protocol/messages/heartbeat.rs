//! Heartbeat (key 12), versions 0-4; flexible from 4.

use crate::protocol::codec::{DecodeResult, Reader, Writer};
use crate::protocol::error::ErrorCode;

#[derive(Debug)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    /// Version 3+.
    pub group_instance_id: Option<String>,
}

pub fn decode_request(r: &mut Reader, version: i16, flexible: bool) -> DecodeResult<HeartbeatRequest> {
    let group_id = r.string(flexible)?;
    let generation_id = r.i32()?;
    let member_id = r.string(flexible)?;
    let group_instance_id = if version >= 3 { r.nullable_string(flexible)? } else { None };
    r.tagged_fields(flexible)?;
    Ok(HeartbeatRequest { group_id, generation_id, member_id, group_instance_id })
}

pub fn encode_response(w: &mut Writer, version: i16, flexible: bool, error: ErrorCode) {
    if version >= 1 {
        w.i32(0); // throttle_time_ms
    }
    w.i16(error.0);
    w.tagged_fields(flexible);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_v0_v3_v4() {
        for (version, flexible) in [(0, false), (3, false), (4, true)] {
            let mut w = Writer::new();
            w.string(flexible, "group");
            w.i32(5);
            w.string(flexible, "member");
            if version >= 3 {
                w.nullable_string(flexible, Some("static"));
            }
            w.tagged_fields(flexible);
            let mut r = Reader::new(w.finish().freeze());
            let req = decode_request(&mut r, version, flexible).unwrap();
            assert_eq!(r.remaining(), 0, "v{version}");
            assert_eq!(req.group_id, "group");
            assert_eq!(req.generation_id, 5);
            assert_eq!(req.member_id, "member");
            assert_eq!(req.group_instance_id.as_deref(), if version >= 3 { Some("static") } else { None });
        }
    }

    #[test]
    fn encodes_response() {
        let mut w = Writer::new();
        encode_response(&mut w, 0, false, ErrorCode(27));
        assert_eq!(&w.finish()[..], &[0, 27][..]);
        let mut w = Writer::new();
        encode_response(&mut w, 4, true, ErrorCode::NONE);
        assert_eq!(&w.finish()[..], &[0, 0, 0, 0, 0, 0, 0][..]);
    }
}
