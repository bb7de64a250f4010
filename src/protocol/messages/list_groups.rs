//! ListGroups (key 16), versions 0-4; flexible from 3.
//!
//! Version 4 adds `StatesFilter` in the request and `GroupState` in the response (KIP-518).

use crate::protocol::codec::{DecodeResult, Reader, Writer};
use crate::protocol::error::ErrorCode;

#[derive(Debug)]
pub struct ListGroupsRequest {
    /// Version 4+; empty lists groups in every state.
    pub states_filter: Vec<String>,
}

pub fn decode_request(r: &mut Reader, version: i16, flexible: bool) -> DecodeResult<ListGroupsRequest> {
    let states_filter = if version >= 4 { r.array(flexible, 1, |r| r.string(flexible))? } else { Vec::new() };
    r.tagged_fields(flexible)?;
    Ok(ListGroupsRequest { states_filter })
}

#[derive(Debug, Clone)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    /// Written from version 4 ("Empty", "Stable", "PreparingRebalance", ...).
    pub group_state: String,
}

pub fn encode_response(w: &mut Writer, version: i16, flexible: bool, error: ErrorCode, groups: &[ListedGroup]) {
    if version >= 1 {
        w.i32(0); // throttle_time_ms
    }
    w.i16(error.0);
    w.array_len(flexible, Some(groups.len()));
    for g in groups {
        w.string(flexible, &g.group_id);
        w.string(flexible, &g.protocol_type);
        if version >= 4 {
            w.string(flexible, &g.group_state);
        }
        w.tagged_fields(flexible);
    }
    w.tagged_fields(flexible);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_v0_v3_v4() {
        let mut r = Reader::new(bytes::Bytes::new());
        assert!(decode_request(&mut r, 0, false).unwrap().states_filter.is_empty());

        let mut w = Writer::new();
        w.tagged_fields(true);
        let mut r = Reader::new(w.finish().freeze());
        assert!(decode_request(&mut r, 3, true).unwrap().states_filter.is_empty());
        assert_eq!(r.remaining(), 0);

        let mut w = Writer::new();
        w.array_len(true, Some(2));
        w.string(true, "Stable");
        w.string(true, "Empty");
        w.tagged_fields(true);
        let mut r = Reader::new(w.finish().freeze());
        let req = decode_request(&mut r, 4, true).unwrap();
        assert_eq!(req.states_filter, vec!["Stable".to_string(), "Empty".to_string()]);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn encodes_response() {
        let groups = [ListedGroup { group_id: "g".into(), protocol_type: "consumer".into(), group_state: "Stable".into() }];
        let mut w = Writer::new();
        encode_response(&mut w, 0, false, ErrorCode::NONE, &groups);
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i16().unwrap(), 0);
        let listed = r.array(false, 4, |r| Ok((r.string(false)?, r.string(false)?))).unwrap();
        assert_eq!(listed, vec![("g".to_string(), "consumer".to_string())]);
        assert_eq!(r.remaining(), 0);

        let mut w = Writer::new();
        encode_response(&mut w, 4, true, ErrorCode::NONE, &groups);
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
