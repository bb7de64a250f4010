//! One log segment: a `.log` file of batches starting at `base_offset`, with its indexes.

use std::io;
use std::path::{Path, PathBuf};

use super::index::{IndexEntry, OffsetIndex, TimeIndex, TimeIndexEntry};
use super::segment_file_name;
use crate::io::LogFile;
use crate::protocol::record_batch::{self, BatchView};

pub struct LogSegment {
    pub base_offset: i64,
    pub log: LogFile,
    pub path: PathBuf,
    /// Bytes of complete, written batches. Reads never go past it.
    pub size: u32,
    /// The offset the next batch appended here would get.
    pub next_offset: i64,
    pub index: OffsetIndex,
    pub time_index: TimeIndex,
    /// The largest batch timestamp in the segment (-1 when empty), for retention.
    pub max_timestamp: i64,
    /// The last offset of the first batch that reached `max_timestamp` (Kafka's
    /// `shallowOffsetOfMaxTimestampSoFar`), -1 when empty.
    pub offset_of_max_timestamp: i64,
    pub bytes_since_last_index_entry: u32,
    /// When the segment was created (wall clock), for `segment.ms`.
    pub created_ms: i64,
    /// Whether the folder entry naming this segment's file is known to be on disk. A segment
    /// created by a roll is not, until the folder is fsynced: with `flush.messages=1`, its first
    /// acknowledged records wait for that (an fsynced file whose name a power loss forgets
    /// is lost all the same).
    pub name_durable: bool,
    /// The last batch and its position: fetches at the tail of the log start there without
    /// reading the file.
    pub last_batch: Option<(BatchHeader, u32)>,
}

impl LogSegment {
    /// Creates an empty segment, replacing any leftover files of the same name.
    pub fn create(dir: &Path, base_offset: i64, now_ms: i64) -> io::Result<LogSegment> {
        let path = dir.join(segment_file_name(base_offset, "log"));
        let log = LogFile::open(&path, true)?;
        log.set_len(0)?;
        for ext in ["index", "timeindex"] {
            crate::io::fs::remove_file_if_exists(&dir.join(segment_file_name(base_offset, ext)))?;
        }
        let mut segment = LogSegment::unscanned(base_offset, log, path, now_ms);
        segment.name_durable = false;
        Ok(segment)
    }

    /// A segment whose file is open but whose batches are not yet accounted for: size 0, no
    /// index entries. Recovery scans (or loads indexes) from here.
    pub fn unscanned(base_offset: i64, log: LogFile, path: PathBuf, created_ms: i64) -> LogSegment {
        LogSegment {
            base_offset,
            log,
            path,
            size: 0,
            next_offset: base_offset,
            index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            bytes_since_last_index_entry: 0,
            created_ms,
            name_durable: true,
            last_batch: None,
        }
    }

    pub fn index_path(&self) -> PathBuf {
        self.path.with_extension("index")
    }

    pub fn time_index_path(&self) -> PathBuf {
        self.path.with_extension("timeindex")
    }

    /// The segment's aborted transactions (`storage::txn_index`), when it has any.
    pub fn txn_index_path(&self) -> PathBuf {
        self.path.with_extension("txnindex")
    }

    /// Records a batch that now sits at `position` in this segment: the indexes and the
    /// segment's counters. The batch's bytes must already be in the file.
    ///
    /// As Kafka's `LogSegment.append`: once more than `index.interval.bytes` were written since
    /// the last entry, the offset index gets (the batch's **last** offset, its position) and
    /// the time index (the largest timestamp so far, the last offset of the batch that first
    /// reached it), both only then; the segment start needs no entry (a lookup below every
    /// entry starts at 0).
    pub fn record_batch_appended(&mut self, batch: &BatchHeader, position: u32, index_interval_bytes: u32) {
        assert_eq!(position, self.size, "batches are appended at the end");
        assert!(batch.base_offset >= self.next_offset, "offsets increase");
        if batch.max_timestamp > self.max_timestamp {
            self.max_timestamp = batch.max_timestamp;
            self.offset_of_max_timestamp = batch.last_offset;
        }
        if self.bytes_since_last_index_entry > index_interval_bytes {
            self.index.push(IndexEntry { relative_offset: self.relative(batch.last_offset), position });
            self.push_time_index_entry();
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += batch.size;
        self.size += batch.size;
        self.next_offset = batch.last_offset + 1;
        self.last_batch = Some((*batch, position));
    }

    fn relative(&self, offset: i64) -> u32 {
        (offset - self.base_offset) as u32
    }

    /// Adds (largest timestamp so far, its batch's last offset) to the time index, if it moved.
    fn push_time_index_entry(&mut self) {
        if self.max_timestamp >= 0 {
            let relative_offset = self.relative(self.offset_of_max_timestamp);
            self.time_index.maybe_push(TimeIndexEntry { timestamp: self.max_timestamp, relative_offset });
        }
    }

    /// The segment stops taking appends (a roll, or the log's close): as Kafka's
    /// `onBecomeInactiveSegment`, the time index gets its last entry, so that its last entry
    /// always holds the segment's largest timestamp.
    pub fn finish_time_index(&mut self) {
        self.push_time_index_entry();
    }

    /// Whether either index could not take the entries of one more append and the roll's last
    /// time index entry within `segment.index.bytes`.
    pub fn indexes_full(&self, segment_index_bytes: u32) -> bool {
        let max = segment_index_bytes as usize;
        (self.index.entries.len() + 1) * super::index::INDEX_ENTRY_BYTES > max
            || (self.time_index.entries.len() + 2) * super::index::TIME_INDEX_ENTRY_BYTES > max
    }

    /// Writes the indexes to their files (at roll and close), into the page cache; whoever
    /// needs them durable fsyncs them. They are derived data: a file lost or torn by a crash
    /// fails the sanity check on loading and is rebuilt from the log.
    pub fn write_indexes(&self) -> io::Result<()> {
        // A sealed index is its file: rewriting it in place would change the bytes under
        // its own memory map.
        if matches!(self.index.entries, super::index::Entries::Sealed(_)) || matches!(self.time_index.entries, super::index::Entries::Sealed(_)) {
            return Ok(());
        }
        crate::io::fs::write_file(&self.index_path(), &self.index.encode())?;
        crate::io::fs::write_file(&self.time_index_path(), &self.time_index.encode())
    }

    /// Switches the indexes to their files (memory-mapped), which hold exactly what is in
    /// memory: after `write_indexes` at a roll, or once loaded and checked at startup.
    pub fn seal_indexes(&mut self) {
        let (index_path, time_index_path) = (self.index_path(), self.time_index_path());
        self.index.entries.seal(&index_path);
        self.time_index.entries.seal(&time_index_path);
    }

    /// Whether the indexes are the memory-mapped files of a rolled segment.
    pub fn has_sealed_indexes(&self) -> bool {
        matches!(self.index.entries, super::index::Entries::Sealed(_))
    }

    /// Makes a rolled segment the active one again (a follower's cut inside it): its index
    /// files are unlinked, so that mappings readers still hold keep the old inodes' bytes, and
    /// their entries are copied back into memory, to be written anew at the next roll or close
    /// (or rebuilt from the log by recovery after a crash, as the last segment's are).
    pub fn unseal(&mut self) -> io::Result<()> {
        for path in [self.index_path(), self.time_index_path()] {
            crate::io::fs::remove_file_if_exists(&path)?;
        }
        self.index.entries.open();
        self.time_index.entries.open();
        Ok(())
    }

    /// Cuts the segment back to `size` bytes (a batch boundary) and drops index entries past it.
    pub fn truncate_to(&mut self, size: u32, next_offset: i64) -> io::Result<()> {
        self.log.set_len(size as u64)?;
        self.size = size;
        self.next_offset = next_offset;
        self.index.truncate_to_position(size);
        let last_relative = (next_offset - self.base_offset) as u32;
        self.time_index.entries.retain(|e| e.relative_offset < last_relative);
        self.last_batch = None;
        Ok(())
    }
}

/// The fields of a batch header that a scan needs.
#[derive(Debug, Clone, Copy)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub size: u32,
}

impl BatchHeader {
    /// Parses a header from at least `HEADER_BYTES` bytes; `available` is how many bytes of the
    /// segment remain from this batch's start, so a batch running past them is refused.
    pub fn parse(bytes: &[u8], available: u32) -> Option<BatchHeader> {
        if bytes.len() < record_batch::HEADER_BYTES {
            return None;
        }
        let length = i32::from_be_bytes(bytes[8..12].try_into().ok()?);
        if length < (record_batch::HEADER_BYTES - record_batch::LOG_OVERHEAD) as i32 {
            return None;
        }
        let size = record_batch::LOG_OVERHEAD as u64 + length as u64;
        if size > available as u64 {
            return None;
        }
        let view = BatchView { bytes };
        Some(BatchHeader { base_offset: view.base_offset(), last_offset: view.last_offset(), max_timestamp: view.max_timestamp(), size: size as u32 })
    }
}
