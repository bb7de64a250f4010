//! The sparse indexes of one segment. While the segment is active they are kept in memory;
//! they are written to `.index` and `.timeindex` when the segment is rolled or the log is
//! closed, and a rolled segment's indexes are then read from their files, memory-mapped (as
//! Kafka maps them), so that the broker's own memory does not grow with the data it stores.
//! Recovery rebuilds them from the log whenever they may be stale.
//!
//! Both are Kafka's formats, entry for entry. `OffsetIndex` maps a batch's last offset
//! (relative to the segment's base) to the file position of that batch; `TimeIndex` holds the
//! largest timestamp so far and the relative last offset of the batch that first reached it.
//! A lookup is a lower-bound binary search, then a short scan of batch headers in the log from
//! the entry's position: the batch there ends at or before the offset sought.

use std::path::Path;
use std::sync::Arc;

/// One `.index` entry: a batch's last offset relative to the segment's base (4 bytes), and the
/// batch's position (4 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub relative_offset: u32,
    pub position: u32,
}

/// One `.timeindex` entry: the largest timestamp so far and the relative last offset of the
/// batch that first reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeIndexEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

pub const INDEX_ENTRY_BYTES: usize = 8;
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;

/// An index entry's fixed-size, big-endian file encoding.
pub trait Entry: Copy {
    const BYTES: usize;
    fn read(bytes: &[u8]) -> Self;
    fn write(&self, out: &mut Vec<u8>);
}

impl Entry for IndexEntry {
    const BYTES: usize = INDEX_ENTRY_BYTES;
    fn read(b: &[u8]) -> Self {
        IndexEntry {
            relative_offset: u32::from_be_bytes(b[0..4].try_into().expect("4 bytes")),
            position: u32::from_be_bytes(b[4..8].try_into().expect("4 bytes")),
        }
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
}

impl Entry for TimeIndexEntry {
    const BYTES: usize = TIME_INDEX_ENTRY_BYTES;
    fn read(b: &[u8]) -> Self {
        TimeIndexEntry {
            timestamp: i64::from_be_bytes(b[0..8].try_into().expect("8 bytes")),
            relative_offset: u32::from_be_bytes(b[8..12].try_into().expect("4 bytes")),
        }
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }
}

/// An index's entries: a `Vec` while the segment is active, the memory-mapped index file once
/// it is sealed (rolled, or loaded at startup below the recovery point).
#[derive(Debug, Clone)]
pub enum Entries<E> {
    Open(Vec<E>),
    /// The file's bytes, a whole number of entries. Spate never rewrites a sealed index file in
    /// place (compaction writes a new file and renames it; retention unlinks), so the mapping
    /// stays valid and unchanged for as long as it lives.
    Sealed(Arc<memmap2::Mmap>),
}

impl<E: Entry> Default for Entries<E> {
    fn default() -> Self {
        Entries::Open(Vec::new())
    }
}

impl<E: Entry + PartialEq> PartialEq for Entries<E> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && (0..self.len()).all(|i| self.get(i) == other.get(i))
    }
}

impl<E: Entry> Entries<E> {
    pub fn len(&self) -> usize {
        match self {
            Entries::Open(v) => v.len(),
            Entries::Sealed(map) => map.len() / E::BYTES,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> E {
        match self {
            Entries::Open(v) => v[i],
            Entries::Sealed(map) => E::read(&map[i * E::BYTES..(i + 1) * E::BYTES]),
        }
    }

    pub fn last(&self) -> Option<E> {
        self.len().checked_sub(1).map(|i| self.get(i))
    }

    pub fn to_vec(&self) -> Vec<E> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }

    /// The number of leading entries for which `pred` holds (entries are sorted by it).
    pub fn partition_point(&self, pred: impl Fn(&E) -> bool) -> usize {
        match self {
            Entries::Open(v) => v.partition_point(pred),
            Entries::Sealed(_) => {
                let (mut lo, mut hi) = (0, self.len());
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if pred(&self.get(mid)) {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                lo
            }
        }
    }

    /// The entries as a `Vec` that can change (a sealed index is copied back into memory).
    fn open_mut(&mut self) -> &mut Vec<E> {
        if let Entries::Sealed(_) = self {
            *self = Entries::Open(self.to_vec());
        }
        match self {
            Entries::Open(v) => v,
            Entries::Sealed(_) => unreachable!("opened above"),
        }
    }

    pub fn push(&mut self, entry: E) {
        self.open_mut().push(entry);
    }

    /// Brings a sealed index's entries back into memory (nothing when they are there).
    pub fn open(&mut self) {
        self.open_mut();
    }

    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.open_mut().truncate(len);
        }
    }

    pub fn retain(&mut self, keep: impl FnMut(&E) -> bool) {
        self.open_mut().retain(keep);
    }

    pub fn encode(&self) -> Vec<u8> {
        match self {
            Entries::Open(v) => {
                let mut out = Vec::with_capacity(v.len() * E::BYTES);
                for e in v {
                    e.write(&mut out);
                }
                out
            }
            Entries::Sealed(map) => map.to_vec(),
        }
    }

    /// Replaces the in-memory entries with a mapping of `path`, which must hold exactly their
    /// encoding (the caller has just written it, or has just decoded and checked it). An empty
    /// index, or one that cannot be mapped, stays in memory.
    pub fn seal(&mut self, path: &Path) {
        if self.is_empty() || matches!(self, Entries::Sealed(_)) {
            return;
        }
        let Ok(file) = std::fs::File::open(path) else { return };
        // SAFETY: the file is a sealed index: Spate never writes to it again, only replaces it
        // by rename or unlinks it, neither of which changes the bytes a mapping shows. Another
        // process truncating it would break that (as it would for Kafka's mapped indexes).
        let Ok(map) = (unsafe { memmap2::Mmap::map(&file) }) else { return };
        if map.len() != self.len() * E::BYTES {
            tracing::warn!(path = %path.display(), "an index file does not match the index in memory; keeping it in memory");
            return;
        }
        *self = Entries::Sealed(Arc::new(map));
    }
}

#[derive(Debug, Default, Clone)]
pub struct OffsetIndex {
    pub entries: Entries<IndexEntry>,
}

impl OffsetIndex {
    pub fn push(&mut self, entry: IndexEntry) {
        if let Some(last) = self.entries.last() {
            assert!(entry.relative_offset > last.relative_offset && entry.position > last.position, "index entries must increase");
        }
        self.entries.push(entry);
    }

    /// The last entry at or below `relative_offset`; the segment start if there is none.
    pub fn lookup(&self, relative_offset: u32) -> IndexEntry {
        let i = self.entries.partition_point(|e| e.relative_offset <= relative_offset);
        if i == 0 {
            IndexEntry { relative_offset: 0, position: 0 }
        } else {
            self.entries.get(i - 1)
        }
    }

    /// Drops the entries at or past `size` (for truncation).
    pub fn truncate_to_position(&mut self, size: u32) {
        let keep = self.entries.partition_point(|e| e.position < size);
        self.entries.truncate(keep);
    }

    pub fn encode(&self) -> Vec<u8> {
        self.entries.encode()
    }

    /// Reads an `.index` file, refusing one whose entries do not strictly increase or point
    /// past the segment's end: such a file is rebuilt from the log instead.
    pub fn decode(bytes: &[u8], segment_size: u32) -> Option<OffsetIndex> {
        if bytes.len() % INDEX_ENTRY_BYTES != 0 {
            return None;
        }
        let mut entries: Vec<IndexEntry> = Vec::with_capacity(bytes.len() / INDEX_ENTRY_BYTES);
        for chunk in bytes.chunks_exact(INDEX_ENTRY_BYTES) {
            let e = IndexEntry::read(chunk);
            if e.position >= segment_size {
                return None;
            }
            if entries.last().is_some_and(|last| e.relative_offset <= last.relative_offset || e.position <= last.position) {
                return None;
            }
            entries.push(e);
        }
        Some(OffsetIndex { entries: Entries::Open(entries) })
    }
}

#[derive(Debug, Default, Clone)]
pub struct TimeIndex {
    pub entries: Entries<TimeIndexEntry>,
}

impl TimeIndex {
    /// Adds an entry if the timestamp moved forward (the time index is monotonic).
    pub fn maybe_push(&mut self, entry: TimeIndexEntry) {
        match self.entries.last() {
            Some(last) if entry.timestamp <= last.timestamp || entry.relative_offset <= last.relative_offset => {}
            _ => self.entries.push(entry),
        }
    }

    /// The last entry whose timestamp is below `timestamp`: the scan for the first batch
    /// at or after `timestamp` can start there.
    pub fn lookup(&self, timestamp: i64) -> Option<TimeIndexEntry> {
        let i = self.entries.partition_point(|e| e.timestamp < timestamp);
        if i == 0 {
            None
        } else {
            Some(self.entries.get(i - 1))
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        self.entries.encode()
    }

    pub fn decode(bytes: &[u8], next_relative_offset: u32) -> Option<TimeIndex> {
        if bytes.len() % TIME_INDEX_ENTRY_BYTES != 0 {
            return None;
        }
        let mut entries: Vec<TimeIndexEntry> = Vec::with_capacity(bytes.len() / TIME_INDEX_ENTRY_BYTES);
        for chunk in bytes.chunks_exact(TIME_INDEX_ENTRY_BYTES) {
            let e = TimeIndexEntry::read(chunk);
            if e.relative_offset >= next_relative_offset.max(1) {
                return None;
            }
            // Entries are only ever added when both fields move forward (`maybe_push`).
            if entries.last().is_some_and(|last| e.timestamp <= last.timestamp || e.relative_offset <= last.relative_offset) {
                return None;
            }
            entries.push(e);
        }
        Some(TimeIndex { entries: Entries::Open(entries) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_a_lower_bound() {
        let mut idx = OffsetIndex::default();
        for (o, p) in [(10, 100), (20, 200), (30, 300)] {
            idx.push(IndexEntry { relative_offset: o, position: p });
        }
        assert_eq!(idx.lookup(5).position, 0);
        assert_eq!(idx.lookup(10).position, 100);
        assert_eq!(idx.lookup(29).position, 200);
        assert_eq!(idx.lookup(1000).position, 300);
        let decoded = OffsetIndex::decode(&idx.encode(), 400).unwrap();
        assert_eq!(decoded.entries, idx.entries);
        assert!(OffsetIndex::decode(&idx.encode(), 300).is_none(), "a position past the end is refused");
    }

    #[test]
    fn time_index_finds_the_entry_before_a_timestamp() {
        let mut t = TimeIndex::default();
        t.maybe_push(TimeIndexEntry { timestamp: 100, relative_offset: 0 });
        t.maybe_push(TimeIndexEntry { timestamp: 90, relative_offset: 5 });
        t.maybe_push(TimeIndexEntry { timestamp: 200, relative_offset: 10 });
        assert_eq!(t.entries.len(), 2);
        assert_eq!(t.lookup(100), None);
        assert_eq!(t.lookup(150).unwrap().relative_offset, 0);
        assert_eq!(t.lookup(300).unwrap().relative_offset, 10);
    }
}
