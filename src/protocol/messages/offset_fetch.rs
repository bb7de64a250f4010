//! OffsetFetch (key 9), versions 1-8; flexible from 6 (OffsetFetchRequest.json,
//! OffsetFetchResponse.json). Version 9's per-group `MemberId` and `MemberEpoch` (KIP-848) are
//! left out: Spate serves up to 8.
//!
//! Versions 1-7 ask about one group (null topics from version 2 = every committed partition);
//! version 8 batches groups, each with its own topics and error. Version 2 adds the top-level
//! error, 3 the throttle time, 5 the leader epoch, 7 `RequireStable`. Both forms are declared
//! as the schema has them (`group_id`/`topics` for 1-7, `groups` for 8); the handler sees every
//! version as a list of groups through `OffsetFetchRequest::into_groups` and answers with
//! `OffsetFetchResponse::from_groups`.
//!
//! Below version 2 the response has no top-level error: Kafka reports a group-level error by
//! repeating it on every requested partition (offset -1, metadata ""), which the handler does
//! before building the response.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct OffsetFetchRequest {
        /// Versions 1-7: the one group asked about.
        pub group_id: String [0..=7],
        /// Versions 1-7. `None` asks for every partition with a committed offset (version 2+;
        /// version 1 cannot send null).
        pub topics: Option<Vec<OffsetFetchTopic>> [0..=7, nullable 2..=7],
        /// Version 8+: the groups asked about.
        pub groups: Vec<OffsetFetchGroup> [8..],
        pub require_stable: bool [7..],
    }

    pub struct OffsetFetchGroup {
        pub group_id: String,
        /// `None` asks for every partition with a committed offset.
        pub topics: Option<Vec<OffsetFetchTopic>>,
    }

    /// A topic of a version 1-7 request (the schema's `OffsetFetchRequestTopic`) or of a
    /// version 8 group (`OffsetFetchRequestTopics`): the same fields.
    pub struct OffsetFetchTopic {
        pub name: String,
        pub partition_indexes: Vec<i32>,
    }

    pub struct OffsetFetchResponse {
        pub throttle_time_ms: i32 [3..],
        /// Versions 1-7: the one group's topics.
        pub topics: Vec<OffsetFetchResponseTopic> [0..=7],
        /// Versions 2-7: the one group's error.
        pub error: ErrorCode [2..=7],
        /// Version 8+.
        pub groups: Vec<OffsetFetchResponseGroup> [8..],
    }

    pub struct OffsetFetchResponseGroup {
        pub group_id: String,
        pub topics: Vec<OffsetFetchResponseTopic>,
        /// The group-level error (version 8; `from_groups` moves it to the top level for 2-7,
        /// and below 2 it is not written).
        pub error: ErrorCode,
    }

    /// A topic of a version 1-7 response (`OffsetFetchResponseTopic`) or of a version 8 group
    /// (`OffsetFetchResponseTopics`): the same fields.
    pub struct OffsetFetchResponseTopic {
        pub name: String,
        pub partitions: Vec<OffsetFetchResponsePartition>,
    }

    pub struct OffsetFetchResponsePartition {
        pub partition_index: i32,
        /// -1 when nothing is committed.
        pub committed_offset: i64,
        /// Written from version 5 (versions 5-7 and 8's groups); -1 when unknown.
        pub committed_leader_epoch: i32 [5..] = -1,
        pub metadata: Option<String>,
        pub error: ErrorCode,
    }
}

impl OffsetFetchRequest {
    /// The groups asked about in any version: versions 1-7 carry exactly one (`group_id` and
    /// `topics`), version 8 any number (`groups`).
    pub fn into_groups(self, version: i16) -> Vec<OffsetFetchGroup> {
        if version <= 7 {
            vec![OffsetFetchGroup { group_id: self.group_id, topics: self.topics }]
        } else {
            self.groups
        }
    }
}

impl OffsetFetchResponse {
    /// The answer to `OffsetFetchRequest::into_groups`: versions 1-7 answer the request's one
    /// group with `groups[0]`'s topics and error (none answers with no topics and no error);
    /// version 8 carries every group.
    pub fn from_groups(version: i16, mut groups: Vec<OffsetFetchResponseGroup>) -> OffsetFetchResponse {
        if version <= 7 {
            let (topics, error) = if groups.is_empty() {
                (Vec::new(), ErrorCode::NONE)
            } else {
                let group = groups.swap_remove(0);
                (group.topics, group.error)
            };
            OffsetFetchResponse { topics, error, ..Default::default() }
        } else {
            OffsetFetchResponse { groups, ..Default::default() }
        }
    }
}

impl Request for OffsetFetchRequest {
    const KEY: ApiKey = ApiKey::OffsetFetch;
    const VERSIONS: (i16, i16) = (1, 8);
    const FLEXIBLE_FROM: i16 = 6;
    type Response = OffsetFetchResponse;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::{DecodeResult, Reader, Writer};
    use crate::protocol::wire::{Version, Wire};

    fn decode(frame: bytes::Bytes, version: i16, flexible: bool) -> (DecodeResult<OffsetFetchRequest>, usize) {
        let mut r = Reader::new(frame);
        let req = OffsetFetchRequest::decode(&mut r, Version::new(version, flexible));
        (req, r.remaining())
    }

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
            let (req, remaining) = decode(w.finish().freeze(), version, flexible);
            let req = req.unwrap();
            assert_eq!(remaining, 0, "v{version}");
            assert!(!req.require_stable);
            let groups = req.into_groups(version);
            assert_eq!(groups.len(), 1);
            assert_eq!(groups[0].group_id, "group");
            let topics = groups[0].topics.as_ref().unwrap();
            assert_eq!(topics[0].name, "t");
            assert_eq!(topics[0].partition_indexes, vec![0, 3]);
        }
        // Version 1 cannot ask for all topics; version 2 can.
        let mut w = Writer::new();
        w.string(false, "group");
        w.array_len(false, None);
        let frame = w.finish().freeze();
        assert!(decode(frame.clone(), 1, false).0.is_err());
        let req = decode(frame, 2, false).0.unwrap();
        assert!(req.into_groups(2)[0].topics.is_none());
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
        let (req, remaining) = decode(w.finish().freeze(), 8, true);
        let req = req.unwrap();
        assert_eq!(remaining, 0);
        assert!(req.require_stable);
        let groups = req.into_groups(8);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].topics.as_ref().unwrap()[0].partition_indexes, vec![0, 3]);
        assert_eq!(groups[1].group_id, "g2");
        assert!(groups[1].topics.is_none());
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

    fn encode(response: &OffsetFetchResponse, version: i16, flexible: bool) -> bytes::Bytes {
        let mut w = Writer::new();
        response.encode(&mut w, Version::new(version, flexible));
        w.finish().freeze()
    }

    #[test]
    fn encodes_v1_and_v8_responses() {
        let mut r = Reader::new(encode(&OffsetFetchResponse::from_groups(1, vec![group()]), 1, false));
        assert_eq!(r.i32().unwrap(), 1); // topic count: no throttle, no top-level error
        assert_eq!(r.string(false).unwrap(), "t");
        assert_eq!(r.i32().unwrap(), 1);
        assert_eq!(r.i32().unwrap(), 0);
        assert_eq!(r.i64().unwrap(), 42);
        assert_eq!(r.nullable_string(false).unwrap().as_deref(), Some(""));
        assert_eq!(r.i16().unwrap(), 0);
        assert_eq!(r.remaining(), 0);

        let mut r = Reader::new(encode(&OffsetFetchResponse::from_groups(8, vec![group(), group()]), 8, true));
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

    /// Versions 2-7 carry the one group's error at the top level, after its topics.
    #[test]
    fn single_group_responses_carry_the_group_error_at_the_top() {
        let gone = OffsetFetchResponseGroup { group_id: "g".into(), topics: Vec::new(), error: ErrorCode::COORDINATOR_NOT_AVAILABLE };
        let response = OffsetFetchResponse::from_groups(3, vec![gone]);
        assert_eq!(&encode(&response, 3, false)[..], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 15][..]);
        let none = OffsetFetchResponse::from_groups(3, Vec::new());
        assert_eq!(&encode(&none, 3, false)[..], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..]);
    }
}
