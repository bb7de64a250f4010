//! OffsetDelete (key 47), version 0; not flexible (KIP-496).
//!
//! The response puts the top-level error before the throttle time, unlike most APIs. The
//! `flexible` flag is threaded through like everywhere else (it is false for version 0).

use crate::protocol::codec::{DecodeResult, Reader, Writer};
use crate::protocol::error::ErrorCode;

#[derive(Debug)]
pub struct OffsetDeleteRequest {
    pub group_id: String,
    pub topics: Vec<OffsetDeleteTopic>,
}

#[derive(Debug, Clone)]
pub struct OffsetDeleteTopic {
    pub name: String,
    pub partitions: Vec<i32>,
}

pub fn decode_request(r: &mut Reader, _version: i16, flexible: bool) -> DecodeResult<OffsetDeleteRequest> {
    let group_id = r.string(flexible)?;
    // Name and partition array (+ tagged fields when flexible).
    let min_topic = if flexible { 3 } else { 6 };
    let topics = r.array(flexible, min_topic, |r| {
        let name = r.string(flexible)?;
        let partitions = r.array(flexible, 4, |r| {
            let index = r.i32()?;
            r.tagged_fields(flexible)?;
            Ok(index)
        })?;
        r.tagged_fields(flexible)?;
        Ok(OffsetDeleteTopic { name, partitions })
    })?;
    r.tagged_fields(flexible)?;
    Ok(OffsetDeleteRequest { group_id, topics })
}

/// The same shape as OffsetCommit's answer.
pub use super::offset_commit::OffsetCommitTopicResponse as OffsetDeleteTopicResponse;

pub fn encode_response(w: &mut Writer, _version: i16, flexible: bool, error: ErrorCode, topics: &[OffsetDeleteTopicResponse]) {
    w.i16(error.0);
    w.i32(0); // throttle_time_ms
    super::offset_commit::encode_topic_errors(w, flexible, topics);
    w.tagged_fields(flexible);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_v0() {
        let mut w = Writer::new();
        w.string(false, "group");
        w.array_len(false, Some(1));
        w.string(false, "t");
        w.array_len(false, Some(2));
        w.i32(0);
        w.i32(5);
        let mut r = Reader::new(w.finish().freeze());
        let req = decode_request(&mut r, 0, false).unwrap();
        assert_eq!(r.remaining(), 0);
        assert_eq!(req.group_id, "group");
        assert_eq!(req.topics.len(), 1);
        assert_eq!(req.topics[0].name, "t");
        assert_eq!(req.topics[0].partitions, vec![0, 5]);
    }

    #[test]
    fn encodes_v0_response() {
        let topics = [OffsetDeleteTopicResponse { name: "t".into(), partitions: vec![(0, ErrorCode(86))] }];
        let mut w = Writer::new();
        encode_response(&mut w, 0, false, ErrorCode::NONE, &topics);
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i16().unwrap(), 0); // error first
        assert_eq!(r.i32().unwrap(), 0); // then throttle
        assert_eq!(r.i32().unwrap(), 1);
        assert_eq!(r.string(false).unwrap(), "t");
        assert_eq!(r.array(false, 6, |r| Ok((r.i32()?, r.i16()?))).unwrap(), vec![(0, 86)]);
        assert_eq!(r.remaining(), 0);
    }
}
