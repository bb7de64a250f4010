//! The partition-placement admin APIs of a cluster: ElectLeaders (43), and
//! AlterPartitionReassignments (45) and ListPartitionReassignments (46) (KIP-455). Elections
//! and reassignments are the active controller's decisions, so the broker forwards them (as
//! KRaft brokers forward them, `ForwardingManager`); the list is answered from this broker's
//! copy of the metadata, which holds each partition's adding and removing replicas. On a single
//! node without a quorum the one replica leads already and cannot move.

use std::rc::Rc;

use super::{decode, malformed, respond, Dispatched};
use crate::cluster::rpc::{ControllerRequest, ControllerResponse};
use crate::protocol::codec::Reader;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::alter_partition_reassignments::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, AlterReassignmentsPartitionResponse, AlterReassignmentsTopicResponse,
};
use crate::protocol::messages::elect_leaders::{
    ElectLeadersPartitionResult, ElectLeadersRequest, ElectLeadersResponse, ElectLeadersResult, PREFERRED, UNCLEAN,
};
use crate::protocol::messages::list_partition_reassignments::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, ListReassignmentsOngoingPartition, ListReassignmentsOngoingTopic,
};
use crate::protocol::ErrorCode;
use crate::shard::Shard;

/// Per partition: its error, if any.
type PartitionErrors = Vec<(String, i32, Option<(ErrorCode, String)>)>;

/// Asks the active controller `request` and returns its per-partition results; when no
/// controller answers, every partition gets `NOT_CONTROLLER` (clients retry it).
async fn ask_for_partitions(shard: &Rc<Shard>, request: ControllerRequest, partitions: &[(String, i32)]) -> PartitionErrors {
    let everyone = |code: ErrorCode, message: String| partitions.iter().map(|(t, p)| (t.clone(), *p, Some((code, message.clone())))).collect();
    match super::controller::ask_controller(shard, &request).await {
        Ok(ControllerResponse::Partitions { results }) => results.into_iter().map(|(t, p, e)| (t, p, e.map(|(c, m)| (ErrorCode(c), m)))).collect(),
        Ok(ControllerResponse::Error { code, message }) => everyone(ErrorCode(code), message),
        Ok(other) => everyone(ErrorCode::UNKNOWN_SERVER_ERROR, format!("unexpected answer from the controller: {other:?}")),
        Err(e) => everyone(ErrorCode::NOT_CONTROLLER, format!("no active controller answered: {e}")),
    }
}

/// Groups per-partition results by topic, in first-seen order.
fn by_topic<T>(results: PartitionErrors, mut make: impl FnMut(i32, ErrorCode, Option<String>) -> T) -> Vec<(String, Vec<T>)> {
    let mut topics: Vec<(String, Vec<T>)> = Vec::new();
    for (topic, partition, error) in results {
        let (code, message) = error.map_or((ErrorCode::NONE, None), |(c, m)| (c, Some(m)));
        match topics.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, items)) => items.push(make(partition, code, message)),
            None => topics.push((topic, vec![make(partition, code, message)])),
        }
    }
    topics
}

pub fn elect_leaders(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let request = match decode::<ElectLeadersRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let catalog = shard.catalog();
        let asked: Option<Vec<(String, i32)>> =
            request.topic_partitions.as_ref().map(|ts| ts.iter().flat_map(|t| t.partitions.iter().map(|p| (t.topic.clone(), *p))).collect());
        let mut response = ElectLeadersResponse::default();
        if request.election_type != PREFERRED && request.election_type != UNCLEAN {
            response.error = ErrorCode::INVALID_REQUEST;
            return Some(respond(&header, &response));
        }
        let results: PartitionErrors = if catalog.is_cluster() {
            let partitions = asked.clone().unwrap_or_default();
            let request = ControllerRequest::ElectLeaders { preferred: request.election_type == PREFERRED, partitions: partitions.clone() };
            let results = ask_for_partitions(&shard, request, &partitions).await;
            // Asked for every partition, Kafka answers only for those whose election was
            // needed (`ReplicationControlManager.electLeaders`).
            match asked {
                None => results.into_iter().filter(|(_, _, e)| !e.as_ref().is_some_and(|(c, _)| *c == ErrorCode::ELECTION_NOT_NEEDED)).collect(),
                Some(_) => results,
            }
        } else {
            // One node: each partition's only replica leads it already.
            asked
                .unwrap_or_default()
                .into_iter()
                .map(|(t, p)| {
                    let error = match catalog.topic(&t) {
                        Some(m) if (0..m.partitions).contains(&p) => (ErrorCode::ELECTION_NOT_NEEDED, "the only replica leads already".to_string()),
                        _ => (ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, format!("unknown partition {t}-{p}")),
                    };
                    (t, p, Some(error))
                })
                .collect()
        };
        response.replica_election_results =
            by_topic(results, |partition_id, error, error_message| ElectLeadersPartitionResult { partition_id, error, error_message })
                .into_iter()
                .map(|(topic, partition_result)| ElectLeadersResult { topic, partition_result })
                .collect();
        Some(respond(&header, &response))
    }))
}

pub fn alter_partition_reassignments(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let request = match decode::<AlterPartitionReassignmentsRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let catalog = shard.catalog();
        let me = shard.config().broker_id;
        let mut refused: PartitionErrors = Vec::new();
        let mut forwarded: Vec<(String, i32, Option<Vec<i32>>)> = Vec::new();
        for t in &request.topics {
            let meta = catalog.topic(&t.name);
            for p in &t.partitions {
                let current = meta.filter(|m| (0..m.partitions).contains(&p.partition_index)).map(|m| match m.replication.get(p.partition_index as usize) {
                    Some(state) => state.target_replicas(),
                    None => vec![me],
                });
                let refusal = match (&current, &p.replicas) {
                    (None, _) => Some((ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, format!("unknown partition {}-{}", t.name, p.partition_index))),
                    (Some(current), Some(target)) if !request.allow_replication_factor_change && target.len() != current.len() => Some((
                        ErrorCode::INVALID_REPLICATION_FACTOR,
                        format!("the replication factor would change from {} to {}, which the request does not allow", current.len(), target.len()),
                    )),
                    (Some(_), _) if catalog.is_cluster() => None,
                    // One node: only its own single replica is possible, and nothing moves.
                    (Some(_), None) => Some((ErrorCode::NO_REASSIGNMENT_IN_PROGRESS, "no reassignment is in progress".to_string())),
                    (Some(_), Some(target)) if target.as_slice() == [me] => None,
                    (Some(_), Some(_)) => Some((ErrorCode::INVALID_REPLICA_ASSIGNMENT, format!("this single node has only broker {me}"))),
                };
                match refusal {
                    Some(e) => refused.push((t.name.clone(), p.partition_index, Some(e))),
                    None if catalog.is_cluster() => forwarded.push((t.name.clone(), p.partition_index, p.replicas.clone())),
                    None => refused.push((t.name.clone(), p.partition_index, None)),
                }
            }
        }
        let mut results = refused;
        if !forwarded.is_empty() {
            let keys: Vec<(String, i32)> = forwarded.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
            results.extend(ask_for_partitions(&shard, ControllerRequest::AlterReassignments { partitions: forwarded }, &keys).await);
        }
        let responses =
            by_topic(results, |partition_index, error, error_message| AlterReassignmentsPartitionResponse { partition_index, error, error_message })
                .into_iter()
                .map(|(name, partitions)| AlterReassignmentsTopicResponse { name, partitions })
                .collect();
        let response =
            AlterPartitionReassignmentsResponse { allow_replication_factor_change: request.allow_replication_factor_change, responses, ..Default::default() };
        Some(respond(&header, &response))
    }))
}

pub fn list_partition_reassignments(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let request = match decode::<ListPartitionReassignmentsRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let catalog = shard.catalog();
    let asked =
        |topic: &str, partition: i32| request.topics.as_ref().is_none_or(|ts| ts.iter().any(|t| t.name == topic && t.partition_indexes.contains(&partition)));
    let mut topics = Vec::new();
    for meta in catalog.topics.values() {
        let partitions: Vec<ListReassignmentsOngoingPartition> = meta
            .replication
            .iter()
            .enumerate()
            .filter(|(p, state)| state.is_reassigning() && asked(&meta.name, *p as i32))
            .map(|(p, state)| ListReassignmentsOngoingPartition {
                partition_index: p as i32,
                replicas: state.replicas.clone(),
                adding_replicas: state.adding_replicas.clone(),
                removing_replicas: state.removing_replicas.clone(),
            })
            .collect();
        if !partitions.is_empty() {
            topics.push(ListReassignmentsOngoingTopic { name: meta.name.clone(), partitions });
        }
    }
    super::ready(respond(&header, &ListPartitionReassignmentsResponse { topics, ..Default::default() }))
}
