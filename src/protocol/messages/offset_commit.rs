//! OffsetCommit (key 8), versions 2-8; flexible from 8 (OffsetCommitRequest.json,
//! OffsetCommitResponse.json). Version 9 (KIP-848's consumer protocol, the same fields) is not
//! served.
//!
//! Version 2 adds the retention time (removed again in 5), 6 the committed leader epoch, 7
//! `GroupInstanceId`. Kafka 4 removed versions 0-1, and so does Spate: the version-1-only
//! `CommitTimestamp` is left out (no version Spate decodes has it; the broker stamps commits
//! with its own clock).

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct OffsetCommitRequest {
        pub group_id: String,
        /// -1 for a commit from outside a group generation (a simple `assign()` consumer).
        pub generation_id_or_member_epoch: i32 = -1,
        pub member_id: String,
        pub group_instance_id: Option<String> [7..],
        /// -1 means the broker's retention.
        pub retention_time_ms: i64 [2..=4] = -1,
        pub topics: Vec<OffsetCommitTopic>,
    }

    pub struct OffsetCommitTopic {
        pub name: String,
        pub partitions: Vec<OffsetCommitPartition>,
    }

    pub struct OffsetCommitPartition {
        pub partition_index: i32,
        pub committed_offset: i64,
        /// -1 when absent.
        pub committed_leader_epoch: i32 [6..] = -1,
        pub committed_metadata: Option<String>,
    }

    pub struct OffsetCommitResponse {
        pub throttle_time_ms: i32 [3..],
        pub topics: Vec<OffsetCommitTopicResponse>,
    }

    pub struct OffsetCommitTopicResponse {
        pub name: String,
        pub partitions: Vec<OffsetCommitPartitionResponse>,
    }

    pub struct OffsetCommitPartitionResponse {
        pub partition_index: i32,
        pub error: ErrorCode,
    }
}

impl Request for OffsetCommitRequest {
    const KEY: ApiKey = ApiKey::OffsetCommit;
    const VERSIONS: (i16, i16) = (2, 8);
    const FLEXIBLE_FROM: i16 = 8;
    type Response = OffsetCommitResponse;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::{Reader, Writer};
    use crate::protocol::wire::{Version, Wire};

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
            let req = OffsetCommitRequest::decode(&mut r, Version::new(version, flexible)).unwrap();
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
        }
    }

    #[test]
    fn encodes_response() {
        let response = OffsetCommitResponse {
            throttle_time_ms: 0,
            topics: vec![OffsetCommitTopicResponse {
                name: "t".into(),
                partitions: vec![
                    OffsetCommitPartitionResponse { partition_index: 0, error: ErrorCode::NONE },
                    OffsetCommitPartitionResponse { partition_index: 1, error: ErrorCode(22) },
                ],
            }],
        };
        let mut w = Writer::new();
        response.encode(&mut w, Version::new(2, false));
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i32().unwrap(), 1); // no throttle before v3: the topic count comes first
        assert_eq!(r.string(false).unwrap(), "t");
        assert_eq!(r.array(false, 6, |r| Ok((r.i32()?, r.i16()?))).unwrap(), vec![(0, 0), (1, 22)]);
        assert_eq!(r.remaining(), 0);

        let mut w = Writer::new();
        response.encode(&mut w, Version::new(8, true));
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
