//! InitProducerId (key 22), versions 0-4; flexible from 2.

use crate::protocol::codec::{DecodeResult, Reader, Writer};
use crate::protocol::error::ErrorCode;

#[derive(Debug)]
pub struct InitProducerIdRequest {
    pub transactional_id: Option<String>,
    pub transaction_timeout_ms: i32,
    pub producer_id: i64,
    pub producer_epoch: i16,
}

pub fn decode_request(r: &mut Reader, version: i16, flexible: bool) -> DecodeResult<InitProducerIdRequest> {
    let transactional_id = r.nullable_string(flexible)?;
    let transaction_timeout_ms = r.i32()?;
    let (producer_id, producer_epoch) = if version >= 3 { (r.i64()?, r.i16()?) } else { (-1, -1) };
    r.tagged_fields(flexible)?;
    Ok(InitProducerIdRequest { transactional_id, transaction_timeout_ms, producer_id, producer_epoch })
}

pub fn encode_response(w: &mut Writer, flexible: bool, error: ErrorCode, producer_id: i64, producer_epoch: i16) {
    w.i32(0); // throttle_time_ms
    w.i16(error.0);
    w.i64(producer_id);
    w.i16(producer_epoch);
    w.tagged_fields(flexible);
}
