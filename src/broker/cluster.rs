//! The cluster's describe APIs: DescribeCluster (60) from the shard's catalog, and
//! DescribeQuorum (55), which the broker forwards to the active controller as KRaft brokers do.

use std::rc::Rc;

use super::{decode, malformed, ready, respond, Dispatched};
use crate::cluster::rpc::{ControllerRequest, ControllerResponse, ReplicaStatus};
use crate::protocol::codec::Reader;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::describe_cluster::{DescribeClusterBroker, DescribeClusterRequest, DescribeClusterResponse};
use crate::protocol::messages::describe_quorum::{DescribeQuorumRequest, DescribeQuorumResponse, QuorumPartitionData, QuorumTopicData, ReplicaState};
use crate::protocol::ErrorCode;
use crate::shard::Shard;

/// The metadata log's topic, as KRaft names it.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

pub fn describe_cluster(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let request = match decode::<DescribeClusterRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let config = shard.config();
    let catalog = shard.catalog();
    let mut response = DescribeClusterResponse {
        endpoint_type: request.endpoint_type,
        cluster_id: config.cluster_id.clone(),
        controller_id: config.broker_id,
        ..Default::default()
    };
    if request.endpoint_type == 2 {
        // Controllers are reached through the brokers here (no --bootstrap-controller yet).
        response.error = ErrorCode::UNSUPPORTED_VERSION;
        response.error_message = Some("describing controllers is not supported; ask a broker".to_string());
    } else if catalog.is_cluster() {
        response.brokers = catalog
            .brokers
            .iter()
            .map(|b| DescribeClusterBroker { broker_id: b.id, host: b.host.clone(), port: b.port as i32, rack: b.rack.clone() })
            .collect();
    } else {
        response.brokers =
            vec![DescribeClusterBroker { broker_id: config.broker_id, host: config.advertised_host.clone(), port: config.advertised_port as i32, rack: None }];
    }
    ready(respond(&header, &response))
}

pub fn describe_quorum(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let request = match decode::<DescribeQuorumRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let failed = |error: ErrorCode, message: String| DescribeQuorumResponse { error, error_message: Some(message), ..Default::default() };
        let asked_metadata =
            request.topics.len() == 1 && request.topics[0].topic_name == METADATA_TOPIC && request.topics[0].partitions.iter().all(|p| p.partition_index == 0);
        if shard.config().cluster.is_none() {
            return Some(respond(&header, &failed(ErrorCode::INVALID_REQUEST, "this broker runs without a metadata quorum (no process.roles)".to_string())));
        }
        if !asked_metadata {
            return Some(respond(&header, &failed(ErrorCode::INVALID_REQUEST, format!("only {METADATA_TOPIC}-0 has a quorum"))));
        }
        let response = match super::controller::ask_controller(&shard, &ControllerRequest::DescribeQuorum).await {
            Ok(ControllerResponse::Quorum(status)) => {
                let now = crate::io::runtime::now_ms();
                let state = |s: &ReplicaStatus| ReplicaState {
                    replica_id: s.id as i32,
                    log_end_offset: s.log_end_offset.map_or(-1, |o| o as i64),
                    last_fetch_timestamp: s.last_caught_up_ms_ago.map_or(-1, |ago| now - ago as i64),
                    last_caught_up_timestamp: s.last_caught_up_ms_ago.map_or(-1, |ago| now - ago as i64),
                    ..Default::default()
                };
                DescribeQuorumResponse {
                    topics: vec![QuorumTopicData {
                        topic_name: METADATA_TOPIC.to_string(),
                        partitions: vec![QuorumPartitionData {
                            partition_index: 0,
                            leader_id: status.leader_id.map_or(-1, |l| l as i32),
                            leader_epoch: status.leader_epoch as i32,
                            high_watermark: status.high_watermark as i64,
                            current_voters: status.voters.iter().map(state).collect(),
                            observers: status.observers.iter().map(state).collect(),
                            ..Default::default()
                        }],
                    }],
                    ..Default::default()
                }
            }
            Ok(other) => failed(ErrorCode::UNKNOWN_SERVER_ERROR, format!("unexpected answer from the controller: {other:?}")),
            Err(e) => failed(ErrorCode::NOT_CONTROLLER, format!("no active controller answered: {e}")),
        };
        Some(respond(&header, &response))
    }))
}
