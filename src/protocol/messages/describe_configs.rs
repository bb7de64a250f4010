//! DescribeConfigs (key 32), versions 0-4; flexible from 4 (DescribeConfigsRequest.json,
//! DescribeConfigsResponse.json).
//!
//! Version 0 has no config source, only whether each value is the default (`is_default`):
//! `DescribeConfigsResponse::set_is_default_from_source` derives it from `source`. Spate
//! reports no synonyms and no documentation.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// config_source values (DescribeConfigsResponse.json).
pub const SOURCE_TOPIC_CONFIG: i8 = 1;
pub const SOURCE_STATIC_BROKER_CONFIG: i8 = 4;
pub const SOURCE_DEFAULT_CONFIG: i8 = 5;

message! {
    pub struct DescribeConfigsRequest {
        pub resources: Vec<DescribeConfigsResource>,
        pub include_synonyms: bool [1..],
        pub include_documentation: bool [3..],
    }

    pub struct DescribeConfigsResource {
        pub resource_type: i8,
        pub resource_name: String,
        /// `None` lists every configuration.
        pub configuration_keys: Option<Vec<String>>,
    }

    pub struct DescribeConfigsResponse {
        pub throttle_time_ms: i32,
        pub results: Vec<DescribeConfigsResult>,
    }

    pub struct DescribeConfigsResult {
        pub error: ErrorCode,
        pub error_message: Option<String>,
        pub resource_type: i8,
        pub resource_name: String,
        pub configs: Vec<ConfigEntry>,
    }

    pub struct ConfigEntry {
        pub name: String,
        pub value: Option<String>,
        pub read_only: bool,
        /// Version 0's stand-in for `source`: see `set_is_default_from_source`.
        pub is_default: bool [0],
        /// config_source (v1+): one of the `SOURCE_*` values.
        pub source: i8 [1..] = -1,
        pub is_sensitive: bool,
        pub synonyms: Vec<DescribeConfigsSynonym> [1..],
        /// config_type (v3+): 1 boolean, 2 string, 3 int, 4 short, 5 long, 6 double, 7 list,
        /// 8 class, 9 password, 0 unknown.
        pub config_type: i8 [3..],
        pub documentation: Option<String> [3..],
    }

    pub struct DescribeConfigsSynonym {
        pub name: String [1..],
        pub value: Option<String> [1..],
        pub source: i8 [1..],
    }
}

impl DescribeConfigsResponse {
    /// Sets every config's `is_default` (the version-0 field) from its `source`: a value is
    /// the default when its source is `SOURCE_DEFAULT_CONFIG`. Harmless in later versions,
    /// which do not carry `is_default`; call it before encoding a version-0 response.
    pub fn set_is_default_from_source(&mut self) {
        for config in self.results.iter_mut().flat_map(|r| r.configs.iter_mut()) {
            config.is_default = config.source == SOURCE_DEFAULT_CONFIG;
        }
    }
}

impl Request for DescribeConfigsRequest {
    const KEY: ApiKey = ApiKey::DescribeConfigs;
    const VERSIONS: (i16, i16) = (0, 4);
    const FLEXIBLE_FROM: i16 = 4;
    type Response = DescribeConfigsResponse;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::{Reader, Writer};
    use crate::protocol::wire::{Version, Wire};

    #[test]
    fn version_0_says_whether_each_value_is_the_default() {
        let entry = |name: &str, source| ConfigEntry { name: name.into(), value: Some("1".into()), source, ..Default::default() };
        let mut response = DescribeConfigsResponse {
            results: vec![DescribeConfigsResult {
                resource_type: RESOURCE_TOPIC,
                resource_name: "t".into(),
                configs: vec![entry("a", SOURCE_DEFAULT_CONFIG), entry("b", SOURCE_TOPIC_CONFIG)],
                ..Default::default()
            }],
            ..Default::default()
        };
        response.set_is_default_from_source();
        let mut w = Writer::new();
        response.encode(&mut w, Version::new(0, false));
        let mut r = Reader::new(w.finish().freeze());
        assert_eq!(r.i32().unwrap(), 0); // throttle_time_ms
        assert_eq!(r.array_len(false, 1).unwrap(), Some(1));
        assert_eq!(r.i16().unwrap(), 0);
        assert_eq!(r.nullable_string(false).unwrap(), None);
        assert_eq!(r.i8().unwrap(), RESOURCE_TOPIC);
        assert_eq!(r.string(false).unwrap(), "t");
        let configs = r
            .array(false, 1, |r| {
                let name = r.string(false)?;
                let value = r.nullable_string(false)?;
                let read_only = r.bool()?;
                let is_default = r.bool()?;
                let is_sensitive = r.bool()?;
                Ok((name, value, read_only, is_default, is_sensitive))
            })
            .unwrap();
        assert_eq!(configs, vec![(s("a"), Some(s("1")), false, true, false), (s("b"), Some(s("1")), false, false, false)]);
        assert_eq!(r.remaining(), 0);
    }

    fn s(v: &str) -> String {
        v.to_string()
    }
}
