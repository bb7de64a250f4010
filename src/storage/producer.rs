//! Idempotent producers (KIP-98): per partition, the last batches each producer id wrote, so
//! that a retried batch is answered with its first offset instead of being written twice, and
//! a batch that skips sequence numbers is refused.
//!
//! As in Kafka, the last 5 batches of a producer are remembered (a producer keeps at most 5
//! requests in flight when idempotent). A producer the log knows nothing of may start at any
//! sequence, as Kafka allows since KIP-360.
//!
//! The state survives restarts as Kafka's does: a snapshot, `<offset>.snapshot` in Kafka's
//! format (`ProducerSnapshot.json`, version 1: each producer's epoch and last batch), is
//! written when a segment rolls and when the log closes, and at start the newest snapshot at
//! or below the log end is read and the batches after it replayed (`PartitionLog::open`).
//! Producers whose last batch is older than `producer.id.expiration.ms` are forgotten.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};

use super::segment::LogSegment;
use super::txn_index::{self, AbortedTxn, AbortedTxns};
use crate::protocol::record_batch::{self, BatchView};

/// Batches remembered per producer.
const BATCHES_REMEMBERED: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// A new batch, in order: write it.
    Append,
    /// A batch already written (a retry): answer with its first offset, write nothing.
    Duplicate { base_offset: i64 },
    /// The sequence does not follow the producer's last batch.
    OutOfOrder,
    /// An older epoch of a producer that has moved on (a zombie).
    Fenced,
    /// A transactional batch where the producer has no transaction open (nor a verification
    /// by the transaction coordinator pending), or a plain batch from a producer whose
    /// transaction is open here.
    InvalidTxnState,
}

#[derive(Debug, Clone, PartialEq)]
struct Producer {
    epoch: i16,
    /// (first sequence, last sequence, first offset), oldest first.
    batches: VecDeque<(i32, i32, i64)>,
    /// The last batch's largest timestamp, for expiry.
    last_timestamp: i64,
    /// The epoch of the transaction coordinator that wrote this producer's last marker (-1:
    /// none yet): a marker from an older coordinator is refused.
    coordinator_epoch: i32,
    /// The first offset of the producer's transaction open in this partition.
    txn_first_offset: Option<i64>,
    /// KIP-890's verification guard: set when the broker asks the transaction coordinator
    /// whether this partition is in the producer's transaction, cleared by a marker. A first
    /// transactional batch is written only under the guard it was verified with, so that a
    /// batch verified before its transaction ended cannot open a transaction no marker closes.
    verified: Option<u64>,
}

impl Default for Producer {
    fn default() -> Producer {
        Producer { epoch: 0, batches: VecDeque::new(), last_timestamp: 0, coordinator_epoch: -1, txn_first_offset: None, verified: None }
    }
}

/// A transaction a marker ended in this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The marker's offset.
    pub last_offset: i64,
    pub committed: bool,
}

/// Why a marker was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerError {
    /// The marker's producer epoch is older than the producer's.
    ProducerFenced,
    /// The marker comes from an older transaction coordinator than the last one's.
    CoordinatorFenced,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProducerStates {
    producers: HashMap<i64, Producer>,
    /// The transactions open in this partition, as (first offset, producer id).
    ongoing: std::collections::BTreeSet<(i64, i64)>,
}

impl ProducerStates {
    pub fn check(&self, producer_id: i64, epoch: i16, first_sequence: i32, last_sequence: i32) -> SequenceCheck {
        if producer_id < 0 {
            return SequenceCheck::Append;
        }
        let Some(p) = self.producers.get(&producer_id) else { return SequenceCheck::Append };
        if epoch < p.epoch {
            return SequenceCheck::Fenced;
        }
        // The broker's own transactional writes (offsets in a transaction) carry no sequence.
        if epoch > p.epoch || first_sequence < 0 {
            return SequenceCheck::Append;
        }
        if let Some(&(_, _, base_offset)) = p.batches.iter().find(|(f, l, _)| *f == first_sequence && *l == last_sequence) {
            return SequenceCheck::Duplicate { base_offset };
        }
        match p.batches.back() {
            // Sequences wrap from i32::MAX to 0.
            Some(&(_, last, _)) if first_sequence != last.wrapping_add(1).max(0) => SequenceCheck::OutOfOrder,
            _ => SequenceCheck::Append,
        }
    }

    /// Whether a batch that passed `check` may be written as far as transactions go: a
    /// transactional batch needs its producer's transaction open here (same epoch) or, to
    /// open it, the verification guard it was verified under (`guard`; `None` for the
    /// broker's own writes, which need none); a plain batch needs no transaction open.
    pub fn check_transaction(&self, producer_id: i64, epoch: i16, transactional: bool, guard: Option<u64>) -> SequenceCheck {
        if producer_id < 0 {
            return SequenceCheck::Append;
        }
        let p = self.producers.get(&producer_id);
        let open = p.is_some_and(|p| p.txn_first_offset.is_some() && p.epoch == epoch);
        match (transactional, guard) {
            (false, _) if p.is_some_and(|p| p.txn_first_offset.is_some()) => SequenceCheck::InvalidTxnState,
            (true, Some(g)) if !open && p.and_then(|p| p.verified) != Some(g) => SequenceCheck::InvalidTxnState,
            _ => SequenceCheck::Append,
        }
    }

    /// Whether `producer_id` (at `epoch`) has a transaction open in this partition.
    pub fn has_open_transaction(&self, producer_id: i64, epoch: i16) -> bool {
        self.producers.get(&producer_id).is_some_and(|p| p.txn_first_offset.is_some() && p.epoch == epoch)
    }

    /// The verification guard of `producer_id` (see `Producer::verified`): the one already
    /// set, so that pipelined first batches all verify under one guard (as Kafka's
    /// `maybeCreateVerificationStateEntry` keeps its entry), or else `new`.
    pub fn start_verification(&mut self, producer_id: i64, new: u64) -> u64 {
        *self.producers.entry(producer_id).or_default().verified.get_or_insert(new)
    }

    /// The `.txnindex` entry of `t`, an abort just completed: its last stable offset is Kafka's
    /// (`ProducerStateManager.lastStableOffset(completedTxn)`), the first offset of the oldest
    /// transaction still open, or the offset after the marker.
    pub fn aborted_entry(&self, t: &CompletedTxn) -> AbortedTxn {
        let last_stable_offset = self.first_unstable_offset().unwrap_or(t.last_offset + 1);
        AbortedTxn { producer_id: t.producer_id, first_offset: t.first_offset, last_offset: t.last_offset, last_stable_offset }
    }

    /// The first offset of the oldest transaction open here.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.first().map(|(offset, _)| *offset)
    }

    /// Every producer, as (id, epoch, last sequence, last timestamp, coordinator epoch, open
    /// transaction's first offset): DescribeProducers' answer.
    pub fn describe(&self) -> Vec<(i64, i16, i32, i64, i32, i64)> {
        let mut out: Vec<_> = self
            .producers
            .iter()
            .map(|(id, p)| (*id, p.epoch, p.batches.back().map_or(-1, |b| b.1), p.last_timestamp, p.coordinator_epoch, p.txn_first_offset.unwrap_or(-1)))
            .collect();
        out.sort();
        out
    }

    /// Forgets the batches at or after `offset` (the log was cut there): a retry of one of
    /// them must be written again, not answered with an offset that is gone. (A transaction
    /// whose marker was cut is open again only once the state is rebuilt from the log, which
    /// `PartitionLog::after_cut` does.)
    pub fn truncate_from(&mut self, offset: i64) {
        self.producers.retain(|_, p| {
            p.batches.retain(|(_, _, base)| *base < offset);
            if p.txn_first_offset.is_some_and(|f| f >= offset) {
                p.txn_first_offset = None;
            }
            !p.batches.is_empty() || p.txn_first_offset.is_some()
        });
        let producers = &self.producers;
        self.ongoing.retain(|&(first, id)| first < offset && producers.get(&id).is_some_and(|p| p.txn_first_offset == Some(first)));
    }

    /// Remembers a batch that is being written (`timestamp`: its largest); a transactional
    /// one opens its producer's transaction here if none is open.
    #[allow(clippy::too_many_arguments)]
    pub fn record(&mut self, producer_id: i64, epoch: i16, first_sequence: i32, last_sequence: i32, base_offset: i64, timestamp: i64, transactional: bool) {
        if producer_id < 0 {
            return;
        }
        let p = self.producers.entry(producer_id).or_default();
        if epoch != p.epoch {
            p.epoch = epoch;
            p.batches.clear();
        }
        if first_sequence >= 0 {
            p.batches.push_back((first_sequence, last_sequence, base_offset));
            if p.batches.len() > BATCHES_REMEMBERED {
                p.batches.pop_front();
            }
        }
        p.last_timestamp = p.last_timestamp.max(timestamp);
        if transactional && p.txn_first_offset.is_none() {
            p.txn_first_offset = Some(base_offset);
            p.verified = None;
            self.ongoing.insert((base_offset, producer_id));
        }
    }

    /// Checks a transaction marker (a control batch) from `producer_id` at `epoch`, written by
    /// coordinator epoch `coordinator_epoch`, as Kafka's `appendEndTxnMarker` does.
    pub fn check_marker(&self, producer_id: i64, epoch: i16, coordinator_epoch: i32) -> Result<(), MarkerError> {
        match self.producers.get(&producer_id) {
            Some(p) if epoch < p.epoch => Err(MarkerError::ProducerFenced),
            Some(p) if coordinator_epoch < p.coordinator_epoch => Err(MarkerError::CoordinatorFenced),
            _ => Ok(()),
        }
    }

    /// Records a marker written at `offset`: the producer's transaction here ends. Returns the
    /// transaction it ended, if one was open.
    pub fn complete(&mut self, producer_id: i64, epoch: i16, committed: bool, coordinator_epoch: i32, offset: i64, timestamp: i64) -> Option<CompletedTxn> {
        let p = self.producers.entry(producer_id).or_default();
        if epoch != p.epoch {
            p.epoch = epoch;
            p.batches.clear();
        }
        p.coordinator_epoch = coordinator_epoch;
        p.last_timestamp = p.last_timestamp.max(timestamp);
        p.verified = None;
        let first = p.txn_first_offset.take()?;
        self.ongoing.remove(&(first, producer_id));
        Some(CompletedTxn { producer_id, first_offset: first, last_offset: offset, committed })
    }

    /// Forgets producers whose last batch is older than `before` (milliseconds since the
    /// epoch), as Kafka's `removeExpiredProducers` does after `producer.id.expiration.ms`.
    pub fn expire_before(&mut self, before: i64) {
        // A producer with a transaction open stays until the transaction ends, as in Kafka.
        self.producers.retain(|_, p| p.last_timestamp >= before || p.txn_first_offset.is_some());
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// The state as a Kafka producer snapshot (version 1): the version, a CRC-32C of what
    /// follows it, and per producer its id, epoch and last batch (last sequence, last offset,
    /// offset delta, timestamp), the coordinator epoch of its last marker and its open
    /// transaction's first offset (-1 for none). Producers in id order, so equal states write
    /// equal files.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort();
        let mut out = Vec::with_capacity(SNAPSHOT_HEADER_BYTES + ids.len() * SNAPSHOT_ENTRY_BYTES);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(ids.len() as i32).to_be_bytes());
        for id in ids {
            let p = &self.producers[id];
            // A producer without a batch with a sequence (its transactional offset commits,
            // written by the broker) has last sequence and offset -1, as in Kafka.
            let (first, last, base) = p.batches.back().copied().unwrap_or((-1, -1, -1));
            let offset_delta = if base < 0 { 0 } else { last.wrapping_sub(first) };
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&p.epoch.to_be_bytes());
            out.extend_from_slice(&last.to_be_bytes());
            out.extend_from_slice(&(if base < 0 { -1 } else { base + offset_delta as i64 }).to_be_bytes());
            out.extend_from_slice(&offset_delta.to_be_bytes());
            out.extend_from_slice(&p.last_timestamp.to_be_bytes());
            out.extend_from_slice(&p.coordinator_epoch.to_be_bytes());
            out.extend_from_slice(&p.txn_first_offset.unwrap_or(-1).to_be_bytes());
        }
        let crc = crc32c::crc32c(&out[SNAPSHOT_CRC_END..]);
        out[2..SNAPSHOT_CRC_END].copy_from_slice(&crc.to_be_bytes());
        out
    }

    /// Reads a snapshot `encode_snapshot` (or Kafka) wrote, refusing one of another version,
    /// with a wrong CRC, or whose entry count does not match its length.
    pub fn decode_snapshot(bytes: &[u8]) -> Result<ProducerStates, String> {
        if bytes.len() < SNAPSHOT_HEADER_BYTES {
            return Err(format!("a snapshot of {} bytes is too short", bytes.len()));
        }
        let version = i16::from_be_bytes([bytes[0], bytes[1]]);
        if version != SNAPSHOT_VERSION {
            return Err(format!("unknown snapshot version {version}"));
        }
        let crc = u32::from_be_bytes(bytes[2..SNAPSHOT_CRC_END].try_into().expect("4 bytes"));
        if crc != crc32c::crc32c(&bytes[SNAPSHOT_CRC_END..]) {
            return Err("the snapshot's CRC does not match".to_string());
        }
        let count = i32::from_be_bytes(bytes[SNAPSHOT_CRC_END..SNAPSHOT_HEADER_BYTES].try_into().expect("4 bytes"));
        let body = &bytes[SNAPSHOT_HEADER_BYTES..];
        if count < 0 || body.len() != count as usize * SNAPSHOT_ENTRY_BYTES {
            return Err(format!("{count} entries do not fill a snapshot of {} bytes", bytes.len()));
        }
        let mut states = ProducerStates::default();
        for e in body.chunks_exact(SNAPSHOT_ENTRY_BYTES) {
            let i64_at = |at: usize| i64::from_be_bytes(e[at..at + 8].try_into().expect("8 bytes"));
            let i32_at = |at: usize| i32::from_be_bytes(e[at..at + 4].try_into().expect("4 bytes"));
            let (id, epoch, last, last_offset, offset_delta, timestamp) =
                (i64_at(0), i16::from_be_bytes([e[8], e[9]]), i32_at(10), i64_at(14), i32_at(22), i64_at(26));
            let (coordinator_epoch, txn_first) = (i32_at(34), i64_at(38));
            if id < 0 || offset_delta < 0 {
                continue;
            }
            // A producer whose last batch carried no sequence (the broker's transactional
            // offset commits) is kept for its transaction, without a batch.
            let batches = if last >= 0 && last_offset >= 0 {
                VecDeque::from([(last.wrapping_sub(offset_delta), last, last_offset - offset_delta as i64)])
            } else {
                VecDeque::new()
            };
            let txn_first_offset = (txn_first >= 0).then_some(txn_first);
            if let Some(first) = txn_first_offset {
                states.ongoing.insert((first, id));
            }
            states.producers.insert(id, Producer { epoch, batches, last_timestamp: timestamp, coordinator_epoch, txn_first_offset, verified: None });
        }
        Ok(states)
    }
}

/// The snapshot files in `dir`, as (offset, path), oldest first.
pub fn snapshot_files(dir: &Path) -> io::Result<Vec<(i64, PathBuf)>> {
    let mut out: Vec<(i64, PathBuf)> =
        crate::io::fs::list_dir(dir)?.into_iter().filter_map(|name| Some((name.strip_suffix(".snapshot")?.parse::<i64>().ok()?, dir.join(&name)))).collect();
    out.sort();
    Ok(out)
}

/// Writes the snapshot of `states` for the log below `offset`. `durable`: fsynced (at close);
/// otherwise left to the page cache (at a roll): a snapshot lost or torn by a crash fails its
/// CRC and the state is replayed from an older one, or from the log.
pub fn write_snapshot(dir: &Path, offset: i64, states: &ProducerStates, durable: bool) -> io::Result<()> {
    let path = dir.join(super::segment_file_name(offset, "snapshot"));
    crate::io::fs::write_file(&path, &states.encode_snapshot())?;
    if durable {
        crate::io::fs::sync_file(&std::fs::File::open(&path)?)?;
    }
    Ok(())
}

/// Removes the snapshots past `end` (of a log cut back there) and all but the newest
/// `keep` of the rest, and those below `log_start` (their segments are gone).
pub fn prune_snapshots(dir: &Path, log_start: i64, end: i64, keep: usize) -> io::Result<()> {
    let files = snapshot_files(dir)?;
    let kept_from = files.iter().filter(|(o, _)| *o <= end).count().saturating_sub(keep);
    for (i, (offset, path)) in files.iter().enumerate() {
        if *offset > end || i < kept_from || (*offset < log_start && i + 1 < files.len()) {
            crate::io::fs::remove_file_if_exists(path)?;
        }
    }
    Ok(())
}

/// What a log's transactional state is rebuilt into at start and after a cut.
#[derive(Debug, Default)]
pub struct LoadedState {
    pub producers: ProducerStates,
    pub aborted: AbortedTxns,
}

/// The producers' state of a log just recovered (`segments`): the newest snapshot at or below
/// the log end that reads back, then every batch after it (Kafka's `loadProducerState`), less
/// producers expired before `expired_before`. Snapshots past the log end are removed first;
/// unreadable ones too. The aborted transactions come from the `.txnindex` files below where
/// the replay starts and from the replayed markers after it; the files of the replayed
/// segments are rewritten to match.
pub fn load_state(dir: &Path, segments: &[LogSegment], expired_before: i64) -> io::Result<LoadedState> {
    let (start, end) = (segments.first().map_or(0, |s| s.base_offset), segments.last().map_or(0, |s| s.next_offset));
    let mut states = ProducerStates::default();
    // Without a snapshot (a log from before they were written, or one that never rolled),
    // the last two segments are replayed, as Kafka's `rebuildProducerState` does for a log
    // without snapshots: older producers have mostly expired, and a long log would otherwise
    // be read header by header at every start.
    let mut from = segments.len().checked_sub(2).map_or(start, |i| segments[i].base_offset);
    for (offset, path) in snapshot_files(dir)?.into_iter().rev() {
        if offset > end {
            crate::io::fs::remove_file_if_exists(&path)?;
            continue;
        }
        let bytes = crate::io::fs::read_if_exists(&path)?.unwrap_or_default();
        match ProducerStates::decode_snapshot(&bytes) {
            Ok(mut loaded) => {
                // It describes only the log below its offset.
                loaded.truncate_from(offset);
                states = loaded;
                from = offset.max(start);
                break;
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "an unreadable producer snapshot; removing it");
                crate::io::fs::remove_file_if_exists(&path)?;
            }
        }
    }
    // The aborted transactions the files hold below the replay (a roll fsyncs its segment's
    // file before the snapshot that makes the replay start past it is written).
    let mut aborted = Vec::new();
    for segment in segments.iter().filter(|s| s.base_offset < from) {
        let bytes = crate::io::fs::read_if_exists(&segment.txn_index_path())?.unwrap_or_default();
        aborted.extend(txn_index::decode(&bytes).into_iter().filter(|t| t.last_offset < from));
    }
    let mut replayed = Vec::new();
    replay(segments, from, &mut states, &mut replayed)?;
    aborted.extend(replayed.iter().copied());
    // The files of the replayed segments now say what the log says.
    for segment in segments.iter().filter(|s| s.next_offset > from || s.base_offset >= from) {
        let mine: Vec<_> = aborted
            .iter()
            .filter(|t| t.last_offset >= segment.base_offset && t.last_offset < segment.next_offset.max(segment.base_offset + 1))
            .copied()
            .collect();
        let path = segment.txn_index_path();
        let on_file = txn_index::decode(&crate::io::fs::read_if_exists(&path)?.unwrap_or_default());
        if on_file != mine {
            txn_index::rewrite(&path, &mine)?;
        }
    }
    states.expire_before(expired_before);
    Ok(LoadedState { producers: states, aborted: AbortedTxns::from_vec(aborted) })
}

/// Records every producer batch and marker at or after `from` in `segments`, reading only batch
/// headers (and a marker's one record); the aborted transactions the markers end go to
/// `aborted`.
fn replay(segments: &[LogSegment], from: i64, states: &mut ProducerStates, aborted: &mut Vec<AbortedTxn>) -> io::Result<()> {
    // A header and, for a control batch, its record (a marker's is about 20 bytes).
    let mut header = [0u8; record_batch::HEADER_BYTES + CONTROL_RECORD_BYTES_MAX];
    for segment in segments.iter().filter(|s| s.next_offset > from) {
        let mut position = if segment.base_offset < from { segment.index.lookup((from - segment.base_offset) as u32).position } else { 0 };
        while position as u64 + record_batch::HEADER_BYTES as u64 <= segment.size as u64 {
            let n = segment.log.read_at_blocking(position as u64, &mut header)?;
            if n < record_batch::HEADER_BYTES {
                break;
            }
            let Some(batch) = super::segment::BatchHeader::parse(&header[..record_batch::HEADER_BYTES], segment.size - position) else { break };
            let view = BatchView { bytes: &header[..n] };
            if batch.base_offset >= from && view.producer_id() >= 0 {
                if view.is_control() {
                    let record_end = (batch.size as usize).min(n);
                    if let Some(marker) = record_batch::control_record(&header[record_batch::HEADER_BYTES..record_end]) {
                        let done = states.complete(
                            view.producer_id(),
                            view.producer_epoch(),
                            marker.commit,
                            marker.coordinator_epoch,
                            batch.base_offset,
                            batch.max_timestamp,
                        );
                        if let Some(t) = done.filter(|t| !t.committed) {
                            aborted.push(states.aborted_entry(&t));
                        }
                    }
                } else {
                    let first = view.base_sequence();
                    states.record(
                        view.producer_id(),
                        view.producer_epoch(),
                        first,
                        first.wrapping_add(view.last_offset_delta()),
                        batch.base_offset,
                        batch.max_timestamp,
                        view.is_transactional(),
                    );
                }
            }
            position += batch.size;
        }
    }
    Ok(())
}

/// What replay reads of a control batch's record beyond its header.
const CONTROL_RECORD_BYTES_MAX: usize = 32;

const SNAPSHOT_VERSION: i16 = 1;
/// The version (2 bytes) and the CRC (4) come before what the CRC covers.
const SNAPSHOT_CRC_END: usize = 6;
/// The version, the CRC and the entry count.
const SNAPSHOT_HEADER_BYTES: usize = 10;
/// Id 8, epoch 2, last sequence 4, last offset 8, offset delta 4, timestamp 8, coordinator
/// epoch 4, open transaction's first offset 8.
const SNAPSHOT_ENTRY_BYTES: usize = 46;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_duplicates_and_gaps_are_refused() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(7, 0, 0, 9), SequenceCheck::Append);
        s.record(7, 0, 0, 9, 100, 5, false);
        assert_eq!(s.check(7, 0, 0, 9), SequenceCheck::Duplicate { base_offset: 100 });
        assert_eq!(s.check(7, 0, 10, 19), SequenceCheck::Append);
        assert_eq!(s.check(7, 0, 12, 19), SequenceCheck::OutOfOrder);
        s.record(7, 1, 0, 4, 200, 6, false);
        assert_eq!(s.check(7, 0, 10, 19), SequenceCheck::Fenced, "the old epoch is a zombie");
        assert_eq!(s.check(-1, 0, 5, 5), SequenceCheck::Append, "non-idempotent producers are not checked");
        s.record(8, 0, i32::MAX - 1, i32::MAX, 300, 7, false);
        assert_eq!(s.check(8, 0, 0, 3), SequenceCheck::Append, "sequences wrap");
    }

    #[test]
    fn a_first_transactional_batch_needs_its_verification_guard_and_a_marker_voids_it() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check_transaction(7, 0, true, Some(0)), SequenceCheck::InvalidTxnState, "no transaction, no verification");
        let guard = s.start_verification(7, 11);
        assert_eq!(s.start_verification(7, 12), guard, "pipelined first batches share the guard");
        assert_eq!(s.check_transaction(7, 0, true, Some(guard)), SequenceCheck::Append);
        // The transaction ends (an abort marker) before the verified batch is written.
        assert_eq!(s.complete(7, 0, false, 0, 50, 1), None);
        assert_eq!(s.check_transaction(7, 0, true, Some(guard)), SequenceCheck::InvalidTxnState, "a late batch opens no transaction");
        let guard = s.start_verification(7, 13);
        s.record(7, 0, 0, 4, 60, 2, true);
        assert!(s.has_open_transaction(7, 0));
        assert_eq!(s.check_transaction(7, 0, true, Some(0)), SequenceCheck::Append, "open: no verification needed");
        assert_eq!(s.check_transaction(7, 0, false, None), SequenceCheck::InvalidTxnState, "a plain batch while its transaction is open");
        assert_eq!(s.first_unstable_offset(), Some(60));
        let done = s.complete(7, 0, true, 0, 65, 3).unwrap();
        assert_eq!((done.first_offset, done.last_offset, done.committed), (60, 65, true));
        assert_eq!(s.first_unstable_offset(), None);
        assert_eq!(s.aborted_entry(&done).last_stable_offset, 66, "Kafka's: after the marker, with no other transaction open");
        s.record(9, 0, 0, 0, 62, 2, true);
        assert_eq!(s.aborted_entry(&done).last_stable_offset, 62, "Kafka's: another producer's open transaction");
        assert_ne!(guard, 0);
    }

    #[test]
    fn a_snapshot_keeps_each_producers_epoch_and_last_batch_in_kafkas_format() {
        let mut s = ProducerStates::default();
        s.record(7, 2, 0, 9, 100, 1_000, false);
        s.record(7, 2, 10, 14, 110, 2_000, false);
        s.record(3, 0, 5, 5, 120, 3_000, false);
        let bytes = s.encode_snapshot();
        assert_eq!(bytes.len(), 10 + 2 * 46);
        assert_eq!(&bytes[0..2], &[0, 1], "version 1");
        assert_eq!(&bytes[6..10], &[0, 0, 0, 2]);
        // Producer 3 first (id order): id, epoch, last sequence 5, last offset 120, delta 0.
        assert_eq!(&bytes[10..18], &3i64.to_be_bytes());
        assert_eq!(&bytes[24..32], &120i64.to_be_bytes());
        let back = ProducerStates::decode_snapshot(&bytes).unwrap();
        assert_eq!(back.check(7, 2, 10, 14), SequenceCheck::Duplicate { base_offset: 110 }, "the last batch is a duplicate after a restart");
        assert_eq!(back.check(7, 2, 15, 20), SequenceCheck::Append);
        assert_eq!(back.check(7, 2, 30, 31), SequenceCheck::OutOfOrder);
        assert_eq!(back.check(7, 1, 15, 20), SequenceCheck::Fenced);
        assert_eq!(back.check(3, 0, 5, 5), SequenceCheck::Duplicate { base_offset: 120 });
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert!(ProducerStates::decode_snapshot(&flipped).is_err(), "a flipped bit fails the CRC");
        assert!(ProducerStates::decode_snapshot(&bytes[..bytes.len() - 1]).is_err());
        let mut expiring = back.clone();
        expiring.expire_before(2_500);
        assert_eq!(expiring.len(), 1, "producer 7's last batch is older than the cut-off");
    }
}
