//! DeleteGroups (key 42), versions 0-2; flexible from 2 (DeleteGroupsRequest.json,
//! DeleteGroupsResponse.json).

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct DeleteGroupsRequest {
        pub groups_names: Vec<String>,
    }

    pub struct DeleteGroupsResponse {
        /// Present in every version.
        pub throttle_time_ms: i32,
        pub results: Vec<DeletableGroupResult>,
    }

    pub struct DeletableGroupResult {
        pub group_id: String,
        pub error: ErrorCode,
    }
}

impl Request for DeleteGroupsRequest {
    const KEY: ApiKey = ApiKey::DeleteGroups;
    const VERSIONS: (i16, i16) = (0, 2);
    const FLEXIBLE_FROM: i16 = 2;
    type Response = DeleteGroupsResponse;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::{Reader, Writer};
    use crate::protocol::wire::{Version, Wire};

    #[test]
    fn decodes_v0_v2() {
        for (version, flexible) in [(0, false), (2, true)] {
            let mut w = Writer::new();
            w.array_len(flexible, Some(2));
            w.string(flexible, "g1");
            w.string(flexible, "g2");
            w.tagged_fields(flexible);
            let mut r = Reader::new(w.finish().freeze());
            let req = DeleteGroupsRequest::decode(&mut r, Version::new(version, flexible)).unwrap();
            assert_eq!(r.remaining(), 0, "v{version}");
            assert_eq!(req.groups_names, vec!["g1".to_string(), "g2".to_string()]);
        }
    }

    #[test]
    fn encodes_response() {
        let response = DeleteGroupsResponse {
            throttle_time_ms: 0,
            results: vec![
                DeletableGroupResult { group_id: "g1".into(), error: ErrorCode::NONE },
                DeletableGroupResult { group_id: "g2".into(), error: ErrorCode(68) },
            ],
        };
        let mut w = Writer::new();
        response.encode(&mut w, Version::new(0, false));
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i32().unwrap(), 0);
        let decoded = r.array(false, 4, |r| Ok((r.string(false)?, r.i16()?))).unwrap();
        assert_eq!(decoded, vec![("g1".to_string(), 0), ("g2".to_string(), 68)]);
        assert_eq!(r.remaining(), 0);

        let mut w = Writer::new();
        response.encode(&mut w, Version::new(2, true));
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i32().unwrap(), 0);
        let decoded = r
            .array(true, 4, |r| {
                let e = (r.string(true)?, r.i16()?);
                r.tagged_fields(true)?;
                Ok(e)
            })
            .unwrap();
        assert_eq!(decoded[1], ("g2".to_string(), 68));
        r.tagged_fields(true).unwrap();
        assert_eq!(r.remaining(), 0);
    }
}
