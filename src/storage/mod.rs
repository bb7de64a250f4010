//! The partition log, in Kafka's on-disk layout.
//!
//! ```text
//! log.dirs/
//!   <topic>-<partition>/
//!     00000000000000000000.log        RecordBatch v2 bytes as produced, offsets stamped in
//!     00000000000000000000.index      (relative offset u32, file position u32) every
//!                                     index.interval.bytes
//!     00000000000000000000.timeindex  (max timestamp i64, relative offset u32)
//!     recovery-point-offset-checkpoint  the offset below which the log was fsynced
//!   .kafka_cleanshutdown              written after every partition closed cleanly
//! ```
//!
//! Architecture Invariant: `storage/` never sees a socket or a request. It takes validated
//! batches and hands out file ranges; only the shard that owns a partition calls it.
//! `log_start_offset <= high_watermark <= log_end_offset` holds at every await point.

pub mod checkpoint;
pub mod compaction;
pub mod index;
pub mod log;
pub mod producer;
pub mod recovery;
pub mod segment;

pub use log::{AppendError, AppendResult, FileSlice, PartitionLog, ReadError, ReadResult};

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
