//! DescribeConfigs (key 32), versions 0-4; flexible from 4.

use crate::protocol::codec::{DecodeResult, Reader, Writer};
use crate::protocol::error::ErrorCode;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// config_source values (DescribeConfigsResponse.json).
pub const SOURCE_TOPIC_CONFIG: i8 = 1;
pub const SOURCE_STATIC_BROKER_CONFIG: i8 = 4;
pub const SOURCE_DEFAULT_CONFIG: i8 = 5;

#[derive(Debug)]
pub struct DescribeConfigsRequest {
    pub resources: Vec<DescribeConfigsResource>,
    pub include_synonyms: bool,
    pub include_documentation: bool,
}

#[derive(Debug)]
pub struct DescribeConfigsResource {
    pub resource_type: i8,
    pub resource_name: String,
    pub configuration_keys: Option<Vec<String>>,
}

pub fn decode_request(r: &mut Reader, version: i16, flexible: bool) -> DecodeResult<DescribeConfigsRequest> {
    let resources = r.array(flexible, 4, |r| {
        let resource_type = r.i8()?;
        let resource_name = r.string(flexible)?;
        let configuration_keys = r.nullable_array(flexible, 1, |r| r.string(flexible))?;
        r.tagged_fields(flexible)?;
        Ok(DescribeConfigsResource { resource_type, resource_name, configuration_keys })
    })?;
    let include_synonyms = if version >= 1 { r.bool()? } else { false };
    let include_documentation = if version >= 3 { r.bool()? } else { false };
    r.tagged_fields(flexible)?;
    Ok(DescribeConfigsRequest { resources, include_synonyms, include_documentation })
}

pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub read_only: bool,
    pub source: i8,
    pub is_sensitive: bool,
    /// config_type (v3+): 1 boolean, 2 string, 3 int, 4 short, 5 long, 6 double, 7 list,
    /// 8 class, 9 password, 0 unknown.
    pub config_type: i8,
}

pub struct DescribeConfigsResult {
    pub error: ErrorCode,
    pub error_message: Option<String>,
    pub resource_type: i8,
    pub resource_name: String,
    pub configs: Vec<ConfigEntry>,
}

pub fn encode_response(w: &mut Writer, version: i16, flexible: bool, results: &[DescribeConfigsResult]) {
    w.i32(0); // throttle_time_ms
    w.array_len(flexible, Some(results.len()));
    for res in results {
        w.i16(res.error.0);
        w.nullable_string(flexible, res.error_message.as_deref());
        w.i8(res.resource_type);
        w.string(flexible, &res.resource_name);
        w.array_len(flexible, Some(res.configs.len()));
        for c in &res.configs {
            w.string(flexible, &c.name);
            w.nullable_string(flexible, c.value.as_deref());
            w.bool(c.read_only);
            if version == 0 {
                w.bool(c.source == SOURCE_DEFAULT_CONFIG);
            } else {
                w.i8(c.source);
            }
            w.bool(c.is_sensitive);
            if version >= 1 {
                w.array_len(flexible, Some(0)); // synonyms
            }
            if version >= 3 {
                w.i8(c.config_type);
                w.nullable_string(flexible, None); // documentation
            }
            w.tagged_fields(flexible);
        }
        w.tagged_fields(flexible);
    }
    w.tagged_fields(flexible);
}
