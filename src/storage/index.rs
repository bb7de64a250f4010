//! The sparse indexes of one segment, kept in memory and written to `.index` and
//! `.timeindex` when the segment is rolled or the log is closed; recovery rebuilds them from
//! the log whenever they may be stale.
//!
//! `OffsetIndex` maps a relative offset to the file position of the batch that starts there;
//! lookups are a lower-bound binary search, then a short scan of batch headers in the log.

/// One `.index` entry: 4-byte offset relative to the segment's base, 4-byte position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub relative_offset: u32,
    pub position: u32,
}

/// One `.timeindex` entry: the largest timestamp so far and the relative offset of the batch
/// that reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeIndexEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

pub const INDEX_ENTRY_BYTES: usize = 8;
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;

#[derive(Debug, Default, Clone)]
pub struct OffsetIndex {
    pub entries: Vec<IndexEntry>,
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
            self.entries[i - 1]
        }
    }

    /// The last entry whose position is at or below `position` (for truncation).
    pub fn truncate_to_position(&mut self, size: u32) {
        let keep = self.entries.partition_point(|e| e.position < size);
        self.entries.truncate(keep);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * INDEX_ENTRY_BYTES);
        for e in &self.entries {
            out.extend_from_slice(&e.relative_offset.to_be_bytes());
            out.extend_from_slice(&e.position.to_be_bytes());
        }
        out
    }

    /// Reads an `.index` file, refusing one whose entries do not strictly increase or point
    /// past the segment's end: such a file is rebuilt from the log instead.
    pub fn decode(bytes: &[u8], segment_size: u32) -> Option<OffsetIndex> {
        if bytes.len() % INDEX_ENTRY_BYTES != 0 {
            return None;
        }
        let mut index = OffsetIndex::default();
        for chunk in bytes.chunks_exact(INDEX_ENTRY_BYTES) {
            let relative_offset = u32::from_be_bytes(chunk[0..4].try_into().expect("4 bytes"));
            let position = u32::from_be_bytes(chunk[4..8].try_into().expect("4 bytes"));
            if position >= segment_size {
                return None;
            }
            if let Some(last) = index.entries.last() {
                if relative_offset <= last.relative_offset || position <= last.position {
                    return None;
                }
            }
            index.entries.push(IndexEntry { relative_offset, position });
        }
        Some(index)
    }
}

#[derive(Debug, Default, Clone)]
pub struct TimeIndex {
    pub entries: Vec<TimeIndexEntry>,
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
            Some(self.entries[i - 1])
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * TIME_INDEX_ENTRY_BYTES);
        for e in &self.entries {
            out.extend_from_slice(&e.timestamp.to_be_bytes());
            out.extend_from_slice(&e.relative_offset.to_be_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8], next_relative_offset: u32) -> Option<TimeIndex> {
        if bytes.len() % TIME_INDEX_ENTRY_BYTES != 0 {
            return None;
        }
        let mut index = TimeIndex::default();
        for chunk in bytes.chunks_exact(TIME_INDEX_ENTRY_BYTES) {
            let timestamp = i64::from_be_bytes(chunk[0..8].try_into().expect("8 bytes"));
            let relative_offset = u32::from_be_bytes(chunk[8..12].try_into().expect("4 bytes"));
            if relative_offset >= next_relative_offset.max(1) {
                return None;
            }
            // Entries are only ever added when both fields move forward (`maybe_push`).
            if let Some(last) = index.entries.last() {
                if timestamp <= last.timestamp || relative_offset <= last.relative_offset {
                    return None;
                }
            }
            index.entries.push(TimeIndexEntry { timestamp, relative_offset });
        }
        Some(index)
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
