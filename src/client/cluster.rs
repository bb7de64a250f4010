//! What a client knows of the cluster: the brokers, each topic's partitions and their
//! leaders, and one connection per broker. Metadata is fetched when a topic is first used,
//! when it is older than `metadata.max.age.ms`, and when a request meets a stale leader.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::config::ClientConfig;
use super::conn::Connection;
use super::{Error, Result};
use crate::protocol::error::ErrorCode;
use crate::protocol::messages::find_coordinator::FindCoordinatorRequest;
use crate::protocol::messages::metadata::{MetadataRequest, MetadataRequestTopic, MetadataResponse};

#[derive(Debug, Clone)]
pub struct TopicInfo {
    pub error: ErrorCode,
    /// The leader's node id for each partition, by index (-1: none).
    pub leaders: Vec<i32>,
}

pub struct Cluster {
    bootstrap: Vec<String>,
    pub client_id: String,
    connect_timeout: Duration,
    pub request_timeout: Duration,
    pub retry_backoff: Duration,
    pub metadata_max_age: Duration,
    /// When each topic's metadata was last fetched because a leader was missing.
    leaderless_refresh: RefCell<HashMap<String, Instant>>,
    connections: RefCell<HashMap<String, Connection>>,
    brokers: RefCell<HashMap<i32, String>>,
    topics: RefCell<HashMap<String, TopicInfo>>,
    refreshed: Cell<Option<Instant>>,
}

impl Cluster {
    pub fn new(config: &ClientConfig, default_client_id: &str) -> Result<Rc<Cluster>> {
        let bootstrap = config.bootstrap_servers();
        if bootstrap.is_empty() {
            return Err(Error::Config("bootstrap.servers is empty".into()));
        }
        Ok(Rc::new(Cluster {
            bootstrap,
            client_id: config.client_id(default_client_id),
            connect_timeout: config.millis("socket.connection.setup.timeout.ms", 10_000)?,
            request_timeout: config.millis("request.timeout.ms", 30_000)?,
            retry_backoff: config.millis("retry.backoff.ms", 100)?,
            metadata_max_age: config.millis("metadata.max.age.ms", 300_000)?,
            leaderless_refresh: RefCell::new(HashMap::new()),
            connections: RefCell::new(HashMap::new()),
            brokers: RefCell::new(HashMap::new()),
            topics: RefCell::new(HashMap::new()),
            refreshed: Cell::new(None),
        }))
    }

    /// The connection to `addr`, reused while it works.
    pub async fn connect(&self, addr: &str) -> Result<Connection> {
        if let Some(c) = self.connections.borrow().get(addr) {
            if !c.is_broken() {
                return Ok(c.clone());
            }
        }
        let c = Connection::open(addr, &self.client_id, self.connect_timeout, self.request_timeout).await?;
        self.connections.borrow_mut().insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// The connection to broker `node`.
    pub async fn node(&self, node: i32) -> Result<Connection> {
        let addr = self.brokers.borrow().get(&node).cloned();
        match addr {
            Some(addr) => self.connect(&addr).await,
            None => Err(Error::Broker(ErrorCode::LEADER_NOT_AVAILABLE, Some(format!("broker {node} is not in the metadata")))),
        }
    }

    /// A connection to any broker: a known one first, then the bootstrap list.
    pub async fn any(&self) -> Result<Connection> {
        let mut candidates: Vec<String> = self.connections.borrow().iter().filter(|(_, c)| !c.is_broken()).map(|(a, _)| a.clone()).collect();
        candidates.extend(self.brokers.borrow().values().cloned());
        candidates.extend(self.bootstrap.iter().cloned());
        let mut last = Error::Network("no bootstrap servers".into());
        for addr in candidates {
            match self.connect(&addr).await {
                Ok(c) => return Ok(c),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Fetches metadata for `topics` (all topics when `None`) and records it.
    pub async fn refresh(&self, topics: Option<Vec<String>>, allow_auto_topic_creation: bool) -> Result<MetadataResponse> {
        let conn = self.any().await?;
        let topics = topics.map(|names| names.into_iter().map(|name| MetadataRequestTopic { name: Some(name), ..Default::default() }).collect());
        let answer = conn.send(&MetadataRequest { topics, allow_auto_topic_creation, ..Default::default() }).await?;
        {
            let mut brokers = self.brokers.borrow_mut();
            brokers.clear();
            for b in &answer.brokers {
                brokers.insert(b.node_id, format!("{}:{}", b.host, b.port));
            }
            let mut known = self.topics.borrow_mut();
            for t in &answer.topics {
                let Some(name) = &t.name else { continue };
                let mut leaders = vec![-1; t.partitions.len()];
                for p in &t.partitions {
                    if let Some(slot) = leaders.get_mut(p.partition_index as usize) {
                        *slot = if p.error.is_ok() || p.leader_id >= 0 { p.leader_id } else { -1 };
                    }
                }
                if t.error.is_ok() {
                    known.insert(name.clone(), TopicInfo { error: t.error, leaders });
                } else {
                    known.remove(name);
                }
            }
        }
        self.refreshed.set(Some(Instant::now()));
        Ok(answer)
    }

    /// The topic's partitions and leaders, fetching metadata when the topic is not known yet,
    /// the metadata is older than `metadata.max.age.ms`, or a partition has no leader (then at
    /// most once per `retry.backoff.ms`, so that callers that loop do not flood the broker).
    /// Unknown topics are an error (`UNKNOWN_TOPIC_OR_PARTITION`) unless the broker creates
    /// them.
    pub async fn topic(&self, topic: &str, allow_auto_topic_creation: bool) -> Result<TopicInfo> {
        let fresh = self.refreshed.get().is_some_and(|at| at.elapsed() <= self.metadata_max_age);
        if fresh {
            if let Some(info) = self.topics.borrow().get(topic) {
                let leaderless = info.leaders.iter().any(|l| *l < 0);
                let recently = self.leaderless_refresh.borrow().get(topic).is_some_and(|at| at.elapsed() < self.retry_backoff);
                if !leaderless || recently {
                    return Ok(info.clone());
                }
            }
        }
        self.leaderless_refresh.borrow_mut().insert(topic.to_string(), Instant::now());
        let answer = self.refresh(Some(vec![topic.to_string()]), allow_auto_topic_creation).await?;
        match answer.topics.iter().find(|t| t.name.as_deref() == Some(topic)) {
            Some(t) if t.error.is_ok() => Ok(self.topics.borrow().get(topic).cloned().expect("recorded by refresh")),
            Some(t) => Err(Error::Broker(t.error, Some(format!("topic {topic}")))),
            None => Err(Error::Broker(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, Some(format!("topic {topic}")))),
        }
    }

    /// The partition count of a topic whose metadata is fresh, without cloning it (the
    /// producer's per-record path).
    pub fn fresh_partition_count(&self, topic: &str) -> Option<i32> {
        if !self.refreshed.get().is_some_and(|at| at.elapsed() <= self.metadata_max_age) {
            return None;
        }
        self.topics.borrow().get(topic).map(|t| t.leaders.len() as i32)
    }

    /// The topic as last seen, without asking the broker.
    pub fn cached_topic(&self, topic: &str) -> Option<TopicInfo> {
        self.topics.borrow().get(topic).cloned()
    }

    /// Forgets what is known of a topic, so that its next use fetches metadata (after a
    /// NOT_LEADER or UNKNOWN_TOPIC answer).
    pub fn invalidate(&self, topic: &str) {
        self.topics.borrow_mut().remove(topic);
    }

    /// The connection to the coordinator of `group`.
    pub async fn coordinator(&self, group: &str) -> Result<Connection> {
        self.coordinator_of(group, 0).await
    }

    /// The connection to the coordinator of `key`: a group's (`key_type` 0) or a
    /// transactional id's (1).
    pub async fn coordinator_of(&self, key: &str, key_type: i8) -> Result<Connection> {
        let conn = self.any().await?;
        let answer = conn.send(&FindCoordinatorRequest { key: key.to_string(), key_type, ..Default::default() }).await?;
        super::check(answer.error)?;
        let addr = format!("{}:{}", answer.host, answer.port);
        self.brokers.borrow_mut().insert(answer.node_id, addr.clone());
        self.connect(&addr).await
    }
}

/// Retries `op` while it fails with a retriable error, up to `deadline`, sleeping `backoff`
/// between attempts.
pub async fn retry<T, F, Fut>(deadline: Instant, backoff: Duration, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    loop {
        match op().await {
            Err(e) if e.is_retriable() && Instant::now() + backoff < deadline => compio::time::sleep(backoff).await,
            other => return other,
        }
    }
}
