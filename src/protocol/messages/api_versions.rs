//! ApiVersions (key 18), versions 0-3; flexible from 3 (ApiVersionsRequest.json,
//! ApiVersionsResponse.json). The response always travels with response header v0, and a
//! request newer than Spate knows is answered UNSUPPORTED_VERSION in version 0, still listing
//! the ranges (KIP-511).

use crate::message;
use crate::protocol::api::{ApiRange, SUPPORTED_APIS};
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct ApiVersionsRequest {
        pub client_software_name: String [3..],
        pub client_software_version: String [3..],
    }

    pub struct ApiVersionsResponse {
        pub error: ErrorCode,
        pub api_keys: Vec<ApiVersion>,
        pub throttle_time_ms: i32 [1..],
        pub supported_features: Option<Vec<SupportedFeatureKey>> [3.., tag 0],
        pub finalized_features_epoch: Option<i64> [3.., tag 1],
        pub finalized_features: Option<Vec<FinalizedFeatureKey>> [3.., tag 2],
        pub zk_migration_ready: Option<bool> [3.., tag 3],
    }

    pub struct ApiVersion {
        pub api_key: i16,
        pub min_version: i16,
        pub max_version: i16,
    }

    pub struct SupportedFeatureKey {
        pub name: String,
        pub min_version: i16,
        pub max_version: i16,
    }

    pub struct FinalizedFeatureKey {
        pub name: String,
        pub max_version_level: i16,
        pub min_version_level: i16,
    }
}

impl ApiVersionsResponse {
    /// Spate's answer: every API it serves, with `error`.
    pub fn of_spate(error: ErrorCode) -> ApiVersionsResponse {
        let api_keys =
            SUPPORTED_APIS.iter().map(|&ApiRange { key, min_version, max_version, .. }| ApiVersion { api_key: key as i16, min_version, max_version }).collect();
        ApiVersionsResponse { error, api_keys, ..Default::default() }
    }
}

impl Request for ApiVersionsRequest {
    const KEY: ApiKey = ApiKey::ApiVersions;
    const VERSIONS: (i16, i16) = (0, 3);
    const FLEXIBLE_FROM: i16 = 3;
    type Response = ApiVersionsResponse;
}
