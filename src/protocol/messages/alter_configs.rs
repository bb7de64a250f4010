//! AlterConfigs (key 33), versions 0-2, flexible from 2 (AlterConfigsRequest.json), and
//! IncrementalAlterConfigs (key 44, KIP-339), versions 0-1, flexible from 1
//! (IncrementalAlterConfigsRequest.json). Both answer with one result per resource, in the
//! same layout (AlterConfigsResponse.json, IncrementalAlterConfigsResponse.json).
//!
//! AlterConfigs replaces a resource's whole set of overrides with the ones given;
//! IncrementalAlterConfigs changes the keys it names with one operation each.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

/// IncrementalAlterConfigs' `ConfigOperation` values (Kafka's `AlterConfigOp.OpType`).
pub const OP_SET: i8 = 0;
pub const OP_DELETE: i8 = 1;
pub const OP_APPEND: i8 = 2;
pub const OP_SUBTRACT: i8 = 3;

message! {
    pub struct AlterConfigsRequest {
        pub resources: Vec<AlterConfigsResource>,
        pub validate_only: bool,
    }

    pub struct AlterConfigsResource {
        pub resource_type: i8,
        pub resource_name: String,
        pub configs: Vec<AlterableConfig>,
    }

    pub struct AlterableConfig {
        pub name: String,
        pub value: Option<String>,
    }

    pub struct IncrementalAlterConfigsRequest {
        pub resources: Vec<IncrementalAlterConfigsResource>,
        pub validate_only: bool,
    }

    pub struct IncrementalAlterConfigsResource {
        pub resource_type: i8,
        pub resource_name: String,
        pub configs: Vec<IncrementalAlterableConfig>,
    }

    pub struct IncrementalAlterableConfig {
        pub name: String,
        pub config_operation: i8,
        pub value: Option<String>,
    }

    pub struct AlterConfigsResponse {
        pub throttle_time_ms: i32,
        pub responses: Vec<AlterConfigsResourceResponse>,
    }

    pub struct AlterConfigsResourceResponse {
        pub error: ErrorCode,
        pub error_message: Option<String>,
        pub resource_type: i8,
        pub resource_name: String,
    }

    /// The same fields as AlterConfigsResponse, flexible from version 1.
    pub struct IncrementalAlterConfigsResponse {
        pub throttle_time_ms: i32,
        pub responses: Vec<AlterConfigsResourceResponse>,
    }
}

impl Request for AlterConfigsRequest {
    const KEY: ApiKey = ApiKey::AlterConfigs;
    const VERSIONS: (i16, i16) = (0, 2);
    const FLEXIBLE_FROM: i16 = 2;
    type Response = AlterConfigsResponse;
}

impl Request for IncrementalAlterConfigsRequest {
    const KEY: ApiKey = ApiKey::IncrementalAlterConfigs;
    const VERSIONS: (i16, i16) = (0, 1);
    const FLEXIBLE_FROM: i16 = 1;
    type Response = IncrementalAlterConfigsResponse;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::{Reader, Writer};
    use crate::protocol::wire::{Version, Wire};

    #[test]
    fn decodes_incremental_v1_as_kafka_writes_it() {
        let mut w = Writer::new();
        w.array_len(true, Some(1));
        w.i8(2);
        w.string(true, "t");
        w.array_len(true, Some(2));
        w.string(true, "retention.ms");
        w.i8(OP_SET);
        w.nullable_string(true, Some("1000"));
        w.tagged_fields(true);
        w.string(true, "cleanup.policy");
        w.i8(OP_DELETE);
        w.nullable_string(true, None);
        w.tagged_fields(true);
        w.tagged_fields(true);
        w.bool(true);
        w.tagged_fields(true);
        let mut r = Reader::new(w.finish().freeze());
        let req = IncrementalAlterConfigsRequest::decode(&mut r, Version::new(1, true)).unwrap();
        assert_eq!(r.remaining(), 0);
        assert!(req.validate_only);
        let configs = &req.resources[0].configs;
        assert_eq!(req.resources[0].resource_name, "t");
        assert_eq!(configs[0], IncrementalAlterableConfig { name: "retention.ms".into(), config_operation: OP_SET, value: Some("1000".into()) });
        assert_eq!(configs[1].value, None);
    }
}
