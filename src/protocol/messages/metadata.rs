//! Metadata (key 3), versions 0-12; flexible from 9 (MetadataRequest.json,
//! MetadataResponse.json).
//!
//! Version 0 asks for every topic with an empty topic list (it has no null array; a null one
//! is refused): `MetadataRequest::topics_or_all` gives the topics asked for in any version.
//! Version 10 names topics by id as well as by name, 12 answers unknown ids with a null name.
//! Spate reports no authorized operations (i32::MIN, "not provided").

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct MetadataRequest {
        /// `None` asks for every topic (v0 says so with an empty array: see `topics_or_all`).
        pub topics: Option<Vec<MetadataRequestTopic>> [0.., nullable 1..],
        pub allow_auto_topic_creation: bool [4..] = true,
        pub include_cluster_authorized_operations: bool [8..=10],
        pub include_topic_authorized_operations: bool [8..],
    }

    pub struct MetadataRequestTopic {
        pub topic_id: [u8; 16] [10..],
        /// Null (v10+) when the topic is named by `topic_id`.
        pub name: Option<String> [0.., nullable 10..],
    }

    pub struct MetadataResponse {
        pub throttle_time_ms: i32 [3..],
        pub brokers: Vec<MetadataBroker>,
        pub cluster_id: Option<String> [2..],
        pub controller_id: i32 [1..] = -1,
        pub topics: Vec<MetadataTopic>,
        /// i32::MIN (the default): not provided.
        pub cluster_authorized_operations: i32 [8..=10] = i32::MIN,
    }

    pub struct MetadataBroker {
        pub node_id: i32,
        pub host: String,
        pub port: i32,
        pub rack: Option<String> [1..],
    }

    pub struct MetadataTopic {
        pub error: ErrorCode,
        /// Nullable from version 12; written as "" when `None` below that.
        pub name: Option<String> [0.., nullable 12..],
        pub topic_id: [u8; 16] [10..],
        pub is_internal: bool [1..],
        pub partitions: Vec<MetadataPartition>,
        /// i32::MIN (the default): not provided.
        pub topic_authorized_operations: i32 [8..] = i32::MIN,
    }

    pub struct MetadataPartition {
        pub error: ErrorCode,
        pub partition_index: i32,
        pub leader_id: i32,
        pub leader_epoch: i32 [7..] = -1,
        pub replica_nodes: Vec<i32>,
        pub isr_nodes: Vec<i32>,
        pub offline_replicas: Vec<i32> [5..],
    }
}

impl MetadataRequest {
    /// The topics asked for in `version`, `None` for every topic. Version 0 has no null
    /// array and asks for every topic with an empty one; from version 1 null asks for every
    /// topic and an empty array for none (the brokers only). Encoding `topics: None` in
    /// version 0 writes the empty array, so the two directions agree.
    pub fn topics_or_all(&self, version: i16) -> Option<&[MetadataRequestTopic]> {
        match &self.topics {
            Some(topics) if version == 0 && topics.is_empty() => None,
            topics => topics.as_deref(),
        }
    }
}

impl Request for MetadataRequest {
    const KEY: ApiKey = ApiKey::Metadata;
    const VERSIONS: (i16, i16) = (0, 12);
    const FLEXIBLE_FROM: i16 = 9;
    type Response = MetadataResponse;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::{Reader, Writer};
    use crate::protocol::wire::{Version, Wire};

    fn decode(version: i16, body: impl Fn(&mut Writer)) -> crate::protocol::codec::DecodeResult<MetadataRequest> {
        let mut w = Writer::new();
        body(&mut w);
        let flexible = version >= 9;
        <MetadataRequest as Wire>::decode(&mut Reader::new(w.finish().freeze()), Version::new(version, flexible))
    }

    #[test]
    fn version_0_asks_for_every_topic_with_an_empty_array() {
        let all = decode(0, |w| w.array_len(false, Some(0))).unwrap();
        assert_eq!(all.topics_or_all(0), None);
        assert!(all.allow_auto_topic_creation, "true below version 4");
        assert!(decode(0, |w| w.array_len(false, None)).is_err(), "no null array in version 0");
        let none = decode(1, |w| w.array_len(false, Some(0))).unwrap();
        assert_eq!(none.topics_or_all(1).map(|t| t.len()), Some(0));
        let null = decode(1, |w| w.array_len(false, None)).unwrap();
        assert_eq!(null.topics_or_all(1), None);
        let named = decode(0, |w| {
            w.array_len(false, Some(1));
            w.string(false, "t");
        })
        .unwrap();
        assert_eq!(named.topics_or_all(0).unwrap()[0].name.as_deref(), Some("t"));
    }
}
