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
}

impl TopicMeta {
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

/// Kafka's rule for topic names: 1 to 249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("topic name {name:?} is illegal"));
    }
    if name.len() > crate::config::limits::TOPIC_NAME_LENGTH_MAX {
        return Err(format!("topic name is longer than {} characters", crate::config::limits::TOPIC_NAME_LENGTH_MAX));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
        return Err(format!("topic name {name:?} contains characters other than ASCII alphanumerics, '.', '_' and '-'"));
    }
    Ok(())
}
