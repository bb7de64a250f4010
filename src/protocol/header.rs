//! Request and response headers.
//!
//! Request header v1 is `api_key, api_version, correlation_id, client_id` (client_id is a
//! nullable string with an `i16` length even in flexible requests); v2 adds tagged fields and
//! is used by every flexible request. The response header v1 adds tagged fields to v0's
//! `correlation_id`, and is used by flexible responses, except ApiVersions: its response
//! header is always v0, so that a client that does not yet know the broker's versions can read
//! it (KIP-511).

use super::api::ApiKey;
use super::codec::{DecodeResult, Reader, Writer};

/// The fields every request starts with, read before the API is known to be supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    /// Whether the body (and the response) use the flexible encoding.
    pub flexible: bool,
}

impl RequestHeader {
    /// The version of the body, as the message definitions take it.
    pub fn version(&self) -> super::wire::Version {
        super::wire::Version::new(self.api_version, self.flexible)
    }
}

/// Reads the fixed prefix of a request; it is the same in every header version.
pub fn read_prefix(r: &mut Reader) -> DecodeResult<RequestPrefix> {
    Ok(RequestPrefix { api_key: r.i16()?, api_version: r.i16()?, correlation_id: r.i32()? })
}

/// Reads the rest of the header once the API and version are known to be served.
pub fn read_header_rest(r: &mut Reader, prefix: RequestPrefix, api_key: ApiKey) -> DecodeResult<RequestHeader> {
    let flexible = api_key.is_flexible(prefix.api_version);
    // client_id is a legacy (non-compact) nullable string in every header version.
    let client_id = r.nullable_string(false)?;
    r.tagged_fields(flexible)?;
    Ok(RequestHeader { api_key, api_version: prefix.api_version, correlation_id: prefix.correlation_id, client_id, flexible })
}

/// Writes the response header for a request.
pub fn write_response_header(w: &mut Writer, api_key: ApiKey, flexible: bool, correlation_id: i32) {
    w.i32(correlation_id);
    if api_key != ApiKey::ApiVersions {
        w.tagged_fields(flexible);
    }
}

/// Writes a request header: v1 (api key, version, correlation id, client id), and v2 (v1 and
/// tagged fields) for a flexible version.
pub fn write_request_header(w: &mut Writer, api_key: ApiKey, v: super::wire::Version, correlation_id: i32, client_id: &str) {
    w.i16(api_key as i16);
    w.i16(v.v);
    w.i32(correlation_id);
    // client_id is a legacy (non-compact) nullable string in every header version.
    w.nullable_string(false, Some(client_id));
    w.tagged_fields(v.flexible);
}
