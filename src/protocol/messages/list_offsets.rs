//! ListOffsets (key 2), versions 1-7; flexible from 6.

use crate::protocol::codec::{DecodeResult, Reader, Writer};
use crate::protocol::error::ErrorCode;

pub const LATEST_TIMESTAMP: i64 = -1;
pub const EARLIEST_TIMESTAMP: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;

#[derive(Debug)]
pub struct ListOffsetsRequest {
    pub replica_id: i32,
    pub isolation_level: i8,
    pub topics: Vec<ListOffsetsTopic>,
}

#[derive(Debug)]
pub struct ListOffsetsTopic {
    pub name: String,
    pub partitions: Vec<ListOffsetsPartition>,
}

#[derive(Debug, Clone, Copy)]
pub struct ListOffsetsPartition {
    pub partition_index: i32,
    pub current_leader_epoch: i32,
    pub timestamp: i64,
}

pub fn decode_request(r: &mut Reader, version: i16, flexible: bool) -> DecodeResult<ListOffsetsRequest> {
    let replica_id = r.i32()?;
    let isolation_level = if version >= 2 { r.i8()? } else { 0 };
    let topics = r.array(flexible, 2, |r| {
        let name = r.string(flexible)?;
        let partitions = r.array(flexible, 12, |r| {
            let partition_index = r.i32()?;
            let current_leader_epoch = if version >= 4 { r.i32()? } else { -1 };
            let timestamp = r.i64()?;
            r.tagged_fields(flexible)?;
            Ok(ListOffsetsPartition { partition_index, current_leader_epoch, timestamp })
        })?;
        r.tagged_fields(flexible)?;
        Ok(ListOffsetsTopic { name, partitions })
    })?;
    r.tagged_fields(flexible)?;
    Ok(ListOffsetsRequest { replica_id, isolation_level, topics })
}

pub struct ListOffsetsPartitionResponse {
    pub partition_index: i32,
    pub error: ErrorCode,
    pub timestamp: i64,
    pub offset: i64,
    pub leader_epoch: i32,
}

pub struct ListOffsetsTopicResponse {
    pub name: String,
    pub partitions: Vec<ListOffsetsPartitionResponse>,
}

pub fn encode_response(w: &mut Writer, version: i16, flexible: bool, topics: &[ListOffsetsTopicResponse]) {
    if version >= 2 {
        w.i32(0); // throttle_time_ms
    }
    w.array_len(flexible, Some(topics.len()));
    for t in topics {
        w.string(flexible, &t.name);
        w.array_len(flexible, Some(t.partitions.len()));
        for p in &t.partitions {
            w.i32(p.partition_index);
            w.i16(p.error.0);
            w.i64(p.timestamp);
            w.i64(p.offset);
            if version >= 4 {
                w.i32(p.leader_epoch);
            }
            w.tagged_fields(flexible);
        }
        w.tagged_fields(flexible);
    }
    w.tagged_fields(flexible);
}
