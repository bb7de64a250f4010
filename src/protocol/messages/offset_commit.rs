//! OffsetCommit (key 8), versions 2-8; flexible from 8.
//!
//! Version 2 adds the retention time (removed again in 5), 6 the committed leader epoch, 7
//! `GroupInstanceId`. Kafka 4 removed versions 0-1; the version-1-only `CommitTimestamp` is
//! still gated here so the decoder matches the schema.

use crate::protocol::codec::{DecodeResult, Reader, Writer};
use crate::protocol::error::ErrorCode;

#[derive(Debug)]
pub struct OffsetCommitRequest {
    pub group_id: String,
    /// -1 for a commit from outside a group generation (a simple `assign()` consumer).
    pub generation_id_or_member_epoch: i32,
    pub member_id: String,
    /// Version 7+.
    pub group_instance_id: Option<String>,
    /// Versions 2-4; -1 means the broker's retention.
    pub retention_time_ms: i64,
    pub topics: Vec<OffsetCommitTopic>,
}

#[derive(Debug)]
pub struct OffsetCommitTopic {
    pub name: String,
    pub partitions: Vec<OffsetCommitPartition>,
}

#[derive(Debug, Clone)]
pub struct OffsetCommitPartition {
    pub partition_index: i32,
    pub committed_offset: i64,
    /// Version 6+; -1 when absent.
    pub committed_leader_epoch: i32,
    /// Version 1 only; -1 otherwise.
    pub commit_timestamp: i64,
    pub committed_metadata: Option<String>,
}

pub fn decode_request(r: &mut Reader, version: i16, flexible: bool) -> DecodeResult<OffsetCommitRequest> {
    let group_id = r.string(flexible)?;
    let generation_id_or_member_epoch = if version >= 1 { r.i32()? } else { -1 };
    let member_id = if version >= 1 { r.string(flexible)? } else { String::new() };
    let group_instance_id = if version >= 7 { r.nullable_string(flexible)? } else { None };
    let retention_time_ms = if (2..=4).contains(&version) { r.i64()? } else { -1 };
    // Name and partitions array (+ tagged fields when flexible).
    let min_topic = if flexible { 3 } else { 6 };
    // Index, offset and metadata length; plus the leader epoch and tagged fields when flexible.
    let min_partition = if flexible { 18 } else { 14 };
    let topics = r.array(flexible, min_topic, |r| {
        let name = r.string(flexible)?;
        let partitions = r.array(flexible, min_partition, |r| {
            let partition_index = r.i32()?;
            let committed_offset = r.i64()?;
            let committed_leader_epoch = if version >= 6 { r.i32()? } else { -1 };
            let commit_timestamp = if version == 1 { r.i64()? } else { -1 };
            let committed_metadata = r.nullable_string(flexible)?;
            r.tagged_fields(flexible)?;
            Ok(OffsetCommitPartition { partition_index, committed_offset, committed_leader_epoch, commit_timestamp, committed_metadata })
        })?;
        r.tagged_fields(flexible)?;
        Ok(OffsetCommitTopic { name, partitions })
    })?;
    r.tagged_fields(flexible)?;
    Ok(OffsetCommitRequest { group_id, generation_id_or_member_epoch, member_id, group_instance_id, retention_time_ms, topics })
}

#[derive(Debug, Clone)]
pub struct OffsetCommitTopicResponse {
    pub name: String,
    /// (partition index, error)
    pub partitions: Vec<(i32, ErrorCode)>,
}

pub fn encode_response(w: &mut Writer, version: i16, flexible: bool, topics: &[OffsetCommitTopicResponse]) {
    if version >= 3 {
        w.i32(0); // throttle_time_ms
    }
    encode_topic_errors(w, flexible, topics);
    w.tagged_fields(flexible);
}

/// The per-topic, per-partition error codes that OffsetCommit and OffsetDelete answer with.
pub fn encode_topic_errors(w: &mut Writer, flexible: bool, topics: &[OffsetCommitTopicResponse]) {
    w.array_len(flexible, Some(topics.len()));
    for t in topics {
        w.string(flexible, &t.name);
        w.array_len(flexible, Some(t.partitions.len()));
        for (index, error) in &t.partitions {
            w.i32(*index);
            w.i16(error.0);
            w.tagged_fields(flexible);
        }
        w.tagged_fields(flexible);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(version: i16, flexible: bool) -> bytes::Bytes {
        let mut w = Writer::new();
        w.string(flexible, "group");
        w.i32(4);
        w.string(flexible, "m1");
        if version >= 7 {
            w.nullable_string(flexible, Some("inst"));
        }
        if (2..=4).contains(&version) {
            w.i64(86_400_000);
        }
        w.array_len(flexible, Some(1));
        w.string(flexible, "topic");
        w.array_len(flexible, Some(2));
        for (index, offset, metadata) in [(0, 100i64, Some("meta")), (1, 200, None)] {
            w.i32(index);
            w.i64(offset);
            if version >= 6 {
                w.i32(9);
            }
            w.nullable_string(flexible, metadata);
            w.tagged_fields(flexible);
        }
        w.tagged_fields(flexible);
        w.tagged_fields(flexible);
        w.finish().freeze()
    }

    #[test]
    fn decodes_v2_v7_v8() {
        for (version, flexible) in [(2, false), (7, false), (8, true)] {
            let mut r = Reader::new(request(version, flexible));
            let req = decode_request(&mut r, version, flexible).unwrap();
            assert_eq!(r.remaining(), 0, "v{version}");
            assert_eq!(req.group_id, "group");
            assert_eq!(req.generation_id_or_member_epoch, 4);
            assert_eq!(req.member_id, "m1");
            assert_eq!(req.group_instance_id.as_deref(), if version >= 7 { Some("inst") } else { None });
            assert_eq!(req.retention_time_ms, if version <= 4 { 86_400_000 } else { -1 });
            assert_eq!(req.topics.len(), 1);
            let p = &req.topics[0].partitions;
            assert_eq!(p.len(), 2);
            assert_eq!((p[0].partition_index, p[0].committed_offset), (0, 100));
            assert_eq!(p[0].committed_metadata.as_deref(), Some("meta"));
            assert_eq!(p[1].committed_metadata, None);
            assert_eq!(p[1].committed_leader_epoch, if version >= 6 { 9 } else { -1 });
            assert_eq!(p[1].commit_timestamp, -1);
        }
    }

    #[test]
    fn encodes_response() {
        let topics = [OffsetCommitTopicResponse { name: "t".into(), partitions: vec![(0, ErrorCode::NONE), (1, ErrorCode(22))] }];
        let mut w = Writer::new();
        encode_response(&mut w, 2, false, &topics);
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i32().unwrap(), 1); // no throttle before v3: the topic count comes first
        assert_eq!(r.string(false).unwrap(), "t");
        assert_eq!(r.array(false, 6, |r| Ok((r.i32()?, r.i16()?))).unwrap(), vec![(0, 0), (1, 22)]);
        assert_eq!(r.remaining(), 0);

        let mut w = Writer::new();
        encode_response(&mut w, 8, true, &topics);
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i32().unwrap(), 0);
        assert_eq!(r.array_len(true, 3).unwrap(), Some(1));
        assert_eq!(r.string(true).unwrap(), "t");
        let parts = r
            .array(true, 7, |r| {
                let p = (r.i32()?, r.i16()?);
                r.tagged_fields(true)?;
                Ok(p)
            })
            .unwrap();
        assert_eq!(parts, vec![(0, 0), (1, 22)]);
        r.tagged_fields(true).unwrap();
        r.tagged_fields(true).unwrap();
        assert_eq!(r.remaining(), 0);
    }
}
