//! The partition log, in Kafka's on-disk layout.
//!
//! ```text
//! log.dirs/
//!   meta.properties                   version, node.id, cluster.id, directory.id
//!   recovery-point-offset-checkpoint  per partition, the offset below which its log was
//!                                     fsynced (written by the broker, `server.rs`)
//!   log-start-offset-checkpoint       per partition whose log start is past its first segment
//!   replication-offset-checkpoint     per partition, its high watermark
//!   .kafka_cleanshutdown              written after every partition closed cleanly
//!   <topic>-<partition>/
//!     partition.metadata              version and topic id
//!     00000000000000000000.log        RecordBatch v2 bytes as produced, offsets stamped in
//!     00000000000000000000.index      (relative last offset u32, file position u32) every
//!                                     index.interval.bytes
//!     00000000000000000000.timeindex  (max timestamp i64, relative last offset u32)
//! ```
//!
//! Architecture Invariant: `storage/` never sees a socket or a request. It takes validated
//! batches and hands out file ranges; only the shard that owns a partition calls it.
//! `log_start_offset <= high_watermark <= log_end_offset` holds at every await point.

pub mod checkpoint;
pub mod compaction;
pub mod epoch;
pub mod index;
pub mod log;
pub mod meta;
pub mod producer;
pub mod recovery;
pub mod scrub;
pub mod segment;
pub mod txn_index;

pub use log::{AppendError, AppendResult, FileSlice, PartitionLog, ReadError, ReadLimit, ReadResult};

#[cfg(test)]
mod tests {
    #[test]
    fn uuids_print_as_kafka_prints_them() {
        // Kafka's Uuid.toString() of 0x0001020304..0f, and of all ones.
        let counting: [u8; 16] = std::array::from_fn(|i| i as u8);
        assert_eq!(super::uuid_to_kafka_string(&counting), "AAECAwQFBgcICQoLDA0ODw");
        assert_eq!(super::uuid_to_kafka_string(&[0xff; 16]), "_____________________w");
    }
}

/// A log segment's file name: the base offset as 20 digits, then the extension.
pub fn segment_file_name(base_offset: i64, extension: &str) -> String {
    format!("{base_offset:020}.{extension}")
}

/// The folder name of a partition: `<topic>-<partition>`.
pub fn partition_dir_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// Splits a partition folder name back into topic and partition.
pub fn parse_partition_dir_name(name: &str) -> Option<(String, i32)> {
    let (topic, partition) = name.rsplit_once('-')?;
    let partition: i32 = partition.parse().ok()?;
    if topic.is_empty() || partition < 0 || partition.to_string() != name.rsplit_once('-')?.1 {
        return None;
    }
    Some((topic.to_owned(), partition))
}

pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
pub const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_OFFSET_FILE: &str = "log-start-offset-checkpoint";
pub const REPLICATION_OFFSET_FILE: &str = "replication-offset-checkpoint";
pub const PARTITION_METADATA_FILE: &str = "partition.metadata";

/// Where recovery of a log starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryPoint {
    /// The last stop was clean: nothing needs a scan but the active segment.
    CleanShutdown,
    /// Every offset below this one was on disk at the last checkpoint (0 when unknown).
    At(i64),
}

/// What the log dir's checkpoint files record of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCheckpoint {
    pub topic: String,
    pub partition: i32,
    pub recovery_point: i64,
    pub log_start_offset: i64,
    /// The first segment's base offset: Kafka checkpoints a log start only when it is past it.
    pub first_segment_base_offset: i64,
    pub high_watermark: i64,
}

/// Writes the log dir's checkpoint files from every partition's figures, each replaced
/// atomically.
pub fn write_checkpoints(log_dir: &std::path::Path, logs: &[LogCheckpoint]) -> std::io::Result<()> {
    let entries = |f: &dyn Fn(&LogCheckpoint) -> Option<i64>| -> Vec<(String, i32, i64)> {
        logs.iter().filter_map(|l| f(l).map(|o| (l.topic.clone(), l.partition, o))).collect()
    };
    checkpoint::write(&log_dir.join(RECOVERY_POINT_FILE), &entries(&|l| Some(l.recovery_point)))?;
    checkpoint::write(&log_dir.join(LOG_START_OFFSET_FILE), &entries(&|l| (l.log_start_offset > l.first_segment_base_offset).then_some(l.log_start_offset)))?;
    checkpoint::write(&log_dir.join(REPLICATION_OFFSET_FILE), &entries(&|l| Some(l.high_watermark)))
}

/// The topic id a partition folder's `partition.metadata` names, if it has one.
pub fn read_partition_topic_id(dir: &std::path::Path) -> Option<String> {
    let bytes = crate::io::fs::read_if_exists(&dir.join(PARTITION_METADATA_FILE)).ok()??;
    let text = String::from_utf8(bytes).ok()?;
    text.lines().find_map(|l| l.strip_prefix("topic_id:")).map(|id| id.trim().to_owned())
}

/// Writes a partition's `partition.metadata` (Kafka's format: `version: 0`, then the topic id
/// in Kafka's base64 form) unless it already says so. It is derived from the catalog and
/// checked at every open, so it goes to the page cache only: two fsyncs per new partition
/// doubled the time a 5,000-partition topic took to create.
pub fn write_partition_metadata(dir: &std::path::Path, topic_id: &[u8; 16]) -> std::io::Result<()> {
    let text = format!("version: 0\ntopic_id: {}\n", uuid_to_kafka_string(topic_id));
    let path = dir.join(PARTITION_METADATA_FILE);
    if crate::io::fs::read_if_exists(&path)?.is_some_and(|b| b == text.as_bytes()) {
        return Ok(());
    }
    crate::io::fs::write_file(&path, text.as_bytes())
}

/// A UUID as Kafka's `Uuid.toString()` prints it: URL-safe base64 without padding, 22
/// characters. (Written by hand: 16 bytes, one alphabet; a crate would be for this alone.)
pub fn uuid_to_kafka_string(uuid: &[u8; 16]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    for chunk in uuid.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}
