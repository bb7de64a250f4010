//! DeleteGroups (key 42), versions 0-2; flexible from 2.

use crate::protocol::codec::{DecodeResult, Reader, Writer};
use crate::protocol::error::ErrorCode;

#[derive(Debug)]
pub struct DeleteGroupsRequest {
    pub groups_names: Vec<String>,
}

pub fn decode_request(r: &mut Reader, _version: i16, flexible: bool) -> DecodeResult<DeleteGroupsRequest> {
    let groups_names = r.array(flexible, if flexible { 1 } else { 2 }, |r| r.string(flexible))?;
    r.tagged_fields(flexible)?;
    Ok(DeleteGroupsRequest { groups_names })
}

/// `results` are (group id, error); the throttle time is present in every version.
pub fn encode_response(w: &mut Writer, _version: i16, flexible: bool, results: &[(String, ErrorCode)]) {
    w.i32(0); // throttle_time_ms
    w.array_len(flexible, Some(results.len()));
    for (group_id, error) in results {
        w.string(flexible, group_id);
        w.i16(error.0);
        w.tagged_fields(flexible);
    }
    w.tagged_fields(flexible);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_v0_v2() {
        for (version, flexible) in [(0, false), (2, true)] {
            let mut w = Writer::new();
            w.array_len(flexible, Some(2));
            w.string(flexible, "g1");
            w.string(flexible, "g2");
            w.tagged_fields(flexible);
            let mut r = Reader::new(w.finish().freeze());
            let req = decode_request(&mut r, version, flexible).unwrap();
            assert_eq!(r.remaining(), 0, "v{version}");
            assert_eq!(req.groups_names, vec!["g1".to_string(), "g2".to_string()]);
        }
    }

    #[test]
    fn encodes_response() {
        let results = [("g1".to_string(), ErrorCode::NONE), ("g2".to_string(), ErrorCode(68))];
        let mut w = Writer::new();
        encode_response(&mut w, 0, false, &results);
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i32().unwrap(), 0);
        let decoded = r.array(false, 4, |r| Ok((r.string(false)?, r.i16()?))).unwrap();
        assert_eq!(decoded, vec![("g1".to_string(), 0), ("g2".to_string(), 68)]);
        assert_eq!(r.remaining(), 0);

        let mut w = Writer::new();
        encode_response(&mut w, 2, true, &results);
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
