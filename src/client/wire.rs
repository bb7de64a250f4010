//! The client's side of the wire: request encoders and response decoders, one fixed version
//! per API. The versions are the newest non-flexible ones (Kafka 4 still serves all of them,
//! KIP-896), which keeps the client free of tagged fields; `Connection::open` checks each
//! against the broker's ApiVersions answer before it is used.
//!
//! The broker's side of the same messages lives in `protocol::messages`; the round-trip tests
//! at the bottom decode what this module encodes with the broker's decoders.

use bytes::Bytes;

use crate::protocol::api::ApiKey;
use crate::protocol::codec::{DecodeResult, Reader, Writer};
use crate::protocol::error::ErrorCode;

/// Non-flexible everywhere in this module.
const F: bool = false;

/// The version the client speaks for each API it uses.
pub const fn version_of(key: ApiKey) -> i16 {
    match key {
        ApiKey::Produce => 7,
        ApiKey::Fetch => 11,
        ApiKey::ListOffsets => 5,
        ApiKey::Metadata => 8,
        ApiKey::ApiVersions => 0,
        ApiKey::CreateTopics => 4,
        ApiKey::DeleteTopics => 3,
        ApiKey::InitProducerId => 1,
        ApiKey::DescribeConfigs => 1,
        ApiKey::CreatePartitions => 1,
        ApiKey::OffsetCommit => 7,
        ApiKey::OffsetFetch => 5,
        ApiKey::FindCoordinator => 2,
        ApiKey::JoinGroup => 5,
        ApiKey::Heartbeat => 3,
        ApiKey::LeaveGroup => 3,
        ApiKey::SyncGroup => 3,
        ApiKey::DescribeGroups => 4,
        ApiKey::ListGroups => 2,
        ApiKey::DeleteGroups => 1,
        ApiKey::OffsetDelete => 0,
    }
}

/// A request body the client can send.
pub trait Request {
    const KEY: ApiKey;
    type Response;
    fn encode(&self, w: &mut Writer);
    /// Like `encode`, but large byte fields may be left out of `w` and listed in `spliced` as
    /// (position in `w`, bytes) to be sent in place, without a copy.
    fn encode_spliced(&self, w: &mut Writer, _spliced: &mut Vec<(usize, Bytes)>) {
        self.encode(w)
    }
    fn decode_response(r: &mut Reader) -> DecodeResult<Self::Response>;
}

/// Request header v1: api key, version, correlation id, client id.
pub fn write_request_header(w: &mut Writer, key: ApiKey, correlation_id: i32, client_id: &str) {
    w.i16(key as i16);
    w.i16(version_of(key));
    w.i32(correlation_id);
    w.nullable_string(F, Some(client_id));
}

fn i32_array(w: &mut Writer, v: &[i32]) {
    w.array_len(F, Some(v.len()));
    for x in v {
        w.i32(*x);
    }
}

fn read_i32_array(r: &mut Reader) -> DecodeResult<Vec<i32>> {
    r.array(F, 4, |r| r.i32())
}

fn error_code(r: &mut Reader) -> DecodeResult<ErrorCode> {
    Ok(ErrorCode(r.i16()?))
}

// ---- ApiVersions v0 ----

pub struct ApiVersionsRequest;

#[derive(Debug, Clone)]
pub struct ApiVersionsResponse {
    pub error: ErrorCode,
    /// (api key, min version, max version)
    pub apis: Vec<(i16, i16, i16)>,
}

impl Request for ApiVersionsRequest {
    const KEY: ApiKey = ApiKey::ApiVersions;
    type Response = ApiVersionsResponse;
    fn encode(&self, _: &mut Writer) {}
    fn decode_response(r: &mut Reader) -> DecodeResult<ApiVersionsResponse> {
        let error = error_code(r)?;
        let apis = r.array(F, 6, |r| Ok((r.i16()?, r.i16()?, r.i16()?)))?;
        Ok(ApiVersionsResponse { error, apis })
    }
}

// ---- Metadata v8 ----

pub struct MetadataRequest {
    /// `None` asks for every topic.
    pub topics: Option<Vec<String>>,
    pub allow_auto_topic_creation: bool,
}

#[derive(Debug, Clone)]
pub struct BrokerMetadata {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

#[derive(Debug, Clone)]
pub struct PartitionMetadata {
    pub error: ErrorCode,
    pub index: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

#[derive(Debug, Clone)]
pub struct TopicMetadata {
    pub error: ErrorCode,
    pub name: String,
    pub is_internal: bool,
    pub partitions: Vec<PartitionMetadata>,
}

#[derive(Debug, Clone)]
pub struct MetadataResponse {
    pub brokers: Vec<BrokerMetadata>,
    pub controller_id: i32,
    pub topics: Vec<TopicMetadata>,
}

impl Request for MetadataRequest {
    const KEY: ApiKey = ApiKey::Metadata;
    type Response = MetadataResponse;
    fn encode(&self, w: &mut Writer) {
        match &self.topics {
            None => w.array_len(F, None),
            Some(topics) => {
                w.array_len(F, Some(topics.len()));
                for t in topics {
                    w.string(F, t);
                }
            }
        }
        w.bool(self.allow_auto_topic_creation);
        w.bool(false); // include_cluster_authorized_operations
        w.bool(false); // include_topic_authorized_operations
    }
    fn decode_response(r: &mut Reader) -> DecodeResult<MetadataResponse> {
        r.i32()?; // throttle_time_ms
        let brokers = r.array(F, 12, |r| {
            let node_id = r.i32()?;
            let host = r.string(F)?;
            let port = r.i32()?;
            r.nullable_string(F)?; // rack
            Ok(BrokerMetadata { node_id, host, port })
        })?;
        r.nullable_string(F)?; // cluster_id
        let controller_id = r.i32()?;
        let topics = r.array(F, 13, |r| {
            let error = error_code(r)?;
            let name = r.string(F)?;
            let is_internal = r.bool()?;
            let partitions = r.array(F, 26, |r| {
                let error = error_code(r)?;
                let index = r.i32()?;
                let leader = r.i32()?;
                r.i32()?; // leader_epoch
                let replicas = read_i32_array(r)?;
                let isr = read_i32_array(r)?;
                read_i32_array(r)?; // offline_replicas
                Ok(PartitionMetadata { error, index, leader, replicas, isr })
            })?;
            r.i32()?; // topic_authorized_operations
            Ok(TopicMetadata { error, name, is_internal, partitions })
        })?;
        r.i32()?; // cluster_authorized_operations
        Ok(MetadataResponse { brokers, controller_id, topics })
    }
}

// ---- Produce v7 ----

pub struct ProduceRequest {
    pub acks: i16,
    pub timeout_ms: i32,
    /// topic -> (partition, one or more record batches)
    pub topics: Vec<(String, Vec<(i32, Bytes)>)>,
}

#[derive(Debug, Clone)]
pub struct ProducePartitionResult {
    pub index: i32,
    pub error: ErrorCode,
    pub base_offset: i64,
    pub log_append_time_ms: i64,
}

impl Request for ProduceRequest {
    const KEY: ApiKey = ApiKey::Produce;
    type Response = Vec<(String, Vec<ProducePartitionResult>)>;
    fn encode(&self, w: &mut Writer) {
        self.encode_with(w, None);
    }
    fn encode_spliced(&self, w: &mut Writer, spliced: &mut Vec<(usize, Bytes)>) {
        self.encode_with(w, Some(spliced));
    }
    fn decode_response(r: &mut Reader) -> DecodeResult<Self::Response> {
        let topics = r.array(F, 6, |r| {
            let name = r.string(F)?;
            let partitions = r.array(F, 30, |r| {
                let index = r.i32()?;
                let error = error_code(r)?;
                let base_offset = r.i64()?;
                let log_append_time_ms = r.i64()?;
                r.i64()?; // log_start_offset
                Ok(ProducePartitionResult { index, error, base_offset, log_append_time_ms })
            })?;
            Ok((name, partitions))
        })?;
        r.i32()?; // throttle_time_ms
        Ok(topics)
    }
}

impl ProduceRequest {
    fn encode_with(&self, w: &mut Writer, mut spliced: Option<&mut Vec<(usize, Bytes)>>) {
        w.nullable_string(F, None); // transactional_id
        w.i16(self.acks);
        w.i32(self.timeout_ms);
        w.array_len(F, Some(self.topics.len()));
        for (name, partitions) in &self.topics {
            w.string(F, name);
            w.array_len(F, Some(partitions.len()));
            for (index, records) in partitions {
                w.i32(*index);
                match spliced.as_deref_mut() {
                    Some(spliced) => {
                        w.i32(records.len() as i32);
                        spliced.push((w.len(), records.clone()));
                    }
                    None => w.nullable_bytes(F, Some(records)),
                }
            }
        }
    }
}

// ---- Fetch v11 ----

pub struct FetchRequest {
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub isolation_level: i8,
    /// topic -> (partition, fetch offset, partition max bytes)
    pub topics: Vec<(String, Vec<(i32, i64, i32)>)>,
}

#[derive(Debug, Clone)]
pub struct FetchPartitionResult {
    pub index: i32,
    pub error: ErrorCode,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    pub records: Bytes,
}

#[derive(Debug, Clone)]
pub struct FetchResponse {
    pub error: ErrorCode,
    pub topics: Vec<(String, Vec<FetchPartitionResult>)>,
}

impl Request for FetchRequest {
    const KEY: ApiKey = ApiKey::Fetch;
    type Response = FetchResponse;
    fn encode(&self, w: &mut Writer) {
        w.i32(-1); // replica_id: a consumer
        w.i32(self.max_wait_ms);
        w.i32(self.min_bytes);
        w.i32(self.max_bytes);
        w.i8(self.isolation_level);
        w.i32(0); // session_id: no fetch session
        w.i32(-1); // session_epoch: full fetch, no session
        w.array_len(F, Some(self.topics.len()));
        for (name, partitions) in &self.topics {
            w.string(F, name);
            w.array_len(F, Some(partitions.len()));
            for (index, offset, max_bytes) in partitions {
                w.i32(*index);
                w.i32(-1); // current_leader_epoch
                w.i64(*offset);
                w.i64(-1); // log_start_offset (followers only)
                w.i32(*max_bytes);
            }
        }
        w.array_len(F, Some(0)); // forgotten_topics_data
        w.string(F, ""); // rack_id
    }
    fn decode_response(r: &mut Reader) -> DecodeResult<FetchResponse> {
        r.i32()?; // throttle_time_ms
        let error = error_code(r)?;
        r.i32()?; // session_id
        let topics = r.array(F, 6, |r| {
            let name = r.string(F)?;
            let partitions = r.array(F, 42, |r| {
                let index = r.i32()?;
                let error = error_code(r)?;
                let high_watermark = r.i64()?;
                let last_stable_offset = r.i64()?;
                let log_start_offset = r.i64()?;
                r.nullable_array(F, 16, |r| Ok((r.i64()?, r.i64()?)))?; // aborted_transactions
                r.i32()?; // preferred_read_replica
                let records = r.nullable_bytes(F)?.unwrap_or_default();
                Ok(FetchPartitionResult { index, error, high_watermark, last_stable_offset, log_start_offset, records })
            })?;
            Ok((name, partitions))
        })?;
        Ok(FetchResponse { error, topics })
    }
}

// ---- ListOffsets v5 ----

/// Kafka's special timestamps for ListOffsets.
pub const LATEST_TIMESTAMP: i64 = -1;
pub const EARLIEST_TIMESTAMP: i64 = -2;

pub struct ListOffsetsRequest {
    pub isolation_level: i8,
    /// topic -> (partition, timestamp)
    pub topics: Vec<(String, Vec<(i32, i64)>)>,
}

#[derive(Debug, Clone)]
pub struct ListOffsetsPartitionResult {
    pub index: i32,
    pub error: ErrorCode,
    pub timestamp: i64,
    pub offset: i64,
}

impl Request for ListOffsetsRequest {
    const KEY: ApiKey = ApiKey::ListOffsets;
    type Response = Vec<(String, Vec<ListOffsetsPartitionResult>)>;
    fn encode(&self, w: &mut Writer) {
        w.i32(-1); // replica_id
        w.i8(self.isolation_level);
        w.array_len(F, Some(self.topics.len()));
        for (name, partitions) in &self.topics {
            w.string(F, name);
            w.array_len(F, Some(partitions.len()));
            for (index, timestamp) in partitions {
                w.i32(*index);
                w.i32(-1); // current_leader_epoch
                w.i64(*timestamp);
            }
        }
    }
    fn decode_response(r: &mut Reader) -> DecodeResult<Self::Response> {
        r.i32()?; // throttle_time_ms
        r.array(F, 6, |r| {
            let name = r.string(F)?;
            let partitions = r.array(F, 26, |r| {
                let index = r.i32()?;
                let error = error_code(r)?;
                let timestamp = r.i64()?;
                let offset = r.i64()?;
                r.i32()?; // leader_epoch
                Ok(ListOffsetsPartitionResult { index, error, timestamp, offset })
            })?;
            Ok((name, partitions))
        })
    }
}

// ---- CreateTopics v4, DeleteTopics v3, CreatePartitions v1 ----

pub struct NewTopic {
    pub name: String,
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub configs: Vec<(String, String)>,
}

/// (name, error, error message) per topic.
pub type TopicResults = Vec<(String, ErrorCode, Option<String>)>;

pub struct CreateTopicsRequest {
    pub topics: Vec<NewTopic>,
    pub timeout_ms: i32,
    pub validate_only: bool,
}

impl Request for CreateTopicsRequest {
    const KEY: ApiKey = ApiKey::CreateTopics;
    type Response = TopicResults;
    fn encode(&self, w: &mut Writer) {
        w.array_len(F, Some(self.topics.len()));
        for t in &self.topics {
            w.string(F, &t.name);
            w.i32(t.num_partitions);
            w.i16(t.replication_factor);
            w.array_len(F, Some(0)); // assignments
            w.array_len(F, Some(t.configs.len()));
            for (k, v) in &t.configs {
                w.string(F, k);
                w.nullable_string(F, Some(v));
            }
        }
        w.i32(self.timeout_ms);
        w.bool(self.validate_only);
    }
    fn decode_response(r: &mut Reader) -> DecodeResult<TopicResults> {
        r.i32()?; // throttle_time_ms
        r.array(F, 6, |r| Ok((r.string(F)?, error_code(r)?, r.nullable_string(F)?)))
    }
}

pub struct DeleteTopicsRequest {
    pub topics: Vec<String>,
    pub timeout_ms: i32,
}

impl Request for DeleteTopicsRequest {
    const KEY: ApiKey = ApiKey::DeleteTopics;
    type Response = TopicResults;
    fn encode(&self, w: &mut Writer) {
        w.array_len(F, Some(self.topics.len()));
        for t in &self.topics {
            w.string(F, t);
        }
        w.i32(self.timeout_ms);
    }
    fn decode_response(r: &mut Reader) -> DecodeResult<TopicResults> {
        r.i32()?; // throttle_time_ms
        r.array(F, 4, |r| Ok((r.string(F)?, error_code(r)?, None)))
    }
}

pub struct CreatePartitionsRequest {
    /// (topic, new total partition count)
    pub topics: Vec<(String, i32)>,
    pub timeout_ms: i32,
    pub validate_only: bool,
}

impl Request for CreatePartitionsRequest {
    const KEY: ApiKey = ApiKey::CreatePartitions;
    type Response = TopicResults;
    fn encode(&self, w: &mut Writer) {
        w.array_len(F, Some(self.topics.len()));
        for (name, count) in &self.topics {
            w.string(F, name);
            w.i32(*count);
            w.array_len(F, None); // assignments: the broker chooses
        }
        w.i32(self.timeout_ms);
        w.bool(self.validate_only);
    }
    fn decode_response(r: &mut Reader) -> DecodeResult<TopicResults> {
        r.i32()?; // throttle_time_ms
        r.array(F, 6, |r| Ok((r.string(F)?, error_code(r)?, r.nullable_string(F)?)))
    }
}

// ---- DescribeConfigs v1 ----

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

pub struct DescribeConfigsRequest {
    /// (resource type, name, keys: `None` for all)
    pub resources: Vec<(i8, String, Option<Vec<String>>)>,
}

#[derive(Debug, Clone)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub read_only: bool,
    /// Kafka's ConfigSource: 1 dynamic topic, 5 static broker, 5/ default...
    pub source: i8,
    pub is_sensitive: bool,
}

#[derive(Debug, Clone)]
pub struct DescribeConfigsResult {
    pub error: ErrorCode,
    pub error_message: Option<String>,
    pub resource_type: i8,
    pub resource_name: String,
    pub configs: Vec<ConfigEntry>,
}

impl Request for DescribeConfigsRequest {
    const KEY: ApiKey = ApiKey::DescribeConfigs;
    type Response = Vec<DescribeConfigsResult>;
    fn encode(&self, w: &mut Writer) {
        w.array_len(F, Some(self.resources.len()));
        for (kind, name, keys) in &self.resources {
            w.i8(*kind);
            w.string(F, name);
            match keys {
                None => w.array_len(F, None),
                Some(keys) => {
                    w.array_len(F, Some(keys.len()));
                    for k in keys {
                        w.string(F, k);
                    }
                }
            }
        }
        w.bool(false); // include_synonyms
    }
    fn decode_response(r: &mut Reader) -> DecodeResult<Self::Response> {
        r.i32()?; // throttle_time_ms
        r.array(F, 11, |r| {
            let error = error_code(r)?;
            let error_message = r.nullable_string(F)?;
            let resource_type = r.i8()?;
            let resource_name = r.string(F)?;
            let configs = r.array(F, 9, |r| {
                let name = r.string(F)?;
                let value = r.nullable_string(F)?;
                let read_only = r.bool()?;
                let source = r.i8()?;
                let is_sensitive = r.bool()?;
                r.array(F, 5, |r| Ok((r.string(F)?, r.nullable_string(F)?, r.i8()?)))?; // synonyms
                Ok(ConfigEntry { name, value, read_only, source, is_sensitive })
            })?;
            Ok(DescribeConfigsResult { error, error_message, resource_type, resource_name, configs })
        })
    }
}

// ---- InitProducerId v1 ----

pub struct InitProducerIdRequest {
    pub transaction_timeout_ms: i32,
}

impl Request for InitProducerIdRequest {
    const KEY: ApiKey = ApiKey::InitProducerId;
    /// (error, producer id, epoch)
    type Response = (ErrorCode, i64, i16);
    fn encode(&self, w: &mut Writer) {
        w.nullable_string(F, None); // transactional_id
        w.i32(self.transaction_timeout_ms);
    }
    fn decode_response(r: &mut Reader) -> DecodeResult<Self::Response> {
        r.i32()?; // throttle_time_ms
        Ok((error_code(r)?, r.i64()?, r.i16()?))
    }
}

// ---- FindCoordinator v2 ----

pub struct FindCoordinatorRequest {
    pub group_id: String,
}

#[derive(Debug, Clone)]
pub struct FindCoordinatorResponse {
    pub error: ErrorCode,
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

impl Request for FindCoordinatorRequest {
    const KEY: ApiKey = ApiKey::FindCoordinator;
    type Response = FindCoordinatorResponse;
    fn encode(&self, w: &mut Writer) {
        w.string(F, &self.group_id);
        w.i8(0); // key_type: group
    }
    fn decode_response(r: &mut Reader) -> DecodeResult<Self::Response> {
        r.i32()?; // throttle_time_ms
        let error = error_code(r)?;
        r.nullable_string(F)?; // error_message
        Ok(FindCoordinatorResponse { error, node_id: r.i32()?, host: r.string(F)?, port: r.i32()? })
    }
}

// ---- JoinGroup v5, SyncGroup v3, Heartbeat v3, LeaveGroup v3 ----

pub struct JoinGroupRequest {
    pub group_id: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub protocol_type: String,
    /// (assignor name, subscription bytes)
    pub protocols: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, Clone)]
pub struct JoinGroupResponse {
    pub error: ErrorCode,
    pub generation_id: i32,
    pub protocol_name: String,
    pub leader: String,
    pub member_id: String,
    /// (member id, group instance id, subscription bytes); only the leader gets them.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl Request for JoinGroupRequest {
    const KEY: ApiKey = ApiKey::JoinGroup;
    type Response = JoinGroupResponse;
    fn encode(&self, w: &mut Writer) {
        w.string(F, &self.group_id);
        w.i32(self.session_timeout_ms);
        w.i32(self.rebalance_timeout_ms);
        w.string(F, &self.member_id);
        w.nullable_string(F, self.group_instance_id.as_deref());
        w.string(F, &self.protocol_type);
        w.array_len(F, Some(self.protocols.len()));
        for (name, metadata) in &self.protocols {
            w.string(F, name);
            w.nullable_bytes(F, Some(metadata));
        }
    }
    fn decode_response(r: &mut Reader) -> DecodeResult<JoinGroupResponse> {
        r.i32()?; // throttle_time_ms
        let error = error_code(r)?;
        let generation_id = r.i32()?;
        let protocol_name = r.string(F)?;
        let leader = r.string(F)?;
        let member_id = r.string(F)?;
        let members = r.array(F, 8, |r| Ok((r.string(F)?, r.nullable_string(F)?, r.nullable_bytes(F)?.unwrap_or_default())))?;
        Ok(JoinGroupResponse { error, generation_id, protocol_name, leader, member_id, members })
    }
}

pub struct SyncGroupRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// (member id, assignment bytes); only the leader sends them.
    pub assignments: Vec<(String, Vec<u8>)>,
}

impl Request for SyncGroupRequest {
    const KEY: ApiKey = ApiKey::SyncGroup;
    /// (error, assignment bytes)
    type Response = (ErrorCode, Bytes);
    fn encode(&self, w: &mut Writer) {
        w.string(F, &self.group_id);
        w.i32(self.generation_id);
        w.string(F, &self.member_id);
        w.nullable_string(F, self.group_instance_id.as_deref());
        w.array_len(F, Some(self.assignments.len()));
        for (member, assignment) in &self.assignments {
            w.string(F, member);
            w.nullable_bytes(F, Some(assignment));
        }
    }
    fn decode_response(r: &mut Reader) -> DecodeResult<Self::Response> {
        r.i32()?; // throttle_time_ms
        Ok((error_code(r)?, r.nullable_bytes(F)?.unwrap_or_default()))
    }
}

pub struct HeartbeatRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

impl Request for HeartbeatRequest {
    const KEY: ApiKey = ApiKey::Heartbeat;
    type Response = ErrorCode;
    fn encode(&self, w: &mut Writer) {
        w.string(F, &self.group_id);
        w.i32(self.generation_id);
        w.string(F, &self.member_id);
        w.nullable_string(F, self.group_instance_id.as_deref());
    }
    fn decode_response(r: &mut Reader) -> DecodeResult<ErrorCode> {
        r.i32()?; // throttle_time_ms
        error_code(r)
    }
}

pub struct LeaveGroupRequest {
    pub group_id: String,
    /// (member id, group instance id)
    pub members: Vec<(String, Option<String>)>,
}

impl Request for LeaveGroupRequest {
    const KEY: ApiKey = ApiKey::LeaveGroup;
    type Response = ErrorCode;
    fn encode(&self, w: &mut Writer) {
        w.string(F, &self.group_id);
        w.array_len(F, Some(self.members.len()));
        for (member, instance) in &self.members {
            w.string(F, member);
            w.nullable_string(F, instance.as_deref());
        }
    }
    fn decode_response(r: &mut Reader) -> DecodeResult<ErrorCode> {
        r.i32()?; // throttle_time_ms
        let top = error_code(r)?;
        let members = r.array(F, 6, |r| Ok((r.string(F)?, r.nullable_string(F)?, error_code(r)?)))?;
        if !top.is_ok() {
            return Ok(top);
        }
        // Otherwise the first member's error, if any.
        Ok(members.into_iter().map(|(_, _, e)| e).find(|e| !e.is_ok()).unwrap_or(ErrorCode::NONE))
    }
}

// ---- OffsetCommit v7, OffsetFetch v5 ----

pub struct OffsetCommitRequest {
    pub group_id: String,
    /// -1 for a commit from outside the group (admin tools, `assign` consumers).
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// topic -> (partition, offset, metadata)
    pub topics: Vec<(String, Vec<(i32, i64, Option<String>)>)>,
}

impl Request for OffsetCommitRequest {
    const KEY: ApiKey = ApiKey::OffsetCommit;
    type Response = Vec<(String, Vec<(i32, ErrorCode)>)>;
    fn encode(&self, w: &mut Writer) {
        w.string(F, &self.group_id);
        w.i32(self.generation_id);
        w.string(F, &self.member_id);
        w.nullable_string(F, self.group_instance_id.as_deref());
        w.array_len(F, Some(self.topics.len()));
        for (name, partitions) in &self.topics {
            w.string(F, name);
            w.array_len(F, Some(partitions.len()));
            for (index, offset, metadata) in partitions {
                w.i32(*index);
                w.i64(*offset);
                w.i32(-1); // committed_leader_epoch
                w.nullable_string(F, metadata.as_deref());
            }
        }
    }
    fn decode_response(r: &mut Reader) -> DecodeResult<Self::Response> {
        r.i32()?; // throttle_time_ms
        r.array(F, 6, |r| Ok((r.string(F)?, r.array(F, 6, |r| Ok((r.i32()?, error_code(r)?)))?)))
    }
}

pub struct OffsetFetchRequest {
    pub group_id: String,
    /// `None` fetches every partition the group has committed.
    pub topics: Option<Vec<(String, Vec<i32>)>>,
}

#[derive(Debug, Clone)]
pub struct OffsetFetchPartition {
    pub index: i32,
    /// -1 when nothing is committed.
    pub offset: i64,
    pub metadata: Option<String>,
    pub error: ErrorCode,
}

impl Request for OffsetFetchRequest {
    const KEY: ApiKey = ApiKey::OffsetFetch;
    /// (per-topic results, group-level error)
    type Response = (Vec<(String, Vec<OffsetFetchPartition>)>, ErrorCode);
    fn encode(&self, w: &mut Writer) {
        w.string(F, &self.group_id);
        match &self.topics {
            None => w.array_len(F, None),
            Some(topics) => {
                w.array_len(F, Some(topics.len()));
                for (name, partitions) in topics {
                    w.string(F, name);
                    i32_array(w, partitions);
                }
            }
        }
    }
    fn decode_response(r: &mut Reader) -> DecodeResult<Self::Response> {
        r.i32()?; // throttle_time_ms
        let topics = r.array(F, 6, |r| {
            let name = r.string(F)?;
            let partitions = r.array(F, 20, |r| {
                let index = r.i32()?;
                let offset = r.i64()?;
                r.i32()?; // committed_leader_epoch
                let metadata = r.nullable_string(F)?;
                Ok(OffsetFetchPartition { index, offset, metadata, error: error_code(r)? })
            })?;
            Ok((name, partitions))
        })?;
        Ok((topics, error_code(r)?))
    }
}

// ---- ListGroups v2, DescribeGroups v4, DeleteGroups v1 ----

pub struct ListGroupsRequest;

impl Request for ListGroupsRequest {
    const KEY: ApiKey = ApiKey::ListGroups;
    /// (error, [(group id, protocol type)])
    type Response = (ErrorCode, Vec<(String, String)>);
    fn encode(&self, _: &mut Writer) {}
    fn decode_response(r: &mut Reader) -> DecodeResult<Self::Response> {
        r.i32()?; // throttle_time_ms
        let e = error_code(r)?;
        Ok((e, r.array(F, 4, |r| Ok((r.string(F)?, r.string(F)?)))?))
    }
}

pub struct DescribeGroupsRequest {
    pub groups: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct GroupMemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub error: ErrorCode,
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<GroupMemberDescription>,
}

impl Request for DescribeGroupsRequest {
    const KEY: ApiKey = ApiKey::DescribeGroups;
    type Response = Vec<GroupDescription>;
    fn encode(&self, w: &mut Writer) {
        w.array_len(F, Some(self.groups.len()));
        for g in &self.groups {
            w.string(F, g);
        }
        w.bool(false); // include_authorized_operations
    }
    fn decode_response(r: &mut Reader) -> DecodeResult<Self::Response> {
        r.i32()?; // throttle_time_ms
        r.array(F, 16, |r| {
            let error = error_code(r)?;
            let group_id = r.string(F)?;
            let state = r.string(F)?;
            let protocol_type = r.string(F)?;
            let protocol = r.string(F)?;
            let members = r.array(F, 16, |r| {
                Ok(GroupMemberDescription {
                    member_id: r.string(F)?,
                    group_instance_id: r.nullable_string(F)?,
                    client_id: r.string(F)?,
                    client_host: r.string(F)?,
                    metadata: r.nullable_bytes(F)?.unwrap_or_default(),
                    assignment: r.nullable_bytes(F)?.unwrap_or_default(),
                })
            })?;
            r.i32()?; // authorized_operations
            Ok(GroupDescription { error, group_id, state, protocol_type, protocol, members })
        })
    }
}

pub struct DeleteGroupsRequest {
    pub groups: Vec<String>,
}

impl Request for DeleteGroupsRequest {
    const KEY: ApiKey = ApiKey::DeleteGroups;
    type Response = Vec<(String, ErrorCode)>;
    fn encode(&self, w: &mut Writer) {
        w.array_len(F, Some(self.groups.len()));
        for g in &self.groups {
            w.string(F, g);
        }
    }
    fn decode_response(r: &mut Reader) -> DecodeResult<Self::Response> {
        r.i32()?; // throttle_time_ms
        r.array(F, 4, |r| Ok((r.string(F)?, error_code(r)?)))
    }
}

#[cfg(test)]
mod tests {
    //! Each request encoded here is decoded by the broker's own decoder, so the two sides of
    //! one schema cannot drift apart unnoticed.
    use super::*;
    use crate::protocol::messages;

    fn encoded<R: Request>(req: &R) -> Reader {
        let mut w = Writer::new();
        req.encode(&mut w);
        Reader::new(w.finish().freeze())
    }

    #[test]
    fn produce_and_fetch_requests_decode_on_the_broker() {
        let batch = Bytes::from(crate::protocol::record_batch::build_batch(0, 5, &[]));
        let req = ProduceRequest { acks: -1, timeout_ms: 1000, topics: vec![("t".into(), vec![(3, batch.clone())])] };
        let mut r = encoded(&req);
        let decoded = messages::produce::decode_request(&mut r, version_of(ApiKey::Produce), false).unwrap();
        assert_eq!(r.remaining(), 0);
        assert_eq!(decoded.acks, -1);
        assert_eq!(decoded.topics[0].partitions[0].index, 3);
        assert_eq!(decoded.topics[0].partitions[0].records.as_ref(), Some(&batch));

        let req = FetchRequest { max_wait_ms: 500, min_bytes: 1, max_bytes: 1 << 20, isolation_level: 0, topics: vec![("t".into(), vec![(1, 42, 4096)])] };
        let mut r = encoded(&req);
        let decoded = messages::fetch::decode_request(&mut r, version_of(ApiKey::Fetch), false).unwrap();
        assert_eq!(r.remaining(), 0);
        assert_eq!(decoded.max_wait_ms, 500);
        assert_eq!(decoded.topics[0].partitions[0].fetch_offset, 42);
    }

    #[test]
    fn a_spliced_produce_request_is_the_same_bytes_as_a_copied_one() {
        let a = Bytes::from(crate::protocol::record_batch::build_batch(0, 5, &[]));
        let b = Bytes::from(vec![9u8; 100]);
        let req =
            ProduceRequest { acks: 1, timeout_ms: 10, topics: vec![("t".into(), vec![(0, a), (1, b)]), ("u".into(), vec![(2, Bytes::from_static(b"xyz"))])] };
        let mut plain = Writer::new();
        req.encode(&mut plain);
        let mut w = Writer::new();
        let mut spliced = Vec::new();
        req.encode_spliced(&mut w, &mut spliced);
        let head = w.finish();
        let mut joined = Vec::new();
        let mut taken = 0;
        for (at, bytes) in &spliced {
            joined.extend_from_slice(&head[taken..*at]);
            joined.extend_from_slice(bytes);
            taken = *at;
        }
        joined.extend_from_slice(&head[taken..]);
        assert_eq!(spliced.len(), 3);
        assert_eq!(joined, plain.finish().to_vec());
    }

    #[test]
    fn group_requests_decode_on_the_broker() {
        let req = JoinGroupRequest {
            group_id: "g".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            member_id: "m".into(),
            group_instance_id: Some("i".into()),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), vec![1, 2, 3])],
        };
        let mut r = encoded(&req);
        let decoded = messages::join_group::decode_request(&mut r, version_of(ApiKey::JoinGroup), false).unwrap();
        assert_eq!(r.remaining(), 0);
        assert_eq!(decoded.group_instance_id.as_deref(), Some("i"));
        assert_eq!(decoded.protocols[0].name, "range");

        let req = OffsetCommitRequest {
            group_id: "g".into(),
            generation_id: 3,
            member_id: "m".into(),
            group_instance_id: None,
            topics: vec![("t".into(), vec![(0, 17, Some("meta".into()))])],
        };
        let mut r = encoded(&req);
        let decoded = messages::offset_commit::decode_request(&mut r, version_of(ApiKey::OffsetCommit), false).unwrap();
        assert_eq!(r.remaining(), 0);
        assert_eq!(decoded.topics[0].partitions[0].committed_offset, 17);
    }
}
