//! The group coordinator: Kafka's classic consumer-group protocol.
//!
//! A group lives on the shard that owns its `__consumer_offsets` partition (Java's
//! `abs(groupId.hashCode()) % offsets.topic.num.partitions`, as Kafka computes it), and its state
//! is that shard's alone. Committed offsets and group metadata are records in that partition,
//! in Kafka's own key and value schemas (`records.rs`); each shard reads its partitions back at
//! startup.

pub mod group;
pub mod records;
pub mod txn;
pub mod txn_log;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::protocol::ErrorCode;
use group::{Group, GroupState, JoinResult, Member, SyncResult};
use records::{GroupValue, MemberValue, RecordKey};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// `offset.metadata.max.bytes`: the longest metadata string an offset commit may carry.
pub const OFFSET_METADATA_MAX_BYTES: usize = 4096;

/// The `__consumer_offsets` partition of a group: Java's `String.hashCode` (over UTF-16 code
/// units, wrapping), made non-negative with `& 0x7fffffff` as Kafka's `Utils.abs` does.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in group_id.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(unit as i32);
    }
    (h & 0x7fff_ffff) % partitions.max(1)
}

pub use crate::config::GroupConfig;

/// An answer now, or one that comes when the group's rebalance gets there.
pub enum Reply<T> {
    Now(T),
    Later(flume::Receiver<T>),
}

impl<T> Reply<T> {
    pub async fn wait(self, gone: T) -> T {
        match self {
            Reply::Now(t) => t,
            Reply::Later(rx) => rx.recv_async().await.unwrap_or(gone),
        }
    }
}

/// What a JoinGroup asks.
pub struct JoinRequest {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub client_id: String,
    pub client_host: String,
    /// JoinGroup v4+ asks a new member to come back with the id it is given.
    pub require_known_member_id: bool,
}

/// An offset committed in a transaction: (group, topic, partition, value).
pub type TxnOffset = (String, String, i32, records::OffsetValue);

/// One shard's groups.
pub struct Coordinator {
    pub groups: HashMap<String, Group>,
    pub config: GroupConfig,
    /// Offsets committed in transactions that have not ended (TxnOffsetCommit), by producer
    /// id: written to `__consumer_offsets` as transactional records, they count only once a
    /// commit marker follows them there (and are dropped by an abort marker).
    pub pending_txn_offsets: HashMap<i64, Vec<TxnOffset>>,
}

impl Coordinator {
    pub fn new(config: GroupConfig) -> Coordinator {
        Coordinator { groups: HashMap::new(), config, pending_txn_offsets: HashMap::new() }
    }

    /// Offsets `producer_id` committed in its transaction.
    pub fn add_txn_offsets(&mut self, producer_id: i64, offsets: Vec<TxnOffset>) {
        self.pending_txn_offsets.entry(producer_id).or_default().extend(offsets);
    }

    /// A marker for `producer_id` was written to `__consumer_offsets` partition `partition`
    /// (of `partitions`): its pending offsets of that partition's groups become the groups'
    /// committed offsets (`commit`) or are dropped.
    pub fn complete_txn_offsets(&mut self, producer_id: i64, commit: bool, partition: i32, partitions: i32) {
        let Some(pending) = self.pending_txn_offsets.remove(&producer_id) else { return };
        let (mine, others): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(group, ..)| partition_for(group, partitions) == partition);
        if !others.is_empty() {
            self.pending_txn_offsets.insert(producer_id, others);
        }
        if commit {
            for (group, topic, p, value) in mine {
                self.groups.entry(group.clone()).or_insert_with(|| Group::new(&group)).offsets.insert((topic, p), value);
            }
        }
    }

    /// Whether an offset of `group` for `topic`-`partition` waits for its transaction to end
    /// (OffsetFetch's `require_stable`, KIP-447).
    pub fn has_pending_txn_offset(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.pending_txn_offsets.values().flatten().any(|(g, t, p, _)| g == group && t == topic && *p == partition)
    }

    fn member_id_for(client_id: &str) -> String {
        let id = crate::storage::meta::new_topic_id();
        format!("{client_id}-{}-{}-{}-{}-{}", &id[0..8], &id[8..12], &id[12..16], &id[16..20], &id[20..32])
    }

    pub fn join(&mut self, req: JoinRequest) -> Reply<JoinResult> {
        let now = Instant::now();
        if req.group_id.is_empty() {
            return Reply::Now(JoinResult::error(ErrorCode::INVALID_GROUP_ID, &req.member_id));
        }
        if req.session_timeout_ms < self.config.min_session_timeout_ms || req.session_timeout_ms > self.config.max_session_timeout_ms {
            return Reply::Now(JoinResult::error(ErrorCode::INVALID_SESSION_TIMEOUT, &req.member_id));
        }
        let initial_delay = self.config.initial_rebalance_delay;
        // As in Kafka, only a member without an id may bring a group into existence.
        if !req.member_id.is_empty() && !self.groups.contains_key(&req.group_id) {
            return Reply::Now(JoinResult::error(ErrorCode::UNKNOWN_MEMBER_ID, &req.member_id));
        }
        let group = self.groups.entry(req.group_id.clone()).or_insert_with(|| Group::new(&req.group_id));
        if group.state == GroupState::Dead {
            return Reply::Now(JoinResult::error(ErrorCode::COORDINATOR_NOT_AVAILABLE, &req.member_id));
        }
        if !group.accepts(&req.protocol_type, &req.protocols) {
            return Reply::Now(JoinResult::error(ErrorCode::INCONSISTENT_GROUP_PROTOCOL, &req.member_id));
        }
        let (tx, rx) = flume::bounded(1);
        let member_id = if req.member_id.is_empty() {
            let new_id = Self::member_id_for(&req.client_id);
            // A static member coming back (KIP-345) takes over its old member id's place. In a
            // stable group with the same protocols it keeps its assignment and the group does
            // not rebalance: that is the point of static membership. The old id is fenced.
            if let Some(old) = req.group_instance_id.as_ref().and_then(|i| group.static_members.get(i).cloned()) {
                let same = group.members.get(&old).is_some_and(|m| m.protocols == req.protocols);
                if same && group.state == GroupState::Stable {
                    let mut member = group.remove_member(&old).expect("static member exists");
                    let was_leader = group.leader.is_none();
                    member.member_id = new_id.clone();
                    member.last_heartbeat = now;
                    member.session_timeout = Duration::from_millis(req.session_timeout_ms as u64);
                    group.add_member(member);
                    if was_leader {
                        group.leader = Some(new_id.clone());
                    }
                    // A returning leader may run its assignor again; its SyncGroup in a stable
                    // group gets the current assignment back, so nothing moves.
                    return Reply::Now(group.current_join_result(&new_id));
                }
                group.remove_member(&old);
            }
            if req.require_known_member_id && req.group_instance_id.is_none() {
                group.pending_members.insert(new_id.clone(), now);
                return Reply::Now(JoinResult::error(ErrorCode::MEMBER_ID_REQUIRED, &new_id));
            }
            new_id
        } else if group.pending_members.remove(&req.member_id).is_some() {
            req.member_id.clone()
        } else if let Some(member) = group.members.get_mut(&req.member_id) {
            if req.group_instance_id.as_ref().is_some_and(|i| group.static_members.get(i).is_some_and(|m| m != &req.member_id)) {
                return Reply::Now(JoinResult::error(ErrorCode::FENCED_INSTANCE_ID, &req.member_id));
            }
            let unchanged = member.protocols == req.protocols;
            member.session_timeout = Duration::from_millis(req.session_timeout_ms as u64);
            member.rebalance_timeout = Duration::from_millis(req.rebalance_timeout_ms.max(req.session_timeout_ms) as u64);
            member.protocols = req.protocols.clone();
            member.last_heartbeat = now;
            let is_leader = group.leader.as_deref() == Some(req.member_id.as_str());
            match group.state {
                GroupState::CompletingRebalance if unchanged => return Reply::Now(group.current_join_result(&req.member_id)),
                GroupState::Stable if unchanged && !is_leader => return Reply::Now(group.current_join_result(&req.member_id)),
                _ => {}
            }
            member.join_waiter = Some(tx);
            group.prepare_rebalance(now, initial_delay);
            if group.all_joined(now) {
                group.complete_join(now);
            }
            return Reply::Later(rx);
        } else if req.group_instance_id.as_ref().is_some_and(|i| group.static_members.contains_key(i)) {
            return Reply::Now(JoinResult::error(ErrorCode::FENCED_INSTANCE_ID, &req.member_id));
        } else {
            return Reply::Now(JoinResult::error(ErrorCode::UNKNOWN_MEMBER_ID, &req.member_id));
        };
        if group.members.is_empty() {
            group.protocol_type = Some(req.protocol_type.clone());
        }
        group.add_member(Member {
            member_id,
            group_instance_id: req.group_instance_id,
            client_id: req.client_id,
            client_host: req.client_host,
            session_timeout: Duration::from_millis(req.session_timeout_ms as u64),
            rebalance_timeout: Duration::from_millis(req.rebalance_timeout_ms.max(req.session_timeout_ms) as u64),
            protocols: req.protocols,
            assignment: Bytes::new(),
            last_heartbeat: now,
            join_waiter: Some(tx),
            sync_waiter: None,
        });
        group.prepare_rebalance(now, initial_delay);
        if group.all_joined(now) {
            group.complete_join(now);
        }
        Reply::Later(rx)
    }

    /// A SyncGroup. When it is the leader's, the returned value is the group's new metadata to
    /// persist.
    pub fn sync(
        &mut self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance: Option<&str>,
        assignments: Vec<(String, Bytes)>,
    ) -> (Reply<SyncResult>, Option<GroupValue>) {
        let Some(group) = self.groups.get_mut(group_id) else { return (Reply::Now(SyncResult::error(ErrorCode::UNKNOWN_MEMBER_ID)), None) };
        if fenced(group, member_id, instance) {
            return (Reply::Now(SyncResult::error(ErrorCode::FENCED_INSTANCE_ID)), None);
        }
        if !group.members.contains_key(member_id) {
            return (Reply::Now(SyncResult::error(ErrorCode::UNKNOWN_MEMBER_ID)), None);
        }
        if generation != group.generation {
            return (Reply::Now(SyncResult::error(ErrorCode::ILLEGAL_GENERATION)), None);
        }
        match group.state {
            GroupState::Empty | GroupState::Dead => (Reply::Now(SyncResult::error(ErrorCode::UNKNOWN_MEMBER_ID)), None),
            GroupState::PreparingRebalance => (Reply::Now(SyncResult::error(ErrorCode::REBALANCE_IN_PROGRESS)), None),
            GroupState::Stable => {
                let m = &group.members[member_id];
                (
                    Reply::Now(SyncResult {
                        error: ErrorCode::NONE,
                        protocol_type: group.protocol_type.clone(),
                        protocol_name: group.protocol_name.clone(),
                        assignment: m.assignment.clone(),
                    }),
                    None,
                )
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = flume::bounded(1);
                let member = group.members.get_mut(member_id).expect("checked above");
                member.sync_waiter = Some(tx);
                member.last_heartbeat = Instant::now();
                if group.leader.as_deref() == Some(member_id) {
                    group.complete_sync(assignments);
                    return (Reply::Later(rx), Some(group_value(group)));
                }
                (Reply::Later(rx), None)
            }
        }
    }

    pub fn heartbeat(&mut self, group_id: &str, generation: i32, member_id: &str, instance: Option<&str>) -> ErrorCode {
        let Some(group) = self.groups.get_mut(group_id) else { return ErrorCode::UNKNOWN_MEMBER_ID };
        if fenced(group, member_id, instance) {
            return ErrorCode::FENCED_INSTANCE_ID;
        }
        if matches!(group.state, GroupState::Empty | GroupState::Dead) || !group.members.contains_key(member_id) {
            return ErrorCode::UNKNOWN_MEMBER_ID;
        }
        // Kafka's order: a stale generation is told so before anything else.
        if generation != group.generation {
            return ErrorCode::ILLEGAL_GENERATION;
        }
        group.members.get_mut(member_id).expect("checked above").last_heartbeat = Instant::now();
        if group.state == GroupState::PreparingRebalance {
            return ErrorCode::REBALANCE_IN_PROGRESS;
        }
        ErrorCode::NONE
    }

    /// Members leave (by member id, or by instance id for static members). Returns the error of
    /// each, in order.
    pub fn leave(&mut self, group_id: &str, members: &[(String, Option<String>)]) -> Vec<ErrorCode> {
        let now = Instant::now();
        let initial_delay = self.config.initial_rebalance_delay;
        let Some(group) = self.groups.get_mut(group_id) else { return members.iter().map(|_| ErrorCode::UNKNOWN_MEMBER_ID).collect() };
        let mut errors = Vec::new();
        let mut changed = false;
        for (member_id, instance) in members {
            let id = match instance {
                Some(i) => match group.static_members.get(i) {
                    Some(m) if member_id.is_empty() || m == member_id => Some(m.clone()),
                    Some(_) => {
                        errors.push(ErrorCode::FENCED_INSTANCE_ID);
                        continue;
                    }
                    None => None,
                },
                None => Some(member_id.clone()),
            };
            // A member that was only handed an id (MEMBER_ID_REQUIRED) and leaves.
            if id.as_ref().is_some_and(|id| group.pending_members.remove(id).is_some()) {
                changed = true;
                errors.push(ErrorCode::NONE);
                continue;
            }
            match id.and_then(|id| group.remove_member(&id)) {
                Some(m) => {
                    if let Some(w) = m.join_waiter {
                        let _ = w.try_send(JoinResult::error(ErrorCode::UNKNOWN_MEMBER_ID, &m.member_id));
                    }
                    changed = true;
                    errors.push(ErrorCode::NONE);
                }
                None => errors.push(ErrorCode::UNKNOWN_MEMBER_ID),
            }
        }
        if changed {
            rebalance_after_departure(group, now, initial_delay);
        }
        errors
    }

    /// Checks that an offset commit may proceed. A commit with generation -1 and no member id
    /// is a "simple" commit (a consumer that assigns partitions itself), allowed while the
    /// group has no members.
    pub fn check_commit(&mut self, group_id: &str, generation: i32, member_id: &str, instance: Option<&str>) -> ErrorCode {
        if group_id.is_empty() {
            return ErrorCode::INVALID_GROUP_ID;
        }
        if generation >= 0 && !self.groups.contains_key(group_id) {
            return ErrorCode::ILLEGAL_GENERATION;
        }
        let group = self.groups.entry(group_id.to_owned()).or_insert_with(|| Group::new(group_id));
        if group.state == GroupState::Dead {
            return ErrorCode::COORDINATOR_NOT_AVAILABLE;
        }
        if generation < 0 {
            return if group.members.is_empty() { ErrorCode::NONE } else { ErrorCode::ILLEGAL_GENERATION };
        }
        if fenced(group, member_id, instance) {
            return ErrorCode::FENCED_INSTANCE_ID;
        }
        if !group.members.contains_key(member_id) {
            return ErrorCode::UNKNOWN_MEMBER_ID;
        }
        if generation != group.generation {
            return ErrorCode::ILLEGAL_GENERATION;
        }
        group.members.get_mut(member_id).expect("checked above").last_heartbeat = Instant::now();
        if group.state == GroupState::CompletingRebalance {
            return ErrorCode::REBALANCE_IN_PROGRESS;
        }
        ErrorCode::NONE
    }

    /// Forgets the groups of one `__consumer_offsets` partition (of `partitions`): this broker
    /// no longer leads it, and the next leader loads them from its replica.
    pub fn unload_partition(&mut self, partition: i32, partitions: i32) -> usize {
        let before = self.groups.len();
        self.groups.retain(|id, _| partition_for(id, partitions) != partition);
        for pending in self.pending_txn_offsets.values_mut() {
            pending.retain(|(group, ..)| partition_for(group, partitions) != partition);
        }
        self.pending_txn_offsets.retain(|_, p| !p.is_empty());
        before - self.groups.len()
    }

    /// Applies a record read from (or written to) `__consumer_offsets`.
    pub fn apply_record(&mut self, key: RecordKey, value: Option<Bytes>) {
        match key {
            RecordKey::Offset { group, topic, partition } => match value.map(records::decode_offset_value) {
                Some(Ok(v)) => {
                    self.groups.entry(group.clone()).or_insert_with(|| Group::new(&group)).offsets.insert((topic, partition), v);
                }
                Some(Err(e)) => tracing::warn!(group, error = %e, "skipping an unreadable offset record"),
                None => {
                    if let Some(g) = self.groups.get_mut(&group) {
                        g.offsets.remove(&(topic, partition));
                    }
                }
            },
            RecordKey::Group { group } => match value.map(records::decode_group_value) {
                // Members must rejoin after a restart; the group keeps its generation, protocol
                // type and offsets, so it carries on from where it was.
                Some(Ok(v)) => {
                    let g = self.groups.entry(group.clone()).or_insert_with(|| Group::new(&group));
                    g.generation = v.generation;
                    g.protocol_type = Some(v.protocol_type).filter(|t| !t.is_empty());
                }
                Some(Err(e)) => tracing::warn!(group, error = %e, "skipping an unreadable group record"),
                None => {
                    self.groups.remove(&group);
                }
            },
        }
    }

    /// Offsets of groups without members that were committed more than `retention_ms` ago
    /// (`offsets.retention.minutes`): removed here, returned as keys to tombstone, with the
    /// group's `__consumer_offsets` partition.
    pub fn expire_offsets(&mut self, now_ms: i64, retention_ms: i64, partitions: i32) -> Vec<(i32, RecordKey)> {
        let mut expired = Vec::new();
        // Kafka (KIP-211): only a group without members loses offsets, counted from when it
        // became empty or from the commit, whichever is later.
        for group in self.groups.values_mut().filter(|g| g.state == GroupState::Empty && g.members.is_empty()) {
            let partition = partition_for(&group.id, partitions);
            let empty_since = group.state_timestamp_ms;
            group.offsets.retain(|(topic, p), v| {
                let keep = now_ms - v.commit_timestamp.max(empty_since) <= retention_ms;
                if !keep {
                    expired.push((partition, RecordKey::Offset { group: group.id.clone(), topic: topic.clone(), partition: *p }));
                }
                keep
            });
        }
        expired
    }

    /// The timer: completes joins whose rebalance timed out (or whose initial delay passed) and
    /// expires members whose session ran out.
    pub fn tick(&mut self, now: Instant) {
        let initial_delay = self.config.initial_rebalance_delay;
        for group in self.groups.values_mut() {
            if group.state == GroupState::PreparingRebalance && (group.all_joined(now) || group.rebalance_deadline.is_some_and(|d| now >= d)) {
                group.complete_join(now);
            }
            if matches!(group.state, GroupState::Stable | GroupState::CompletingRebalance | GroupState::PreparingRebalance) && group.expire(now) {
                rebalance_after_departure(group, now, initial_delay);
            }
        }
        // A group with no members, no pending joiners and no offsets is gone (Kafka forgets
        // it too), so that ids used once do not pile up.
        self.groups.retain(|_, g| !(g.state == GroupState::Empty && g.members.is_empty() && g.pending_members.is_empty() && g.offsets.is_empty()));
    }
}

/// Kafka's fencing rule for static members: a request that names an instance id must come
/// from the member id that instance currently has.
fn fenced(group: &Group, member_id: &str, instance: Option<&str>) -> bool {
    instance.is_some_and(|i| group.static_members.get(i).is_some_and(|m| m != member_id))
}

fn rebalance_after_departure(group: &mut Group, now: Instant, initial_delay: Duration) {
    match group.state {
        GroupState::Stable | GroupState::CompletingRebalance => group.prepare_rebalance(now, initial_delay),
        _ => {}
    }
    if group.state == GroupState::PreparingRebalance && group.all_joined(now) {
        group.complete_join(now);
    }
}

/// The group's metadata as the record Kafka writes after a rebalance.
pub fn group_value(group: &Group) -> GroupValue {
    let protocol = group.protocol_name.clone().unwrap_or_default();
    GroupValue {
        protocol_type: group.protocol_type.clone().unwrap_or_default(),
        generation: group.generation,
        protocol: group.protocol_name.clone(),
        leader: group.leader.clone(),
        current_state_timestamp: group.state_timestamp_ms,
        members: group
            .members
            .values()
            .map(|m| MemberValue {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout: m.rebalance_timeout.as_millis() as i32,
                session_timeout: m.session_timeout.as_millis() as i32,
                subscription: m.protocols.iter().find(|(n, _)| *n == protocol).map(|(_, b)| b.clone()).unwrap_or_default(),
                assignment: m.assignment.clone(),
            })
            .collect(),
    }
}

/// An encoded key and value (`None` for a tombstone).
pub type RawRecord = (Vec<u8>, Option<Vec<u8>>);

/// Encodes records for `__consumer_offsets` as one uncompressed batch, stamped now, with
/// the one batch builder.
pub fn records_batch(records: &[RawRecord]) -> Bytes {
    use crate::protocol::record_batch::{BatchBuilder, BatchFields};
    let now = crate::io::runtime::now_ms();
    let mut batch = BatchBuilder::new(now, 0);
    for (key, value) in records {
        batch.append(now, Some(key.as_slice()), value.as_deref(), &[]);
    }
    Bytes::from(batch.finish_uncompressed(&BatchFields::new(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_of_empty_groups_expire_after_the_retention() {
        let mut c = Coordinator::new(GroupConfig { initial_rebalance_delay: Duration::ZERO, min_session_timeout_ms: 1000, max_session_timeout_ms: 60_000 });
        let offset = |ts: i64| {
            Some(Bytes::from(records::encode_offset_value(&records::OffsetValue {
                offset: 5,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp: ts,
            })))
        };
        c.apply_record(RecordKey::Offset { group: "old".into(), topic: "t".into(), partition: 0 }, offset(1_000));
        c.apply_record(RecordKey::Offset { group: "old".into(), topic: "t".into(), partition: 1 }, offset(9_000));
        // The group has been empty since time 0 of this test's clock.
        c.groups.get_mut("old").unwrap().state_timestamp_ms = 0;
        let expired = c.expire_offsets(10_000, 5_000, 50);
        assert_eq!(expired, vec![(partition_for("old", 50), RecordKey::Offset { group: "old".into(), topic: "t".into(), partition: 0 })]);
        assert_eq!(c.groups["old"].offsets.len(), 1, "the recent commit stays");
        // A group that emptied recently keeps even old commits.
        c.groups.get_mut("old").unwrap().state_timestamp_ms = 9_500;
        assert!(c.expire_offsets(12_000, 5_000, 50).is_empty());
    }

    #[test]
    fn groups_map_to_partitions_as_kafka_maps_them() {
        // "my-group".hashCode() is -1906497762 by String.hashCode's definition
        // (s[0]*31^(n-1) + ... + s[n-1], wrapping at 32 bits); masked with 0x7fffffff that is
        // 241009886, and 241009886 % 50 == 36.
        assert_eq!(partition_for("my-group", 50), 36);
        // An empty string hashes to 0.
        assert_eq!(partition_for("", 50), 0);
        // Negative hash codes are masked, not negated: "polygenelubricants".hashCode() is
        // Integer.MIN_VALUE, which masks to 0.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
    }
}
