//! The catalog: which topics exist, their ids, partition counts and configuration overrides.
//!
//! It is persisted as `spate-topics.json` in the log folder (written atomically by the
//! controller shard) and every shard holds an immutable snapshot (`Arc<Catalog>`) that the
//! controller replaces after each change. Partition data never depends on it: a partition's
//! folder is the truth for its records.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub const CATALOG_FILE: &str = "spate-topics.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    /// The topic id as 32 hex digits.
    pub id: String,
    pub partitions: i32,
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
    /// In a cluster, each partition's replicas, ISR and leader, from the metadata log; empty
    /// on a single node, where this broker is every partition's only replica.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replication: Vec<crate::cluster::image::PartitionImage>,
}

impl TopicMeta {
    /// Whether broker `me` leads `partition` (always, on a single node).
    pub fn is_led_by(&self, partition: i32, me: i32) -> bool {
        self.replication.is_empty() || self.replication.get(partition as usize).is_some_and(|p| p.leader == me)
    }

    /// Whether broker `me` keeps a replica of `partition` (always, on a single node).
    pub fn has_replica_on(&self, partition: i32, me: i32) -> bool {
        self.replication.is_empty() || self.replication.get(partition as usize).is_some_and(|p| p.replicas.contains(&me))
    }

    /// The leader and leader epoch of `partition`: `me` at epoch 0 on a single node.
    pub fn leader_of(&self, partition: i32, me: i32) -> (i32, i32) {
        match self.replication.get(partition as usize) {
            Some(p) => (p.leader, p.leader_epoch),
            None if self.replication.is_empty() => (me, 0),
            None => (crate::cluster::image::NO_LEADER, -1),
        }
    }

    pub fn id_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (i, chunk) in self.id.as_bytes().chunks(2).take(16).enumerate() {
            out[i] = std::str::from_utf8(chunk).ok().and_then(|h| u8::from_str_radix(h, 16).ok()).unwrap_or(0);
        }
        out
    }

    pub fn is_internal(&self) -> bool {
        self.name.starts_with("__")
    }
}

pub use crate::storage::meta::new_topic_id;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub topics: BTreeMap<String, TopicMeta>,
    /// In a cluster, the brokers that serve clients (registered and unfenced) and the active
    /// controller, from the metadata log; empty on a single node. Never saved.
    #[serde(skip)]
    pub brokers: Vec<BrokerAddress>,
    #[serde(skip)]
    pub controller_id: i32,
    /// The metadata offset this catalog was built from (0 on a single node).
    #[serde(skip)]
    pub metadata_offset: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BrokerAddress {
    pub id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
}

impl Catalog {
    /// A cluster's catalog, from the metadata image. The ISR's fenced brokers are what
    /// Metadata reports as offline replicas.
    pub fn from_image(image: &crate::cluster::image::MetadataImage, controller_id: i32) -> Catalog {
        let topics = image
            .topics
            .values()
            .map(|t| {
                let replication: Vec<_> = t.partitions.values().cloned().collect();
                let meta = TopicMeta { name: t.name.clone(), id: t.id.clone(), partitions: replication.len() as i32, configs: t.configs.clone(), replication };
                (t.name.clone(), meta)
            })
            .collect();
        let brokers = image.active_brokers().map(|b| BrokerAddress { id: b.broker_id, host: b.host.clone(), port: b.port, rack: b.rack.clone() }).collect();
        Catalog { topics, brokers, controller_id, metadata_offset: image.offset }
    }

    pub fn is_cluster(&self) -> bool {
        self.metadata_offset > 0
    }
}

impl Catalog {
    pub fn topic(&self, name: &str) -> Option<&TopicMeta> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &[u8; 16]) -> Option<&TopicMeta> {
        self.topics.values().find(|t| &t.id_bytes() == id)
    }

    /// Loads the catalog. Without a catalog file, topics are rebuilt from the partition
    /// folders (`<topic>-<n>`), so a log folder copied from elsewhere still opens.
    pub fn load(log_dir: &Path) -> io::Result<Catalog> {
        if let Some(bytes) = crate::io::fs::read_if_exists(&log_dir.join(CATALOG_FILE))? {
            return serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{CATALOG_FILE}: {e}")));
        }
        let mut catalog = Catalog::default();
        if !log_dir.exists() {
            return Ok(catalog);
        }
        for name in crate::io::fs::list_dir(log_dir)? {
            if !log_dir.join(&name).is_dir() {
                continue;
            }
            if let Some((topic, partition)) = crate::storage::parse_partition_dir_name(&name) {
                let entry = catalog.topics.entry(topic.clone()).or_insert_with(|| TopicMeta {
                    name: topic,
                    id: new_topic_id(),
                    partitions: 0,
                    configs: BTreeMap::new(),
                    replication: Vec::new(),
                });
                entry.partitions = entry.partitions.max(partition + 1);
            }
        }
        Ok(catalog)
    }

    pub fn save(&self, log_dir: &Path) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        crate::io::fs::write_atomic(&log_dir.join(CATALOG_FILE), &bytes, Some(&crate::io::crash::CATALOG_WRITE))
    }
}

pub use crate::storage::meta::validate_topic_name;
