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
