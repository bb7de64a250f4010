//! What brokers and tools ask the active controller, on the CONTROLLER listener, and its
//! answers. These stand in for Kafka's broker-to-controller APIs (BrokerRegistration 62,
//! BrokerHeartbeat 63, AlterPartition 56, ControlledShutdown through the heartbeat's
//! `wantShutDown`, the admin APIs a controller serves, and the metadata fetch with which KRaft
//! brokers follow the log), carried in the same frames as the quorum's own messages
//! (`raft::Rpc`): serde_json in a length-prefixed frame. A control plane at a few requests per
//! second per broker, so readability wins over compactness.

use serde::{Deserialize, Serialize};

use super::controller::NewTopic;
use super::image::MetadataImage;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerRequest {
    /// `BrokerRegistrationRequest`: a broker (re)starting. Every process start has a new
    /// incarnation id.
    RegisterBroker {
        cluster_id: String,
        broker_id: i32,
        incarnation_id: String,
        host: String,
        port: u16,
        rack: Option<String>,
    },
    /// `BrokerHeartbeatRequest`: alive, caught up to `metadata_offset`; `want_fence` until it
    /// has replayed the metadata it registered at; `want_shutdown` for a controlled shutdown.
    Heartbeat {
        broker_id: i32,
        broker_epoch: u64,
        metadata_offset: u64,
        want_fence: bool,
        want_shutdown: bool,
    },
    /// The metadata image, once it is newer than `since`, waiting up to `max_wait_ms` for it.
    FetchMetadata {
        since: u64,
        max_wait_ms: u64,
    },
    /// `AlterPartitionRequest` (KIP-497): a leader's new ISR for one partition.
    AlterPartition {
        broker_id: i32,
        broker_epoch: u64,
        topic_id: String,
        partition: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        new_isr: Vec<i32>,
    },
    CreateTopics {
        topics: Vec<NewTopic>,
        validate_only: bool,
    },
    DeleteTopics {
        names: Vec<String>,
    },
    /// `(topic, new total, assignments of the new partitions)`.
    CreatePartitions {
        topics: Vec<(String, i32, Vec<Vec<i32>>)>,
        validate_only: bool,
    },
    /// ElectLeaders: preferred (true) or unclean; no partitions means all.
    ElectLeaders {
        preferred: bool,
        partitions: Vec<(String, i32)>,
    },
    /// AlterPartitionReassignments: a target replica list per partition, `None` to cancel.
    AlterReassignments {
        partitions: Vec<(String, i32, Option<Vec<i32>>)>,
    },
    /// AlterConfigs and IncrementalAlterConfigs for topics.
    AlterConfigs {
        changes: Vec<super::controller::ConfigChange>,
        validate_only: bool,
    },
    /// DescribeQuorum.
    DescribeQuorum,
}

/// One result per item asked about: `None` is success, else Kafka's error code and message.
pub type ItemErrors = Vec<Option<(i16, String)>>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerResponse {
    /// This node is not the active controller; ask `leader` (a voter's node id) at `address`.
    NotController {
        leader: Option<u64>,
        address: Option<String>,
    },
    /// A request that failed as a whole (a Kafka error code).
    Error {
        code: i16,
        message: String,
    },
    Registered {
        broker_epoch: u64,
    },
    Heartbeat {
        is_caught_up: bool,
        is_fenced: bool,
        should_shut_down: bool,
    },
    /// `None`: nothing newer within the wait.
    Metadata {
        image: Option<Box<MetadataImage>>,
    },
    /// The ISR change was committed; the partition's epochs are now these.
    AlterPartition {
        leader_epoch: i32,
        partition_epoch: i32,
        isr: Vec<i32>,
    },
    Items {
        errors: ItemErrors,
    },
    /// One result per partition (ElectLeaders, AlterPartitionReassignments).
    Partitions {
        results: Vec<(String, i32, Option<(i16, String)>)>,
    },
    Quorum(QuorumStatus),
}

/// What `metadata-quorum --describe` prints (DescribeQuorumResponse's fields).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QuorumStatus {
    pub leader_id: Option<u64>,
    /// Raft's term, which KRaft calls the leader epoch.
    pub leader_epoch: u64,
    /// The log index committed by a majority.
    pub high_watermark: u64,
    pub voters: Vec<ReplicaStatus>,
    pub observers: Vec<ReplicaStatus>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReplicaStatus {
    pub id: u64,
    /// The last log index known to be replicated to it (on the leader; its own on itself).
    pub log_end_offset: Option<u64>,
    /// How long ago the leader last heard from it, in milliseconds.
    pub last_caught_up_ms_ago: Option<u64>,
}
