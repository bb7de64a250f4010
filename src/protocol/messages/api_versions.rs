//! ApiVersions (key 18), versions 0-3. The response always travels with response header v0.

use crate::protocol::api::{ApiRange, SUPPORTED_APIS};
use crate::protocol::codec::{DecodeResult, Reader, Writer};
use crate::protocol::error::ErrorCode;

#[derive(Debug, Default)]
pub struct ApiVersionsRequest {
    pub client_software_name: Option<String>,
    pub client_software_version: Option<String>,
}

pub fn decode_request(r: &mut Reader, version: i16) -> DecodeResult<ApiVersionsRequest> {
    let mut req = ApiVersionsRequest::default();
    if version >= 3 {
        req.client_software_name = Some(r.string(true)?);
        req.client_software_version = Some(r.string(true)?);
        r.tagged_fields(true)?;
    }
    Ok(req)
}

/// Encodes the response. `version` is the version to encode with: for a request newer than
/// we know, KIP-511 says answer UNSUPPORTED_VERSION encoded as v0, still listing our ranges.
pub fn encode_response(w: &mut Writer, version: i16, error: ErrorCode) {
    let flexible = version >= 3;
    w.i16(error.0);
    w.array_len(flexible, Some(SUPPORTED_APIS.len()));
    for ApiRange { key, min_version, max_version, .. } in SUPPORTED_APIS {
        w.i16(*key as i16);
        w.i16(*min_version);
        w.i16(*max_version);
        w.tagged_fields(flexible);
    }
    if version >= 1 {
        w.i32(0); // throttle_time_ms
    }
    w.tagged_fields(flexible);
}
