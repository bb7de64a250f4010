//! The consumer-group APIs. Each request for a group goes to the shard that owns the group's
//! `__consumer_offsets` partition, where the coordinator (`crate::coordinator`) keeps its state;
//! offsets and group metadata are appended to that partition, on that same shard.

use std::rc::Rc;

use bytes::Bytes;

use super::{malformed, respond, Dispatched};
use crate::coordinator::group::{subscribed_topics, GroupState, JoinResult, SyncResult};
use crate::coordinator::records::{self, OffsetValue, RecordKey};
use crate::coordinator::{partition_for, records_batch, JoinRequest, RawRecord, OFFSETS_TOPIC, OFFSET_METADATA_MAX_BYTES};
use crate::protocol::codec::Reader;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::{
    delete_groups, describe_groups, find_coordinator, heartbeat, join_group, leave_group, list_groups, offset_commit, offset_delete, offset_fetch, sync_group,
};
use crate::protocol::ErrorCode;
use crate::shard::{LocalBoxFuture, Shard, ShardId};

/// The shard that coordinates `group_id`.
fn coordinator_shard(shard: &Shard, group_id: &str) -> (ShardId, i32) {
    let partition = partition_for(group_id, offsets_partitions(shard));
    (shard.owner_of(OFFSETS_TOPIC, partition), partition)
}

/// How many partitions `__consumer_offsets` has: the topic's own count, which stays what it was
/// when created even if `offsets.topic.num.partitions` changes later.
pub fn offsets_partitions(shard: &Shard) -> i32 {
    shard.catalog().topic(OFFSETS_TOPIC).map_or(shard.config().offsets_topic_num_partitions, |t| t.partitions)
}

/// The internal topic whose partition leaders coordinate FindCoordinator's `key_type`: 0
/// groups (`__consumer_offsets`), 1 transactional ids (`__transaction_state`). `None` for an
/// unknown key type.
fn coordinator_topic(shard: &Shard, key_type: i8) -> Option<super::controller::NewTopic> {
    let config = shard.config();
    let brokers = shard.catalog().brokers.len().max(1);
    let (name, num_partitions, rf, segment_bytes) = match key_type {
        0 => (OFFSETS_TOPIC, config.offsets_topic_num_partitions, config.offsets_topic_replication_factor, config.offsets_topic_segment_bytes),
        1 => (
            crate::coordinator::txn::TRANSACTION_STATE_TOPIC,
            config.transactions.state_log_num_partitions,
            config.transactions.state_log_replication_factor,
            config.transactions.state_log_segment_bytes,
        ),
        _ => return None,
    };
    let configs =
        [("cleanup.policy", "compact".to_string()), ("segment.bytes", segment_bytes.to_string())].into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    Some(super::controller::NewTopic {
        name: name.to_string(),
        num_partitions,
        replication_factor: (rf.max(1) as usize).min(brokers) as i16,
        assignments: Vec::new(),
        configs,
    })
}

/// Creates the internal topic of `key_type` if it does not exist yet, as Kafka does when a
/// coordinator is first looked for, with its replication factor at most as many as there are
/// brokers (a single node has `__consumer_offsets` from its first start on). A concurrent creation shows up as TOPIC_ALREADY_EXISTS: either way it
/// exists next.
pub(super) async fn ensure_coordinator_topic(shard: &Rc<Shard>, key_type: i8) {
    let Some(topic) = coordinator_topic(shard, key_type) else { return };
    if shard.catalog().topic(&topic.name).is_some() {
        return;
    }
    super::controller::submit(shard, super::controller::ControllerCommand::CreateTopics { topics: vec![topic], validate_only: false }).await;
}

/// FindCoordinator: a group's coordinator is the leader of its `__consumer_offsets` partition,
/// a transactional id's the leader of its `__transaction_state` partition (on a single node,
/// this broker).
async fn find_coordinators(shard: &Rc<Shard>, header: &RequestHeader, request: find_coordinator::FindCoordinatorRequest) -> crate::net::Response {
    ensure_coordinator_topic(shard, request.key_type).await;
    let catalog = shard.catalog();
    let me = shard.config().broker_id;
    let topic = coordinator_topic(shard, request.key_type).and_then(|t| catalog.topic(&t.name));
    let coordinators = request
        .keys(header.api_version)
        .iter()
        .map(|key| {
            let none = |error: ErrorCode, message: &str| find_coordinator::Coordinator {
                key: key.clone(),
                node_id: -1,
                host: String::new(),
                port: -1,
                error,
                error_message: Some(message.to_string()),
            };
            if request.key_type > 1 {
                return none(ErrorCode::INVALID_REQUEST, "unknown coordinator key type");
            }
            if request.key_type == 1 && key.is_empty() {
                return none(ErrorCode::INVALID_REQUEST, "empty transactional id");
            }
            let Some(topic) = topic else { return none(ErrorCode::COORDINATOR_NOT_AVAILABLE, "the coordinator's topic is being created") };
            let (leader, _) = topic.leader_of(partition_for(key, topic.partitions), me);
            if leader == me || catalog.brokers.is_empty() {
                let config = shard.config();
                return find_coordinator::Coordinator {
                    key: key.clone(),
                    node_id: me,
                    host: config.advertised_host.clone(),
                    port: config.advertised_port as i32,
                    error: ErrorCode::NONE,
                    error_message: None,
                };
            }
            match catalog.brokers.iter().find(|b| b.id == leader) {
                Some(b) => find_coordinator::Coordinator {
                    key: key.clone(),
                    node_id: b.id,
                    host: b.host.clone(),
                    port: b.port as i32,
                    error: ErrorCode::NONE,
                    error_message: None,
                },
                None => none(ErrorCode::COORDINATOR_NOT_AVAILABLE, "the coordinator's partition has no leader"),
            }
        })
        .collect();
    respond(header, &find_coordinator::FindCoordinatorResponse::from_coordinators(header.api_version, coordinators))
}

/// Loads the groups and offsets of one `__consumer_offsets` partition this shard owns (at
/// startup, and when this broker becomes its leader).
pub fn load_group_partition(shard: &Rc<Shard>, log: &Rc<crate::storage::PartitionLog>) {
    use crate::protocol::record_batch::{control_record, BatchView, HEADER_BYTES};
    let mut coordinator = shard.coordinator.borrow_mut();
    let partitions = offsets_partitions(shard);
    let mut loaded = 0usize;
    let result = log.for_each_batch_blocking(|batch| {
        let view = BatchView { bytes: batch };
        // Offsets committed in a transaction count from its commit marker on (KIP-98).
        if view.is_control() {
            if let Some(marker) = batch.get(HEADER_BYTES..).and_then(control_record) {
                coordinator.complete_txn_offsets(view.producer_id(), marker.commit, log.partition, partitions);
            }
            return;
        }
        match records::batch_records(batch) {
            Ok(recs) => {
                let mut in_txn = Vec::new();
                for (key, value) in recs {
                    match records::decode_key(key) {
                        Ok(Some(RecordKey::Offset { group, topic, partition })) if view.is_transactional() => {
                            if let Some(Ok(v)) = value.map(records::decode_offset_value) {
                                in_txn.push((group, topic, partition, v));
                            }
                        }
                        Ok(Some(key)) => {
                            coordinator.apply_record(key, value);
                            loaded += 1;
                        }
                        _ => {}
                    }
                }
                if !in_txn.is_empty() {
                    loaded += in_txn.len();
                    coordinator.add_txn_offsets(view.producer_id(), in_txn);
                }
            }
            Err(e) => tracing::warn!(partition = log.partition, error = %e, "skipping an unreadable __consumer_offsets batch"),
        }
    });
    if let Err(e) = result {
        tracing::error!(partition = log.partition, error = %e, "could not read __consumer_offsets");
    }
    if loaded > 0 {
        tracing::info!(shard = shard.id.0, partition = log.partition, records = loaded, groups = coordinator.groups.len(), "loaded consumer groups");
    }
}

/// Runs `work` on the coordinator shard of `group_id` and waits for the answer.
pub(super) async fn on_coordinator<R, F>(shard: &Rc<Shard>, group_id: &str, gone: R, work: F) -> R
where
    R: Send + 'static,
    F: FnOnce(&Rc<Shard>, i32) -> LocalBoxFuture<R> + Send + 'static,
{
    let (owner, partition) = coordinator_shard(shard, group_id);
    // In a cluster, only the leader of the group's offsets partition coordinates it; a client
    // that asks another broker finds the coordinator again.
    let catalog = shard.catalog();
    if catalog.is_cluster() && !catalog.topic(OFFSETS_TOPIC).is_some_and(|t| t.is_led_by(partition, shard.config().broker_id)) {
        return gone;
    }
    let rx = shard.call(owner, move |s: &Rc<Shard>| work(s, partition)).await;
    rx.recv_async().await.unwrap_or(gone)
}

/// Appends records to a `__consumer_offsets` partition owned by this shard.
/// In a cluster the records are answered once every in-sync replica has them (Kafka writes
/// them with acks=-1, waiting `offsets.commit.timeout.ms`, 5 s), so that a commit survives the
/// coordinator's loss; a failure is COORDINATOR_NOT_AVAILABLE, which clients retry.
async fn append_records(shard: &Rc<Shard>, partition: i32, records: Vec<RawRecord>) -> ErrorCode {
    let count = records.len() as i64;
    append_internal(shard, OFFSETS_TOPIC, partition, records_batch(&records), count, None).await
}

/// Appends a batch of `count` records the broker built to an internal topic's partition owned
/// by this shard (`__consumer_offsets`, `__transaction_state`), answered once the in-sync
/// replicas have it (see `append_records`).
/// `guard`: for a producer's transactional batch (offsets in a transaction), the KIP-890
/// verification guard it was verified under (see `PartitionLog::append_verified`).
pub(super) async fn append_internal(shard: &Rc<Shard>, topic: &str, partition: i32, batch: Bytes, count: i64, guard: Option<u64>) -> ErrorCode {
    let Some(log) = shard.log(topic, partition) else { return ErrorCode::COORDINATOR_NOT_AVAILABLE };
    let replicated = match super::replication::check_produce(shard, topic, partition, -1) {
        Ok(replicated) => replicated,
        Err(_) => return ErrorCode::COORDINATOR_NOT_AVAILABLE,
    };
    match log.append_verified(vec![batch], guard).await {
        Err(crate::storage::AppendError::InvalidProducerEpoch) => ErrorCode::INVALID_PRODUCER_EPOCH,
        Err(crate::storage::AppendError::InvalidTxnState) => ErrorCode::INVALID_TXN_STATE,
        Ok(appended) if replicated => {
            super::replication::appended(shard, topic, partition);
            match super::replication::wait_for_commit(shard, &log, appended.base_offset + count, std::time::Duration::from_secs(5)).await {
                Ok(()) => ErrorCode::NONE,
                Err(_) => ErrorCode::COORDINATOR_NOT_AVAILABLE,
            }
        }
        Ok(_) => ErrorCode::NONE,
        Err(_) => ErrorCode::COORDINATOR_NOT_AVAILABLE,
    }
}

pub fn find_coordinator(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let request = match super::decode::<find_coordinator::FindCoordinatorRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move { Some(find_coordinators(&shard, &header, request).await) }))
}

pub fn join_group(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader, client_host: String) -> Dispatched {
    let req = match super::decode::<join_group::JoinGroupRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let group_id = req.group_id.clone();
        let member_id = req.member_id.clone();
        let join = JoinRequest {
            group_id: req.group_id,
            member_id: req.member_id,
            group_instance_id: req.group_instance_id,
            session_timeout_ms: req.session_timeout_ms,
            // Version 0 has no rebalance timeout; Kafka uses the session timeout in its place.
            rebalance_timeout_ms: if header.api_version >= 1 { req.rebalance_timeout_ms } else { req.session_timeout_ms },
            protocol_type: req.protocol_type,
            protocols: req.protocols.into_iter().map(|p| (p.name, p.metadata)).collect(),
            client_id: header.client_id.clone().unwrap_or_default(),
            client_host,
            require_known_member_id: header.api_version >= 4,
        };
        let gone = JoinResult::error(ErrorCode::COORDINATOR_NOT_AVAILABLE, &member_id);
        let result = on_coordinator(&shard, &group_id, gone.clone(), move |s, _| {
            let reply = s.coordinator.borrow_mut().join(join);
            Box::pin(reply.wait(gone))
        })
        .await;
        let response = join_group::JoinGroupResponse {
            throttle_time_ms: 0,
            error: result.error,
            generation_id: result.generation,
            protocol_type: result.protocol_type,
            protocol_name: result.protocol_name,
            leader: result.leader,
            skip_assignment: false,
            member_id: result.member_id,
            members: result
                .members
                .into_iter()
                .map(|(member_id, group_instance_id, metadata)| join_group::JoinGroupResponseMember { member_id, group_instance_id, metadata })
                .collect(),
        };
        Some(respond(&header, &response))
    }))
}

pub fn sync_group(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let req = match super::decode::<sync_group::SyncGroupRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let group_id = req.group_id.clone();
        let assignments: Vec<(String, Bytes)> = req.assignments.into_iter().map(|a| (a.member_id, a.assignment)).collect();
        let (generation, member_id, instance) = (req.generation_id, req.member_id, req.group_instance_id);
        let result = on_coordinator(&shard, &group_id.clone(), SyncResult::error(ErrorCode::COORDINATOR_NOT_AVAILABLE), move |s, partition| {
            let (reply, persist) = s.coordinator.borrow_mut().sync(&group_id, generation, &member_id, instance.as_deref(), assignments);
            if let Some(value) = persist {
                // The new generation's metadata goes to the log; members have their assignment
                // already (a restarted broker makes them rejoin anyway).
                let record = (records::encode_key(&RecordKey::Group { group: group_id.clone() }), Some(records::encode_group_value(&value)));
                let s = s.clone();
                crate::io::runtime::spawn_detached(async move {
                    let error = append_records(&s, partition, vec![record]).await;
                    if !error.is_ok() {
                        tracing::warn!(group = %group_id, ?error, "could not persist group metadata");
                    }
                });
            }
            Box::pin(reply.wait(SyncResult::error(ErrorCode::REBALANCE_IN_PROGRESS)))
        })
        .await;
        let response = sync_group::SyncGroupResponse {
            throttle_time_ms: 0,
            error: result.error,
            protocol_type: result.protocol_type,
            protocol_name: result.protocol_name,
            assignment: result.assignment,
        };
        Some(respond(&header, &response))
    }))
}

pub fn heartbeat(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let req = match super::decode::<heartbeat::HeartbeatRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let group_id = req.group_id.clone();
        let error = on_coordinator(&shard, &group_id.clone(), ErrorCode::COORDINATOR_NOT_AVAILABLE, move |s, _| {
            let e = s.coordinator.borrow_mut().heartbeat(&group_id, req.generation_id, &req.member_id, req.group_instance_id.as_deref());
            Box::pin(std::future::ready(e))
        })
        .await;
        Some(respond(&header, &heartbeat::HeartbeatResponse { throttle_time_ms: 0, error }))
    }))
}

pub fn leave_group(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let req = match super::decode::<leave_group::LeaveGroupRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let group_id = req.group_id.clone();
        let members: Vec<(String, Option<String>)> = req.into_members(header.api_version).into_iter().map(|m| (m.member_id, m.group_instance_id)).collect();
        let asked = members.clone();
        let errors = on_coordinator(&shard, &group_id.clone(), vec![ErrorCode::COORDINATOR_NOT_AVAILABLE; members.len()], move |s, _| {
            let e = s.coordinator.borrow_mut().leave(&group_id, &members);
            Box::pin(std::future::ready(e))
        })
        .await;
        // Versions 0-2 name one member and carry its error at the top level.
        let top = if header.api_version < 3 { errors.first().copied().unwrap_or(ErrorCode::NONE) } else { ErrorCode::NONE };
        let responses: Vec<leave_group::MemberResponse> = asked
            .into_iter()
            .zip(errors)
            .map(|((member_id, group_instance_id), error)| leave_group::MemberResponse { member_id, group_instance_id, error })
            .collect();
        Some(respond(&header, &leave_group::LeaveGroupResponse { throttle_time_ms: 0, error: top, members: responses }))
    }))
}

pub fn offset_commit(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let req = match super::decode::<offset_commit::OffsetCommitRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let group_id = req.group_id.clone();
        // (topic, partition, value or the partition's error)
        let mut commits: Vec<(String, i32, Result<OffsetValue, ErrorCode>)> = Vec::new();
        let now = crate::io::runtime::now_ms();
        for t in &req.topics {
            for p in &t.partitions {
                let metadata = p.committed_metadata.clone().unwrap_or_default();
                let value = if metadata.len() > OFFSET_METADATA_MAX_BYTES {
                    Err(ErrorCode::OFFSET_METADATA_TOO_LARGE)
                } else {
                    Ok(OffsetValue { offset: p.committed_offset, leader_epoch: p.committed_leader_epoch, metadata, commit_timestamp: now })
                };
                commits.push((t.name.clone(), p.partition_index, value));
            }
        }
        let gone: Vec<ErrorCode> = vec![ErrorCode::COORDINATOR_NOT_AVAILABLE; commits.len()];
        let (generation, member_id, instance) = (req.generation_id_or_member_epoch, req.member_id.clone(), req.group_instance_id.clone());
        let errors = on_coordinator(&shard, &group_id.clone(), gone, move |s, partition| {
            let s = s.clone();
            Box::pin(async move {
                let check = s.coordinator.borrow_mut().check_commit(&group_id, generation, &member_id, instance.as_deref());
                if !check.is_ok() {
                    return commits.iter().map(|_| check).collect();
                }
                let records: Vec<RawRecord> = commits
                    .iter()
                    .filter_map(|(topic, partition, v)| {
                        let v = v.as_ref().ok()?;
                        Some((
                            records::encode_key(&RecordKey::Offset { group: group_id.clone(), topic: topic.clone(), partition: *partition }),
                            Some(records::encode_offset_value(v)),
                        ))
                    })
                    .collect();
                let written = if records.is_empty() { ErrorCode::NONE } else { append_records(&s, partition, records).await };
                let mut coordinator = s.coordinator.borrow_mut();
                commits
                    .into_iter()
                    .map(|(topic, p, v)| match v {
                        Err(e) => e,
                        Ok(_) if !written.is_ok() => written,
                        Ok(value) => {
                            let key = RecordKey::Offset { group: group_id.clone(), topic, partition: p };
                            coordinator.apply_record(key, Some(Bytes::from(records::encode_offset_value(&value))));
                            ErrorCode::NONE
                        }
                    })
                    .collect()
            })
        })
        .await;
        let mut errors = errors.into_iter();
        let topics: Vec<offset_commit::OffsetCommitTopicResponse> = req
            .topics
            .iter()
            .map(|t| offset_commit::OffsetCommitTopicResponse {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| offset_commit::OffsetCommitPartitionResponse {
                        partition_index: p.partition_index,
                        error: errors.next().unwrap_or(ErrorCode::UNKNOWN_SERVER_ERROR),
                    })
                    .collect(),
            })
            .collect();
        Some(respond(&header, &offset_commit::OffsetCommitResponse { throttle_time_ms: 0, topics }))
    }))
}

pub fn offset_fetch(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let req = match super::decode::<offset_fetch::OffsetFetchRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let mut groups = Vec::new();
        // KIP-447: a consumer that asks for stable offsets is told to retry
        // (UNSTABLE_OFFSET_COMMIT) where a transaction's commit of the offset is pending.
        let require_stable = req.require_stable;
        for g in req.into_groups(header.api_version) {
            let group_id = g.group_id.clone();
            let wanted = g.topics.map(|ts| ts.into_iter().map(|t| (t.name, t.partition_indexes)).collect::<Vec<_>>());
            let gone = offset_fetch::OffsetFetchResponseGroup { group_id: group_id.clone(), topics: Vec::new(), error: ErrorCode::COORDINATOR_NOT_AVAILABLE };
            let result = on_coordinator(&shard, &group_id.clone(), gone, move |s, _| {
                let coordinator = s.coordinator.borrow();
                let offsets = coordinator.groups.get(&group_id).map(|g| &g.offsets);
                let lookup = |topic: &str, partition: i32| {
                    if require_stable && coordinator.has_pending_txn_offset(&group_id, topic, partition) {
                        return offset_fetch::OffsetFetchResponsePartition {
                            partition_index: partition,
                            committed_offset: -1,
                            committed_leader_epoch: -1,
                            metadata: Some(String::new()),
                            error: ErrorCode::UNSTABLE_OFFSET_COMMIT,
                        };
                    }
                    let v = offsets.and_then(|o| o.get(&(topic.to_owned(), partition)));
                    offset_fetch::OffsetFetchResponsePartition {
                        partition_index: partition,
                        committed_offset: v.map_or(-1, |v| v.offset),
                        committed_leader_epoch: v.map_or(-1, |v| v.leader_epoch),
                        metadata: Some(v.map(|v| v.metadata.clone()).unwrap_or_default()),
                        error: ErrorCode::NONE,
                    }
                };
                let topics: Vec<offset_fetch::OffsetFetchResponseTopic> = match wanted {
                    Some(wanted) => wanted
                        .into_iter()
                        .map(|(name, partitions)| offset_fetch::OffsetFetchResponseTopic {
                            partitions: partitions.iter().map(|p| lookup(&name, *p)).collect(),
                            name,
                        })
                        .collect(),
                    None => {
                        // Every committed offset of the group, by topic.
                        let mut by_topic: std::collections::BTreeMap<String, Vec<i32>> = std::collections::BTreeMap::new();
                        for (topic, partition) in offsets.into_iter().flat_map(|o| o.keys()) {
                            by_topic.entry(topic.clone()).or_default().push(*partition);
                        }
                        by_topic
                            .into_iter()
                            .map(|(name, mut partitions)| {
                                partitions.sort_unstable();
                                offset_fetch::OffsetFetchResponseTopic { partitions: partitions.iter().map(|p| lookup(&name, *p)).collect(), name }
                            })
                            .collect()
                    }
                };
                Box::pin(std::future::ready(offset_fetch::OffsetFetchResponseGroup { group_id: group_id.clone(), topics, error: ErrorCode::NONE }))
            })
            .await;
            groups.push(result);
        }
        Some(respond(&header, &offset_fetch::OffsetFetchResponse::from_groups(header.api_version, groups)))
    }))
}

pub fn list_groups(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let req = match super::decode::<list_groups::ListGroupsRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let per_shard = shard
            .call_all(|s: &Rc<Shard>| {
                let listed: Vec<list_groups::ListedGroup> = s
                    .coordinator
                    .borrow()
                    .groups
                    .values()
                    .filter(|g| g.state != GroupState::Dead)
                    .map(|g| list_groups::ListedGroup {
                        group_id: g.id.clone(),
                        protocol_type: g.protocol_type.clone().unwrap_or_default(),
                        group_state: g.state.name().to_string(),
                    })
                    .collect();
                Box::pin(std::future::ready(listed)) as LocalBoxFuture<Vec<list_groups::ListedGroup>>
            })
            .await;
        let mut groups: Vec<list_groups::ListedGroup> = per_shard
            .into_iter()
            .flatten()
            .filter(|g| req.states_filter.is_empty() || req.states_filter.iter().any(|s| s.eq_ignore_ascii_case(&g.group_state)))
            .collect();
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Some(respond(&header, &list_groups::ListGroupsResponse { throttle_time_ms: 0, error: ErrorCode::NONE, groups }))
    }))
}

pub fn describe_groups(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let req = match super::decode::<describe_groups::DescribeGroupsRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let mut described = Vec::new();
        for group_id in req.groups {
            let dead = describe_groups::DescribedGroup {
                error: ErrorCode::NONE,
                group_id: group_id.clone(),
                group_state: "Dead".into(),
                protocol_type: String::new(),
                protocol_data: String::new(),
                members: Vec::new(),
                authorized_operations: describe_groups::AUTHORIZED_OPERATIONS_OMITTED,
            };
            let gone = describe_groups::DescribedGroup { error: ErrorCode::COORDINATOR_NOT_AVAILABLE, ..dead.clone() };
            let result = on_coordinator(&shard, &group_id.clone(), gone, move |s, _| {
                let coordinator = s.coordinator.borrow();
                let Some(g) = coordinator.groups.get(&group_id) else { return Box::pin(std::future::ready(dead)) };
                let protocol = g.protocol_name.clone().unwrap_or_default();
                let d = describe_groups::DescribedGroup {
                    error: ErrorCode::NONE,
                    group_id: g.id.clone(),
                    group_state: g.state.name().into(),
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    protocol_data: if g.state == GroupState::Stable { protocol.clone() } else { String::new() },
                    members: g
                        .members
                        .values()
                        .map(|m| describe_groups::DescribedGroupMember {
                            member_id: m.member_id.clone(),
                            group_instance_id: m.group_instance_id.clone(),
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            member_metadata: m.protocols.iter().find(|(n, _)| *n == protocol).map(|(_, b)| b.clone()).unwrap_or_default(),
                            member_assignment: m.assignment.clone(),
                        })
                        .collect(),
                    authorized_operations: describe_groups::AUTHORIZED_OPERATIONS_OMITTED,
                };
                Box::pin(std::future::ready(d))
            })
            .await;
            described.push(result);
        }
        Some(respond(&header, &describe_groups::DescribeGroupsResponse { throttle_time_ms: 0, groups: described }))
    }))
}

pub fn delete_groups(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let req = match super::decode::<delete_groups::DeleteGroupsRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let mut results = Vec::new();
        for group_id in req.groups_names {
            let id = group_id.clone();
            let error = on_coordinator(&shard, &group_id, ErrorCode::COORDINATOR_NOT_AVAILABLE, move |s, partition| {
                let s = s.clone();
                Box::pin(async move {
                    let tombstones = {
                        let mut coordinator = s.coordinator.borrow_mut();
                        match coordinator.groups.get_mut(&id) {
                            None => return ErrorCode::GROUP_ID_NOT_FOUND,
                            Some(g) if !g.members.is_empty() || !g.pending_members.is_empty() || g.state == GroupState::Dead => {
                                return ErrorCode::NON_EMPTY_GROUP
                            }
                            Some(g) => {
                                // Dead while its tombstones are written: joins and commits are
                                // refused instead of landing in a group about to vanish.
                                g.state = GroupState::Dead;
                                let mut t: Vec<RawRecord> = g
                                    .offsets
                                    .keys()
                                    .map(|(topic, p)| {
                                        (records::encode_key(&RecordKey::Offset { group: id.clone(), topic: topic.clone(), partition: *p }), None)
                                    })
                                    .collect();
                                t.push((records::encode_key(&RecordKey::Group { group: id.clone() }), None));
                                t
                            }
                        }
                    };
                    let error = append_records(&s, partition, tombstones).await;
                    let mut coordinator = s.coordinator.borrow_mut();
                    if error.is_ok() {
                        coordinator.groups.remove(&id);
                    } else if let Some(g) = coordinator.groups.get_mut(&id) {
                        g.state = GroupState::Empty;
                    }
                    error
                })
            })
            .await;
            results.push(delete_groups::DeletableGroupResult { group_id, error });
        }
        Some(respond(&header, &delete_groups::DeleteGroupsResponse { throttle_time_ms: 0, results }))
    }))
}

pub fn offset_delete(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let req = match super::decode::<offset_delete::OffsetDeleteRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let group_id = req.group_id.clone();
        let topics: Vec<(String, Vec<i32>)> = req.topics.iter().map(|t| (t.name.clone(), t.partitions.iter().map(|p| p.partition_index).collect())).collect();
        let asked = topics.clone();
        let (error, per_topic) = on_coordinator(&shard, &group_id.clone(), (ErrorCode::COORDINATOR_NOT_AVAILABLE, Vec::new()), move |s, partition| {
            let s = s.clone();
            Box::pin(async move {
                let (subscribed, known) = {
                    let coordinator = s.coordinator.borrow();
                    match coordinator.groups.get(&group_id) {
                        None => (Vec::new(), false),
                        Some(g) => (
                            g.members
                                .values()
                                .flat_map(|m| m.protocols.first().map(|(_, meta)| subscribed_topics(meta)).unwrap_or_default())
                                .collect::<Vec<_>>(),
                            true,
                        ),
                    }
                };
                if !known {
                    return (ErrorCode::GROUP_ID_NOT_FOUND, Vec::new());
                }
                let mut tombstones = Vec::new();
                let mut per_topic = Vec::new();
                for (topic, partitions) in &topics {
                    let error = if subscribed.contains(topic) { ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC } else { ErrorCode::NONE };
                    if error.is_ok() {
                        for p in partitions {
                            tombstones.push((records::encode_key(&RecordKey::Offset { group: group_id.clone(), topic: topic.clone(), partition: *p }), None));
                        }
                    }
                    per_topic.push(partitions.iter().map(|p| offset_delete::OffsetDeletePartitionResponse { partition_index: *p, error }).collect::<Vec<_>>());
                }
                let written = if tombstones.is_empty() { ErrorCode::NONE } else { append_records(&s, partition, tombstones.clone()).await };
                if !written.is_ok() {
                    return (written, Vec::new());
                }
                let mut coordinator = s.coordinator.borrow_mut();
                for (key, _) in tombstones {
                    if let Ok(Some(k)) = records::decode_key(Bytes::from(key)) {
                        coordinator.apply_record(k, None);
                    }
                }
                (ErrorCode::NONE, per_topic)
            })
        })
        .await;
        let topics: Vec<offset_delete::OffsetDeleteTopicResponse> = asked
            .into_iter()
            .zip(per_topic.into_iter().map(Some).chain(std::iter::repeat(None)))
            .map(|((name, partitions), errors)| offset_delete::OffsetDeleteTopicResponse {
                name,
                partitions: errors
                    .unwrap_or_else(|| partitions.iter().map(|p| offset_delete::OffsetDeletePartitionResponse { partition_index: *p, error }).collect()),
            })
            .collect();
        Some(respond(&header, &offset_delete::OffsetDeleteResponse { error, throttle_time_ms: 0, topics }))
    }))
}
