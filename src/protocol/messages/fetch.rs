//! Fetch (key 1), versions 4-12; flexible from 12.
//!
//! The response is encoded as pieces: bytes built in memory, and record sections that the
//! caller fills however it likes (Spate splices them from segment files). The encoder only
//! needs each record section's length.

use bytes::Bytes;

use crate::protocol::codec::{DecodeResult, Reader, Writer};
use crate::protocol::error::ErrorCode;

#[derive(Debug)]
pub struct FetchRequest {
    pub replica_id: i32,
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub isolation_level: i8,
    pub session_id: i32,
    pub session_epoch: i32,
    pub topics: Vec<FetchTopic>,
}

#[derive(Debug)]
pub struct FetchTopic {
    pub name: String,
    pub partitions: Vec<FetchPartition>,
}

#[derive(Debug, Clone, Copy)]
pub struct FetchPartition {
    pub partition: i32,
    pub current_leader_epoch: i32,
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
}

pub fn decode_request(r: &mut Reader, version: i16, flexible: bool) -> DecodeResult<FetchRequest> {
    let replica_id = r.i32()?;
    let max_wait_ms = r.i32()?;
    let min_bytes = r.i32()?;
    let max_bytes = if version >= 3 { r.i32()? } else { i32::MAX };
    let isolation_level = if version >= 4 { r.i8()? } else { 0 };
    let (session_id, session_epoch) = if version >= 7 { (r.i32()?, r.i32()?) } else { (0, -1) };
    let topics = r.array(flexible, 2, |r| {
        let name = r.string(flexible)?;
        let partitions = r.array(flexible, 16, |r| {
            let partition = r.i32()?;
            let current_leader_epoch = if version >= 9 { r.i32()? } else { -1 };
            let fetch_offset = r.i64()?;
            if version >= 12 {
                r.i32()?; // last_fetched_epoch
            }
            if version >= 5 {
                r.i64()?; // log_start_offset (followers only)
            }
            let partition_max_bytes = r.i32()?;
            r.tagged_fields(flexible)?;
            Ok(FetchPartition { partition, current_leader_epoch, fetch_offset, partition_max_bytes })
        })?;
        r.tagged_fields(flexible)?;
        Ok(FetchTopic { name, partitions })
    })?;
    if version >= 7 {
        // forgotten_topics_data: only meaningful inside fetch sessions, which Spate does not
        // create (it answers session_id 0), so it is read and dropped.
        r.array(flexible, 2, |r| {
            r.string(flexible)?;
            r.array(flexible, 4, |r| r.i32())?;
            r.tagged_fields(flexible)
        })?;
    }
    if version >= 11 {
        r.string(flexible)?; // rack_id
    }
    r.tagged_fields(flexible)?;
    Ok(FetchRequest { replica_id, max_wait_ms, min_bytes, max_bytes, isolation_level, session_id, session_epoch, topics })
}

pub struct FetchPartitionResponse<R> {
    pub partition_index: i32,
    pub error: ErrorCode,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// The record bytes and their length; `None` encodes an empty record set.
    pub records: Option<(R, u32)>,
}

pub struct FetchTopicResponse<R> {
    pub name: String,
    pub partitions: Vec<FetchPartitionResponse<R>>,
}

/// A piece of an encoded fetch response, in wire order.
pub enum Piece<R> {
    Bytes(Bytes),
    Records(R),
}

/// Encodes a fetch response body into pieces. Returns the pieces and the body's total size.
pub fn encode_response<R>(version: i16, flexible: bool, error: ErrorCode, topics: Vec<FetchTopicResponse<R>>) -> (Vec<Piece<R>>, usize) {
    let mut pieces = Vec::new();
    let mut total = 0usize;
    let mut w = Writer::with_capacity(256);
    w.i32(0); // throttle_time_ms
    if version >= 7 {
        w.i16(error.0);
        w.i32(0); // session_id: no session is created
    }
    w.array_len(flexible, Some(topics.len()));
    for t in topics {
        w.string(flexible, &t.name);
        w.array_len(flexible, Some(t.partitions.len()));
        for p in t.partitions {
            w.i32(p.partition_index);
            w.i16(p.error.0);
            w.i64(p.high_watermark);
            w.i64(p.last_stable_offset);
            if version >= 5 {
                w.i64(p.log_start_offset);
            }
            w.array_len(flexible, Some(0)); // aborted_transactions
            if version >= 11 {
                w.i32(-1); // preferred_read_replica
            }
            match p.records {
                None => w.array_len(flexible, Some(0)),
                Some((records, len)) => {
                    w.array_len(flexible, Some(len as usize));
                    let head = std::mem::replace(&mut w, Writer::with_capacity(128));
                    total += head.len() + len as usize;
                    pieces.push(Piece::Bytes(head.finish().freeze()));
                    pieces.push(Piece::Records(records));
                }
            }
            w.tagged_fields(flexible);
        }
        w.tagged_fields(flexible);
    }
    w.tagged_fields(flexible);
    total += w.len();
    pieces.push(Piece::Bytes(w.finish().freeze()));
    (pieces, total)
}
