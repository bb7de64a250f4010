//! The consumer, on Kafka's model: `subscribe` (group membership through the coordinator,
//! with a rebalance listener) or `assign` (manual); `poll` returns records from a buffer that
//! a fetch pipeline keeps filled, one fetch in flight per leader, so poll rarely waits on the
//! network; positions, commits (auto, sync, async), seeks and `auto.offset.reset` as in
//! Kafka's Java consumer.
//!
//! Group membership runs the classic protocol: JoinGroup (retried once with the member id
//! the broker hands out, KIP-394), the leader assigns with the first strategy all members
//! share, SyncGroup, then heartbeats from a background task. With an eager assignor every
//! partition is revoked before rejoining; with cooperative-sticky only the partitions that
//! move are, and the consumer rejoins at once to hand them over (KIP-429).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::assignor::{self, Assignor, Member, Subscription, TopicPartition};
use super::cluster::Cluster;
use super::config::ClientConfig;
use super::conn::Connection;
use super::notify::Notify;
use super::records::{self, Header};
use super::{Error, Result};
use crate::protocol::error::ErrorCode;
use crate::protocol::messages::fetch::{FetchPartition, FetchRequest, FetchTopic};
use crate::protocol::messages::heartbeat::HeartbeatRequest;
use crate::protocol::messages::join_group::{JoinGroupProtocol, JoinGroupRequest};
use crate::protocol::messages::leave_group::{LeaveGroupRequest, MemberIdentity};
use crate::protocol::messages::list_offsets::{ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use crate::protocol::messages::offset_commit::{OffsetCommitPartition, OffsetCommitRequest, OffsetCommitTopic};
use crate::protocol::messages::offset_fetch::{OffsetFetchRequest, OffsetFetchTopic};
use crate::protocol::messages::sync_group::{SyncGroupAssignment, SyncGroupRequest};
use crate::protocol::wire::RecordSet;

/// A record as the consumer returns it.
#[derive(Debug, Clone)]
pub struct ConsumerRecord {
    pub topic: Rc<str>,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    /// Whether the timestamp is the broker's (LogAppendTime) rather than the producer's.
    pub log_append_time: bool,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

/// Told of partitions that a rebalance takes away or hands over (Kafka's
/// `ConsumerRebalanceListener`).
pub trait RebalanceListener {
    fn on_partitions_revoked(&self, _partitions: &[TopicPartition]) {}
    fn on_partitions_assigned(&self, _partitions: &[TopicPartition]) {}
    /// Partitions lost without a chance to commit (the member was fenced or expired).
    fn on_partitions_lost(&self, partitions: &[TopicPartition]) {
        self.on_partitions_revoked(partitions)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
    None,
}

pub struct ConsumerConfig {
    pub group_id: Option<String>,
    pub group_instance_id: Option<String>,
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub max_poll_interval: Duration,
    pub assignors: Vec<Box<dyn Assignor>>,
    pub auto_commit: bool,
    pub auto_commit_interval: Duration,
    pub auto_offset_reset: OffsetReset,
    pub fetch_min_bytes: i32,
    pub fetch_max_wait: Duration,
    pub fetch_max_bytes: i32,
    pub max_partition_fetch_bytes: i32,
    pub max_poll_records: usize,
    pub isolation_level: i8,
    pub default_api_timeout: Duration,
}

const KNOWN: &[&str] = &[
    "group.id",
    "group.instance.id",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "partition.assignment.strategy",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "auto.offset.reset",
    "fetch.min.bytes",
    "fetch.max.wait.ms",
    "fetch.max.bytes",
    "max.partition.fetch.bytes",
    "max.poll.records",
    "isolation.level",
    "default.api.timeout.ms",
    "check.crcs",
    "key.deserializer",
    "value.deserializer",
];

impl ConsumerConfig {
    pub fn from(c: &ClientConfig) -> Result<ConsumerConfig> {
        c.warn_unknown(KNOWN);
        let mut assignors = Vec::new();
        for name in c.string("partition.assignment.strategy", "range,cooperative-sticky").split(',').map(str::trim).filter(|s| !s.is_empty()) {
            // Kafka's class names are accepted too.
            let short = match name.rsplit('.').next().unwrap_or(name) {
                "RangeAssignor" => "range",
                "RoundRobinAssignor" => "roundrobin",
                "CooperativeStickyAssignor" => "cooperative-sticky",
                other => other,
            };
            assignors.push(assignor::by_name(short).ok_or_else(|| Error::Config(format!("partition.assignment.strategy: unknown assignor {name:?}")))?);
        }
        if assignors.is_empty() {
            return Err(Error::Config("partition.assignment.strategy is empty".into()));
        }
        let auto_offset_reset = match c.string("auto.offset.reset", "latest").as_str() {
            "earliest" | "smallest" | "beginning" => OffsetReset::Earliest,
            "latest" | "largest" | "end" => OffsetReset::Latest,
            "none" | "error" => OffsetReset::None,
            other => return Err(Error::Config(format!("auto.offset.reset={other:?}: expected earliest, latest or none"))),
        };
        let isolation_level = match c.string("isolation.level", "read_uncommitted").as_str() {
            "read_uncommitted" => 0,
            "read_committed" => 1,
            other => return Err(Error::Config(format!("isolation.level={other:?}"))),
        };
        Ok(ConsumerConfig {
            group_id: c.get("group.id").filter(|g| !g.is_empty()).map(str::to_string),
            group_instance_id: c.get("group.instance.id").filter(|g| !g.is_empty()).map(str::to_string),
            session_timeout: c.millis("session.timeout.ms", 45_000)?,
            heartbeat_interval: c.millis("heartbeat.interval.ms", 3_000)?,
            max_poll_interval: c.millis("max.poll.interval.ms", 300_000)?,
            assignors,
            auto_commit: c.bool("enable.auto.commit", true)?,
            auto_commit_interval: c.millis("auto.commit.interval.ms", 5_000)?,
            auto_offset_reset,
            fetch_min_bytes: c.parse("fetch.min.bytes", 1)?,
            fetch_max_wait: c.millis("fetch.max.wait.ms", 500)?,
            fetch_max_bytes: c.parse("fetch.max.bytes", 50 << 20)?,
            max_partition_fetch_bytes: c.parse("max.partition.fetch.bytes", 1 << 20)?,
            max_poll_records: c.parse::<usize>("max.poll.records", 500)?.max(1),
            isolation_level,
            default_api_timeout: c.millis("default.api.timeout.ms", 60_000)?,
        })
    }
}

#[derive(Debug, Default)]
struct PartitionState {
    /// The offset of the next record `poll` returns; `None` until found (committed offset or
    /// reset).
    position: Option<i64>,
    /// The offset the next fetch asks for (ahead of `position` while records are buffered).
    fetch_offset: i64,
    /// Bumped by seeks, so that a fetch in flight from the old position is discarded.
    epoch: u64,
    high_watermark: i64,
    paused: bool,
    /// The position fell out of the log: reset by `auto.offset.reset`, not the committed offset.
    reset_pending: bool,
}

#[derive(Default)]
struct Group {
    member_id: String,
    generation: i32,
    protocol: Option<String>,
    coordinator: Option<Connection>,
    /// The member must (re)join before the next poll returns.
    rejoin: bool,
    /// JoinGroup or SyncGroup is under way; heartbeats wait.
    joining: bool,
    /// The member was expired or fenced: its partitions are lost, not revoked (no commit).
    lost: bool,
    /// As leader: the partition count of each subscribed topic at the last assignment, and
    /// when the metadata was last compared with it (a change triggers a rebalance).
    assigned_counts: Option<BTreeMap<String, i32>>,
    counts_checked: Option<Instant>,
}

struct State {
    subscription: Option<Vec<String>>,
    partitions: BTreeMap<TopicPartition, PartitionState>,
    buffered: VecDeque<ConsumerRecord>,
    fetching: BTreeSet<i32>,
    fetch_error: Option<Error>,
    group: Group,
    last_auto_commit: Instant,
    /// The last fetch epoch handed out; epochs only grow, so a fetch from before a seek or a
    /// reassignment can never match.
    epochs: u64,
}

impl State {
    fn next_epoch(&mut self) -> u64 {
        self.epochs += 1;
        self.epochs
    }

    fn new_partition(&mut self) -> PartitionState {
        PartitionState { epoch: self.next_epoch(), ..Default::default() }
    }
}

struct Inner {
    cluster: Rc<Cluster>,
    config: ConsumerConfig,
    state: RefCell<State>,
    listener: RefCell<Option<Rc<dyn RebalanceListener>>>,
    /// Fetches completing, heartbeats asking for a rejoin.
    progress: Notify,
    closed: Cell<bool>,
    heartbeat_running: Cell<bool>,
}

/// Kafka's consumer.
pub struct Consumer {
    inner: Rc<Inner>,
}

type Offsets = BTreeMap<TopicPartition, i64>;

impl Consumer {
    pub fn new(config: &ClientConfig) -> Result<Consumer> {
        let consumer_config = ConsumerConfig::from(config)?;
        let cluster = Cluster::new(config, "spate-consumer")?;
        let mut group = Group::default();
        group.generation = -1;
        Ok(Consumer {
            inner: Rc::new(Inner {
                cluster,
                config: consumer_config,
                state: RefCell::new(State {
                    subscription: None,
                    partitions: BTreeMap::new(),
                    buffered: VecDeque::new(),
                    fetching: BTreeSet::new(),
                    fetch_error: None,
                    group,
                    last_auto_commit: Instant::now(),
                    epochs: 0,
                }),
                listener: RefCell::new(None),
                progress: Notify::default(),
                closed: Cell::new(false),
                heartbeat_running: Cell::new(false),
            }),
        })
    }

    pub fn config(&self) -> &ConsumerConfig {
        &self.inner.config
    }

    /// Joins the group with these topics; partitions are assigned at the next `poll`.
    pub fn subscribe(&self, topics: &[&str], listener: Option<Rc<dyn RebalanceListener>>) -> Result<()> {
        if self.inner.config.group_id.is_none() {
            return Err(Error::Config("subscribe needs group.id".into()));
        }
        let mut s = self.inner.state.borrow_mut();
        s.subscription = Some(topics.iter().map(|t| t.to_string()).collect());
        s.group.rejoin = true;
        *self.inner.listener.borrow_mut() = listener;
        Ok(())
    }

    /// Takes these partitions without a group (manual assignment).
    pub fn assign(&self, partitions: &[TopicPartition]) {
        let mut s = self.inner.state.borrow_mut();
        s.subscription = None;
        let fresh: BTreeMap<TopicPartition, PartitionState> = partitions.iter().map(|tp| (tp.clone(), s.new_partition())).collect();
        s.partitions = fresh;
        s.buffered.clear();
    }

    /// The partitions this consumer holds now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.inner.state.borrow().partitions.keys().cloned().collect()
    }

    /// The member id and generation in the group (empty and -1 outside one).
    pub fn group_metadata(&self) -> (String, i32) {
        let s = self.inner.state.borrow();
        (s.group.member_id.clone(), s.group.generation)
    }

    /// Returns the next records, waiting up to `timeout` for some. Group membership, offset
    /// lookups and auto-commit happen here, as in Kafka.
    pub async fn poll(&self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let inner = &self.inner;
        let deadline = Instant::now() + timeout;
        loop {
            if inner.closed.get() {
                return Err(Error::Closed);
            }
            if inner.state.borrow().subscription.is_some() {
                ensure_group(inner, deadline).await?;
            }
            ensure_positions(inner).await?;
            maybe_auto_commit(inner);
            if let Some(e) = inner.state.borrow_mut().fetch_error.take() {
                return Err(e);
            }
            let records = take_records(inner);
            // Keep the pipeline full: fetch for the partitions with nothing buffered while the
            // caller works on what is returned.
            send_fetches(inner);
            if !records.is_empty() {
                return Ok(records);
            }
            if Instant::now() >= deadline {
                return Ok(Vec::new());
            }
            inner.progress.wait_until(Some(deadline)).await;
        }
    }

    /// Commits these offsets (the next offsets to read), or the current positions, and waits.
    pub async fn commit_sync(&self, offsets: Option<&Offsets>) -> Result<()> {
        let offsets = match offsets {
            Some(o) => o.clone(),
            None => positions(&self.inner),
        };
        commit(&self.inner, offsets).await
    }

    /// Commits in the background; `callback` gets the outcome.
    pub fn commit_async(&self, offsets: Option<&Offsets>, callback: impl FnOnce(Result<()>) + 'static) {
        let offsets = match offsets {
            Some(o) => o.clone(),
            None => positions(&self.inner),
        };
        let inner = self.inner.clone();
        compio::runtime::spawn(async move { callback(commit(&inner, offsets).await) }).detach();
    }

    /// The group's committed offsets for these partitions (`None`: nothing committed).
    pub async fn committed(&self, partitions: &[TopicPartition]) -> Result<BTreeMap<TopicPartition, Option<i64>>> {
        let group = self.inner.config.group_id.clone().ok_or_else(|| Error::Config("committed needs group.id".into()))?;
        fetch_committed(&self.inner, &group, partitions).await
    }

    /// The offset of the next record `poll` returns for the partition, looking it up (from
    /// the committed offset or `auto.offset.reset`) when it is not known yet.
    pub async fn position(&self, tp: &TopicPartition) -> Result<i64> {
        if !self.inner.state.borrow().partitions.contains_key(tp) {
            return Err(Error::Invalid(format!("{}-{} is not assigned to this consumer", tp.topic, tp.partition)));
        }
        ensure_positions(&self.inner).await?;
        Ok(self.inner.state.borrow().partitions.get(tp).and_then(|p| p.position).unwrap_or(-1))
    }

    /// Moves the partition's position; the next poll reads from `offset`.
    pub fn seek(&self, tp: &TopicPartition, offset: i64) -> Result<()> {
        let mut s = self.inner.state.borrow_mut();
        let epoch = s.next_epoch();
        let p = s.partitions.get_mut(tp).ok_or_else(|| Error::Invalid(format!("{}-{} is not assigned to this consumer", tp.topic, tp.partition)))?;
        p.position = Some(offset);
        p.fetch_offset = offset;
        p.epoch = epoch;
        p.reset_pending = false;
        s.buffered.retain(|r| !(*r.topic == *tp.topic && r.partition == tp.partition));
        Ok(())
    }

    pub async fn seek_to_beginning(&self, partitions: &[TopicPartition]) -> Result<()> {
        self.seek_to(partitions, EARLIEST_TIMESTAMP).await
    }

    pub async fn seek_to_end(&self, partitions: &[TopicPartition]) -> Result<()> {
        self.seek_to(partitions, LATEST_TIMESTAMP).await
    }

    async fn seek_to(&self, partitions: &[TopicPartition], timestamp: i64) -> Result<()> {
        let offsets = list_offsets(&self.inner.cluster, partitions, timestamp, self.inner.config.isolation_level).await?;
        for (tp, offset) in offsets {
            self.seek(&tp, offset)?;
        }
        Ok(())
    }

    /// Stops fetching from these partitions until `resume`.
    pub fn pause(&self, partitions: &[TopicPartition]) {
        self.set_paused(partitions, true);
    }

    pub fn resume(&self, partitions: &[TopicPartition]) {
        self.set_paused(partitions, false);
    }

    fn set_paused(&self, partitions: &[TopicPartition], paused: bool) {
        let mut s = self.inner.state.borrow_mut();
        for tp in partitions {
            if let Some(p) = s.partitions.get_mut(tp) {
                p.paused = paused;
            }
        }
        if paused {
            s.buffered.retain(|r| !partitions.iter().any(|tp| *r.topic == *tp.topic && r.partition == tp.partition));
            for tp in partitions {
                let epoch = s.next_epoch();
                if let Some(p) = s.partitions.get_mut(tp) {
                    if let Some(pos) = p.position {
                        p.fetch_offset = pos;
                        p.epoch = epoch;
                    }
                }
            }
        }
    }

    /// Leaves the group (committing first when auto-commit is on) and stops.
    pub async fn close(&self) -> Result<()> {
        let inner = &self.inner;
        if inner.closed.get() {
            return Ok(());
        }
        let mut result = Ok(());
        let in_group = inner.state.borrow().group.generation >= 0 && inner.config.group_id.is_some();
        if inner.config.auto_commit && inner.config.group_id.is_some() {
            result = commit(inner, positions(inner)).await;
        }
        let assigned = self.assignment();
        if in_group {
            if let Some(l) = inner.listener.borrow().clone() {
                l.on_partitions_revoked(&assigned);
            }
            // A static member keeps its place through restarts: it does not leave (KIP-345).
            if inner.config.group_instance_id.is_none() {
                let (group, member) = {
                    let s = inner.state.borrow();
                    (inner.config.group_id.clone().unwrap_or_default(), s.group.member_id.clone())
                };
                if let Ok(conn) = coordinator(inner).await {
                    let members = vec![MemberIdentity { member_id: member, ..Default::default() }];
                    let _ = conn.send(&LeaveGroupRequest { group_id: group, members, ..Default::default() }).await;
                }
            }
        }
        inner.closed.set(true);
        inner.progress.notify();
        result
    }
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition { topic: topic.to_string(), partition }
}

fn positions(inner: &Inner) -> Offsets {
    inner.state.borrow().partitions.iter().filter_map(|(tp, p)| p.position.map(|o| (tp.clone(), o))).collect()
}

fn take_records(inner: &Inner) -> Vec<ConsumerRecord> {
    let mut s = inner.state.borrow_mut();
    let n = s.buffered.len().min(inner.config.max_poll_records);
    let records: Vec<ConsumerRecord> = s.buffered.drain(..n).collect();
    // One position update per partition, not per record (a lookup key is a String).
    let mut last: HashMap<(&str, i32), i64> = HashMap::new();
    for r in &records {
        last.insert((&*r.topic, r.partition), r.offset);
    }
    for ((topic, partition), offset) in last {
        if let Some(p) = s.partitions.get_mut(&tp(topic, partition)) {
            p.position = Some(offset + 1);
        }
    }
    records
}

fn maybe_auto_commit(inner: &Rc<Inner>) {
    if !inner.config.auto_commit || inner.config.group_id.is_none() {
        return;
    }
    let due = {
        let mut s = inner.state.borrow_mut();
        let due = s.last_auto_commit.elapsed() >= inner.config.auto_commit_interval;
        if due {
            s.last_auto_commit = Instant::now();
        }
        due
    };
    if due {
        let offsets = positions(inner);
        let inner = inner.clone();
        compio::runtime::spawn(async move {
            if let Err(e) = commit(&inner, offsets).await {
                tracing::warn!(error = %e, "auto-commit failed");
            }
        })
        .detach();
    }
}

async fn coordinator(inner: &Inner) -> Result<Connection> {
    let cached = inner.state.borrow().group.coordinator.clone();
    if let Some(c) = cached.filter(|c| !c.is_broken()) {
        return Ok(c);
    }
    let group = inner.config.group_id.as_deref().ok_or_else(|| Error::Config("no group.id".into()))?;
    let c = inner.cluster.coordinator(group).await?;
    inner.state.borrow_mut().group.coordinator = Some(c.clone());
    Ok(c)
}

fn forget_coordinator_on(inner: &Inner, e: &Error) {
    if matches!(e.code(), Some(ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE)) || matches!(e, Error::Network(_) | Error::Timeout(_)) {
        inner.state.borrow_mut().group.coordinator = None;
    }
}

async fn commit(inner: &Inner, offsets: Offsets) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let group_id = inner.config.group_id.clone().ok_or_else(|| Error::Config("commit needs group.id".into()))?;
    let mut topics: Vec<(String, Vec<(i32, i64, Option<String>)>)> = Vec::new();
    for (tp, offset) in &offsets {
        match topics.iter_mut().find(|(t, _)| *t == tp.topic) {
            Some((_, v)) => v.push((tp.partition, *offset, None)),
            None => topics.push((tp.topic.clone(), vec![(tp.partition, *offset, None)])),
        }
    }
    let deadline = Instant::now() + inner.config.default_api_timeout;
    super::cluster::retry(deadline, inner.cluster.retry_backoff, || async {
        let (generation, member_id) = {
            let s = inner.state.borrow();
            if s.subscription.is_some() {
                (s.group.generation, s.group.member_id.clone())
            } else {
                (-1, String::new())
            }
        };
        let request = OffsetCommitRequest {
            group_id: group_id.clone(),
            generation_id_or_member_epoch: generation,
            member_id,
            group_instance_id: if generation >= 0 { inner.config.group_instance_id.clone() } else { None },
            topics: commit_topics(&topics),
            ..Default::default()
        };
        let conn = coordinator(inner).await?;
        let answer = conn.send(&request).await.inspect_err(|e| forget_coordinator_on(inner, e))?;
        for t in answer.topics {
            for p in t.partitions {
                let code = p.error;
                if !code.is_ok() {
                    let e = Error::Broker(code, None);
                    forget_coordinator_on(inner, &e);
                    if matches!(code, ErrorCode::REBALANCE_IN_PROGRESS | ErrorCode::ILLEGAL_GENERATION | ErrorCode::UNKNOWN_MEMBER_ID) {
                        inner.state.borrow_mut().group.rejoin = true;
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    })
    .await
}

async fn fetch_committed(inner: &Inner, group: &str, partitions: &[TopicPartition]) -> Result<BTreeMap<TopicPartition, Option<i64>>> {
    let mut topics: Vec<(String, Vec<i32>)> = Vec::new();
    for tp in partitions {
        match topics.iter_mut().find(|(t, _)| *t == tp.topic) {
            Some((_, v)) => v.push(tp.partition),
            None => topics.push((tp.topic.clone(), vec![tp.partition])),
        }
    }
    let deadline = Instant::now() + inner.config.default_api_timeout;
    super::cluster::retry(deadline, inner.cluster.retry_backoff, || async {
        let conn = coordinator(inner).await?;
        let wanted =
            topics.iter().map(|(name, partition_indexes)| OffsetFetchTopic { name: name.clone(), partition_indexes: partition_indexes.clone() }).collect();
        let answer = conn
            .send(&OffsetFetchRequest { group_id: group.to_string(), topics: Some(wanted), ..Default::default() })
            .await
            .inspect_err(|e| forget_coordinator_on(inner, e))?;
        let error = answer.error;
        if !error.is_ok() {
            let e = Error::Broker(error, None);
            forget_coordinator_on(inner, &e);
            return Err(e);
        }
        let mut out = BTreeMap::new();
        for t in answer.topics {
            for p in t.partitions {
                super::check(p.error)?;
                out.insert(tp(&t.name, p.partition_index), (p.committed_offset >= 0).then_some(p.committed_offset));
            }
        }
        Ok(out)
    })
    .await
}

/// The offsets at `timestamp` (earliest, latest or a time) of each partition, asking each
/// partition's leader.
pub async fn list_offsets(cluster: &Cluster, partitions: &[TopicPartition], timestamp: i64, isolation_level: i8) -> Result<BTreeMap<TopicPartition, i64>> {
    let mut by_leader: HashMap<i32, Vec<(String, Vec<(i32, i64)>)>> = HashMap::new();
    for tp in partitions {
        let info = cluster.topic(&tp.topic, false).await?;
        let leader = info
            .leaders
            .get(tp.partition as usize)
            .copied()
            .ok_or_else(|| Error::Broker(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, Some(format!("{}-{}", tp.topic, tp.partition))))?;
        let topics = by_leader.entry(leader).or_default();
        match topics.iter_mut().find(|(t, _)| *t == tp.topic) {
            Some((_, v)) => v.push((tp.partition, timestamp)),
            None => topics.push((tp.topic.clone(), vec![(tp.partition, timestamp)])),
        }
    }
    let mut out = BTreeMap::new();
    for (leader, topics) in by_leader {
        let conn = cluster.node(leader).await?;
        let topics = topics
            .into_iter()
            .map(|(name, ps)| ListOffsetsTopic {
                name,
                partitions: ps
                    .into_iter()
                    .map(|(partition_index, timestamp)| ListOffsetsPartition { partition_index, timestamp, ..Default::default() })
                    .collect(),
            })
            .collect();
        for t in conn.send(&ListOffsetsRequest { replica_id: -1, isolation_level, topics }).await?.topics {
            let topic = t.name;
            for p in t.partitions {
                if !p.error.is_ok() {
                    cluster.invalidate(&topic);
                    return Err(Error::Broker(p.error, Some(format!("{topic}-{}", p.partition_index))));
                }
                out.insert(tp(&topic, p.partition_index), p.offset);
            }
        }
    }
    Ok(out)
}

/// Finds a position for every assigned partition that has none: the group's committed
/// offset, else `auto.offset.reset`.
async fn ensure_positions(inner: &Inner) -> Result<()> {
    let missing: Vec<TopicPartition> = inner.state.borrow().partitions.iter().filter(|(_, p)| p.position.is_none()).map(|(tp, _)| tp.clone()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut found: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    let use_committed: Vec<TopicPartition> = {
        let s = inner.state.borrow();
        missing.iter().filter(|tp| s.partitions.get(*tp).is_some_and(|p| !p.reset_pending)).cloned().collect()
    };
    if let (Some(group), false) = (&inner.config.group_id, use_committed.is_empty()) {
        for (tp, offset) in fetch_committed(inner, group, &use_committed).await? {
            if let Some(o) = offset {
                found.insert(tp, o);
            }
        }
    }
    let to_reset: Vec<TopicPartition> = missing.iter().filter(|tp| !found.contains_key(*tp)).cloned().collect();
    if !to_reset.is_empty() {
        let timestamp = match inner.config.auto_offset_reset {
            OffsetReset::Earliest => EARLIEST_TIMESTAMP,
            OffsetReset::Latest => LATEST_TIMESTAMP,
            OffsetReset::None => {
                return Err(Error::Invalid(format!("no committed offset for {}-{} and auto.offset.reset=none", to_reset[0].topic, to_reset[0].partition)));
            }
        };
        let deadline = Instant::now() + inner.config.default_api_timeout;
        let offsets =
            super::cluster::retry(deadline, inner.cluster.retry_backoff, || list_offsets(&inner.cluster, &to_reset, timestamp, inner.config.isolation_level))
                .await?;
        found.extend(offsets);
    }
    let mut s = inner.state.borrow_mut();
    for (tp, offset) in found {
        let epoch = s.next_epoch();
        if let Some(p) = s.partitions.get_mut(&tp) {
            if p.position.is_none() {
                p.position = Some(offset);
                p.fetch_offset = offset;
                p.epoch = epoch;
                p.reset_pending = false;
            }
        }
    }
    Ok(())
}

/// Starts one fetch per leader for the partitions that have a position, nothing buffered,
/// and no fetch in flight.
fn send_fetches(inner: &Rc<Inner>) {
    let mut by_leader: HashMap<i32, Vec<(TopicPartition, i64, u64)>> = HashMap::new();
    let long_poll;
    {
        let s = inner.state.borrow();
        // With records buffered, a fetch must not wait at the broker: the caller has work, and
        // a fetch that long-polls on idle partitions would hold back the next fetch of the
        // partitions that have data (one fetch per leader is in flight at a time).
        long_poll = s.buffered.is_empty();
        // A partition is fetched again (from past what is buffered) while it has less than a
        // poll's worth buffered, so that a long poll on idle partitions never holds back one
        // that has data; the buffer stays bounded at about a poll plus one fetch per partition.
        let mut buffered: HashMap<(&str, i32), usize> = HashMap::new();
        for r in &s.buffered {
            *buffered.entry((&*r.topic, r.partition)).or_default() += 1;
        }
        for (tp, p) in &s.partitions {
            let held = buffered.get(&(tp.topic.as_str(), tp.partition)).copied().unwrap_or(0);
            if p.position.is_none() || p.paused || held >= inner.config.max_poll_records {
                continue;
            }
            let leader = inner.cluster.cached_topic(&tp.topic).and_then(|t| t.leaders.get(tp.partition as usize).copied()).unwrap_or(-1);
            if leader < 0 {
                let cluster = inner.cluster.clone();
                let topic = tp.topic.clone();
                compio::runtime::spawn(async move {
                    let _ = cluster.topic(&topic, false).await;
                })
                .detach();
                continue;
            }
            if s.fetching.contains(&leader) {
                continue;
            }
            by_leader.entry(leader).or_default().push((tp.clone(), p.fetch_offset, p.epoch));
        }
    }
    for (leader, partitions) in by_leader {
        inner.state.borrow_mut().fetching.insert(leader);
        compio::runtime::spawn(fetch(inner.clone(), leader, partitions, long_poll)).detach();
    }
}

async fn fetch(inner: Rc<Inner>, leader: i32, partitions: Vec<(TopicPartition, i64, u64)>, long_poll: bool) {
    let config = &inner.config;
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (tp, offset, _) in &partitions {
        let partition =
            FetchPartition { partition: tp.partition, fetch_offset: *offset, partition_max_bytes: config.max_partition_fetch_bytes, ..Default::default() };
        match topics.iter_mut().find(|t| t.name == tp.topic) {
            Some(t) => t.partitions.push(partition),
            None => topics.push(FetchTopic { name: tp.topic.clone(), partitions: vec![partition] }),
        }
    }
    let request = FetchRequest {
        max_wait_ms: if long_poll { config.fetch_max_wait.as_millis() as i32 } else { 0 },
        min_bytes: config.fetch_min_bytes,
        max_bytes: config.fetch_max_bytes,
        isolation_level: config.isolation_level,
        topics,
        ..Default::default()
    };
    let answer = match inner.cluster.node(leader).await {
        Ok(conn) => conn.send_with_timeout(&request, inner.cluster.request_timeout + config.fetch_max_wait).await,
        Err(e) => Err(e),
    };
    let mut retry_later = false;
    match answer {
        Err(e) => {
            tracing::debug!(error = %e, leader, "fetch failed");
            for (tp, _, _) in &partitions {
                inner.cluster.invalidate(&tp.topic);
            }
            retry_later = true;
        }
        Ok(response) => {
            let mut s = inner.state.borrow_mut();
            let s = &mut *s;
            let sent: HashMap<(&str, i32), u64> = partitions.iter().map(|(tp, _, epoch)| ((tp.topic.as_str(), tp.partition), *epoch)).collect();
            for t in response.topics {
                let topic: Rc<str> = Rc::from(t.name);
                for r in t.partitions {
                    let Some(&sent_epoch) = sent.get(&(&*topic, r.partition_index)) else { continue };
                    let key = tp(&topic, r.partition_index);
                    let Some(p) = s.partitions.get_mut(&key) else { continue };
                    if p.epoch != sent_epoch {
                        continue; // sought or reassigned while the fetch was out
                    }
                    match r.error {
                        ErrorCode::NONE => {}
                        ErrorCode::OFFSET_OUT_OF_RANGE => {
                            if config.auto_offset_reset == OffsetReset::None {
                                s.fetch_error = Some(Error::Broker(r.error, Some(format!("{topic}-{} offset {}", r.partition_index, p.fetch_offset))));
                            } else {
                                // Reset by auto.offset.reset at the next poll.
                                p.position = None;
                                p.reset_pending = true;
                            }
                            continue;
                        }
                        e => {
                            if matches!(e, ErrorCode::NOT_LEADER_OR_FOLLOWER | ErrorCode::UNKNOWN_TOPIC_OR_PARTITION | ErrorCode::LEADER_NOT_AVAILABLE) {
                                inner.cluster.invalidate(&topic);
                            }
                            retry_later = true;
                            continue;
                        }
                    }
                    p.high_watermark = r.high_watermark;
                    let mut records = Vec::new();
                    let aborted: Option<Vec<(i64, i64)>> =
                        (config.isolation_level == 1).then(|| r.aborted_transactions.iter().flatten().map(|a| (a.producer_id, a.first_offset)).collect());
                    let next = match records::read_records_isolated(fetched_bytes(r.records), p.fetch_offset, aborted.as_deref(), &mut records) {
                        Ok(next) => next,
                        Err(e) => {
                            s.fetch_error = Some(e);
                            continue;
                        }
                    };
                    if records.is_empty() && next > p.fetch_offset {
                        // Only control or compacted-away records: nothing is buffered for the
                        // partition (it would not have been fetched), so the position moves too.
                        p.position = Some(next);
                    }
                    p.fetch_offset = next;
                    for rec in records {
                        s.buffered.push_back(ConsumerRecord {
                            topic: topic.clone(),
                            partition: r.partition_index,
                            offset: rec.offset,
                            timestamp: rec.timestamp,
                            log_append_time: rec.log_append_time,
                            key: rec.key,
                            value: rec.value,
                            headers: rec.headers,
                        });
                    }
                }
            }
        }
    }
    if retry_later {
        compio::time::sleep(inner.cluster.retry_backoff).await;
    }
    inner.state.borrow_mut().fetching.remove(&leader);
    inner.progress.notify();
}

/// Joins (or rejoins) the group when needed, running the assignment when this member leads.
async fn ensure_group(inner: &Rc<Inner>, deadline: Instant) -> Result<()> {
    let cooperative_default = inner.config.assignors.first().is_some_and(|a| a.is_cooperative());
    loop {
        if !inner.state.borrow().group.rejoin {
            if let Err(e) = check_partition_counts(inner).await {
                tracing::debug!(error = %e, "metadata check failed");
            }
        }
        let rejoin = inner.state.borrow().group.rejoin;
        if !rejoin {
            return Ok(());
        }
        if inner.closed.get() {
            return Err(Error::Closed);
        }
        if std::mem::take(&mut inner.state.borrow_mut().group.lost) {
            let lost: Vec<TopicPartition> = {
                let mut s = inner.state.borrow_mut();
                s.buffered.clear();
                std::mem::take(&mut s.partitions).into_keys().collect()
            };
            if !lost.is_empty() {
                if let Some(l) = inner.listener.borrow().clone() {
                    l.on_partitions_lost(&lost);
                }
            }
        }
        let protocol_cooperative = {
            let s = inner.state.borrow();
            s.group.protocol.as_deref().and_then(assignor::by_name).map_or(cooperative_default, |a| a.is_cooperative())
        };
        if !protocol_cooperative {
            // Eager: give everything up before joining.
            let owned: Vec<TopicPartition> = inner.state.borrow().partitions.keys().cloned().collect();
            if !owned.is_empty() {
                if inner.config.auto_commit {
                    let _ = commit(inner, positions(inner)).await;
                }
                if let Some(l) = inner.listener.borrow().clone() {
                    l.on_partitions_revoked(&owned);
                }
                let mut s = inner.state.borrow_mut();
                s.partitions.clear();
                s.buffered.clear();
            }
        }
        match join_and_sync(inner).await {
            Ok(()) => {}
            Err(e) => {
                inner.state.borrow_mut().group.joining = false;
                forget_coordinator_on(inner, &e);
                match e.code() {
                    Some(ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::ILLEGAL_GENERATION) => {
                        let mut s = inner.state.borrow_mut();
                        s.group.member_id.clear();
                        s.group.generation = -1;
                        s.group.lost = true;
                    }
                    Some(ErrorCode::REBALANCE_IN_PROGRESS) => {}
                    Some(
                        ErrorCode::FENCED_INSTANCE_ID
                        | ErrorCode::INCONSISTENT_GROUP_PROTOCOL
                        | ErrorCode::INVALID_SESSION_TIMEOUT
                        | ErrorCode::INVALID_GROUP_ID,
                    ) => return Err(e),
                    _ if e.is_retriable() => compio::time::sleep(inner.cluster.retry_backoff).await,
                    _ => return Err(e),
                }
                if Instant::now() >= deadline {
                    // Keep the rejoin pending; the next poll continues it.
                    return Ok(());
                }
            }
        }
    }
}

/// As the group's leader, asks for a rebalance when a subscribed topic's partition count
/// changed since the last assignment (or a topic that did not exist appeared): checked every
/// second while a subscribed topic is missing, else every `metadata.max.age.ms`.
async fn check_partition_counts(inner: &Inner) -> Result<()> {
    let (counts, checked, topics) = {
        let s = inner.state.borrow();
        (s.group.assigned_counts.clone(), s.group.counts_checked, s.subscription.clone().unwrap_or_default())
    };
    let Some(counts) = counts else { return Ok(()) };
    let missing = topics.iter().any(|t| !counts.contains_key(t));
    let every = if missing { Duration::from_secs(1) } else { inner.cluster.metadata_max_age };
    if checked.is_some_and(|at| at.elapsed() < every) {
        return Ok(());
    }
    inner.state.borrow_mut().group.counts_checked = Some(Instant::now());
    let meta = inner.cluster.refresh(Some(topics), false).await?;
    let now: BTreeMap<String, i32> = meta.topics.into_iter().filter(|t| t.error.is_ok()).filter_map(|t| Some((t.name?, t.partitions.len() as i32))).collect();
    if now != counts {
        inner.state.borrow_mut().group.rejoin = true;
    }
    Ok(())
}

async fn join_and_sync(inner: &Rc<Inner>) -> Result<()> {
    let config = &inner.config;
    let group_id = config.group_id.clone().expect("subscribe checked group.id");
    let topics = inner.state.borrow().subscription.clone().unwrap_or_default();
    let (owned, generation) = {
        let s = inner.state.borrow();
        (s.partitions.keys().cloned().collect::<Vec<_>>(), s.group.generation)
    };
    let subscription = Subscription { topics: topics.clone(), user_data: None, owned_partitions: owned.clone(), generation_id: generation };
    let metadata = assignor::encode_subscription(&subscription);
    let protocols: Vec<(String, Vec<u8>)> = config.assignors.iter().map(|a| (a.name().to_string(), metadata.clone())).collect();
    inner.state.borrow_mut().group.joining = true;
    let conn = coordinator(inner).await?;
    let join_timeout = config.max_poll_interval + Duration::from_secs(5);
    let mut answer;
    loop {
        let member_id = inner.state.borrow().group.member_id.clone();
        let request = JoinGroupRequest {
            group_id: group_id.clone(),
            session_timeout_ms: config.session_timeout.as_millis() as i32,
            rebalance_timeout_ms: config.max_poll_interval.as_millis() as i32,
            member_id,
            group_instance_id: config.group_instance_id.clone(),
            protocol_type: "consumer".into(),
            protocols: protocols.iter().map(|(name, metadata)| JoinGroupProtocol { name: name.clone(), metadata: Bytes::from(metadata.clone()) }).collect(),
            reason: None,
        };
        answer = conn.send_with_timeout(&request, join_timeout).await?;
        if answer.error == ErrorCode::MEMBER_ID_REQUIRED {
            inner.state.borrow_mut().group.member_id = answer.member_id.clone();
            continue;
        }
        super::check(answer.error)?;
        break;
    }
    {
        let mut s = inner.state.borrow_mut();
        s.group.member_id = answer.member_id.clone();
        s.group.generation = answer.generation_id;
        s.group.protocol = answer.protocol_name.clone();
    }
    ensure_heartbeat(inner);
    let mut assignments = Vec::new();
    inner.state.borrow_mut().group.assigned_counts = None;
    let protocol_name = answer.protocol_name.clone().unwrap_or_default();
    if answer.leader == answer.member_id {
        let assignor = config
            .assignors
            .iter()
            .find(|a| a.name() == protocol_name)
            .ok_or_else(|| Error::Protocol(format!("the group chose {protocol_name:?}, which this member did not offer")))?;
        let mut members = Vec::new();
        let mut all_topics = BTreeSet::new();
        for m in &answer.members {
            let subscription = assignor::decode_subscription(&m.metadata).map_err(|e| Error::Protocol(format!("subscription of {}: {e}", m.member_id)))?;
            all_topics.extend(subscription.topics.iter().cloned());
            members.push(Member { member_id: m.member_id.clone(), group_instance_id: m.group_instance_id.clone(), subscription });
        }
        let mut partitions = BTreeMap::new();
        let meta = inner.cluster.refresh(Some(all_topics.into_iter().collect()), false).await?;
        for t in meta.topics {
            if let (true, Some(name)) = (t.error.is_ok(), t.name) {
                partitions.insert(name, t.partitions.len() as i32);
            }
        }
        let mut s = inner.state.borrow_mut();
        s.group.assigned_counts = Some(partitions.clone());
        s.group.counts_checked = Some(Instant::now());
        drop(s);
        for (member, tps) in assignor.assign(&members, &partitions) {
            let bytes = assignor::encode_assignment(&assignor::Assignment { partitions: tps, user_data: None });
            assignments.push(SyncGroupAssignment { member_id: member, assignment: Bytes::from(bytes) });
        }
    }
    let request = SyncGroupRequest {
        group_id,
        generation_id: answer.generation_id,
        member_id: answer.member_id.clone(),
        group_instance_id: config.group_instance_id.clone(),
        assignments,
        ..Default::default()
    };
    let synced = conn.send_with_timeout(&request, join_timeout).await?;
    super::check(synced.error)?;
    let assignment = assignor::decode_assignment(&synced.assignment).map_err(|e| Error::Protocol(format!("assignment: {e}")))?;
    let new: BTreeSet<TopicPartition> = assignment.partitions.into_iter().collect();
    let old: BTreeSet<TopicPartition> = inner.state.borrow().partitions.keys().cloned().collect();
    let revoked: Vec<TopicPartition> = old.difference(&new).cloned().collect();
    let added: Vec<TopicPartition> = new.difference(&old).cloned().collect();
    if !revoked.is_empty() {
        // Cooperative: only what moves is given up, and the member rejoins so that the
        // partitions reach their new owner in the next round.
        if inner.config.auto_commit {
            let offsets: Offsets = positions(inner).into_iter().filter(|(tp, _)| revoked.contains(tp)).collect();
            let _ = commit(inner, offsets).await;
        }
        if let Some(l) = inner.listener.borrow().clone() {
            l.on_partitions_revoked(&revoked);
        }
    }
    {
        let mut s = inner.state.borrow_mut();
        for tp in &revoked {
            s.partitions.remove(tp);
        }
        s.buffered.retain(|r| new.contains(&tp(&r.topic, r.partition)));
        for tp in &added {
            let fresh = s.new_partition();
            s.partitions.insert(tp.clone(), fresh);
        }
        s.group.rejoin = !revoked.is_empty() && assignor::by_name(&protocol_name).is_some_and(|a| a.is_cooperative());
        s.group.joining = false;
    }
    if let Some(l) = inner.listener.borrow().clone() {
        l.on_partitions_assigned(&added);
    }
    Ok(())
}

fn ensure_heartbeat(inner: &Rc<Inner>) {
    if inner.heartbeat_running.replace(true) {
        return;
    }
    compio::runtime::spawn(heartbeat(Rc::downgrade(inner))).detach();
}

/// Heartbeats while the consumer lives; a heartbeat answered with a rebalance marks the
/// member for rejoining at the next poll.
async fn heartbeat(weak: Weak<Inner>) {
    loop {
        let interval = match weak.upgrade() {
            Some(inner) if !inner.closed.get() => inner.config.heartbeat_interval,
            _ => return,
        };
        compio::time::sleep(interval).await;
        let Some(inner) = weak.upgrade() else { return };
        if inner.closed.get() {
            inner.heartbeat_running.set(false);
            return;
        }
        let request = {
            let s = inner.state.borrow();
            if s.group.joining || s.group.generation < 0 || s.group.member_id.is_empty() {
                continue;
            }
            HeartbeatRequest {
                group_id: inner.config.group_id.clone().unwrap_or_default(),
                generation_id: s.group.generation,
                member_id: s.group.member_id.clone(),
                group_instance_id: inner.config.group_instance_id.clone(),
            }
        };
        let result = match coordinator(&inner).await {
            Ok(conn) => conn.send(&request).await,
            Err(e) => Err(e),
        };
        let code = match result {
            Ok(answer) => answer.error,
            Err(e) => {
                forget_coordinator_on(&inner, &e);
                continue;
            }
        };
        match code {
            ErrorCode::NONE => {}
            ErrorCode::REBALANCE_IN_PROGRESS | ErrorCode::ILLEGAL_GENERATION | ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::FENCED_INSTANCE_ID => {
                let mut s = inner.state.borrow_mut();
                // Only a heartbeat of the current generation speaks for it.
                if s.group.generation == request.generation_id {
                    s.group.rejoin = true;
                    if code != ErrorCode::REBALANCE_IN_PROGRESS {
                        s.group.member_id.clear();
                        s.group.generation = -1;
                        s.group.lost = true;
                    }
                }
                drop(s);
                inner.progress.notify();
            }
            other => forget_coordinator_on(&inner, &Error::Broker(other, None)),
        }
    }
}

/// The bytes of a fetched record set (what the client decodes is always bytes).
fn fetched_bytes(records: Option<RecordSet>) -> Bytes {
    match records {
        Some(RecordSet::Bytes(b)) => b,
        _ => Bytes::new(),
    }
}

/// The OffsetCommit request's topics for `(topic, [(partition, offset, metadata)])`.
pub(crate) fn commit_topics(topics: &[(String, Vec<(i32, i64, Option<String>)>)]) -> Vec<OffsetCommitTopic> {
    topics
        .iter()
        .map(|(name, ps)| OffsetCommitTopic {
            name: name.clone(),
            partitions: ps
                .iter()
                .map(|(partition_index, committed_offset, committed_metadata)| OffsetCommitPartition {
                    partition_index: *partition_index,
                    committed_offset: *committed_offset,
                    committed_metadata: committed_metadata.clone(),
                    ..Default::default()
                })
                .collect(),
        })
        .collect()
}
