//! Heartbeat (key 12), versions 0-4; flexible from 4 (HeartbeatRequest.json,
//! HeartbeatResponse.json).

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct HeartbeatRequest {
        pub group_id: String,
        pub generation_id: i32,
        pub member_id: String,
        pub group_instance_id: Option<String> [3..],
    }

    pub struct HeartbeatResponse {
        pub throttle_time_ms: i32 [1..],
        pub error: ErrorCode,
    }
}

impl Request for HeartbeatRequest {
    const KEY: ApiKey = ApiKey::Heartbeat;
    const VERSIONS: (i16, i16) = (0, 4);
    const FLEXIBLE_FROM: i16 = 4;
    type Response = HeartbeatResponse;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::{Reader, Writer};
    use crate::protocol::wire::{Version, Wire};

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
            let req = HeartbeatRequest::decode(&mut r, Version::new(version, flexible)).unwrap();
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
        HeartbeatResponse { throttle_time_ms: 0, error: ErrorCode(27) }.encode(&mut w, Version::new(0, false));
        assert_eq!(&w.finish()[..], &[0, 27][..]);
        let mut w = Writer::new();
        HeartbeatResponse { throttle_time_ms: 0, error: ErrorCode::NONE }.encode(&mut w, Version::new(4, true));
        assert_eq!(&w.finish()[..], &[0, 0, 0, 0, 0, 0, 0][..]);
    }
}
