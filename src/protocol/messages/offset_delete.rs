//! OffsetDelete (key 47), version 0; not flexible (OffsetDeleteRequest.json,
//! OffsetDeleteResponse.json; KIP-496).
//!
//! The response puts the top-level error before the throttle time, unlike most APIs.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct OffsetDeleteRequest {
        pub group_id: String,
        pub topics: Vec<OffsetDeleteTopic>,
    }

    pub struct OffsetDeleteTopic {
        pub name: String,
        pub partitions: Vec<OffsetDeletePartition>,
    }

    pub struct OffsetDeletePartition {
        pub partition_index: i32,
    }

    pub struct OffsetDeleteResponse {
        pub error: ErrorCode,
        pub throttle_time_ms: i32,
        pub topics: Vec<OffsetDeleteTopicResponse>,
    }

    pub struct OffsetDeleteTopicResponse {
        pub name: String,
        pub partitions: Vec<OffsetDeletePartitionResponse>,
    }

    pub struct OffsetDeletePartitionResponse {
        pub partition_index: i32,
        pub error: ErrorCode,
    }
}

impl Request for OffsetDeleteRequest {
    const KEY: ApiKey = ApiKey::OffsetDelete;
    const VERSIONS: (i16, i16) = (0, 0);
    const FLEXIBLE_FROM: i16 = i16::MAX;
    type Response = OffsetDeleteResponse;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::{Reader, Writer};
    use crate::protocol::wire::{Version, Wire};

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
        let req = OffsetDeleteRequest::decode(&mut r, Version::new(0, false)).unwrap();
        assert_eq!(r.remaining(), 0);
        assert_eq!(req.group_id, "group");
        assert_eq!(req.topics.len(), 1);
        assert_eq!(req.topics[0].name, "t");
        assert_eq!(req.topics[0].partitions, vec![OffsetDeletePartition { partition_index: 0 }, OffsetDeletePartition { partition_index: 5 }]);
    }

    #[test]
    fn encodes_v0_response() {
        let response = OffsetDeleteResponse {
            error: ErrorCode::NONE,
            throttle_time_ms: 0,
            topics: vec![OffsetDeleteTopicResponse {
                name: "t".into(),
                partitions: vec![OffsetDeletePartitionResponse { partition_index: 0, error: ErrorCode(86) }],
            }],
        };
        let mut w = Writer::new();
        response.encode(&mut w, Version::new(0, false));
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i16().unwrap(), 0); // error first
        assert_eq!(r.i32().unwrap(), 0); // then throttle
        assert_eq!(r.i32().unwrap(), 1);
        assert_eq!(r.string(false).unwrap(), "t");
        assert_eq!(r.array(false, 6, |r| Ok((r.i32()?, r.i16()?))).unwrap(), vec![(0, 86)]);
        assert_eq!(r.remaining(), 0);
    }
}
