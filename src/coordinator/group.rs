//! One consumer group: Kafka's classic rebalance state machine, with no IO. The coordinator
//! (`mod.rs`) drives it from requests and from its timer, and persists what it decides.
//!
//! ```text
//!   Empty --join--> PreparingRebalance --all joined / timeout--> CompletingRebalance
//!     ^                    ^    |                                    | leader's SyncGroup
//!     |                    |    +--no members left--> Empty          v
//!     +--last member gone--+-------- join, leave, expiry ------- Stable
//! ```

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::records::OffsetValue;
use crate::protocol::ErrorCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The names Kafka reports in ListGroups and DescribeGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// What a JoinGroup gets back.
#[derive(Debug, Clone)]
pub struct JoinResult {
    pub error: ErrorCode,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// For the leader only: every member's id, instance id and metadata for the chosen protocol.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    pub fn error(error: ErrorCode, member_id: &str) -> JoinResult {
        JoinResult {
            error,
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_owned(),
            members: Vec::new(),
        }
    }
}

/// What a SyncGroup gets back.
#[derive(Debug, Clone)]
pub struct SyncResult {
    pub error: ErrorCode,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(error: ErrorCode) -> SyncResult {
        SyncResult { error, protocol_type: None, protocol_name: None, assignment: Bytes::new() }
    }
}

pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    /// (protocol name, metadata), in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub last_heartbeat: Instant,
    /// A JoinGroup waiting for the rebalance to complete.
    pub join_waiter: Option<flume::Sender<JoinResult>>,
    /// A SyncGroup waiting for the leader's assignment.
    pub sync_waiter: Option<flume::Sender<SyncResult>>,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(n, _)| n == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }

    fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(n, _)| n == protocol)
    }
}

pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    /// By member id; the order members joined in is kept in `join_order` for leader choice.
    pub members: BTreeMap<String, Member>,
    join_order: Vec<String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, and when.
    pub pending_members: HashMap<String, Instant>,
    /// group.instance.id -> member id, for static members.
    pub static_members: HashMap<String, String>,
    /// When the current rebalance gives up on members that have not rejoined.
    pub rebalance_deadline: Option<Instant>,
    /// A rebalance of a group that was empty waits this long for more members to arrive
    /// (`group.initial.rebalance.delay.ms`).
    pub join_not_before: Option<Instant>,
    pub offsets: HashMap<(String, i32), OffsetValue>,
    pub state_timestamp_ms: i64,
}

impl Group {
    pub fn new(id: &str) -> Group {
        Group {
            id: id.to_owned(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            join_order: Vec::new(),
            pending_members: HashMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline: None,
            join_not_before: None,
            offsets: HashMap::new(),
            state_timestamp_ms: crate::io::runtime::now_ms(),
        }
    }

    fn set_state(&mut self, state: GroupState) {
        self.state = state;
        self.state_timestamp_ms = crate::io::runtime::now_ms();
    }

    /// Whether a member joining with these protocols can be part of the group.
    pub fn accepts(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type) && protocols.iter().any(|(name, _)| self.members.values().all(|m| m.supports(name)))
    }

    pub fn add_member(&mut self, member: Member) {
        if let Some(instance) = &member.group_instance_id {
            self.static_members.insert(instance.clone(), member.member_id.clone());
        }
        self.join_order.push(member.member_id.clone());
        self.members.insert(member.member_id.clone(), member);
    }

    pub fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let member = self.members.remove(member_id)?;
        self.join_order.retain(|m| m != member_id);
        if let Some(instance) = &member.group_instance_id {
            if self.static_members.get(instance).is_some_and(|m| m == member_id) {
                self.static_members.remove(instance);
            }
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = None;
        }
        Some(member)
    }

    /// Starts (or continues) a rebalance. Members waiting in SyncGroup are told to rejoin.
    pub fn prepare_rebalance(&mut self, now: Instant, initial_delay: Duration) {
        if self.state == GroupState::CompletingRebalance {
            for m in self.members.values_mut() {
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.try_send(SyncResult::error(ErrorCode::REBALANCE_IN_PROGRESS));
                }
            }
        }
        if self.state != GroupState::PreparingRebalance {
            let timeout = self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or(Duration::ZERO);
            self.rebalance_deadline = Some(now + timeout);
            self.join_not_before = (self.state == GroupState::Empty && !initial_delay.is_zero()).then(|| now + initial_delay);
            self.set_state(GroupState::PreparingRebalance);
        }
    }

    /// Whether every member has rejoined (and any initial delay has passed).
    pub fn all_joined(&self, now: Instant) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.join_waiter.is_some()) && self.join_not_before.is_none_or(|t| now >= t)
    }

    /// Completes the join phase: members that did not rejoin are dropped, a new generation
    /// starts with the protocol most members prefer, and every waiting JoinGroup is answered.
    pub fn complete_join(&mut self, now: Instant) {
        let absent: Vec<String> = self.members.values().filter(|m| m.join_waiter.is_none()).map(|m| m.member_id.clone()).collect();
        for id in absent {
            self.remove_member(&id);
        }
        self.pending_members.clear();
        self.rebalance_deadline = None;
        self.join_not_before = None;
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.leader = None;
            self.set_state(GroupState::Empty);
            return;
        }
        self.protocol_name = self.select_protocol();
        if self.leader.as_ref().is_none_or(|l| !self.members.contains_key(l)) {
            self.leader = self.join_order.first().cloned();
        }
        self.set_state(GroupState::CompletingRebalance);
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_default();
        let everyone: Vec<(String, Option<String>, Bytes)> = self
            .join_order
            .iter()
            .filter_map(|id| self.members.get(id))
            .map(|m| (m.member_id.clone(), m.group_instance_id.clone(), m.metadata_for(&protocol)))
            .collect();
        for m in self.members.values_mut() {
            m.last_heartbeat = now;
            m.assignment = Bytes::new();
            if let Some(w) = m.join_waiter.take() {
                let _ = w.try_send(JoinResult {
                    error: ErrorCode::NONE,
                    generation: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    leader: leader.clone(),
                    member_id: m.member_id.clone(),
                    members: if m.member_id == leader { everyone.clone() } else { Vec::new() },
                });
            }
        }
    }

    /// Kafka's choice: among the protocols every member supports, each member votes for the
    /// first one in its own order of preference; the most votes wins.
    fn select_protocol(&self) -> Option<String> {
        let first = self.join_order.iter().find_map(|id| self.members.get(id))?;
        let candidates: Vec<&str> = first.protocols.iter().map(|(n, _)| n.as_str()).filter(|n| self.members.values().all(|m| m.supports(n))).collect();
        let mut votes: Vec<(usize, &str)> = candidates.iter().map(|c| (0usize, *c)).collect();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(&n.as_str())) {
                if let Some(v) = votes.iter_mut().find(|(_, c)| c == name) {
                    v.0 += 1;
                }
            }
        }
        // Highest count; among equals, the first member's order.
        let best = votes.iter().map(|(n, _)| *n).max()?;
        votes.into_iter().find(|(n, _)| *n == best).map(|(_, c)| c.to_owned())
    }

    /// The answer to a JoinGroup from a member already in the current generation whose
    /// protocols did not change: the generation as it is.
    pub fn current_join_result(&self, member_id: &str) -> JoinResult {
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = if member_id == leader {
            self.join_order
                .iter()
                .filter_map(|id| self.members.get(id))
                .map(|m| (m.member_id.clone(), m.group_instance_id.clone(), m.metadata_for(&protocol)))
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: ErrorCode::NONE,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader,
            member_id: member_id.to_owned(),
            members,
        }
    }

    /// Installs the leader's assignment and answers every waiting SyncGroup.
    pub fn complete_sync(&mut self, assignments: Vec<(String, Bytes)>) {
        let mut by_member: HashMap<String, Bytes> = assignments.into_iter().collect();
        for m in self.members.values_mut() {
            m.assignment = by_member.remove(&m.member_id).unwrap_or_default();
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.try_send(SyncResult {
                    error: ErrorCode::NONE,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    assignment: m.assignment.clone(),
                });
            }
        }
        self.set_state(GroupState::Stable);
    }

    /// Members whose session ran out (not counting those waiting in a JoinGroup or a
    /// SyncGroup, which are alive by definition), and
    /// MEMBER_ID_REQUIRED ids never used.
    pub fn expire(&mut self, now: Instant) -> bool {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.sync_waiter.is_none() && now.duration_since(m.last_heartbeat) > m.session_timeout)
            .map(|m| m.member_id.clone())
            .collect();
        let session_max = self.members.values().map(|m| m.session_timeout).max().unwrap_or(Duration::from_secs(45));
        self.pending_members.retain(|_, since| now.duration_since(*since) <= session_max);
        for id in &expired {
            self.remove_member(id);
        }
        !expired.is_empty()
    }
}

/// The topics a consumer-protocol member subscribes to: ConsumerProtocolSubscription starts,
/// in every version, with an i16 version and an array of topic names.
pub fn subscribed_topics(metadata: &Bytes) -> Vec<String> {
    let mut r = crate::protocol::codec::Reader::new(metadata.clone());
    let Ok(_version) = r.i16() else { return Vec::new() };
    r.array(false, 2, |r| r.string(false)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, protocols: &[&str], now: Instant) -> (Member, flume::Receiver<JoinResult>) {
        let (tx, rx) = flume::bounded(1);
        let m = Member {
            member_id: id.into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(30),
            protocols: protocols.iter().map(|p| (p.to_string(), Bytes::from(p.to_string()))).collect(),
            assignment: Bytes::new(),
            last_heartbeat: now,
            join_waiter: Some(tx),
            sync_waiter: None,
        };
        (m, rx)
    }

    #[test]
    fn a_rebalance_elects_a_leader_and_the_most_preferred_common_protocol() {
        let now = Instant::now();
        let mut g = Group::new("g");
        g.protocol_type = Some("consumer".into());
        let (a, ra) = member("a", &["range", "roundrobin"], now);
        let (b, rb) = member("b", &["roundrobin", "range"], now);
        let (c, rc) = member("c", &["roundrobin"], now);
        for m in [a, b, c] {
            g.add_member(m);
        }
        g.prepare_rebalance(now, Duration::ZERO);
        assert!(g.all_joined(now));
        g.complete_join(now);
        assert_eq!(g.state, GroupState::CompletingRebalance);
        assert_eq!(g.generation, 1);
        assert_eq!(g.protocol_name.as_deref(), Some("roundrobin"), "only roundrobin is common");
        let leader = ra.try_recv().unwrap();
        assert_eq!(leader.leader, "a");
        assert_eq!(leader.members.len(), 3);
        assert!(rb.try_recv().unwrap().members.is_empty());
        assert!(rc.try_recv().unwrap().members.is_empty());
        g.complete_sync(vec![("a".into(), Bytes::from_static(b"A")), ("b".into(), Bytes::from_static(b"B"))]);
        assert_eq!(g.state, GroupState::Stable);
        assert_eq!(g.members["b"].assignment, Bytes::from_static(b"B"));
        assert!(g.members["c"].assignment.is_empty());
    }

    #[test]
    fn members_that_do_not_rejoin_are_dropped_and_silent_ones_expire() {
        let now = Instant::now();
        let mut g = Group::new("g");
        g.protocol_type = Some("consumer".into());
        let (a, _ra) = member("a", &["range"], now);
        let (mut b, _rb) = member("b", &["range"], now);
        b.join_waiter = None;
        g.add_member(a);
        g.add_member(b);
        g.prepare_rebalance(now, Duration::ZERO);
        assert!(!g.all_joined(now), "b has not rejoined");
        g.complete_join(now + Duration::from_secs(31));
        assert_eq!(g.members.len(), 1);
        assert_eq!(g.leader.as_deref(), Some("a"));
        g.complete_sync(Vec::new());
        assert!(!g.expire(now + Duration::from_secs(5)));
        assert!(g.expire(now + Duration::from_secs(60)), "a's 10 s session ran out");
        assert!(g.members.is_empty());
    }
}
