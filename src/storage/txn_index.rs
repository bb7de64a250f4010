//! Aborted transactions (KIP-98), and the `.txnindex` files that keep them, in Kafka's format.
//!
//! A read_committed consumer is told, with each fetch, which aborted transactions overlap the
//! records it gets (`FetchResponse.aborted_transactions`: producer id and first offset), and
//! drops their records up to the abort marker. Each partition keeps its aborted transactions
//! in memory, in marker order, and appends each to the `.txnindex` file of the segment its
//! marker went to (`<base offset>.txnindex`, beside `.log`, `.index` and `.timeindex`).
//!
//! Kafka's `TransactionIndex` entry, 34 bytes, big-endian:
//! ```text
//! version i16 (0) | producer id i64 | first offset i64 | last offset i64 | last stable offset i64
//! ```
//! The last offset is the abort marker's; the last stable offset is the partition's LSO when
//! the marker was written (kept for `kafka-dump-log`; Spate does not read it back).
//!
//! The files are derived data, as the offset indexes are: written to the page cache as markers
//! are appended, fsynced with their segment, and rebuilt at start from the control batches
//! that recovery replays (see `producer::load_state`).

use std::io;
use std::path::Path;

/// An aborted transaction of one partition: `producer_id`'s records from `first_offset` up to
/// its abort marker at `last_offset` are not to be read by a read_committed consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

pub const ENTRY_BYTES: usize = 34;
const VERSION: i16 = 0;

impl AbortedTxn {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.first_offset.to_be_bytes());
        out.extend_from_slice(&self.last_offset.to_be_bytes());
        out.extend_from_slice(&self.last_stable_offset.to_be_bytes());
    }
}

/// The entries of a `.txnindex` file; a torn last entry (a crash mid-write) is left out, and
/// so is everything from an entry of an unknown version on.
pub fn decode(bytes: &[u8]) -> Vec<AbortedTxn> {
    let mut out = Vec::with_capacity(bytes.len() / ENTRY_BYTES);
    for e in bytes.chunks_exact(ENTRY_BYTES) {
        let i64_at = |at: usize| i64::from_be_bytes(e[at..at + 8].try_into().expect("8 bytes"));
        if i16::from_be_bytes([e[0], e[1]]) != VERSION {
            break;
        }
        out.push(AbortedTxn { producer_id: i64_at(2), first_offset: i64_at(10), last_offset: i64_at(18), last_stable_offset: i64_at(26) });
    }
    out
}

/// Appends one entry to `path` (created if need be), into the page cache.
pub fn append(path: &Path, txn: &AbortedTxn) -> io::Result<()> {
    use std::io::Write;
    let mut bytes = Vec::with_capacity(ENTRY_BYTES);
    txn.encode(&mut bytes);
    std::fs::OpenOptions::new().create(true).append(true).open(path)?.write_all(&bytes)
}

/// Replaces `path` with exactly `txns` (removes it when there are none).
pub fn rewrite(path: &Path, txns: &[AbortedTxn]) -> io::Result<()> {
    if txns.is_empty() {
        return crate::io::fs::remove_file_if_exists(path);
    }
    let mut bytes = Vec::with_capacity(txns.len() * ENTRY_BYTES);
    for t in txns {
        t.encode(&mut bytes);
    }
    crate::io::fs::write_file(path, &bytes)
}

/// Fsyncs `path` if it exists.
pub fn sync(path: &Path) -> io::Result<()> {
    match std::fs::File::open(path) {
        Ok(f) => crate::io::fs::sync_file(&f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A partition's aborted transactions, in marker order (so by last offset).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AbortedTxns {
    txns: Vec<AbortedTxn>,
    /// The largest `last_offset - first_offset` of any entry: a scan by last offset can stop
    /// once an entry's last offset is this far past the range it looks for.
    widest: i64,
}

impl AbortedTxns {
    pub fn from_vec(mut txns: Vec<AbortedTxn>) -> AbortedTxns {
        txns.sort_by_key(|t| t.last_offset);
        txns.dedup_by_key(|t| (t.last_offset, t.producer_id));
        let widest = txns.iter().map(|t| t.last_offset - t.first_offset).max().unwrap_or(0);
        AbortedTxns { txns, widest }
    }

    pub fn push(&mut self, txn: AbortedTxn) {
        self.widest = self.widest.max(txn.last_offset - txn.first_offset);
        self.txns.push(txn);
    }

    pub fn len(&self) -> usize {
        self.txns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    /// Every entry, in marker order.
    pub fn entries(&self) -> &[AbortedTxn] {
        &self.txns
    }

    pub fn iter(&self) -> impl Iterator<Item = &AbortedTxn> {
        self.txns.iter()
    }

    /// The aborted transactions a read of `[from, to)` must be told of: those whose marker is
    /// at or after `from` and whose first record is before `to` (Kafka's
    /// `collectAbortedTxns`), as (producer id, first offset).
    pub fn overlapping(&self, from: i64, to: i64) -> Vec<(i64, i64)> {
        let start = self.txns.partition_point(|t| t.last_offset < from);
        let mut out = Vec::new();
        for t in &self.txns[start..] {
            if t.last_offset - self.widest >= to {
                break;
            }
            if t.first_offset < to {
                out.push((t.producer_id, t.first_offset));
            }
        }
        out
    }

    /// Forgets the transactions whose marker is at or after `offset` (a cut log).
    pub fn truncate_from(&mut self, offset: i64) {
        self.txns.retain(|t| t.last_offset < offset);
    }

    /// Forgets the transactions whose marker is below `log_start` (retention removed them).
    pub fn drop_before(&mut self, log_start: i64) {
        self.txns.retain(|t| t.last_offset >= log_start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_in_kafkas_34_byte_format() {
        let t = AbortedTxn { producer_id: 7, first_offset: 10, last_offset: 20, last_stable_offset: 10 };
        let mut bytes = Vec::new();
        t.encode(&mut bytes);
        assert_eq!(bytes.len(), ENTRY_BYTES);
        assert_eq!(&bytes[0..2], &[0, 0]);
        assert_eq!(&bytes[2..10], &7i64.to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 1]);
        assert_eq!(decode(&bytes), vec![t], "a torn last entry is left out");
    }

    #[test]
    fn a_read_is_told_of_the_aborted_transactions_it_overlaps() {
        let a = |pid, first, last| AbortedTxn { producer_id: pid, first_offset: first, last_offset: last, last_stable_offset: first };
        let txns = AbortedTxns::from_vec(vec![a(1, 0, 5), a(2, 3, 40), a(3, 10, 12), a(4, 50, 60)]);
        assert_eq!(txns.overlapping(0, 100), vec![(1, 0), (3, 10), (2, 3), (4, 50)]);
        assert_eq!(txns.overlapping(6, 11), vec![(3, 10), (2, 3)], "marker before the read: not told; first record after it: not told");
        assert_eq!(txns.overlapping(61, 100), vec![]);
        let mut cut = txns.clone();
        cut.truncate_from(40);
        assert_eq!(cut.len(), 2);
    }
}
