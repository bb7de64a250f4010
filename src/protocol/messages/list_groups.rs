//! ListGroups (key 16), versions 0-4; flexible from 3 (ListGroupsRequest.json,
//! ListGroupsResponse.json). Version 5's `TypesFilter` and `GroupType` (KIP-848) are left out:
//! Spate serves up to 4.
//!
//! Version 4 adds `StatesFilter` in the request and `GroupState` in the response (KIP-518).

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct ListGroupsRequest {
        /// Empty lists groups in every state.
        pub states_filter: Vec<String> [4..],
    }

    pub struct ListGroupsResponse {
        pub throttle_time_ms: i32 [1..],
        pub error: ErrorCode,
        pub groups: Vec<ListedGroup>,
    }

    pub struct ListedGroup {
        pub group_id: String,
        pub protocol_type: String,
        /// "Empty", "Stable", "PreparingRebalance", ...
        pub group_state: String [4..],
    }
}

impl Request for ListGroupsRequest {
    const KEY: ApiKey = ApiKey::ListGroups;
    const VERSIONS: (i16, i16) = (0, 4);
    const FLEXIBLE_FROM: i16 = 3;
    type Response = ListGroupsResponse;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::{Reader, Writer};
    use crate::protocol::wire::{Version, Wire};

    #[test]
    fn decodes_v0_v3_v4() {
        let mut r = Reader::new(bytes::Bytes::new());
        assert!(ListGroupsRequest::decode(&mut r, Version::new(0, false)).unwrap().states_filter.is_empty());

        let mut w = Writer::new();
        w.tagged_fields(true);
        let mut r = Reader::new(w.finish().freeze());
        assert!(ListGroupsRequest::decode(&mut r, Version::new(3, true)).unwrap().states_filter.is_empty());
        assert_eq!(r.remaining(), 0);

        let mut w = Writer::new();
        w.array_len(true, Some(2));
        w.string(true, "Stable");
        w.string(true, "Empty");
        w.tagged_fields(true);
        let mut r = Reader::new(w.finish().freeze());
        let req = ListGroupsRequest::decode(&mut r, Version::new(4, true)).unwrap();
        assert_eq!(req.states_filter, vec!["Stable".to_string(), "Empty".to_string()]);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn encodes_response() {
        let response = ListGroupsResponse {
            throttle_time_ms: 0,
            error: ErrorCode::NONE,
            groups: vec![ListedGroup { group_id: "g".into(), protocol_type: "consumer".into(), group_state: "Stable".into() }],
        };
        let mut w = Writer::new();
        response.encode(&mut w, Version::new(0, false));
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i16().unwrap(), 0);
        let listed = r.array(false, 4, |r| Ok((r.string(false)?, r.string(false)?))).unwrap();
        assert_eq!(listed, vec![("g".to_string(), "consumer".to_string())]);
        assert_eq!(r.remaining(), 0);

        let mut w = Writer::new();
        response.encode(&mut w, Version::new(4, true));
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i32().unwrap(), 0);
        assert_eq!(r.i16().unwrap(), 0);
        let listed = r
            .array(true, 4, |r| {
                let g = (r.string(true)?, r.string(true)?, r.string(true)?);
                r.tagged_fields(true)?;
                Ok(g)
            })
            .unwrap();
        assert_eq!(listed[0].2, "Stable");
        r.tagged_fields(true).unwrap();
        assert_eq!(r.remaining(), 0);
    }
}
