//! The admin client (Kafka's `Admin`): topics, partitions, configs, offsets and groups.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::assignor::{self, TopicPartition};
use super::cluster::Cluster;
use super::config::ClientConfig;
use super::consumer;
use super::{Error, Result};
use crate::protocol::error::ErrorCode;
use crate::protocol::messages::create_partitions::{CreatePartitionsRequest, CreatePartitionsTopic};
use crate::protocol::messages::create_topics::{CreatableTopic, CreatableTopicConfig, CreateTopicsRequest};
use crate::protocol::messages::delete_groups::DeleteGroupsRequest;
use crate::protocol::messages::delete_topics::DeleteTopicsRequest;
use crate::protocol::messages::describe_configs::{DescribeConfigsRequest, DescribeConfigsResource, RESOURCE_TOPIC};
use crate::protocol::messages::describe_groups::DescribeGroupsRequest;
use crate::protocol::messages::list_groups::ListGroupsRequest;
use crate::protocol::messages::metadata::MetadataResponse;
use crate::protocol::messages::offset_commit::OffsetCommitRequest;
use crate::protocol::messages::offset_fetch::OffsetFetchRequest;

pub use crate::protocol::messages::describe_cluster::DescribeClusterResponse as ClusterDescription;
pub use crate::protocol::messages::describe_configs::ConfigEntry;
/// A group as DescribeGroups answers it.
pub use crate::protocol::messages::describe_groups::DescribedGroup as GroupDescription;
pub use crate::protocol::messages::describe_quorum::QuorumPartitionData as QuorumDescription;
pub use crate::protocol::messages::list_offsets::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};

/// A topic's partitions as `describe_topics` reports them.
#[derive(Debug, Clone)]
pub struct TopicDescription {
    pub name: String,
    pub internal: bool,
    /// (partition, leader, replicas, isr)
    pub partitions: Vec<(i32, i32, Vec<i32>, Vec<i32>)>,
}

/// A partition reassignment in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassignment {
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

/// One partition of a group's offsets, as `consumer-groups --describe` prints it.
#[derive(Debug, Clone)]
pub struct GroupOffset {
    pub partition: TopicPartition,
    pub committed: Option<i64>,
    pub log_end: i64,
    /// The member that holds the partition, if any: (member id, client id, host).
    pub owner: Option<(String, String, String)>,
}

pub struct Admin {
    cluster: Rc<Cluster>,
    timeout: Duration,
}

impl Admin {
    pub fn new(config: &ClientConfig) -> Result<Admin> {
        Ok(Admin { cluster: Cluster::new(config, "spate-admin")?, timeout: config.millis("default.api.timeout.ms", 60_000)? })
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    fn timeout_ms(&self) -> i32 {
        self.timeout.as_millis().min(i32::MAX as u128) as i32
    }

    async fn controller(&self) -> Result<super::conn::Connection> {
        let meta = self.cluster.refresh(Some(Vec::new()), false).await?;
        if meta.controller_id >= 0 {
            self.cluster.node(meta.controller_id).await
        } else {
            self.cluster.any().await
        }
    }

    fn first_error(results: impl IntoIterator<Item = (String, ErrorCode, Option<String>)>) -> Result<()> {
        for (name, code, message) in results {
            if !code.is_ok() {
                return Err(Error::Broker(code, Some(message.unwrap_or_else(|| format!("topic {name}")))));
            }
        }
        Ok(())
    }

    pub async fn create_topic(&self, name: &str, partitions: i32, replication_factor: i16, configs: &[(String, String)]) -> Result<()> {
        let configs = configs.iter().map(|(name, value)| CreatableTopicConfig { name: name.clone(), value: Some(value.clone()) }).collect();
        let topic = CreatableTopic { name: name.to_string(), num_partitions: partitions, replication_factor, assignments: Vec::new(), configs };
        let conn = self.controller().await?;
        let answer = conn.send(&CreateTopicsRequest { topics: vec![topic], timeout_ms: self.timeout_ms(), validate_only: false }).await?;
        Self::first_error(answer.topics.into_iter().map(|t| (t.name, t.error, t.error_message)))
    }

    pub async fn delete_topics(&self, names: &[String]) -> Result<()> {
        let conn = self.controller().await?;
        let answer = conn.send(&DeleteTopicsRequest { topic_names: names.to_vec(), timeout_ms: self.timeout_ms(), ..Default::default() }).await?;
        Self::first_error(answer.responses.into_iter().map(|t| (t.name.unwrap_or_default(), t.error, t.error_message)))
    }

    /// Grows a topic to `total` partitions.
    pub async fn create_partitions(&self, name: &str, total: i32) -> Result<()> {
        let conn = self.controller().await?;
        let topics = vec![CreatePartitionsTopic { name: name.to_string(), count: total, assignments: None }];
        let answer = conn.send(&CreatePartitionsRequest { topics, timeout_ms: self.timeout_ms(), validate_only: false }).await?;
        Self::first_error(answer.results.into_iter().map(|t| (t.name, t.error, t.error_message)))
    }

    /// The cluster: its id, controller and brokers (DescribeCluster).
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        use crate::protocol::messages::describe_cluster::DescribeClusterRequest;
        let conn = self.cluster.any().await?;
        let answer = conn.send(&DescribeClusterRequest { include_cluster_authorized_operations: false, endpoint_type: 1 }).await?;
        if !answer.error.is_ok() {
            return Err(Error::Broker(answer.error, answer.error_message));
        }
        Ok(answer)
    }

    /// The metadata quorum: leader, epoch, high watermark, each voter's progress
    /// (DescribeQuorum of `__cluster_metadata-0`).
    pub async fn describe_metadata_quorum(&self) -> Result<QuorumDescription> {
        use crate::protocol::messages::describe_quorum::{DescribeQuorumPartition, DescribeQuorumRequest, DescribeQuorumTopic};
        let conn = self.cluster.any().await?;
        let topics = vec![DescribeQuorumTopic { topic_name: "__cluster_metadata".into(), partitions: vec![DescribeQuorumPartition { partition_index: 0 }] }];
        let answer = conn.send(&DescribeQuorumRequest { topics }).await?;
        if !answer.error.is_ok() {
            return Err(Error::Broker(answer.error, answer.error_message));
        }
        let partition = answer
            .topics
            .into_iter()
            .flat_map(|t| t.partitions)
            .next()
            .ok_or_else(|| Error::Broker(ErrorCode::UNKNOWN_SERVER_ERROR, Some("no partition in the answer".into())))?;
        if !partition.error.is_ok() {
            return Err(Error::Broker(partition.error, partition.error_message));
        }
        Ok(partition)
    }

    /// Leader elections (ElectLeaders): `preferred` or unclean, for `partitions` or, when
    /// `None`, every partition. Per partition: `None` when elected, else the error.
    pub async fn elect_leaders(&self, preferred: bool, partitions: Option<&[TopicPartition]>) -> Result<Vec<(TopicPartition, Option<(ErrorCode, String)>)>> {
        use crate::protocol::messages::elect_leaders::{ElectLeadersRequest, ElectLeadersTopic, PREFERRED, UNCLEAN};
        let topic_partitions = partitions.map(|ps| {
            let mut topics: Vec<ElectLeadersTopic> = Vec::new();
            for tp in ps {
                match topics.iter_mut().find(|t| t.topic == tp.topic) {
                    Some(t) => t.partitions.push(tp.partition),
                    None => topics.push(ElectLeadersTopic { topic: tp.topic.clone(), partitions: vec![tp.partition] }),
                }
            }
            topics
        });
        let conn = self.controller().await?;
        let request = ElectLeadersRequest { election_type: if preferred { PREFERRED } else { UNCLEAN }, topic_partitions, timeout_ms: self.timeout_ms() };
        let answer = conn.send(&request).await?;
        if !answer.error.is_ok() {
            return Err(Error::Broker(answer.error, None));
        }
        Ok(answer
            .replica_election_results
            .into_iter()
            .flat_map(|t| {
                let topic = t.topic;
                t.partition_result.into_iter().map(move |p| {
                    let error = (!p.error.is_ok()).then(|| (p.error, p.error_message.unwrap_or_default()));
                    (TopicPartition { topic: topic.clone(), partition: p.partition_id }, error)
                })
            })
            .collect())
    }

    /// Starts (`Some(replicas)`) or cancels (`None`) partition reassignments
    /// (AlterPartitionReassignments). Per partition: `None` when accepted, else the error.
    pub async fn alter_partition_reassignments(
        &self,
        moves: &[(TopicPartition, Option<Vec<i32>>)],
    ) -> Result<Vec<(TopicPartition, Option<(ErrorCode, String)>)>> {
        use crate::protocol::messages::alter_partition_reassignments::{
            AlterPartitionReassignmentsRequest, AlterReassignmentsPartition, AlterReassignmentsTopic,
        };
        let mut topics: Vec<AlterReassignmentsTopic> = Vec::new();
        for (tp, replicas) in moves {
            let partition = AlterReassignmentsPartition { partition_index: tp.partition, replicas: replicas.clone() };
            match topics.iter_mut().find(|t| t.name == tp.topic) {
                Some(t) => t.partitions.push(partition),
                None => topics.push(AlterReassignmentsTopic { name: tp.topic.clone(), partitions: vec![partition] }),
            }
        }
        let conn = self.controller().await?;
        let answer = conn.send(&AlterPartitionReassignmentsRequest { timeout_ms: self.timeout_ms(), allow_replication_factor_change: true, topics }).await?;
        if !answer.error.is_ok() {
            return Err(Error::Broker(answer.error, answer.error_message));
        }
        Ok(answer
            .responses
            .into_iter()
            .flat_map(|t| {
                let topic = t.name;
                t.partitions.into_iter().map(move |p| {
                    let error = (!p.error.is_ok()).then(|| (p.error, p.error_message.unwrap_or_default()));
                    (TopicPartition { topic: topic.clone(), partition: p.partition_index }, error)
                })
            })
            .collect())
    }

    /// The reassignments in progress (ListPartitionReassignments): per partition, its replicas
    /// and those being added and removed.
    pub async fn list_partition_reassignments(&self) -> Result<BTreeMap<TopicPartition, Reassignment>> {
        use crate::protocol::messages::list_partition_reassignments::ListPartitionReassignmentsRequest;
        let conn = self.controller().await?;
        let answer = conn.send(&ListPartitionReassignmentsRequest { timeout_ms: self.timeout_ms(), topics: None }).await?;
        if !answer.error.is_ok() {
            return Err(Error::Broker(answer.error, answer.error_message));
        }
        let mut out = BTreeMap::new();
        for t in answer.topics {
            for p in t.partitions {
                let reassignment = Reassignment { replicas: p.replicas, adding: p.adding_replicas, removing: p.removing_replicas };
                out.insert(TopicPartition { topic: t.name.clone(), partition: p.partition_index }, reassignment);
            }
        }
        Ok(out)
    }

    /// Every topic's name (internal topics included when asked).
    pub async fn list_topics(&self, include_internal: bool) -> Result<Vec<String>> {
        let meta = self.cluster.refresh(None, false).await?;
        let mut names: Vec<String> =
            meta.topics.into_iter().filter(|t| t.error.is_ok() && (include_internal || !t.is_internal)).filter_map(|t| t.name).collect();
        names.sort();
        Ok(names)
    }

    /// Describes these topics (all when empty). An unknown topic is an error.
    pub async fn describe_topics(&self, names: &[String]) -> Result<Vec<TopicDescription>> {
        let meta: MetadataResponse = self.cluster.refresh(if names.is_empty() { None } else { Some(names.to_vec()) }, false).await?;
        let mut out = Vec::new();
        for t in meta.topics {
            if !t.error.is_ok() {
                return Err(Error::Broker(t.error, Some(format!("topic {}", t.name.unwrap_or_default()))));
            }
            let mut partitions: Vec<_> = t.partitions.into_iter().map(|p| (p.partition_index, p.leader_id, p.replica_nodes, p.isr_nodes)).collect();
            partitions.sort_by_key(|p| p.0);
            out.push(TopicDescription { name: t.name.unwrap_or_default(), internal: t.is_internal, partitions });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// A topic's configuration entries.
    pub async fn describe_topic_configs(&self, name: &str) -> Result<Vec<ConfigEntry>> {
        let conn = self.cluster.any().await?;
        let resources = vec![DescribeConfigsResource { resource_type: RESOURCE_TOPIC, resource_name: name.to_string(), configuration_keys: None }];
        let mut answer = conn.send(&DescribeConfigsRequest { resources, ..Default::default() }).await?;
        let r = answer.results.pop().ok_or_else(|| Error::Protocol("DescribeConfigs answered nothing".into()))?;
        if !r.error.is_ok() {
            return Err(Error::Broker(r.error, r.error_message));
        }
        Ok(r.configs)
    }

    /// Offsets at `timestamp` (`EARLIEST_TIMESTAMP`, `LATEST_TIMESTAMP` or a time).
    pub async fn list_offsets(&self, partitions: &[TopicPartition], timestamp: i64) -> Result<BTreeMap<TopicPartition, i64>> {
        consumer::list_offsets(&self.cluster, partitions, timestamp, 0).await
    }

    /// Every partition of a topic.
    pub async fn partitions_of(&self, topic: &str) -> Result<Vec<TopicPartition>> {
        let info = self.cluster.topic(topic, false).await?;
        Ok((0..info.leaders.len() as i32).map(|p| TopicPartition { topic: topic.to_string(), partition: p }).collect())
    }

    pub async fn list_groups(&self) -> Result<Vec<(String, String)>> {
        let conn = self.cluster.any().await?;
        let answer = conn.send(&ListGroupsRequest::default()).await?;
        super::check(answer.error)?;
        let mut groups: Vec<(String, String)> = answer.groups.into_iter().map(|g| (g.group_id, g.protocol_type)).collect();
        groups.sort();
        Ok(groups)
    }

    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let conn = self.cluster.coordinator(group).await?;
        let mut answer = conn.send(&DescribeGroupsRequest { groups: vec![group.to_string()], ..Default::default() }).await?;
        let g = answer.groups.pop().ok_or_else(|| Error::Protocol("DescribeGroups answered nothing".into()))?;
        super::check(g.error)?;
        Ok(g)
    }

    pub async fn delete_groups(&self, groups: &[String]) -> Result<()> {
        for group in groups {
            let conn = self.cluster.coordinator(group).await?;
            for r in conn.send(&DeleteGroupsRequest { groups_names: vec![group.clone()] }).await?.results {
                if !r.error.is_ok() {
                    return Err(Error::Broker(r.error, Some(format!("group {}", r.group_id))));
                }
            }
        }
        Ok(())
    }

    /// The group's committed offsets (every partition it has committed).
    pub async fn group_offsets(&self, group: &str) -> Result<BTreeMap<TopicPartition, i64>> {
        let conn = self.cluster.coordinator(group).await?;
        let answer = conn.send(&OffsetFetchRequest { group_id: group.to_string(), topics: None, ..Default::default() }).await?;
        super::check(answer.error)?;
        let mut out = BTreeMap::new();
        for t in answer.topics {
            for p in t.partitions {
                if p.error.is_ok() && p.committed_offset >= 0 {
                    out.insert(TopicPartition { topic: t.name.clone(), partition: p.partition_index }, p.committed_offset);
                }
            }
        }
        Ok(out)
    }

    /// Per partition: committed offset, log end offset, lag's inputs and the owning member.
    pub async fn describe_group_offsets(&self, group: &str) -> Result<(GroupDescription, Vec<GroupOffset>)> {
        let description = self.describe_group(group).await?;
        let committed = self.group_offsets(group).await?;
        let mut owners: BTreeMap<TopicPartition, (String, String, String)> = BTreeMap::new();
        if description.protocol_type == "consumer" {
            for m in &description.members {
                if let Ok(a) = assignor::decode_assignment(&m.member_assignment) {
                    for tp in a.partitions {
                        owners.insert(tp, (m.member_id.clone(), m.client_id.clone(), m.client_host.clone()));
                    }
                }
            }
        }
        let mut partitions: Vec<TopicPartition> = committed.keys().cloned().collect();
        for tp in owners.keys() {
            if !committed.contains_key(tp) {
                partitions.push(tp.clone());
            }
        }
        partitions.sort();
        let ends = if partitions.is_empty() { BTreeMap::new() } else { self.list_offsets(&partitions, LATEST_TIMESTAMP).await? };
        let rows = partitions
            .into_iter()
            .map(|tp| GroupOffset {
                committed: committed.get(&tp).copied(),
                log_end: ends.get(&tp).copied().unwrap_or(-1),
                owner: owners.get(&tp).cloned(),
                partition: tp,
            })
            .collect();
        Ok((description, rows))
    }

    /// Sets a group's committed offsets. The group must have no active members (Kafka's rule
    /// for `--reset-offsets`): the broker refuses commits from outside a live generation.
    pub async fn alter_group_offsets(&self, group: &str, offsets: &BTreeMap<TopicPartition, i64>) -> Result<()> {
        let mut topics: Vec<(String, Vec<(i32, i64, Option<String>)>)> = Vec::new();
        for (tp, offset) in offsets {
            match topics.iter_mut().find(|(t, _)| *t == tp.topic) {
                Some((_, v)) => v.push((tp.partition, *offset, None)),
                None => topics.push((tp.topic.clone(), vec![(tp.partition, *offset, None)])),
            }
        }
        let conn = self.cluster.coordinator(group).await?;
        let request = OffsetCommitRequest { group_id: group.to_string(), topics: consumer::commit_topics(&topics), ..Default::default() };
        for t in conn.send(&request).await?.topics {
            for p in t.partitions {
                if !p.error.is_ok() {
                    return Err(Error::Broker(p.error, Some(format!("{}-{}", t.name, p.partition_index))));
                }
            }
        }
        Ok(())
    }

    /// Waits until the broker knows `topic` (after a create), up to the API timeout.
    pub async fn wait_for_topic(&self, topic: &str) -> Result<()> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.cluster.topic(topic, false).await {
                Ok(_) => return Ok(()),
                Err(Error::Broker(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION | ErrorCode::LEADER_NOT_AVAILABLE, _)) if Instant::now() < deadline => {
                    compio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

// The transaction admin calls (KIP-664), as Kafka's `Admin` makes them for
// kafka-transactions.sh: listTransactions, describeTransactions, describeProducers and
// abortTransaction.

pub use crate::protocol::messages::describe_producers::ProducerState;

/// A transaction as ListTransactions lists it, with the broker that coordinates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    pub transactional_id: String,
    pub producer_id: i64,
    /// Kafka's name of the state ("Ongoing", "CompleteCommit", ...).
    pub state: String,
    pub coordinator_id: i32,
}

/// Which transactions `list_transactions` asks for (Kafka's `ListTransactionsOptions`); the
/// default asks for all.
#[derive(Debug, Clone, Default)]
pub struct TransactionFilter {
    /// Only these states (by Kafka's names); all when empty.
    pub states: Vec<String>,
    /// Only these producer ids; all when empty.
    pub producer_ids: Vec<i64>,
    /// Only transactions started more than this many milliseconds ago.
    pub duration_ms: Option<i64>,
}

/// A transactional id's state on its coordinator (Kafka's `TransactionDescription`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    pub coordinator_id: i32,
    pub transactional_id: String,
    pub state: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    /// When the open (or last) transaction began; `None` when none has.
    pub start_time_ms: Option<i64>,
    /// The partitions in the transaction, sorted.
    pub partitions: Vec<TopicPartition>,
}

/// The transaction to abort in one partition (Kafka's `AbortTransactionSpec`): its producer,
/// and the coordinator epoch to write the marker under (at least the partition's last one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbortTransactionSpec {
    pub partition: TopicPartition,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
}

/// Partitions per DescribeProducers request in `describe_producers` (Kafka's tool sends 500).
const DESCRIBE_PRODUCERS_BATCH: usize = 500;

impl Admin {
    /// The transactions every broker coordinates that pass `filter` (ListTransactions to each
    /// broker, Kafka's `listTransactions().allByBrokerId()`), by broker, then by id.
    pub async fn list_transactions(&self, filter: &TransactionFilter) -> Result<Vec<TransactionListing>> {
        use crate::protocol::messages::list_transactions::ListTransactionsRequest;
        let meta = self.cluster.refresh(Some(Vec::new()), false).await?;
        let mut brokers: Vec<i32> = meta.brokers.iter().map(|b| b.node_id).collect();
        brokers.sort();
        let request = ListTransactionsRequest {
            state_filters: filter.states.clone(),
            producer_id_filters: filter.producer_ids.clone(),
            duration_filter: filter.duration_ms.unwrap_or(-1),
            transactional_id_pattern: None,
        };
        let deadline = Instant::now() + self.timeout;
        let mut out = Vec::new();
        for broker in brokers {
            // A coordinator still loading its partitions answers COORDINATOR_LOAD_IN_PROGRESS:
            // retried, as Kafka's admin does.
            let listed = super::cluster::retry(deadline, self.cluster.retry_backoff, || async {
                let answer = self.cluster.node(broker).await?.send(&request).await?;
                super::check(answer.error).map_err(|e| Error::Broker(answer.error, Some(format!("{e} (broker {broker})"))))?;
                Ok(answer.transaction_states)
            })
            .await?;
            let mut listed: Vec<TransactionListing> = listed
                .into_iter()
                .map(|t| TransactionListing {
                    transactional_id: t.transactional_id,
                    producer_id: t.producer_id,
                    state: t.transaction_state,
                    coordinator_id: broker,
                })
                .collect();
            listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
            out.extend(listed);
        }
        Ok(out)
    }

    /// Each id's state on its coordinator (FindCoordinator, then DescribeTransactions to each
    /// coordinator for its ids), in the order of `ids`: an id no coordinator knows is
    /// `Err(Broker(TRANSACTIONAL_ID_NOT_FOUND))`. A coordinator that moved or is loading is
    /// looked up again until the API timeout.
    pub async fn describe_transactions(&self, ids: &[String]) -> Result<Vec<(String, Result<TransactionDescription>)>> {
        use crate::protocol::messages::describe_transactions::DescribeTransactionsRequest;
        let deadline = Instant::now() + self.timeout;
        let mut results: BTreeMap<String, Result<TransactionDescription>> = BTreeMap::new();
        let mut pending: Vec<String> = Vec::new();
        for id in ids {
            if !pending.contains(id) {
                pending.push(id.clone());
            }
        }
        while !pending.is_empty() {
            let mut again: Vec<(String, Error)> = Vec::new();
            // Coordinator (node id, address) -> its ids.
            let mut by_coordinator: BTreeMap<(i32, String), Vec<String>> = BTreeMap::new();
            for id in pending {
                match self.transaction_coordinator(&id).await {
                    Ok(found) => by_coordinator.entry(found).or_default().push(id),
                    Err(e) if e.is_retriable() => again.push((id, e)),
                    Err(e) => {
                        results.insert(id, Err(e));
                    }
                }
            }
            for ((node, addr), ids) in by_coordinator {
                let answer = match self.cluster.connect(&addr).await {
                    Ok(conn) => conn.send(&DescribeTransactionsRequest { transactional_ids: ids.clone() }).await,
                    Err(e) => Err(e),
                };
                let states = match answer {
                    Ok(answer) => answer.transaction_states,
                    Err(e) => {
                        for id in ids {
                            if e.is_retriable() {
                                again.push((id, e.clone()));
                            } else {
                                results.insert(id, Err(e.clone()));
                            }
                        }
                        continue;
                    }
                };
                for id in ids {
                    let Some(s) = states.iter().find(|s| s.transactional_id == id) else {
                        results.insert(id.clone(), Err(Error::Protocol(format!("DescribeTransactions answered nothing for {id}"))));
                        continue;
                    };
                    match s.error {
                        ErrorCode::NONE => {
                            let mut partitions: Vec<TopicPartition> =
                                s.topics.iter().flat_map(|t| t.partitions.iter().map(|&p| TopicPartition::new(t.topic.clone(), p))).collect();
                            partitions.sort();
                            let description = TransactionDescription {
                                coordinator_id: node,
                                transactional_id: id.clone(),
                                state: s.transaction_state.clone(),
                                producer_id: s.producer_id,
                                producer_epoch: s.producer_epoch,
                                timeout_ms: s.transaction_timeout_ms,
                                start_time_ms: (s.transaction_start_time_ms >= 0).then_some(s.transaction_start_time_ms),
                                partitions,
                            };
                            results.insert(id, Ok(description));
                        }
                        // The coordinator moved, or is not ready: look it up again.
                        ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS => {
                            again.push((id, Error::Broker(s.error, None)));
                        }
                        error => {
                            results.insert(id.clone(), Err(Error::Broker(error, Some(format!("transactional id {id}")))));
                        }
                    }
                }
            }
            if !again.is_empty() && Instant::now() + self.cluster.retry_backoff >= deadline {
                for (id, e) in again {
                    results.insert(id, Err(e));
                }
                break;
            }
            if !again.is_empty() {
                compio::time::sleep(self.cluster.retry_backoff).await;
            }
            pending = again.into_iter().map(|(id, _)| id).collect();
        }
        let mut out = Vec::new();
        for id in ids {
            if let Some(result) = results.get(id) {
                if !out.iter().any(|(seen, _): &(String, _)| seen == id) {
                    out.push((id.clone(), result.clone()));
                }
            }
        }
        Ok(out)
    }

    /// The coordinator of transactional id `id`: its node id and address (FindCoordinator with
    /// the transaction key type).
    async fn transaction_coordinator(&self, id: &str) -> Result<(i32, String)> {
        use crate::protocol::messages::find_coordinator::{FindCoordinatorRequest, KEY_TYPE_TRANSACTION};
        let conn = self.cluster.any().await?;
        let answer = conn.send(&FindCoordinatorRequest { key: id.to_string(), key_type: KEY_TYPE_TRANSACTION, ..Default::default() }).await?;
        if !answer.error.is_ok() {
            return Err(Error::Broker(answer.error, answer.error_message));
        }
        Ok((answer.node_id, format!("{}:{}", answer.host, answer.port)))
    }

    /// The producers of each partition (DescribeProducers), from its leader or, with
    /// `broker_id`, from that broker's replica; in the order of `partitions`, each with its own
    /// result. A leader that moved is looked up again until the API timeout.
    pub async fn describe_producers(&self, partitions: &[TopicPartition], broker_id: Option<i32>) -> Result<Vec<(TopicPartition, Result<Vec<ProducerState>>)>> {
        use crate::protocol::messages::describe_producers::{DescribeProducersRequest, DescribeProducersTopic};
        let deadline = Instant::now() + self.timeout;
        let mut results: BTreeMap<TopicPartition, Result<Vec<ProducerState>>> = BTreeMap::new();
        let mut pending: Vec<TopicPartition> = partitions.to_vec();
        pending.sort();
        pending.dedup();
        while !pending.is_empty() {
            let mut topics: Vec<String> = pending.iter().map(|tp| tp.topic.clone()).collect();
            topics.dedup();
            let meta = self.cluster.refresh(Some(topics), false).await?;
            if let Some(broker) = broker_id.filter(|b| !meta.brokers.iter().any(|m| m.node_id == *b)) {
                return Err(Error::Invalid(format!("broker {broker} is not in the cluster")));
            }
            let mut again: Vec<(TopicPartition, Error)> = Vec::new();
            // Target broker -> its partitions.
            let mut by_broker: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
            for tp in pending {
                let topic = meta.topics.iter().find(|t| t.name.as_deref() == Some(tp.topic.as_str()));
                let leader = match topic {
                    None => Err(Error::Broker(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, Some(format!("topic {}", tp.topic)))),
                    Some(t) if !t.error.is_ok() => Err(Error::Broker(t.error, Some(format!("topic {}", tp.topic)))),
                    Some(t) => match t.partitions.iter().find(|p| p.partition_index == tp.partition) {
                        None => Err(Error::Broker(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, Some(format!("partition {tp}")))),
                        Some(p) => Ok(p.leader_id),
                    },
                };
                match (leader, broker_id) {
                    (Err(e), _) => {
                        results.insert(tp, Err(e));
                    }
                    (Ok(_), Some(broker)) => by_broker.entry(broker).or_default().push(tp),
                    (Ok(leader), None) if leader < 0 => again.push((tp, Error::Broker(ErrorCode::LEADER_NOT_AVAILABLE, None))),
                    (Ok(leader), None) => by_broker.entry(leader).or_default().push(tp),
                }
            }
            for (broker, tps) in by_broker {
                for batch in tps.chunks(DESCRIBE_PRODUCERS_BATCH) {
                    let mut request = DescribeProducersRequest::default();
                    for tp in batch {
                        match request.topics.iter_mut().find(|t| t.name == tp.topic) {
                            Some(t) => t.partition_indexes.push(tp.partition),
                            None => request.topics.push(DescribeProducersTopic { name: tp.topic.clone(), partition_indexes: vec![tp.partition] }),
                        }
                    }
                    let answer = match self.cluster.node(broker).await {
                        Ok(conn) => conn.send(&request).await,
                        Err(e) => Err(e),
                    };
                    let answer = match answer {
                        Ok(answer) => answer,
                        Err(e) => {
                            for tp in batch {
                                if e.is_retriable() {
                                    again.push((tp.clone(), e.clone()));
                                } else {
                                    results.insert(tp.clone(), Err(e.clone()));
                                }
                            }
                            continue;
                        }
                    };
                    for tp in batch {
                        let found = answer.topics.iter().filter(|t| t.name == tp.topic).flat_map(|t| &t.partitions).find(|p| p.partition_index == tp.partition);
                        let Some(p) = found else {
                            results.insert(tp.clone(), Err(Error::Protocol(format!("DescribeProducers answered nothing for {tp}"))));
                            continue;
                        };
                        match p.error {
                            ErrorCode::NONE => {
                                results.insert(tp.clone(), Ok(p.active_producers.clone()));
                            }
                            // The leader moved: asked again, unless a given broker was asked.
                            ErrorCode::NOT_LEADER_OR_FOLLOWER if broker_id.is_none() => {
                                self.cluster.invalidate(&tp.topic);
                                again.push((tp.clone(), Error::Broker(p.error, p.error_message.clone())));
                            }
                            error => {
                                let message = p.error_message.clone().unwrap_or_else(|| format!("partition {tp} on broker {broker}"));
                                results.insert(tp.clone(), Err(Error::Broker(error, Some(message))));
                            }
                        }
                    }
                }
            }
            if !again.is_empty() && Instant::now() + self.cluster.retry_backoff >= deadline {
                for (tp, e) in again {
                    results.insert(tp, Err(e));
                }
                break;
            }
            if !again.is_empty() {
                compio::time::sleep(self.cluster.retry_backoff).await;
            }
            pending = again.into_iter().map(|(tp, _)| tp).collect();
        }
        let mut out: Vec<(TopicPartition, Result<Vec<ProducerState>>)> = Vec::new();
        for tp in partitions {
            if let Some(result) = results.get(tp) {
                if !out.iter().any(|(seen, _)| seen == tp) {
                    out.push((tp.clone(), result.clone()));
                }
            }
        }
        Ok(out)
    }

    /// Aborts a transaction left open in one partition (Kafka's `abortTransaction`): an abort
    /// marker for its producer, written by the partition's leader (WriteTxnMarkers, as a
    /// transaction coordinator would send it). For a transaction its coordinator has
    /// forgotten; one the coordinator still holds is ended by the coordinator, whose own
    /// marker later finds nothing open there.
    pub async fn abort_transaction(&self, spec: &AbortTransactionSpec) -> Result<()> {
        use crate::protocol::messages::write_txn_markers::{WritableTxnMarker, WritableTxnMarkerTopic, WriteTxnMarkersRequest};
        let tp = &spec.partition;
        let request = WriteTxnMarkersRequest {
            markers: vec![WritableTxnMarker {
                producer_id: spec.producer_id,
                producer_epoch: spec.producer_epoch,
                transaction_result: false,
                topics: vec![WritableTxnMarkerTopic { name: tp.topic.clone(), partition_indexes: vec![tp.partition] }],
                coordinator_epoch: spec.coordinator_epoch,
            }],
        };
        let deadline = Instant::now() + self.timeout;
        super::cluster::retry(deadline, self.cluster.retry_backoff, || async {
            let info = self.cluster.topic(&tp.topic, false).await?;
            // Not retried: the topic has no such partition.
            let leader = usize::try_from(tp.partition).ok().and_then(|i| info.leaders.get(i).copied());
            let leader = leader.ok_or_else(|| Error::Invalid(format!("partition {tp} does not exist")))?;
            if leader < 0 {
                return Err(Error::Broker(ErrorCode::LEADER_NOT_AVAILABLE, Some(format!("partition {tp}"))));
            }
            let answer = self.cluster.node(leader).await?.send(&request).await?;
            let error = answer
                .markers
                .iter()
                .flat_map(|m| &m.topics)
                .filter(|t| t.name == tp.topic)
                .flat_map(|t| &t.partitions)
                .find(|p| p.partition_index == tp.partition)
                .map(|p| p.error)
                .ok_or_else(|| Error::Protocol(format!("WriteTxnMarkers answered nothing for {tp}")))?;
            match error {
                ErrorCode::NONE => Ok(()),
                // The leader moved (or does not know the partition yet): found again, retried.
                ErrorCode::NOT_LEADER_OR_FOLLOWER | ErrorCode::UNKNOWN_TOPIC_OR_PARTITION => {
                    self.cluster.invalidate(&tp.topic);
                    Err(Error::Broker(error, Some(format!("partition {tp}"))))
                }
                // INVALID_PRODUCER_EPOCH: the producer has moved past the epoch given;
                // TRANSACTION_COORDINATOR_FENCED: a newer coordinator epoch wrote there.
                error => Err(Error::Broker(error, Some(format!("the abort marker for producer {} in {tp}", spec.producer_id)))),
            }
        })
        .await
    }
}
