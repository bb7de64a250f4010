//! DescribeQuorum (key 55), versions 0-2; flexible from 0 (DescribeQuorumRequest.json,
//! DescribeQuorumResponse.json): the metadata quorum's leader, epoch, high watermark and each
//! voter's progress, as `kafka-metadata-quorum.sh describe` prints them. Brokers forward it
//! to the active controller.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct DescribeQuorumRequest {
        pub topics: Vec<DescribeQuorumTopic>,
    }

    pub struct DescribeQuorumTopic {
        pub topic_name: String,
        pub partitions: Vec<DescribeQuorumPartition>,
    }

    pub struct DescribeQuorumPartition {
        pub partition_index: i32,
    }

    pub struct DescribeQuorumResponse {
        pub error: ErrorCode,
        pub error_message: Option<String> [2.., nullable 2..],
        pub topics: Vec<QuorumTopicData>,
        pub nodes: Vec<QuorumNode> [2..],
    }

    pub struct QuorumTopicData {
        pub topic_name: String,
        pub partitions: Vec<QuorumPartitionData>,
    }

    pub struct QuorumPartitionData {
        pub partition_index: i32,
        pub error: ErrorCode,
        pub error_message: Option<String> [2.., nullable 2..],
        pub leader_id: i32,
        pub leader_epoch: i32,
        pub high_watermark: i64,
        pub current_voters: Vec<ReplicaState>,
        pub observers: Vec<ReplicaState>,
    }

    pub struct ReplicaState {
        pub replica_id: i32,
        pub replica_directory_id: [u8; 16] [2..],
        pub log_end_offset: i64,
        pub last_fetch_timestamp: i64 [1..] = -1,
        pub last_caught_up_timestamp: i64 [1..] = -1,
    }

    pub struct QuorumNode {
        pub node_id: i32 [2..],
        pub listeners: Vec<QuorumListener> [2..],
    }

    pub struct QuorumListener {
        pub name: String [2..],
        pub host: String [2..],
        pub port: u16 [2..],
    }
}

impl Request for DescribeQuorumRequest {
    const KEY: ApiKey = ApiKey::DescribeQuorum;
    const VERSIONS: (i16, i16) = (0, 2);
    const FLEXIBLE_FROM: i16 = 0;
    type Response = DescribeQuorumResponse;
}
