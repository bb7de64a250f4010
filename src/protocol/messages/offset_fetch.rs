//! OffsetFetch (key 9), versions 1-8; flexible from 6.
//!
//! Versions 1-7 ask about one group (null topics from version 2 = every committed partition);
//! version 8 batches groups, each with its own topics and error. Version 2 adds the top-level
//! error, 3 the throttle time, 5 the leader epoch, 7 `RequireStable`.
//!
//! Below version 2 the response has no top-level error: Kafka reports a group-level error by
//! repeating it on every requested partition (offset -1, metadata ""), which the handler does
//! before calling `encode_response`.

use crate::protocol::codec::{DecodeResult, Reader, Writer};
use crate::protocol::error::ErrorCode;

#[derive(Debug)]
pub struct OffsetFetchRequest {
    /// Exactly one group for versions 1-7.
    pub groups: Vec<OffsetFetchGroup>,
    /// Version 7+.
    pub require_stable: bool,
}

#[derive(Debug)]
pub struct OffsetFetchGroup {
    pub group_id: String,
    /// `None` asks for every partition with a committed offset (version 2+).
    pub topics: Option<Vec<OffsetFetchTopic>>,
}

#[derive(Debug, Clone)]
pub struct OffsetFetchTopic {
    pub name: String,
    pub partition_indexes: Vec<i32>,
}

fn topic(r: &mut Reader, flexible: bool) -> DecodeResult<OffsetFetchTopic> {
    let name = r.string(flexible)?;
    let partition_indexes = r.array(flexible, 4, |r| r.i32())?;
    r.tagged_fields(flexible)?;
    Ok(OffsetFetchTopic { name, partition_indexes })
}

pub fn decode_request(r: &mut Reader, version: i16, flexible: bool) -> DecodeResult<OffsetFetchRequest> {
    // Name and partition array (+ tagged fields when flexible).
    let min_topic = if flexible { 3 } else { 6 };
    let groups = if version <= 7 {
        let group_id = r.string(flexible)?;
        let topics = if version >= 2 {
            r.nullable_array(flexible, min_topic, |r| topic(r, flexible))?
        } else {
            Some(r.array(flexible, min_topic, |r| topic(r, flexible))?)
        };
        vec![OffsetFetchGroup { group_id, topics }]
    } else {
        // Group id, topics array and tagged fields (version 8 is always flexible).
        r.array(flexible, 3, |r| {
            let group_id = r.string(flexible)?;
            let topics = r.nullable_array(flexible, min_topic, |r| topic(r, flexible))?;
            r.tagged_fields(flexible)?;
            Ok(OffsetFetchGroup { group_id, topics })
        })?
    };
    let require_stable = if version >= 7 { r.bool()? } else { false };
    r.tagged_fields(flexible)?;
    Ok(OffsetFetchRequest { groups, require_stable })
}

#[derive(Debug, Clone)]
pub struct OffsetFetchResponseGroup {
    pub group_id: String,
    pub topics: Vec<OffsetFetchResponseTopic>,
    /// The group-level error: top-level for versions 2-7, per group for 8; not written below 2.
    pub error: ErrorCode,
}

#[derive(Debug, Clone)]
pub struct OffsetFetchResponseTopic {
    pub name: String,
    pub partitions: Vec<OffsetFetchResponsePartition>,
}

#[derive(Debug, Clone)]
pub struct OffsetFetchResponsePartition {
    pub partition_index: i32,
    /// -1 when nothing is committed.
    pub committed_offset: i64,
    /// Written from version 5; -1 when unknown.
    pub committed_leader_epoch: i32,
    pub metadata: Option<String>,
    pub error: ErrorCode,
}

fn encode_topics(w: &mut Writer, version: i16, flexible: bool, topics: &[OffsetFetchResponseTopic]) {
    w.array_len(flexible, Some(topics.len()));
    for t in topics {
        w.string(flexible, &t.name);
        w.array_len(flexible, Some(t.partitions.len()));
        for p in &t.partitions {
            w.i32(p.partition_index);
            w.i64(p.committed_offset);
            if version >= 5 {
                w.i32(p.committed_leader_epoch);
            }
            w.nullable_string(flexible, p.metadata.as_deref());
            w.i16(p.error.0);
            w.tagged_fields(flexible);
        }
        w.tagged_fields(flexible);
    }
}

/// Versions 1-7 answer the request's one group with `groups[0]` (an empty slice writes no
/// topics and no error); version 8 writes every group.
pub fn encode_response(w: &mut Writer, version: i16, flexible: bool, groups: &[OffsetFetchResponseGroup]) {
    if version >= 3 {
        w.i32(0); // throttle_time_ms
    }
    if version <= 7 {
        let group = groups.first();
        encode_topics(w, version, flexible, group.map_or(&[], |g| &g.topics));
        if version >= 2 {
            w.i16(group.map_or(ErrorCode::NONE, |g| g.error).0);
        }
    } else {
        w.array_len(flexible, Some(groups.len()));
        for g in groups {
            w.string(flexible, &g.group_id);
            encode_topics(w, version, flexible, &g.topics);
            w.i16(g.error.0);
            w.tagged_fields(flexible);
        }
    }
    w.tagged_fields(flexible);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_topics(w: &mut Writer, flexible: bool) {
        w.array_len(flexible, Some(1));
        w.string(flexible, "t");
        w.array_len(flexible, Some(2));
        w.i32(0);
        w.i32(3);
        w.tagged_fields(flexible);
    }

    #[test]
    fn decodes_v1_v6_single_group() {
        for (version, flexible) in [(1, false), (6, true)] {
            let mut w = Writer::new();
            w.string(flexible, "group");
            write_topics(&mut w, flexible);
            w.tagged_fields(flexible);
            let mut r = Reader::new(w.finish().freeze());
            let req = decode_request(&mut r, version, flexible).unwrap();
            assert_eq!(r.remaining(), 0, "v{version}");
            assert!(!req.require_stable);
            assert_eq!(req.groups.len(), 1);
            assert_eq!(req.groups[0].group_id, "group");
            let topics = req.groups[0].topics.as_ref().unwrap();
            assert_eq!(topics[0].name, "t");
            assert_eq!(topics[0].partition_indexes, vec![0, 3]);
        }
        // Version 1 cannot ask for all topics; version 2 can.
        let mut w = Writer::new();
        w.string(false, "group");
        w.array_len(false, None);
        let frame = w.finish().freeze();
        assert!(decode_request(&mut Reader::new(frame.clone()), 1, false).is_err());
        let req = decode_request(&mut Reader::new(frame), 2, false).unwrap();
        assert!(req.groups[0].topics.is_none());
    }

    #[test]
    fn decodes_v8_groups() {
        let mut w = Writer::new();
        w.array_len(true, Some(2));
        w.string(true, "g1");
        write_topics(&mut w, true);
        w.tagged_fields(true);
        w.string(true, "g2");
        w.array_len(true, None);
        w.tagged_fields(true);
        w.bool(true);
        w.tagged_fields(true);
        let mut r = Reader::new(w.finish().freeze());
        let req = decode_request(&mut r, 8, true).unwrap();
        assert_eq!(r.remaining(), 0);
        assert!(req.require_stable);
        assert_eq!(req.groups.len(), 2);
        assert_eq!(req.groups[0].topics.as_ref().unwrap()[0].partition_indexes, vec![0, 3]);
        assert_eq!(req.groups[1].group_id, "g2");
        assert!(req.groups[1].topics.is_none());
    }

    fn group() -> OffsetFetchResponseGroup {
        OffsetFetchResponseGroup {
            group_id: "g".into(),
            topics: vec![OffsetFetchResponseTopic {
                name: "t".into(),
                partitions: vec![OffsetFetchResponsePartition {
                    partition_index: 0,
                    committed_offset: 42,
                    committed_leader_epoch: -1,
                    metadata: Some(String::new()),
                    error: ErrorCode::NONE,
                }],
            }],
            error: ErrorCode::NONE,
        }
    }

    #[test]
    fn encodes_v1_and_v8_responses() {
        let mut w = Writer::new();
        encode_response(&mut w, 1, false, &[group()]);
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i32().unwrap(), 1); // topic count: no throttle, no top-level error
        assert_eq!(r.string(false).unwrap(), "t");
        assert_eq!(r.i32().unwrap(), 1);
        assert_eq!(r.i32().unwrap(), 0);
        assert_eq!(r.i64().unwrap(), 42);
        assert_eq!(r.nullable_string(false).unwrap().as_deref(), Some(""));
        assert_eq!(r.i16().unwrap(), 0);
        assert_eq!(r.remaining(), 0);

        let mut w = Writer::new();
        encode_response(&mut w, 8, true, &[group(), group()]);
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i32().unwrap(), 0);
        assert_eq!(r.array_len(true, 4).unwrap(), Some(2));
        assert_eq!(r.string(true).unwrap(), "g");
        assert_eq!(r.array_len(true, 3).unwrap(), Some(1));
        assert_eq!(r.string(true).unwrap(), "t");
        assert_eq!(r.array_len(true, 18).unwrap(), Some(1));
        assert_eq!(r.i32().unwrap(), 0);
        assert_eq!(r.i64().unwrap(), 42);
        assert_eq!(r.i32().unwrap(), -1);
    }
}
