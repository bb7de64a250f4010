//! The controller service: what a voter of the metadata quorum does with the requests that
//! reach its CONTROLLER listener, and the active controller's timers (fencing brokers whose
//! heartbeats stopped, the preferred-leader rebalance). It runs on the controller thread,
//! beside the Raft node (`raft.rs`).
//!
//! Decisions are made one at a time, on the Raft leader only, from an image that has applied
//! everything committed (`Raft::ensure_linearizable` first), so two decisions never race on a
//! stale image; each proposes its records and answers once they are committed and applied.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::controller::{self, Settings};
use super::image::{MetadataImage, MetadataRecord};
use super::raft::{ProposeError, Quorum};
use super::rpc::{ControllerRequest, ControllerResponse, ItemErrors};
use crate::config::BrokerConfig;
use crate::protocol::ErrorCode;

pub struct ControllerService {
    quorum: Rc<Quorum>,
    config: BrokerConfig,
    settings: Settings,
    /// The cluster id every broker must share (the log dir's `meta.properties`).
    cluster_id: String,
    /// When each broker last heartbeat, as this node saw it while leading. A node that
    /// becomes the leader starts every broker's session afresh, as Kafka's does.
    heartbeats: RefCell<HashMap<i32, Instant>>,
    /// The leader term `heartbeats` belongs to.
    term: RefCell<u64>,
    /// The one token a decision holds while it runs (a bounded(1) channel as an async mutex).
    token: (flume::Sender<()>, flume::Receiver<()>),
}

/// How long a decision waits for the one before it.
const DECISION_WAIT: Duration = Duration::from_secs(5);

fn error(code: ErrorCode, message: impl Into<String>) -> ControllerResponse {
    ControllerResponse::Error { code: code.0, message: message.into() }
}

fn item_errors(results: Vec<controller::ItemResult>) -> ItemErrors {
    results.into_iter().map(|r| r.err().map(|(c, m)| (c.0, m))).collect()
}

fn partition_errors(results: Vec<(String, i32, controller::ItemResult)>) -> Vec<(String, i32, Option<(i16, String)>)> {
    results.into_iter().map(|(t, p, r)| (t, p, r.err().map(|(c, m)| (c.0, m)))).collect()
}

impl ControllerService {
    pub fn new(quorum: Rc<Quorum>, config: BrokerConfig) -> Rc<ControllerService> {
        let settings = Settings {
            num_partitions: config.num_partitions,
            default_replication_factor: config.default_replication_factor,
            unclean_leader_election: config.cluster.as_ref().is_some_and(|c| c.unclean_leader_election_enable),
            max_partitions: crate::config::limits::TOPIC_PARTITIONS_MAX,
        };
        let token = flume::bounded(1);
        token.0.try_send(()).expect("an empty channel has room");
        Rc::new(ControllerService {
            quorum,
            cluster_id: config.cluster_id.clone(),
            config,
            settings,
            heartbeats: RefCell::new(HashMap::new()),
            term: RefCell::new(0),
            token,
        })
    }

    fn cluster(&self) -> &crate::config::ClusterConfig {
        self.config.cluster.as_ref().expect("a controller runs in a cluster")
    }

    fn not_controller(&self) -> ControllerResponse {
        let leader = self.quorum.leader();
        let address = leader.and_then(|l| self.cluster().voters.iter().find(|v| v.id as u64 == l)).map(|v| v.address());
        ControllerResponse::NotController { leader, address }
    }

    pub async fn handle(self: &Rc<Self>, request: ControllerRequest) -> ControllerResponse {
        match request {
            // Any voter serves the metadata it has applied: a broker only ever moves forward
            // (it asks for what is newer than what it has).
            // Served by the leader only: a follower cut off from it would keep a broker on stale
            // metadata, and a restarting voter's image may lag what the broker had.
            ControllerRequest::FetchMetadata { since, max_wait_ms } if self.quorum.is_leader() => self.fetch_metadata(since, max_wait_ms).await,
            request => {
                if !self.quorum.is_leader() {
                    return self.not_controller();
                }
                // Decisions wait for each other, but not for ever: a leader that lost its quorum
                // cannot commit, and its callers retry elsewhere.
                match compio::time::timeout(DECISION_WAIT, self.token.1.recv_async()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return error(ErrorCode::UNKNOWN_SERVER_ERROR, "controller stopping"),
                    Err(_) => return error(ErrorCode::REQUEST_TIMED_OUT, "the controller is busy"),
                }
                let response = self.decide(request).await;
                let _ = self.token.0.try_send(());
                response
            }
        }
    }

    async fn fetch_metadata(&self, since: u64, max_wait_ms: u64) -> ControllerResponse {
        let changes = self.quorum.image_changes();
        let deadline = Instant::now() + Duration::from_millis(max_wait_ms.min(30_000));
        loop {
            let image = self.quorum.image();
            if image.offset > since {
                return ControllerResponse::Metadata { image: Some(Box::new((*image).clone())) };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || compio::time::timeout(left, changes.recv_async()).await.is_err() {
                return ControllerResponse::Metadata { image: None };
            }
        }
    }

    /// The image with everything committed applied, on the leader (else `None`).
    async fn current_image(&self) -> Option<std::sync::Arc<MetadataImage>> {
        self.quorum.ensure_linearizable().await.ok()?;
        // Entries this leader appended that are not applied yet (a proposal that timed out may
        // still commit): a decision made without them could undo them.
        let deadline = Instant::now() + DECISION_WAIT;
        loop {
            let status = self.quorum.status();
            if status.last_applied_index >= status.last_log_index {
                break;
            }
            if Instant::now() >= deadline || status.leader != Some(self.quorum.node_id()) {
                return None;
            }
            compio::time::sleep(Duration::from_millis(10)).await;
        }
        let term = self.quorum.status().term;
        if *self.term.borrow() != term {
            // A new term: every broker's session starts now.
            *self.term.borrow_mut() = term;
            self.heartbeats.borrow_mut().clear();
        }
        Some(self.quorum.image())
    }

    async fn commit(&self, records: Vec<MetadataRecord>) -> Result<u64, ControllerResponse> {
        match self.quorum.propose(records).await {
            Ok(index) => Ok(index),
            Err(ProposeError::NotLeader { .. }) => Err(self.not_controller()),
            Err(ProposeError::Other(e)) => Err(error(ErrorCode::UNKNOWN_SERVER_ERROR, e)),
            // Appended but not known committed (leadership moved, or no quorum answered): the
            // requester retries, and every decision is checked against the image again then.
            Err(ProposeError::Uncertain(e)) => Err(error(ErrorCode::REQUEST_TIMED_OUT, e)),
        }
    }

    async fn decide(&self, request: ControllerRequest) -> ControllerResponse {
        let Some(image) = self.current_image().await else { return self.not_controller() };
        match request {
            ControllerRequest::FetchMetadata { .. } => unreachable!("served above"),
            ControllerRequest::DescribeQuorum => ControllerResponse::Quorum(self.describe_quorum()),
            ControllerRequest::RegisterBroker { cluster_id, broker_id, incarnation_id, host, port, rack } => {
                if cluster_id != self.cluster_id {
                    return error(ErrorCode::INCONSISTENT_CLUSTER_ID, format!("this cluster is {}, not {cluster_id}", self.cluster_id));
                }
                if let Some(b) = image.brokers.get(&broker_id) {
                    if b.incarnation_id == incarnation_id {
                        return ControllerResponse::Registered { broker_epoch: b.epoch };
                    }
                    // As Kafka's ClusterControlManager: another process with this id while the
                    // registered one's session lives is refused (a restarted broker retries
                    // until the old session has expired and it was fenced).
                    let session = Duration::from_millis(self.cluster().broker_session_timeout_ms);
                    let alive = self.heartbeats.borrow().get(&broker_id).is_some_and(|at| at.elapsed() < session);
                    if !b.fenced && alive {
                        return error(
                            ErrorCode::DUPLICATE_BROKER_REGISTRATION,
                            format!("broker {broker_id} is registered by another process whose session is alive"),
                        );
                    }
                }
                // A new incarnation: the old one is gone (it crashed and restarted), so it
                // leaves every ISR and leadership now rather than at its session's end.
                let mut records = controller::remove_from_partitions(&image, broker_id, self.settings.unclean_leader_election);
                records.push(MetadataRecord::RegisterBroker { broker_id, incarnation_id, host, port, rack });
                match self.commit(records).await {
                    Ok(index) => {
                        self.heartbeats.borrow_mut().insert(broker_id, Instant::now());
                        ControllerResponse::Registered { broker_epoch: index }
                    }
                    Err(response) => response,
                }
            }
            ControllerRequest::Heartbeat { broker_id, broker_epoch, metadata_offset, want_fence, want_shutdown } => {
                let Some(b) = image.brokers.get(&broker_id) else {
                    return error(ErrorCode::BROKER_ID_NOT_REGISTERED, format!("broker {broker_id} is not registered"));
                };
                if b.epoch != broker_epoch {
                    return error(ErrorCode::STALE_BROKER_EPOCH, format!("broker {broker_id}'s epoch is {}, not {broker_epoch}", b.epoch));
                }
                self.heartbeats.borrow_mut().insert(broker_id, Instant::now());
                let mut records = Vec::new();
                if want_shutdown && !b.in_controlled_shutdown {
                    records.push(MetadataRecord::BrokerShuttingDown { broker_id, epoch: broker_epoch });
                    records.extend(controller::remove_from_partitions(&image, broker_id, false));
                } else if b.fenced && !want_fence && !want_shutdown && metadata_offset >= broker_epoch {
                    records.push(MetadataRecord::UnfenceBroker { broker_id, epoch: broker_epoch });
                    let mut view = (*image).clone();
                    view.apply(image.offset + 1, &records[0]);
                    records.extend(controller::elect_for_unfenced(&view, broker_id, self.settings.unclean_leader_election));
                }
                let image = if records.is_empty() {
                    image
                } else {
                    if let Err(response) = self.commit(records).await {
                        return response;
                    }
                    self.quorum.image()
                };
                let b = image.brokers[&broker_id].clone();
                let leads_nothing = image.topics.values().all(|t| t.partitions.values().all(|p| p.leader != broker_id));
                let should_shut_down = b.in_controlled_shutdown && leads_nothing;
                // As Kafka's controller: a broker told it may stop is fenced now, so that its
                // next process registers at once instead of waiting for this session to end.
                if should_shut_down && !b.fenced {
                    if let Err(response) = self.commit(vec![MetadataRecord::FenceBroker { broker_id, epoch: broker_epoch }]).await {
                        return response;
                    }
                }
                ControllerResponse::Heartbeat { is_caught_up: metadata_offset >= b.epoch, is_fenced: b.fenced || should_shut_down, should_shut_down }
            }
            ControllerRequest::AlterPartition { broker_id, broker_epoch, topic_id, partition, leader_epoch, partition_epoch, new_isr } => {
                if image.brokers.get(&broker_id).is_none_or(|b| b.epoch != broker_epoch) {
                    return error(ErrorCode::STALE_BROKER_EPOCH, "stale broker epoch");
                }
                match controller::alter_partition(&image, broker_id, &topic_id, partition, leader_epoch, partition_epoch, &new_isr) {
                    Ok(records) => {
                        if !records.is_empty() {
                            if let Err(response) = self.commit(records).await {
                                return response;
                            }
                        }
                        let image = self.quorum.image();
                        match image.partition(&topic_id, partition) {
                            Some(p) => {
                                ControllerResponse::AlterPartition { leader_epoch: p.leader_epoch, partition_epoch: p.partition_epoch, isr: p.isr.clone() }
                            }
                            // Deleted meanwhile.
                            None => error(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, "the partition is gone"),
                        }
                    }
                    Err(code) => error(code, "AlterPartition refused"),
                }
            }
            ControllerRequest::CreateTopics { topics, validate_only } => {
                let config = &self.config;
                let (results, records) =
                    controller::create_topics(&image, &topics, &self.settings, crate::storage::meta::new_topic_id, |c| config.topic_config(c).map(|_| ()));
                self.answer_items(results, records, validate_only).await
            }
            ControllerRequest::DeleteTopics { names } => {
                let (results, records) = controller::delete_topics(&image, &names, self.config.delete_topic_enable);
                self.answer_items(results, records, false).await
            }
            ControllerRequest::CreatePartitions { topics, validate_only } => {
                let (results, records) = controller::create_partitions(&image, &topics, &self.settings);
                self.answer_items(results, records, validate_only).await
            }
            ControllerRequest::AlterConfigs { changes, validate_only } => {
                let config = &self.config;
                let (results, records) = controller::alter_configs(&image, &changes, |c| config.topic_config(c).map(|_| ()));
                self.answer_items(results, records, validate_only).await
            }
            ControllerRequest::ElectLeaders { preferred, partitions } => {
                let (results, records) = controller::elect_leaders(&image, preferred, &partitions);
                if !records.is_empty() {
                    if let Err(response) = self.commit(records).await {
                        return response;
                    }
                }
                ControllerResponse::Partitions { results: partition_errors(results) }
            }
            ControllerRequest::AlterReassignments { partitions } => {
                let (results, records) = controller::alter_reassignments(&image, &partitions);
                if !records.is_empty() {
                    if let Err(response) = self.commit(records).await {
                        return response;
                    }
                }
                ControllerResponse::Partitions { results: partition_errors(results) }
            }
        }
    }

    /// The quorum as DescribeQuorum reports it: Kafka's high watermark is the offset after the
    /// last committed entry; each voter's log end offset is the entry after its last matched.
    fn describe_quorum(&self) -> super::rpc::QuorumStatus {
        let status = self.quorum.status();
        let now = crate::io::runtime::now_ms() as u64;
        super::rpc::QuorumStatus {
            leader_id: status.leader,
            leader_epoch: status.term,
            high_watermark: status.committed_index.map_or(0, |i| i + 1),
            voters: status
                .voters
                .iter()
                .map(|v| super::rpc::ReplicaStatus {
                    id: v.node_id,
                    log_end_offset: if Some(v.node_id) == status.leader { status.last_log_index.map(|i| i + 1) } else { v.matched_index.map(|i| i + 1) },
                    last_caught_up_ms_ago: v.last_ack_unix_ms.map(|at| now.saturating_sub(at)),
                })
                .collect(),
            observers: Vec::new(),
        }
    }

    async fn answer_items(&self, results: Vec<controller::ItemResult>, records: Vec<MetadataRecord>, validate_only: bool) -> ControllerResponse {
        if !validate_only && !records.is_empty() {
            if let Err(response) = self.commit(records).await {
                return response;
            }
        }
        ControllerResponse::Items { errors: item_errors(results) }
    }

    /// The active controller's timers: brokers whose sessions expired are fenced (their
    /// leaderships move), and leadership goes back to preferred replicas. Runs until the
    /// process ends; does nothing on a node that does not lead.
    pub async fn run_timers(self: Rc<Self>) {
        let session = Duration::from_millis(self.cluster().broker_session_timeout_ms);
        let rebalance_every = Duration::from_millis(self.cluster().leader_imbalance_check_interval_ms.max(1000));
        let mut next_rebalance = Instant::now() + rebalance_every;
        loop {
            compio::time::sleep(Duration::from_millis(250)).await;
            if !self.quorum.is_leader() {
                continue;
            }
            let Ok(()) = self.token.1.recv_async().await else { return };
            self.expire_sessions(session).await;
            if self.cluster().auto_leader_rebalance_enable && Instant::now() >= next_rebalance {
                next_rebalance = Instant::now() + rebalance_every;
                self.rebalance().await;
            }
            let _ = self.token.0.try_send(());
        }
    }

    async fn expire_sessions(&self, session: Duration) {
        let Some(image) = self.current_image().await else { return };
        let now = Instant::now();
        for b in image.brokers.values().filter(|b| !b.fenced) {
            let last = *self.heartbeats.borrow_mut().entry(b.broker_id).or_insert(now);
            if now.duration_since(last) > session {
                tracing::warn!(broker = b.broker_id, "broker session expired; fencing it");
                let mut records = vec![MetadataRecord::FenceBroker { broker_id: b.broker_id, epoch: b.epoch }];
                let image = self.quorum.image();
                records.extend(controller::remove_from_partitions(&image, b.broker_id, self.settings.unclean_leader_election));
                if self.commit(records).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Kafka's `leader.imbalance.per.broker.percentage`: for each broker, the share of the
    /// partitions it is the preferred leader of that it does not lead; past the percentage,
    /// those go back to it.
    async fn rebalance(&self) {
        let Some(image) = self.current_image().await else { return };
        let pct = self.cluster().leader_imbalance_per_broker_percentage as usize;
        let mut preferred: HashMap<i32, (usize, Vec<(String, i32)>)> = HashMap::new();
        for t in image.topics.values() {
            for (p, part) in &t.partitions {
                let Some(&want) = part.replicas.first() else { continue };
                let entry = preferred.entry(want).or_default();
                entry.0 += 1;
                if part.leader != want {
                    entry.1.push((t.name.clone(), *p));
                }
            }
        }
        let partitions: Vec<(String, i32)> =
            preferred.into_values().filter(|(n, off)| !off.is_empty() && off.len() * 100 > pct * n).flat_map(|(_, off)| off).collect();
        if partitions.is_empty() {
            return;
        }
        let (_, records) = controller::elect_leaders(&image, true, &partitions);
        if !records.is_empty() {
            tracing::info!(partitions = records.len(), "moving leadership back to preferred replicas");
            let _ = self.commit(records).await;
        }
    }
}
