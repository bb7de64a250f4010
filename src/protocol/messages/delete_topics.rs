//! DeleteTopics (key 20), versions 1-6; flexible from 4 (DeleteTopicsRequest.json,
//! DeleteTopicsResponse.json).
//!
//! From version 6 topics may be named by id instead of name: versions 1-5 carry
//! `topic_names`, 6 `topics` (name or id); `DeleteTopicsRequest::names_or_ids` gives either
//! as one list.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct DeleteTopicsRequest {
        /// Each topic by name or by id with a null name (v6+).
        pub topics: Vec<DeleteTopicState> [6..],
        /// Each topic by name (v1-5).
        pub topic_names: Vec<String> [1..=5],
        pub timeout_ms: i32,
    }

    pub struct DeleteTopicState {
        pub name: Option<String> [6..],
        pub topic_id: [u8; 16] [6..],
    }

    pub struct DeleteTopicsResponse {
        pub throttle_time_ms: i32,
        pub responses: Vec<DeletableTopicResult>,
    }

    pub struct DeletableTopicResult {
        /// Nullable from version 6; written as "" when `None` below that.
        pub name: Option<String> [0.., nullable 6..],
        pub topic_id: [u8; 16] [6..],
        pub error: ErrorCode,
        pub error_message: Option<String> [5..],
    }
}

impl DeleteTopicsRequest {
    /// Every topic to delete, in request order: by name, or (v6+) by id with a null name. A
    /// name from versions 1-5 comes with the zero id. Only one of `topics` and `topic_names`
    /// is in any version, so this is whichever the request carried.
    pub fn names_or_ids(&self) -> Vec<(Option<String>, [u8; 16])> {
        let by_state = self.topics.iter().map(|t| (t.name.clone(), t.topic_id));
        let by_name = self.topic_names.iter().map(|n| (Some(n.clone()), [0; 16]));
        by_state.chain(by_name).collect()
    }
}

impl Request for DeleteTopicsRequest {
    const KEY: ApiKey = ApiKey::DeleteTopics;
    const VERSIONS: (i16, i16) = (1, 6);
    const FLEXIBLE_FROM: i16 = 4;
    type Response = DeleteTopicsResponse;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::{Reader, Writer};
    use crate::protocol::wire::{Version, Wire};

    #[test]
    fn names_and_ids_are_one_list_in_every_version() {
        let mut w = Writer::new();
        w.array_len(true, Some(2));
        w.string(true, "a");
        w.string(true, "b");
        w.i32(30_000);
        w.tagged_fields(true);
        let request = <DeleteTopicsRequest as Wire>::decode(&mut Reader::new(w.finish().freeze()), Version::new(5, true)).unwrap();
        assert_eq!(request.names_or_ids(), vec![(Some("a".to_string()), [0; 16]), (Some("b".to_string()), [0; 16])]);
        assert_eq!(request.timeout_ms, 30_000);

        let mut w = Writer::new();
        w.array_len(true, Some(2));
        w.nullable_string(true, Some("a"));
        w.uuid(&[0; 16]);
        w.tagged_fields(true);
        w.nullable_string(true, None);
        w.uuid(&[7; 16]);
        w.tagged_fields(true);
        w.i32(30_000);
        w.tagged_fields(true);
        let request = <DeleteTopicsRequest as Wire>::decode(&mut Reader::new(w.finish().freeze()), Version::new(6, true)).unwrap();
        assert_eq!(request.names_or_ids(), vec![(Some("a".to_string()), [0; 16]), (None, [7; 16])]);
    }
}
