//! Metadata (key 3), versions 0-12; flexible from 9.

use crate::protocol::codec::{DecodeError, DecodeResult, Reader, Writer};
use crate::protocol::error::ErrorCode;

#[derive(Debug)]
pub struct MetadataRequest {
    /// `None` asks for every topic (v0 says so with an empty array).
    pub topics: Option<Vec<MetadataRequestTopic>>,
    pub allow_auto_topic_creation: bool,
}

#[derive(Debug)]
pub struct MetadataRequestTopic {
    pub topic_id: [u8; 16],
    pub name: Option<String>,
}

pub fn decode_request(r: &mut Reader, version: i16, flexible: bool) -> DecodeResult<MetadataRequest> {
    let topics = r.nullable_array(flexible, 1, |r| {
        let topic_id = if version >= 10 { r.uuid()? } else { [0; 16] };
        let name = if version >= 10 { r.nullable_string(flexible)? } else { Some(r.string(flexible)?) };
        r.tagged_fields(flexible)?;
        Ok(MetadataRequestTopic { topic_id, name })
    })?;
    let topics = match topics {
        // Topics is only nullable from v1.
        None if version == 0 => return Err(DecodeError::InvalidLength(-1)),
        Some(t) if version == 0 && t.is_empty() => None,
        other => other,
    };
    let allow_auto_topic_creation = if version >= 4 { r.bool()? } else { true };
    if (8..=10).contains(&version) {
        r.bool()?; // include_cluster_authorized_operations
    }
    if version >= 8 {
        r.bool()?; // include_topic_authorized_operations
    }
    r.tagged_fields(flexible)?;
    Ok(MetadataRequest { topics, allow_auto_topic_creation })
}

pub struct MetadataBroker {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

pub struct MetadataTopic {
    pub error: ErrorCode,
    pub name: Option<String>,
    pub topic_id: [u8; 16],
    pub is_internal: bool,
    pub partitions: Vec<MetadataPartition>,
}

pub struct MetadataPartition {
    pub error: ErrorCode,
    pub partition_index: i32,
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub replica_nodes: Vec<i32>,
    pub isr_nodes: Vec<i32>,
}

pub struct MetadataResponse {
    pub brokers: Vec<MetadataBroker>,
    pub cluster_id: String,
    pub controller_id: i32,
    pub topics: Vec<MetadataTopic>,
}

fn int_array(w: &mut Writer, flexible: bool, values: &[i32]) {
    w.array_len(flexible, Some(values.len()));
    for v in values {
        w.i32(*v);
    }
}

pub fn encode_response(w: &mut Writer, version: i16, flexible: bool, resp: &MetadataResponse) {
    if version >= 3 {
        w.i32(0); // throttle_time_ms
    }
    w.array_len(flexible, Some(resp.brokers.len()));
    for b in &resp.brokers {
        w.i32(b.node_id);
        w.string(flexible, &b.host);
        w.i32(b.port);
        if version >= 1 {
            w.nullable_string(flexible, None); // rack
        }
        w.tagged_fields(flexible);
    }
    if version >= 2 {
        w.nullable_string(flexible, Some(&resp.cluster_id));
    }
    if version >= 1 {
        w.i32(resp.controller_id);
    }
    w.array_len(flexible, Some(resp.topics.len()));
    for t in &resp.topics {
        w.i16(t.error.0);
        if version >= 12 {
            w.nullable_string(flexible, t.name.as_deref());
        } else {
            w.string(flexible, t.name.as_deref().unwrap_or(""));
        }
        if version >= 10 {
            w.uuid(&t.topic_id);
        }
        if version >= 1 {
            w.bool(t.is_internal);
        }
        w.array_len(flexible, Some(t.partitions.len()));
        for p in &t.partitions {
            w.i16(p.error.0);
            w.i32(p.partition_index);
            w.i32(p.leader_id);
            if version >= 7 {
                w.i32(p.leader_epoch);
            }
            int_array(w, flexible, &p.replica_nodes);
            int_array(w, flexible, &p.isr_nodes);
            if version >= 5 {
                int_array(w, flexible, &[]); // offline_replicas
            }
            w.tagged_fields(flexible);
        }
        if version >= 8 {
            w.i32(i32::MIN); // topic_authorized_operations: not provided
        }
        w.tagged_fields(flexible);
    }
    if (8..=10).contains(&version) {
        w.i32(i32::MIN); // cluster_authorized_operations: not provided
    }
    w.tagged_fields(flexible);
}
