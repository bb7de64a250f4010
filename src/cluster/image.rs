//! The cluster's metadata: the records of the metadata log, in the spirit of KRaft's
//! (`metadata/src/main/resources/common/metadata/*.json` in apache/kafka), and the image they
//! replay into. Pure data and replay, no IO: the quorum (`raft.rs`) stores the records, every
//! node applies them in log order, and the controller's decisions (`controller.rs`) are
//! functions of an image that return records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// "No leader" in a partition's `leader` (Kafka's `NO_LEADER`).
pub const NO_LEADER: i32 = -1;

/// One record of the metadata log. Records are proposed in batches that apply atomically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MetadataRecord {
    /// A broker's registration (`RegisterBrokerRecord`). It starts fenced; its broker epoch is
    /// the offset of this record, so a restarted broker's stale requests can be told apart.
    RegisterBroker { broker_id: i32, incarnation_id: String, host: String, port: u16, rack: Option<String> },
    /// `FenceBrokerRecord`: its heartbeats stopped, or it shut down. It leads nothing and is
    /// in no ISR (the records that take it out come in the same batch).
    FenceBroker { broker_id: i32, epoch: u64 },
    /// `UnfenceBrokerRecord`: it has caught up with the metadata and may lead partitions.
    UnfenceBroker { broker_id: i32, epoch: u64 },
    /// `BrokerRegistrationChangeRecord` with `inControlledShutdown`: it is moving its
    /// leaderships away before it stops.
    BrokerShuttingDown { broker_id: i32, epoch: u64 },
    /// `TopicRecord`. The id is 32 hex digits, as the catalog writes it.
    Topic { name: String, topic_id: String },
    /// `ConfigRecord` for a topic; `None` removes the override.
    TopicConfig { topic_id: String, key: String, value: Option<String> },
    /// `PartitionRecord`: a new partition, with its replicas, ISR and leader.
    Partition { topic_id: String, partition: i32, replicas: Vec<i32>, isr: Vec<i32>, leader: i32, leader_epoch: i32 },
    /// `PartitionChangeRecord`: what changed (fields left `None` did not). The leader epoch
    /// goes up by one when the leader changes, the partition epoch with every change, as
    /// Kafka's `PartitionChangeBuilder` does. `adding` and `removing` are a reassignment's
    /// replicas (`addingReplicas`, `removingReplicas`); both empty ends it.
    PartitionChange {
        topic_id: String,
        partition: i32,
        leader: Option<i32>,
        isr: Option<Vec<i32>>,
        replicas: Option<Vec<i32>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        adding: Option<Vec<i32>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        removing: Option<Vec<i32>>,
    },
    /// `RemoveTopicRecord`.
    RemoveTopic { topic_id: String },
}

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub broker_id: i32,
    pub incarnation_id: String,
    /// The offset of its registration record.
    pub epoch: u64,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
}

impl BrokerRegistration {
    /// May it lead partitions and be in an ISR?
    pub fn is_active(&self) -> bool {
        !self.fenced && !self.in_controlled_shutdown
    }
}

/// A partition's replication state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionImage {
    /// The replicas, preferred leader first.
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// A reassignment in progress (KIP-455): the replicas being added, which are in
    /// `replicas` and catching up, and those to drop once every target replica is in the ISR.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding_replicas: Vec<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing_replicas: Vec<i32>,
}

impl PartitionImage {
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The replicas a reassignment moves to: `replicas` without the ones being removed.
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas.iter().copied().filter(|r| !self.removing_replicas.contains(r)).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicImage {
    pub name: String,
    pub id: String,
    pub configs: BTreeMap<String, String>,
    pub partitions: BTreeMap<i32, PartitionImage>,
}

/// Everything the metadata log says, as of `offset`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetadataImage {
    /// The log index of the last batch applied (0: nothing yet).
    pub offset: u64,
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    /// Topics by id.
    pub topics: BTreeMap<String, TopicImage>,
    /// Topic ids by name.
    pub names: BTreeMap<String, String>,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(self.names.get(name)?)
    }

    pub fn partition(&self, topic_id: &str, partition: i32) -> Option<&PartitionImage> {
        self.topics.get(topic_id)?.partitions.get(&partition)
    }

    /// Brokers that may lead and follow (registered, unfenced, not shutting down).
    pub fn active_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| b.is_active())
    }

    /// Applies one record of the batch at log index `offset`. A record naming something that
    /// does not exist (a topic removed since) changes nothing: replay never fails.
    pub fn apply(&mut self, offset: u64, record: &MetadataRecord) {
        self.offset = self.offset.max(offset);
        match record {
            MetadataRecord::RegisterBroker { broker_id, incarnation_id, host, port, rack } => {
                self.brokers.insert(
                    *broker_id,
                    BrokerRegistration {
                        broker_id: *broker_id,
                        incarnation_id: incarnation_id.clone(),
                        epoch: offset,
                        host: host.clone(),
                        port: *port,
                        rack: rack.clone(),
                        fenced: true,
                        in_controlled_shutdown: false,
                    },
                );
            }
            MetadataRecord::FenceBroker { broker_id, epoch } => {
                if let Some(b) = self.brokers.get_mut(broker_id).filter(|b| b.epoch == *epoch) {
                    b.fenced = true;
                    b.in_controlled_shutdown = false;
                }
            }
            MetadataRecord::UnfenceBroker { broker_id, epoch } => {
                if let Some(b) = self.brokers.get_mut(broker_id).filter(|b| b.epoch == *epoch) {
                    b.fenced = false;
                }
            }
            MetadataRecord::BrokerShuttingDown { broker_id, epoch } => {
                if let Some(b) = self.brokers.get_mut(broker_id).filter(|b| b.epoch == *epoch) {
                    b.in_controlled_shutdown = true;
                }
            }
            MetadataRecord::Topic { name, topic_id } => {
                // A name that exists already keeps its topic (the controller never proposes
                // this; replay refuses it rather than hold two topics of one name).
                if self.names.contains_key(name) {
                    return;
                }
                self.names.insert(name.clone(), topic_id.clone());
                self.topics
                    .insert(topic_id.clone(), TopicImage { name: name.clone(), id: topic_id.clone(), configs: BTreeMap::new(), partitions: BTreeMap::new() });
            }
            MetadataRecord::TopicConfig { topic_id, key, value } => {
                if let Some(t) = self.topics.get_mut(topic_id) {
                    match value {
                        Some(v) => t.configs.insert(key.clone(), v.clone()),
                        None => t.configs.remove(key),
                    };
                }
            }
            MetadataRecord::Partition { topic_id, partition, replicas, isr, leader, leader_epoch } => {
                if let Some(t) = self.topics.get_mut(topic_id) {
                    let p = PartitionImage {
                        replicas: replicas.clone(),
                        isr: isr.clone(),
                        leader: *leader,
                        leader_epoch: *leader_epoch,
                        partition_epoch: 0,
                        adding_replicas: Vec::new(),
                        removing_replicas: Vec::new(),
                    };
                    t.partitions.insert(*partition, p);
                }
            }
            MetadataRecord::PartitionChange { topic_id, partition, leader, isr, replicas, adding, removing } => {
                if let Some(p) = self.topics.get_mut(topic_id).and_then(|t| t.partitions.get_mut(partition)) {
                    if let Some(l) = leader {
                        if *l != p.leader {
                            p.leader = *l;
                            p.leader_epoch += 1;
                        }
                    }
                    if let Some(isr) = isr {
                        p.isr = isr.clone();
                    }
                    if let Some(r) = replicas {
                        p.replicas = r.clone();
                    }
                    if let Some(a) = adding {
                        p.adding_replicas = a.clone();
                    }
                    if let Some(r) = removing {
                        p.removing_replicas = r.clone();
                    }
                    p.partition_epoch += 1;
                }
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                if let Some(t) = self.topics.remove(topic_id) {
                    self.names.remove(&t.name);
                }
            }
        }
    }

    /// Applies a batch at log index `offset`.
    pub fn apply_batch(&mut self, offset: u64, records: &[MetadataRecord]) {
        for r in records {
            self.apply(offset, r);
        }
        self.offset = self.offset.max(offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_builds_brokers_topics_and_epochs() {
        let mut image = MetadataImage::default();
        let reg = |id| MetadataRecord::RegisterBroker {
            broker_id: id,
            incarnation_id: format!("i{id}"),
            host: "127.0.0.1".into(),
            port: 9092 + id as u16,
            rack: None,
        };
        image.apply_batch(3, &[reg(1)]);
        image.apply_batch(4, &[reg(2)]);
        assert!(image.brokers[&1].fenced, "a broker registers fenced");
        assert_eq!(image.brokers[&1].epoch, 3, "its epoch is its registration's offset");
        image.apply_batch(5, &[MetadataRecord::UnfenceBroker { broker_id: 1, epoch: 3 }, MetadataRecord::UnfenceBroker { broker_id: 2, epoch: 99 }]);
        assert!(!image.brokers[&1].fenced);
        assert!(image.brokers[&2].fenced, "a stale epoch changes nothing");
        let id = "00112233445566778899aabbccddeeff".to_string();
        image.apply_batch(
            6,
            &[
                MetadataRecord::Topic { name: "t".into(), topic_id: id.clone() },
                MetadataRecord::Partition { topic_id: id.clone(), partition: 0, replicas: vec![1, 2], isr: vec![1, 2], leader: 1, leader_epoch: 0 },
            ],
        );
        let change =
            |leader, isr| MetadataRecord::PartitionChange { topic_id: id.clone(), partition: 0, leader, isr, replicas: None, adding: None, removing: None };
        image.apply_batch(7, &[change(None, Some(vec![1]))]);
        let p = image.partition(&id, 0).unwrap();
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch, p.isr.as_slice()), (1, 0, 1, &[1][..]), "an ISR change keeps the leader epoch");
        image.apply_batch(8, &[change(Some(2), None)]);
        let p = image.partition(&id, 0).unwrap();
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (2, 1, 2), "a new leader bumps the leader epoch");
        assert_eq!(image.topic("t").unwrap().id, id);
        image.apply_batch(9, &[MetadataRecord::RemoveTopic { topic_id: id.clone() }]);
        assert!(image.topic("t").is_none() && image.topics.is_empty());
        image.apply_batch(10, &[change(Some(1), None)]);
        assert_eq!(image.offset, 10, "a change to a removed topic is a no-op");
    }
}
