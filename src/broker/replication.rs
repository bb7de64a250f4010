//! Replication of a cluster's partitions of more than one replica, Kafka's protocol run by each
//! partition's owning shard:
//!
//! - **Roles** (`apply_roles`): on every metadata change, each replicated partition this shard
//!   owns becomes leader (its batches are stamped with its leader epoch, which the epoch cache
//!   records; every follower's session starts now) or follower of another broker.
//! - **Leader**: a follower's Fetch (replica id set) is answered from the log end, not the high
//!   watermark (`serve_follower`); its fetch offset is its log end offset, and the high
//!   watermark is the smallest log end offset of the ISR. A fetch whose last epoch does not
//!   match this log gets the diverging epoch instead of records (Fetch v12, KIP-595's way of
//!   KIP-101's truncation). acks=all produces wait for the high watermark (`produce`).
//! - **ISR**: every `replica.lag.time.max.ms / 2` the leader proposes to drop followers that
//!   have not caught up for `replica.lag.time.max.ms`, and it proposes adding followers that
//!   have reached the high watermark, with AlterPartition to the controller (KIP-497); the
//!   controller's answer is the new ISR.
//! - **Follower** (`run_fetcher`): one fetcher per (shard, leader broker) fetches every
//!   partition the shard follows from that leader, appends what it gets as it is
//!   (`append_as_follower`), and truncates where the leader says its log diverged.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use crate::cluster::image::NO_LEADER;
use crate::cluster::rpc::{ControllerRequest, ControllerResponse};
use crate::io::runtime::{now_ms, spawn_detached};
use crate::protocol::messages::fetch::{EpochEndOffset, FetchPartition, FetchRequest, FetchResponse, FetchTopic};
use crate::protocol::wire::RecordSet;
use crate::protocol::ErrorCode;
use crate::shard::replica::{LeaderState, Role};
use crate::shard::{Catalog, Shard};
use crate::storage::log::{ReadError, ReadResult};
use crate::storage::PartitionLog;

/// Makes this shard's roles match the catalog: for each replicated partition it owns and has a
/// replica of, leader or follower at the catalog's epoch; partitions of one replica, or gone,
/// lose their role.
pub fn apply_roles(shard: &Rc<Shard>, catalog: &Catalog) {
    let me = shard.config().broker_id;
    let now = now_ms();
    let mut wanted: Vec<((String, i32), crate::cluster::image::PartitionImage, String)> = Vec::new();
    for meta in catalog.topics.values() {
        for (p, state) in meta.replication.iter().enumerate() {
            let p = p as i32;
            if state.replicas.len() > 1 && state.replicas.contains(&me) && shard.owner_of(&meta.name, p) == shard.id {
                wanted.push(((meta.name.clone(), p), state.clone(), meta.id.clone()));
            }
        }
    }
    let mut roles = shard.roles.borrow_mut();
    // Partitions that are no longer replicated here.
    let keep: std::collections::HashSet<&(String, i32)> = wanted.iter().map(|(k, _, _)| k).collect();
    let dropped: Vec<(String, i32)> = roles.keys().filter(|k| !keep.contains(k)).cloned().collect();
    for key in dropped {
        roles.remove(&key);
        if let Some(log) = shard.log(&key.0, key.1) {
            log.set_replicated(None);
        }
    }
    let mut leaders_to_fetch = Vec::new();
    for (key, state, topic_id) in wanted {
        let Some(log) = shard.log(&key.0, key.1) else { continue };
        let current = roles.get(&key);
        if state.leader == me {
            match current {
                // The same leadership: the controller's view of the ISR and epochs wins.
                Some(Role::Leader(l)) if l.leader_epoch == state.leader_epoch => {
                    let mut l = l.clone();
                    // An image older than what the controller already answered changes nothing.
                    if state.partition_epoch >= l.partition_epoch {
                        l.isr = state.isr.clone();
                        l.partition_epoch = state.partition_epoch;
                        l.replicas = state.replicas.clone();
                        // A completed reassignment's removed replicas are no followers now.
                        l.followers.retain(|r, _| state.replicas.contains(r));
                    }
                    for r in state.replicas.iter().filter(|r| **r != me) {
                        l.followers.entry(*r).or_insert(crate::shard::replica::Progress {
                            log_end_offset: -1,
                            last_caught_up_ms: now,
                            last_fetch_ms: now,
                            last_fetch_leader_end: -1,
                        });
                    }
                    roles.insert(key.clone(), Role::Leader(l));
                }
                _ => {
                    if let Err(e) = log.become_leader(state.leader_epoch) {
                        tracing::error!(topic = %key.0, partition = key.1, error = %e, "could not record the leader epoch");
                    }
                    // The high watermark stays where it was (a new leader's moves once its ISR
                    // has fetched); after a restart it starts from the checkpoint's.
                    let hw = if log.is_replicated() { log.high_watermark() } else { initial_high_watermark(shard, &key, &log) };
                    log.set_replicated(Some(hw));
                    tracing::info!(topic = %key.0, partition = key.1, epoch = state.leader_epoch, isr = ?state.isr, "became leader");
                    // The group coordinator moves with the offsets partition's leadership: its
                    // groups are read back from this replica.
                    if key.0 == crate::coordinator::OFFSETS_TOPIC {
                        let partitions = super::offsets_partitions(shard);
                        shard.coordinator.borrow_mut().unload_partition(key.1, partitions);
                        super::load_group_partition(shard, &log);
                    }
                    if key.0 == crate::coordinator::txn::TRANSACTION_STATE_TOPIC {
                        super::load_txn_partition(shard, &log);
                    }
                    roles.insert(
                        key.clone(),
                        Role::Leader(LeaderState::new(topic_id, state.leader_epoch, state.partition_epoch, me, state.replicas.clone(), state.isr.clone(), now)),
                    );
                }
            }
            drop(log);
            maybe_advance_high_watermark(shard, &mut roles, &key);
        } else {
            let role = Role::Follower { leader: state.leader, leader_epoch: state.leader_epoch };
            if current != Some(&role) {
                if !log.is_replicated() {
                    log.set_replicated(Some(initial_high_watermark(shard, &key, &log)));
                }
                tracing::info!(topic = %key.0, partition = key.1, leader = state.leader, epoch = state.leader_epoch, "became follower");
                if key.0 == crate::coordinator::OFFSETS_TOPIC && matches!(current, Some(Role::Leader(_))) {
                    let partitions = super::offsets_partitions(shard);
                    shard.coordinator.borrow_mut().unload_partition(key.1, partitions);
                }
                if key.0 == crate::coordinator::txn::TRANSACTION_STATE_TOPIC && matches!(current, Some(Role::Leader(_))) {
                    super::unload_txn_partition(shard, key.1);
                }
                roles.insert(key.clone(), role);
            }
            if state.leader != NO_LEADER {
                leaders_to_fetch.push(state.leader);
            }
        }
    }
    drop(roles);
    for leader in leaders_to_fetch {
        if shard.fetchers.borrow_mut().insert(leader) {
            spawn_detached(run_fetcher(shard.clone(), leader));
        }
    }
}

/// Where a replicated partition's high watermark starts when it opens: the log dir's
/// `replication-offset-checkpoint` (as Kafka's `ReplicaManager` reads it), else the log start.
fn initial_high_watermark(shard: &Shard, key: &(String, i32), log: &PartitionLog) -> i64 {
    shard.shared.high_watermarks.get(key).copied().unwrap_or(i64::MIN).clamp(log.log_start_offset(), log.log_end_offset())
}

/// Moves the leader's high watermark to the smallest log end offset of its ISR.
fn maybe_advance_high_watermark(shard: &Rc<Shard>, roles: &mut crate::shard::replica::Roles, key: &(String, i32)) {
    let me = shard.config().broker_id;
    let (Some(Role::Leader(l)), Some(log)) = (roles.get(key), shard.log(&key.0, key.1)) else { return };
    if let Some(hw) = l.high_watermark(me, log.log_end_offset()) {
        log.set_high_watermark(hw);
    }
}

/// After a leader's append: its own log end offset moved (with an ISR of itself alone, that is
/// the high watermark).
pub fn appended(shard: &Rc<Shard>, topic: &str, partition: i32) {
    let key = (topic.to_string(), partition);
    if shard.roles.borrow().contains_key(&key) {
        maybe_advance_high_watermark(shard, &mut shard.roles.borrow_mut(), &key);
    }
}

/// What a produce must do on a replicated partition before its append: refuse it when this
/// broker does not lead (NOT_LEADER_OR_FOLLOWER), or with acks=all when the ISR is smaller than
/// `min.insync.replicas` (NOT_ENOUGH_REPLICAS, before anything is written). `Ok(true)` when
/// the partition is replicated, so the produce waits for the high watermark.
pub fn check_produce(shard: &Rc<Shard>, topic: &str, partition: i32, acks: i16) -> Result<bool, ErrorCode> {
    let roles = shard.roles.borrow();
    // A single node, or a shard with no replicated partition: no key to build per produce.
    if roles.is_empty() {
        return Ok(false);
    }
    match roles.get(&(topic.to_string(), partition)) {
        None => Ok(false),
        Some(Role::Follower { .. }) => Err(ErrorCode::NOT_LEADER_OR_FOLLOWER),
        Some(Role::Leader(l)) => {
            let min_isr = shard.log(topic, partition).map_or(shard.config().min_insync_replicas, |log| log.config().min_insync_replicas);
            if acks == -1 && (l.isr.len() as i32) < min_isr {
                return Err(ErrorCode::NOT_ENOUGH_REPLICAS);
            }
            Ok(true)
        }
    }
}

/// acks=all on a replicated partition: waits until the high watermark reaches `end` (every ISR
/// member has the batch) or `timeout` passes (REQUEST_TIMED_OUT: the records may still be
/// committed later, as in Kafka). An ISR that shrank below `min.insync.replicas` meanwhile
/// gives NOT_ENOUGH_REPLICAS_AFTER_APPEND.
pub async fn wait_for_commit(shard: &Rc<Shard>, log: &Rc<PartitionLog>, end: i64, timeout: Duration) -> Result<(), ErrorCode> {
    let deadline = std::time::Instant::now() + timeout;
    let key = (log.topic.clone(), log.partition);
    loop {
        if log.high_watermark() >= end {
            let isr = match shard.roles.borrow().get(&key) {
                Some(Role::Leader(l)) => l.isr.len() as i32,
                _ => return Err(ErrorCode::NOT_LEADER_OR_FOLLOWER),
            };
            if isr < log.config().min_insync_replicas {
                return Err(ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND);
            }
            return Ok(());
        }
        if !matches!(shard.roles.borrow().get(&key), Some(Role::Leader(_))) {
            // Deposed while waiting: the new leader decides what is committed.
            return Err(ErrorCode::NOT_LEADER_OR_FOLLOWER);
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(ErrorCode::REQUEST_TIMED_OUT);
        }
        log.wait_for(end - 1, left.min(Duration::from_millis(100)), crate::storage::ReadLimit::HighWatermark).await;
    }
}

/// The answer to one partition of a follower's fetch, beside the read itself.
#[derive(Debug, Clone, Copy)]
pub struct FollowerAnswer {
    pub error: ErrorCode,
    /// Where the follower's last epoch ends in the leader's log, when its log diverges.
    pub diverging: Option<(i32, i64)>,
}

/// A follower's fetch of one partition, on the leader's owning shard: the epochs are checked,
/// the follower's progress recorded (its fetch offset is its log end offset), the high
/// watermark moved, the ISR grown if it caught up, and the log read up to its end.
pub async fn serve_follower(
    shard: Rc<Shard>,
    topic: String,
    partition: i32,
    follower: i32,
    fetch: (i64, u32),
    epochs: (i32, i32),
) -> (Result<ReadResult, ReadError>, FollowerAnswer) {
    let (fetch_offset, max_bytes) = fetch;
    let (current_leader_epoch, last_fetched_epoch) = epochs;
    let refuse = |error| (Err(ReadError::Deleted), FollowerAnswer { error, diverging: None });
    let Some(log) = shard.log(&topic, partition) else { return refuse(ErrorCode::NOT_LEADER_OR_FOLLOWER) };
    let key = (topic, partition);
    {
        let mut roles = shard.roles.borrow_mut();
        let Some(Role::Leader(l)) = roles.get_mut(&key) else { return refuse(ErrorCode::NOT_LEADER_OR_FOLLOWER) };
        if current_leader_epoch >= 0 && current_leader_epoch < l.leader_epoch {
            return refuse(ErrorCode::FENCED_LEADER_EPOCH);
        }
        if current_leader_epoch > l.leader_epoch {
            return refuse(ErrorCode::UNKNOWN_LEADER_EPOCH);
        }
        if !l.replicas.contains(&follower) {
            return refuse(ErrorCode::NOT_LEADER_OR_FOLLOWER);
        }
        // The follower's log goes past where its last epoch ended here: it must truncate first.
        if last_fetched_epoch >= 0 {
            let (epoch, end) = log.end_offset_for_epoch(last_fetched_epoch);
            if epoch < last_fetched_epoch || end < fetch_offset {
                let empty = ReadResult {
                    records: None,
                    first_batch_bytes: 0,
                    high_watermark: log.high_watermark(),
                    log_start_offset: log.log_start_offset(),
                    last_stable_offset: log.last_stable_offset(),
                    aborted: Vec::new(),
                };
                return (Ok(empty), FollowerAnswer { error: ErrorCode::NONE, diverging: Some((epoch, end)) });
            }
        }
        // Out of the log's range: nothing is recorded (a fetch past the end must not count as
        // caught up); the follower starts again from the leader's log start if it is behind it.
        if fetch_offset < log.log_start_offset() || fetch_offset > log.log_end_offset() {
            return (
                Err(ReadError::OffsetOutOfRange { log_start_offset: log.log_start_offset(), high_watermark: log.high_watermark() }),
                FollowerAnswer { error: ErrorCode::OFFSET_OUT_OF_RANGE, diverging: None },
            );
        }
        l.record_fetch(follower, fetch_offset, log.log_end_offset(), now_ms());
    }
    maybe_advance_high_watermark(&shard, &mut shard.roles.borrow_mut(), &key);
    maybe_expand_isr(&shard, &key, &log);
    let read = log.read_to(fetch_offset, max_bytes, true, crate::storage::log::ReadLimit::LogEnd).await;
    (read, FollowerAnswer { error: ErrorCode::NONE, diverging: None })
}

/// Proposes adding caught-up followers to the ISR.
fn maybe_expand_isr(shard: &Rc<Shard>, key: &(String, i32), log: &Rc<PartitionLog>) {
    let proposal = {
        let mut roles = shard.roles.borrow_mut();
        let Some(Role::Leader(l)) = roles.get_mut(key) else { return };
        if l.pending_isr.is_some() {
            return;
        }
        let epoch_start = log.end_offset_for_epoch(l.leader_epoch - 1).1.max(0);
        let joining = l.caught_up_outside(log.high_watermark(), epoch_start);
        if joining.is_empty() {
            return;
        }
        let mut isr = l.isr.clone();
        isr.extend(joining);
        l.pending_isr = Some(isr.clone());
        (l.topic_id.clone(), l.leader_epoch, l.partition_epoch, isr)
    };
    spawn_detached(alter_partition(shard.clone(), key.clone(), proposal));
}

/// Sends an ISR change to the controller and applies its answer.
async fn alter_partition(shard: Rc<Shard>, key: (String, i32), (topic_id, leader_epoch, partition_epoch, new_isr): (String, i32, i32, Vec<i32>)) {
    let Some(cluster) = shard.config().cluster.clone() else { return };
    let client = crate::cluster::member::ControllerClient::new(cluster.quorum_addresses.clone(), Duration::from_millis(cluster.quorum_request_timeout_ms));
    let request = ControllerRequest::AlterPartition {
        broker_id: shard.config().broker_id,
        broker_epoch: shard.shared.broker_epoch.load(std::sync::atomic::Ordering::Relaxed),
        topic_id,
        partition: key.1,
        leader_epoch,
        partition_epoch,
        new_isr: new_isr.clone(),
    };
    let answer = client.ask(&request, Duration::from_secs(10)).await;
    let mut roles = shard.roles.borrow_mut();
    // An answer for an earlier leadership of this partition concerns nothing now.
    let Some(Role::Leader(l)) = roles.get_mut(&key).filter(|r| matches!(r, Role::Leader(l) if l.leader_epoch == leader_epoch)) else { return };
    l.pending_isr = None;
    match answer {
        Ok(ControllerResponse::AlterPartition { leader_epoch, partition_epoch, isr })
            if leader_epoch == l.leader_epoch && partition_epoch >= l.partition_epoch =>
        {
            tracing::info!(topic = %key.0, partition = key.1, ?isr, "ISR changed");
            l.isr = isr;
            l.partition_epoch = partition_epoch;
            drop(roles);
            maybe_advance_high_watermark(&shard, &mut shard.roles.borrow_mut(), &key);
        }
        Ok(ControllerResponse::AlterPartition { .. }) => {}
        // A follower that restarted is not eligible until the controller unfences it; the
        // next fetch proposes it again.
        Ok(ControllerResponse::Error { code, .. }) if code == ErrorCode::INELIGIBLE_REPLICA.0 => {
            tracing::debug!(topic = %key.0, partition = key.1, proposed = ?new_isr, "ISR change refused: a replica is not eligible yet")
        }
        other => tracing::warn!(topic = %key.0, partition = key.1, proposed = ?new_isr, answer = ?other, "ISR change refused"),
    }
}

/// Every `replica.lag.time.max.ms / 2`: ISR members that have not caught up for
/// `replica.lag.time.max.ms` are proposed out (Kafka's `maybeShrinkIsr`).
pub async fn run_isr_expiry(shard: Rc<Shard>) {
    let Some(lag) = shard.config().cluster.as_ref().map(|c| c.replica_lag_time_max_ms as i64) else { return };
    let me = shard.config().broker_id;
    loop {
        crate::io::runtime::sleep(Duration::from_millis((lag as u64 / 2).max(100))).await;
        let now = now_ms();
        let proposals: Vec<_> = shard
            .roles
            .borrow_mut()
            .iter_mut()
            .filter_map(|(key, role)| {
                let Role::Leader(l) = role else { return None };
                let out = l.out_of_sync(me, now, lag);
                if out.is_empty() || l.pending_isr.is_some() {
                    return None;
                }
                let isr: Vec<i32> = l.isr.iter().copied().filter(|r| !out.contains(r)).collect();
                l.pending_isr = Some(isr.clone());
                tracing::info!(topic = %key.0, partition = key.1, lagging = ?out, "followers fell behind; shrinking the ISR");
                Some((key.clone(), (l.topic_id.clone(), l.leader_epoch, l.partition_epoch, isr)))
            })
            .collect();
        for (key, proposal) in proposals {
            spawn_detached(alter_partition(shard.clone(), key, proposal));
        }
    }
}

/// The partitions this shard follows from `leader`: (topic, partition, leader epoch).
fn followed_from(shard: &Shard, leader: i32) -> Vec<(String, i32, i32)> {
    let mut out: Vec<(String, i32, i32)> = shard
        .roles
        .borrow()
        .iter()
        .filter_map(|(key, role)| match role {
            Role::Follower { leader: l, leader_epoch } if *l == leader => Some((key.0.clone(), key.1, *leader_epoch)),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// The replica fetcher of this shard for `leader`: while the shard follows partitions from it,
/// fetches them all in one Fetch (v12, replica id set, long-polling up to
/// `replica.fetch.wait.max.ms`), appends what comes back and truncates where told.
async fn run_fetcher(shard: Rc<Shard>, leader: i32) {
    let Some(cluster) = shard.config().cluster.clone() else { return };
    let me = shard.config().broker_id;
    let backoff = Duration::from_millis(cluster.replica_fetch_backoff_ms.max(10));
    let mut conn: Option<compio::net::TcpStream> = None;
    let mut correlation = 0i32;
    loop {
        let partitions = followed_from(&shard, leader);
        if partitions.is_empty() {
            shard.fetchers.borrow_mut().remove(&leader);
            return;
        }
        let Some(address) = shard.catalog().brokers.iter().find(|b| b.id == leader).map(|b| format!("{}:{}", b.host, b.port)) else {
            crate::io::runtime::sleep(backoff).await;
            continue;
        };
        let mut topics: BTreeMap<String, Vec<FetchPartition>> = BTreeMap::new();
        for (topic, p, epoch) in &partitions {
            let Some(log) = shard.log(topic, *p) else { continue };
            topics.entry(topic.clone()).or_default().push(FetchPartition {
                partition: *p,
                current_leader_epoch: *epoch,
                fetch_offset: log.log_end_offset(),
                last_fetched_epoch: log.last_epoch(),
                log_start_offset: log.log_start_offset(),
                partition_max_bytes: cluster.replica_fetch_max_bytes,
            });
        }
        let request = FetchRequest {
            replica_id: me,
            max_wait_ms: cluster.replica_fetch_wait_max_ms,
            min_bytes: cluster.replica_fetch_min_bytes,
            max_bytes: cluster.replica_fetch_response_max_bytes,
            session_epoch: -1,
            topics: topics.into_iter().map(|(name, partitions)| FetchTopic { name, partitions }).collect(),
            ..Default::default()
        };
        correlation = correlation.wrapping_add(1) & i32::MAX;
        let timeout = Duration::from_millis(cluster.replica_socket_timeout_ms + cluster.replica_fetch_wait_max_ms.max(0) as u64);
        let response = match exchange(&mut conn, &address, &request, correlation, timeout).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(leader, %address, error = %e, "replica fetch failed");
                conn = None;
                crate::io::runtime::sleep(backoff).await;
                continue;
            }
        };
        let mut back_off = false;
        for topic in response.topics {
            for p in topic.partitions {
                let epoch = partitions.iter().find(|(t, q, _)| *t == topic.name && *q == p.partition_index).map(|x| x.2);
                let key = (topic.name.clone(), p.partition_index);
                // The role may have changed while the fetch was out.
                let still =
                    matches!(shard.roles.borrow().get(&key), Some(Role::Follower { leader: l, leader_epoch }) if *l == leader && Some(*leader_epoch) == epoch);
                let Some(log) = shard.log(&topic.name, p.partition_index).filter(|_| still) else { continue };
                if p.error == ErrorCode::OFFSET_OUT_OF_RANGE && p.log_start_offset > log.log_end_offset() {
                    // Behind the leader's log start (its retention moved on, or this replica is
                    // new and empty): start again where the leader's log starts.
                    if let Err(e) = log.truncate_fully_and_start_at(p.log_start_offset).await {
                        tracing::error!(topic = %topic.name, partition = p.partition_index, error = %e, "could not restart the log at the leader's log start");
                        back_off = true;
                    }
                    continue;
                }
                if !p.error.is_ok() {
                    tracing::debug!(topic = %topic.name, partition = p.partition_index, error = %p.error, "replica fetch refused");
                    back_off = true;
                    continue;
                }
                if let Some(EpochEndOffset { epoch, end_offset }) = p.diverging_epoch {
                    // Kafka's follower: truncate to where the leader's epoch ended, or where ours
                    // did if the leader never had that epoch; fetch again from there.
                    let (ours, our_end) = log.end_offset_for_epoch(epoch);
                    let to = match (epoch, ours) {
                        // The leader knows no epoch this old: nothing in common is known.
                        (e, _) if e < 0 || end_offset < 0 => {
                            back_off = true;
                            continue;
                        }
                        (e, o) if o == e => end_offset.min(our_end),
                        (_, o) if o >= 0 => our_end.min(end_offset),
                        _ => end_offset.min(log.log_end_offset()),
                    };
                    if let Err(e) = log.truncate_to(to).await {
                        tracing::error!(topic = %topic.name, partition = p.partition_index, error = %e, "could not truncate the log to the leader's; retrying");
                        back_off = true;
                    }
                    continue;
                }
                let records = match p.records {
                    Some(RecordSet::Bytes(bytes)) => bytes,
                    _ => Bytes::new(),
                };
                match whole_batches(&records) {
                    Ok(batches) if !batches.is_empty() => {
                        if let Err(e) = log.append_as_follower(batches).await {
                            tracing::warn!(topic = %topic.name, partition = p.partition_index, error = ?e, "a fetched batch could not be appended");
                            back_off = true;
                            continue;
                        }
                        // Made leader while the append ran: its high watermark is its own now.
                        if !matches!(shard.roles.borrow().get(&key), Some(Role::Follower { leader: l, .. }) if *l == leader) {
                            continue;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(topic = %topic.name, partition = p.partition_index, error = %e, "the leader sent a corrupt batch");
                        back_off = true;
                        continue;
                    }
                }
                log.set_high_watermark(p.high_watermark.min(log.log_end_offset()));
                // As Kafka's follower does: the leader's log start (moved by retention or
                // DeleteRecords) becomes this replica's too, as far as its own log reaches.
                if p.log_start_offset > log.log_start_offset() {
                    log.advance_log_start(p.log_start_offset);
                }
            }
        }
        if back_off {
            crate::io::runtime::sleep(backoff).await;
        }
    }
}

/// The whole batches of a fetched record set (a partial last one, cut by the size limit, is
/// left for the next fetch), each checked (size, magic, CRC-32C) before it is stored. Not the
/// producer's rules: the leader's log holds what no producer sends (transaction markers, and
/// compacted batches with fewer records than their offset range), and the leader checked every
/// record when it took them; the CRC shows these are the same bytes.
fn whole_batches(records: &Bytes) -> Result<Vec<Bytes>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let Some(size) = crate::protocol::record_batch::batch_size_claimed(&records[at..]) else { break };
        if at + size > records.len() {
            break;
        }
        crate::protocol::record_batch::validate_stored(&records[at..at + size]).map_err(|e| format!("batch at byte {at}: {e:?}"))?;
        out.push(records.slice(at..at + size));
        at += size;
    }
    Ok(out)
}

/// One Fetch over the fetcher's connection (opened if need be), bounded by `timeout`.
async fn exchange(
    conn: &mut Option<compio::net::TcpStream>,
    address: &str,
    request: &FetchRequest,
    correlation: i32,
    timeout: Duration,
) -> std::io::Result<FetchResponse> {
    let fut = async {
        if conn.is_none() {
            let stream = compio::net::TcpStream::connect(address).await?;
            crate::io::net::configure_stream(&stream)?;
            *conn = Some(stream);
        }
        let stream = conn.as_mut().expect("opened above");
        // A response never exceeds what was asked for by much; bound it before allocating.
        let max = (request.max_bytes as i64 + (16 << 20)).min(i32::MAX as i64) as i32;
        super::peer::round_trip(stream, request, 12, correlation, "spate-replica-fetcher", max).await
    };
    match compio::time::timeout(timeout, fut).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "replica fetch timed out")),
    }
}
