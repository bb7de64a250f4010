//! `PartitionLog`: one partition's segments, its append path and its read path.
//!
//! Appends are queued and written by a single writer task per partition, so that offsets are
//! assigned in arrival order and batches that arrive together go to the page cache in one
//! io_uring writev (group commit). The producer's bytes are not copied: each batch is written
//! as a stamped copy of its 61-byte header followed by its untouched records.
//!
//! Only the owning shard touches a `PartitionLog` (it is `!Send`); no lock is taken. Borrows of
//! the state never live across an await.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;

use super::compaction::{self, SegmentSnapshot};
use super::recovery::{self, RecoveredLog};
use super::segment::{BatchHeader, LogSegment};
use super::{LogCheckpoint, RecoveryPoint};
use crate::config::{limits, LogConfig};
use crate::io::runtime::{now_ms, spawn_detached};
use crate::io::LogFile;
use crate::protocol::record_batch::{self, BatchView};

/// A range of a segment file: what a fetch sends. `Send`, so it can travel to the shard that
/// owns the connection, and it keeps the file open until it has been sent.
#[derive(Debug, Clone)]
pub struct FileSlice {
    pub file: LogFile,
    pub position: u64,
    pub len: u32,
    /// Whether the slice is in the active segment (written lately, so the page cache holds it
    /// whole, not half read in from disk): only such slices may be sent on the shard thread.
    pub active_segment: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    pub base_offset: i64,
    /// The broker's timestamp for LogAppendTime topics, -1 otherwise.
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendError {
    /// The log could not be written (and is now offline).
    Storage,
    /// The partition was deleted while the append waited.
    Deleted,
    /// An idempotent producer's batch does not follow its previous one.
    OutOfOrderSequence,
    /// An idempotent producer's batch from an epoch that has been superseded.
    InvalidProducerEpoch,
    /// A follower's batches do not start at its log end offset.
    OffsetMismatch,
    /// A transactional batch without its transaction open here (or a plain one inside it).
    InvalidTxnState,
    /// A transaction marker from an older transaction coordinator.
    CoordinatorFenced,
    /// The transaction coordinator did not confirm a first transactional batch (KIP-890):
    /// its answer, as the producer is to get it.
    Unverified(crate::protocol::ErrorCode),
}

#[derive(Debug)]
pub struct ReadResult {
    pub records: Option<FileSlice>,
    /// The size of the first batch in `records` (0 without records): a response may cut a
    /// later partition's records short, but never below its first batch.
    pub first_batch_bytes: u32,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// The last stable offset (the high watermark, or the first offset of the oldest
    /// transaction still open below it).
    pub last_stable_offset: i64,
    /// For a read_committed read: the aborted transactions its records overlap, as (producer
    /// id, first offset).
    pub aborted: Vec<(i64, i64)>,
}

/// How far a read may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadLimit {
    /// A consumer reading uncommitted: up to the high watermark.
    HighWatermark,
    /// A read_committed consumer: up to the last stable offset, told of aborted transactions.
    LastStable,
    /// A follower: up to the log end offset.
    LogEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    OffsetOutOfRange {
        log_start_offset: i64,
        high_watermark: i64,
    },
    /// The log cannot be read (a failed write took it offline).
    Storage,
    /// The partition was deleted.
    Deleted,
}

struct PendingAppend {
    batches: Vec<Bytes>,
    /// A follower's append: the batches carry the leader's offsets and leader epochs, written
    /// as they are.
    replica: bool,
    /// The KIP-890 verification guard a first transactional batch was verified under
    /// (`producer::Producer::verified`); `None` for the broker's own writes.
    guard: Option<u64>,
    /// The transaction coordinator's answer this append waits for, at its place in the
    /// queue, before it is written (`append_after_verification`).
    gate: Option<flume::Receiver<crate::protocol::ErrorCode>>,
    reply: flume::Sender<Result<AppendResult, AppendError>>,
}

struct LogState {
    /// Sorted by base offset; the last one is the active segment. Never empty.
    segments: Vec<LogSegment>,
    log_start_offset: i64,
    /// Every offset below it is known to be on disk (fsynced).
    recovery_point: i64,
    unflushed_messages: i64,
    last_flush_ms: i64,
    offline: bool,
    deleted: bool,
}

impl LogState {
    fn active(&self) -> &LogSegment {
        self.segments.last().expect("a log always has an active segment")
    }
    fn active_mut(&mut self) -> &mut LogSegment {
        self.segments.last_mut().expect("a log always has an active segment")
    }
    fn log_end_offset(&self) -> i64 {
        self.active().next_offset
    }
}

pub struct PartitionLog {
    pub topic: String,
    pub partition: i32,
    dir: PathBuf,
    config: RefCell<LogConfig>,
    state: RefCell<LogState>,
    pending: RefCell<VecDeque<PendingAppend>>,
    writer_running: Cell<bool>,
    /// Long-polling fetches waiting for the high watermark to move.
    waiters: RefCell<Vec<flume::Sender<()>>>,
    /// Idempotent producers' last batches and open transactions (only the writer task
    /// changes it).
    producers: RefCell<super::producer::ProducerStates>,
    /// The aborted transactions, in marker order (`txn_index`).
    aborted: RefCell<super::txn_index::AbortedTxns>,
    /// Transactions whose marker is past the high watermark, as (marker offset, first offset):
    /// still unstable for the last stable offset, as Kafka's `unreplicatedTxns`.
    unreplicated_txns: RefCell<VecDeque<(i64, i64)>>,
    /// Whether the active segment's `.txnindex` has entries not fsynced yet.
    txn_index_dirty: Cell<bool>,
    /// Rolled segments waiting to be made durable, oldest first, and whether the task that
    /// flushes them (in order, so the recovery point never passes an unflushed segment) runs.
    rolled: RefCell<VecDeque<RolledSegment>>,
    flusher_running: Cell<bool>,
    /// How many times an append fsynced the folder for a new segment's name (for tests).
    name_syncs: Cell<u64>,
    /// Where in which segment (its base offset) writeback was last asked to start.
    written_back: Cell<(i64, u64)>,
    /// The writebacks asked for, as (segment base offset, from, length) (for tests).
    #[cfg(test)]
    writeback_ranges: RefCell<Vec<(i64, u64, u64)>>,
    /// The base offset of the active segment when compaction last ran: it runs again once a
    /// newer segment has been rolled.
    compacted_through: Cell<i64>,
    /// The partition folder, held open: checkpoints are written relative to it, so a folder
    /// renamed away by a topic deletion never receives a write meant for its successor.
    dir_handle: std::sync::Arc<std::fs::File>,
    /// Byte ranges the scrubber found damaged, as (segment base offset, from, to): reads stop
    /// before them, and a read that starts in one fails.
    damaged: RefCell<Vec<(i64, u32, u32)>>,
    /// The leader epoch stamped into the batches this log appends as leader (0 on a single
    /// node).
    leader_epoch: Cell<i32>,
    /// In a cluster, the high watermark the partition's replication sets (the leader's: the
    /// smallest log end offset of the ISR; a follower's: what its leader last reported).
    /// `None` on a single node, where every written batch is committed.
    replicated_high_watermark: Cell<Option<i64>>,
    /// In a cluster, the ends of the batches appended since the high watermark, as (offset
    /// after the batch, its segment's base offset, the file position after it): where a
    /// consumer's read must stop, without reading headers back. Only kept while replicated.
    boundaries: RefCell<VecDeque<(i64, i64, u32)>>,
    /// Where each leader epoch began (`leader-epoch-checkpoint`).
    epochs: RefCell<super::epoch::LeaderEpochCache>,
}

/// Where a consumer's read of a segment must stop (`PartitionLog::position_of`).
enum HighWatermarkAt {
    Position(u32),
    /// The whole segment is below the high watermark.
    PastSegment,
    /// Not recorded: the batch headers tell.
    Unknown,
}

/// Drops segments whose files are gone (retention) or replaced (compaction) on the blocking
/// pool, in one task: the last close of an unlinked file frees its blocks and pages in the kernel, which
/// took 340-350 ms on the shard thread for a 512 MiB segment (`spate bench stall`). (A fetch
/// that still holds the file closes it last, wherever it is.)
fn drop_off_shard(segments: Vec<LogSegment>) {
    if segments.is_empty() {
        return;
    }
    spawn_detached(async move {
        let _ = compio::runtime::spawn_blocking(move || drop(segments)).await;
    });
}

/// A log opened from its folder, recovered, not yet installed on its shard: what the blocking
/// part of opening makes (folders, the first segment and their fsyncs for a new partition; the
/// recovery scan for an existing one), so that it can run off the shard thread.
pub struct OpenedLog {
    dir: PathBuf,
    topic: String,
    partition: i32,
    config: LogConfig,
    recovered: RecoveredLog,
    dir_handle: std::sync::Arc<std::fs::File>,
    epochs: super::epoch::LeaderEpochCache,
    producers: super::producer::LoadedState,
}

impl OpenedLog {
    /// Opens (or creates) the log in `dir`, blocking: recovery scans and fsyncs happen here.
    pub fn open(dir: &Path, topic: &str, partition: i32, config: LogConfig, start: RecoveryPoint) -> io::Result<OpenedLog> {
        crate::io::fs::create_dir_all(dir)?;
        let recovered = recovery::recover(dir, topic, partition, &config, start)?;
        let dir_handle = std::sync::Arc::new(std::fs::File::open(dir)?);
        // Epochs that began past what recovery kept are gone with their batches.
        let mut epochs = super::epoch::LeaderEpochCache::load(dir);
        epochs.truncate_from_end(recovered.segments.last().map_or(0, |s| s.next_offset))?;
        // Derived state: a snapshot folder that cannot be read costs idempotence across this
        // restart (producers start over, as new ones may), not the partition.
        let producers = super::producer::load_state(dir, &recovered.segments, now_ms().saturating_sub(config.producer_id_expiration_ms)).unwrap_or_else(|e| {
            tracing::error!(topic, partition, error = %e, "could not rebuild the idempotent producers' state; it starts empty");
            Default::default()
        });
        Ok(OpenedLog { dir: dir.to_owned(), topic: topic.to_owned(), partition, config, recovered, dir_handle, epochs, producers })
    }
}

/// Producer state snapshots kept per partition (the newest ones; older ones only save replay).
const SNAPSHOTS_KEPT: usize = 2;

/// A segment closed by a roll, until its bytes and indexes are on disk.
struct RolledSegment {
    log: LogFile,
    index_paths: [PathBuf; 2],
    /// The segment's base offset: the recovery point may not pass it before this is durable.
    base_offset: i64,
    /// The recovery point once this segment (and every older one) is durable.
    end_offset: i64,
}

thread_local! {
    /// Whether a writeback (`PartitionLog::start_writeback`) runs on this shard's blocking pool.
    static WRITEBACK_RUNNING: Cell<bool> = const { Cell::new(false) };
}

/// The range of the active segment (base offset `base`, `size` bytes) to hand to writeback,
/// as (from, length), given where the last one ended (`last`: segment base offset and
/// position): everything since then once it is at least `interval` bytes, counting from the
/// start of a segment the last one was not in. `interval` 0 never asks.
fn writeback_range(last: (i64, u64), base: i64, size: u64, interval: u32) -> Option<(u64, u64)> {
    let from = if last.0 == base { last.1 } else { 0 };
    (interval > 0 && size.saturating_sub(from) >= interval as u64).then(|| (from, size - from))
}

impl PartitionLog {
    /// Opens (or creates) the log in `dir`, recovering it if the last shutdown was not clean.
    pub fn open(dir: &Path, topic: &str, partition: i32, config: LogConfig, start: RecoveryPoint) -> io::Result<Rc<PartitionLog>> {
        Ok(PartitionLog::from_opened(OpenedLog::open(dir, topic, partition, config, start)?))
    }

    /// Installs a log that `OpenedLog::open` opened (on any thread).
    pub fn from_opened(opened: OpenedLog) -> Rc<PartitionLog> {
        let OpenedLog { dir, topic, partition, config, recovered: RecoveredLog { segments, recovery_point, corruption }, dir_handle, epochs, producers } =
            opened;
        let log_start_offset = segments[0].base_offset;
        let log = PartitionLog {
            topic,
            partition,
            dir,
            config: RefCell::new(config),
            state: RefCell::new(LogState {
                segments,
                log_start_offset,
                recovery_point,
                unflushed_messages: 0,
                last_flush_ms: now_ms(),
                offline: corruption.is_some(),
                deleted: false,
            }),
            pending: RefCell::new(VecDeque::new()),
            writer_running: Cell::new(false),
            waiters: RefCell::new(Vec::new()),
            producers: RefCell::new(producers.producers),
            aborted: RefCell::new(producers.aborted),
            unreplicated_txns: RefCell::new(VecDeque::new()),
            txn_index_dirty: Cell::new(false),
            rolled: RefCell::new(VecDeque::new()),
            flusher_running: Cell::new(false),
            name_syncs: Cell::new(0),
            written_back: Cell::new((-1, 0)),
            #[cfg(test)]
            writeback_ranges: RefCell::new(Vec::new()),
            compacted_through: Cell::new(-1),
            dir_handle,
            damaged: RefCell::new(Vec::new()),
            leader_epoch: Cell::new(0),
            replicated_high_watermark: Cell::new(None),
            boundaries: RefCell::new(VecDeque::new()),
            epochs: RefCell::new(epochs),
        };
        log.check_invariants();
        Rc::new(log)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> LogConfig {
        self.config.borrow().clone()
    }

    pub fn set_config(&self, config: LogConfig) {
        *self.config.borrow_mut() = config;
    }

    pub fn log_start_offset(&self) -> i64 {
        self.state.borrow().log_start_offset
    }

    pub fn log_end_offset(&self) -> i64 {
        self.state.borrow().log_end_offset()
    }

    /// The offset below which every record is committed. With a single replica that is every
    /// written batch (the log end offset); in a cluster, what replication set
    /// (`set_high_watermark`), never past the log end offset.
    pub fn high_watermark(&self) -> i64 {
        let end = self.log_end_offset();
        self.replicated_high_watermark.get().map_or(end, |hw| hw.min(end))
    }

    /// Makes the high watermark replication's to set (from `initial`), or (`None`) the log
    /// end offset again.
    pub fn set_replicated(&self, initial: Option<i64>) {
        self.replicated_high_watermark.set(initial.map(|hw| hw.clamp(self.log_start_offset(), self.log_end_offset())));
        self.boundaries.borrow_mut().clear();
        self.notify_waiters();
    }

    pub fn is_replicated(&self) -> bool {
        self.replicated_high_watermark.get().is_some()
    }

    /// Moves a replicated log's high watermark to `hw` (clamped to the log's offsets); it only
    /// ever moves forward. Wakes the fetches and acks=all produces waiting for it.
    pub fn set_high_watermark(&self, hw: i64) {
        let Some(current) = self.replicated_high_watermark.get() else { return };
        let hw = hw.clamp(self.log_start_offset(), self.log_end_offset());
        if hw > current {
            self.replicated_high_watermark.set(Some(hw));
            // Boundaries below the new high watermark are not needed any more, but the last of
            // them is where reads stop now.
            let mut boundaries = self.boundaries.borrow_mut();
            while boundaries.len() > 1 && boundaries[1].0 <= hw {
                boundaries.pop_front();
            }
            drop(boundaries);
            self.notify_waiters();
        }
        debug_assert!(self.log_start_offset() <= self.high_watermark() && self.high_watermark() <= self.log_end_offset());
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.get()
    }

    /// Becomes leader at `epoch`: the batches it appends from now on carry it, and the epoch
    /// cache records that it begins at the log end offset.
    pub fn become_leader(&self, epoch: i32) -> io::Result<()> {
        self.leader_epoch.set(epoch);
        self.epochs.borrow_mut().assign(epoch, self.log_end_offset())
    }

    /// The epoch of the last batch this log holds (from the epoch cache), -1 when unknown.
    pub fn last_epoch(&self) -> i32 {
        self.epochs.borrow().latest().map_or(-1, |(e, _)| e)
    }

    /// Where `epoch` ends in this log (`LeaderEpochCache::end_offset_for`).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.epochs.borrow().end_offset_for(epoch, self.log_end_offset())
    }

    pub fn segment_count(&self) -> usize {
        self.state.borrow().segments.len()
    }

    pub fn size_bytes(&self) -> u64 {
        self.state.borrow().segments.iter().map(|s| s.size as u64).sum()
    }

    fn check_invariants(&self) {
        let state = self.state.borrow();
        assert!(state.log_start_offset <= state.log_end_offset(), "log_start_offset <= log_end_offset");
        assert!(state.segments.windows(2).all(|w| w[0].base_offset < w[1].base_offset), "segments sorted");
    }

    /// Queues validated batches for appending. Offsets are assigned when the writer takes them,
    /// in queue order; the future completes once they are in the page cache (and on disk, when
    /// the flush policy says so).
    pub fn append(self: &Rc<Self>, batches: Vec<Bytes>) -> impl std::future::Future<Output = Result<AppendResult, AppendError>> + 'static {
        self.append_verified(batches, None)
    }

    /// `append`, for a producer's first transactional batch in this partition: written only if
    /// `guard` (from `start_verification`, before the transaction coordinator was asked) is
    /// still the producer's, i.e. no marker ended the transaction since (KIP-890).
    pub fn append_verified(
        self: &Rc<Self>,
        batches: Vec<Bytes>,
        guard: Option<u64>,
    ) -> impl std::future::Future<Output = Result<AppendResult, AppendError>> + 'static {
        self.queue_append(batches, guard, None)
    }

    /// `append_verified`, queued now and written once `verified` brings the transaction
    /// coordinator's NONE (failing with its error otherwise): the append keeps its place in the
    /// partition's queue while the coordinator is asked, so a producer's pipelined batches
    /// (the first ones verified, the later ones not needing it) are written in their order.
    pub fn append_after_verification(
        self: &Rc<Self>,
        batches: Vec<Bytes>,
        guard: u64,
        verified: flume::Receiver<crate::protocol::ErrorCode>,
    ) -> impl std::future::Future<Output = Result<AppendResult, AppendError>> + 'static {
        self.queue_append(batches, Some(guard), Some(verified))
    }

    fn queue_append(
        self: &Rc<Self>,
        batches: Vec<Bytes>,
        guard: Option<u64>,
        gate: Option<flume::Receiver<crate::protocol::ErrorCode>>,
    ) -> impl std::future::Future<Output = Result<AppendResult, AppendError>> + 'static {
        let (reply, result) = flume::bounded(1);
        if self.state.borrow().deleted {
            let _ = reply.send(Err(AppendError::Deleted));
        } else {
            self.pending.borrow_mut().push_back(PendingAppend { batches, replica: false, guard, gate, reply });
            if !self.writer_running.replace(true) {
                let log = self.clone();
                spawn_detached(async move { log.writer_loop().await });
            }
        }
        async move { result.recv_async().await.unwrap_or(Err(AppendError::Deleted)) }
    }

    /// A follower's append: batches fetched from the leader, with the leader's offsets and
    /// leader epochs in their headers, written exactly as they are. The first must start at
    /// this log's end offset (`OffsetMismatch` otherwise). Queued behind any other append.
    pub fn append_as_follower(self: &Rc<Self>, batches: Vec<Bytes>) -> impl std::future::Future<Output = Result<AppendResult, AppendError>> + 'static {
        let (reply, result) = flume::bounded(1);
        if self.state.borrow().deleted {
            let _ = reply.send(Err(AppendError::Deleted));
        } else {
            self.pending.borrow_mut().push_back(PendingAppend { batches, replica: true, guard: None, gate: None, reply });
            if !self.writer_running.replace(true) {
                let log = self.clone();
                spawn_detached(async move { log.writer_loop().await });
            }
        }
        async move { result.recv_async().await.unwrap_or(Err(AppendError::Deleted)) }
    }

    /// Cuts the log back to `offset` (a batch boundary): what a follower does before it fetches
    /// from a new leader, so that its log is a prefix of the leader's. Segments that start at or
    /// after `offset` are deleted; the one that holds it is cut at the first batch at or after
    /// it, and becomes the active segment again if it had been rolled (`LogSegment::unseal`);
    /// the epoch cache, the idempotent producers' batches and the high watermark follow.
    /// Refused (nothing changed) while appends are under way.
    pub async fn truncate_to(&self, offset: i64) -> io::Result<()> {
        self.wait_for_writer().await?;
        let end = self.log_end_offset();
        if offset >= end {
            // Nothing to cut, but an epoch this log began and never wrote in goes (a leader
            // deposed before its first append), or its fetches would diverge for ever.
            return self.epochs.borrow_mut().truncate_from_end(end);
        }
        let offset = offset.max(self.log_start_offset());
        // Where the cut falls: `keep` segments stay, the last of them cut if `partial`.
        let (keep, count, partial) = {
            let state = self.state.borrow();
            let keep = state.segments.partition_point(|s| s.base_offset < offset);
            (keep, state.segments.len(), keep > 0 && state.segments[keep - 1].next_offset > offset)
        };
        if partial {
            // Found before anything changes: the byte position of the first batch at or after
            // `offset` in the segment that holds it.
            let (file, size, base, next, start_position) = {
                let state = self.state.borrow();
                let segment = &state.segments[keep - 1];
                let relative = (offset - segment.base_offset).clamp(0, u32::MAX as i64) as u32;
                (segment.log.clone(), segment.size, segment.base_offset, segment.next_offset, segment.index.lookup(relative).position)
            };
            let mut cursor = HeaderCursor::new(&file, size);
            let mut position = start_position;
            let mut cut_at = next;
            while let Some(header) = cursor.header_at(position).await? {
                if header.base_offset >= offset {
                    cut_at = header.base_offset;
                    break;
                }
                position += header.size;
            }
            let changed = {
                let state = self.state.borrow();
                self.writer_running.get() || state.segments.len() != count || state.segments[keep - 1].base_offset != base
            };
            if changed {
                return Err(io::Error::other("the log changed while its cut was being found"));
            }
            // From here on nothing awaits: the cut is one step for the shard.
            self.remove_segments_from(keep)?;
            let mut state = self.state.borrow_mut();
            let segment = state.segments.last_mut().expect("the cut segment stays");
            if segment.has_sealed_indexes() {
                segment.unseal()?;
            }
            segment.truncate_to(position.min(size), cut_at)?;
        } else {
            self.drop_segments_from(keep, offset)?;
        }
        self.after_cut();
        tracing::info!(topic = %self.topic, partition = self.partition, offset = self.log_end_offset(), "log truncated");
        Ok(())
    }

    /// Empties the log and starts it again at `offset`: a follower whose log ends before the
    /// leader's begins (Kafka's `truncateFullyAndStartAt`).
    pub async fn truncate_fully_and_start_at(&self, offset: i64) -> io::Result<()> {
        self.wait_for_writer().await?;
        self.drop_segments_from(0, offset)?;
        self.state.borrow_mut().log_start_offset = offset;
        self.epochs.borrow_mut().truncate_from_end(i64::MIN)?;
        self.after_cut();
        if let Some(hw) = self.replicated_high_watermark.get() {
            self.replicated_high_watermark.set(Some(hw.max(offset)));
        }
        tracing::info!(topic = %self.topic, partition = self.partition, offset, "log emptied to start at the leader's log start");
        Ok(())
    }

    async fn wait_for_writer(&self) -> io::Result<()> {
        for _ in 0..5_000 {
            if !self.writer_running.get() && self.pending.borrow().is_empty() {
                return Ok(());
            }
            crate::io::runtime::sleep(std::time::Duration::from_millis(1)).await;
        }
        Err(io::Error::other("appends still under way"))
    }

    /// Deletes the segments from index `keep` on; when what is left ends with a sealed segment
    /// (or nothing), a new active segment starts at `next` (the log end offset then).
    fn drop_segments_from(&self, keep: usize, next: i64) -> io::Result<()> {
        self.remove_segments_from(keep)?;
        {
            let mut state = self.state.borrow_mut();
            if state.segments.last().is_none_or(|s| s.has_sealed_indexes()) {
                let start = state.segments.last().map_or(next, |s| s.next_offset);
                state.segments.push(LogSegment::create(&self.dir, start, now_ms())?);
            }
        }
        Ok(())
    }

    /// Deletes the segments from index `keep` on, files first (a reader's open file or index
    /// mapping stays valid on the unlinked inode); their handles close off the shard.
    fn remove_segments_from(&self, keep: usize) -> io::Result<()> {
        let mut gone = Vec::new();
        let result = (|| {
            let mut state = self.state.borrow_mut();
            while state.segments.len() > keep {
                let segment = state.segments.last().expect("more than keep");
                for path in [segment.path.clone(), segment.index_path(), segment.time_index_path(), segment.txn_index_path()] {
                    crate::io::fs::remove_file_if_exists(&path)?;
                }
                gone.push(state.segments.pop().expect("more than keep"));
            }
            Ok(())
        })();
        drop_off_shard(gone);
        result
    }

    /// After a cut: the recovery point, high watermark, epoch cache, producers' batches and
    /// boundaries no longer pass the log end.
    fn after_cut(&self) {
        let end = self.log_end_offset();
        {
            let mut state = self.state.borrow_mut();
            state.recovery_point = state.recovery_point.min(end);
        }
        if let Some(hw) = self.replicated_high_watermark.get() {
            self.replicated_high_watermark.set(Some(hw.min(end)));
        }
        if let Err(e) = self.epochs.borrow_mut().truncate_from_end(end) {
            tracing::error!(topic = %self.topic, partition = self.partition, error = %e, "could not write the leader epoch checkpoint");
        }
        // Rolled segments cut away are no longer the flusher's to make durable.
        self.rolled.borrow_mut().retain(|r| r.end_offset <= end);
        // A snapshot past the cut describes batches that are gone.
        if let Err(e) = super::producer::prune_snapshots(&self.dir, self.log_start_offset(), end, SNAPSHOTS_KEPT) {
            tracing::error!(topic = %self.topic, partition = self.partition, error = %e, "could not remove the producer snapshots past a cut");
        }
        // The producers' state is rebuilt from the newest snapshot left and the log after it,
        // as Kafka's `truncateAndReload`: a transaction whose marker was cut is open again.
        // (Blocking reads of batch headers on the shard: cuts are rare, a follower's.)
        let expired_before = now_ms().saturating_sub(self.config.borrow().producer_id_expiration_ms);
        let rebuilt = super::producer::load_state(&self.dir, &self.state.borrow().segments, expired_before);
        match rebuilt {
            Ok(loaded) => {
                *self.producers.borrow_mut() = loaded.producers;
                *self.aborted.borrow_mut() = loaded.aborted;
            }
            Err(e) => {
                tracing::error!(topic = %self.topic, partition = self.partition, error = %e, "could not rebuild the producers' state after a cut");
                self.producers.borrow_mut().truncate_from(end);
                self.aborted.borrow_mut().truncate_from(end);
            }
        }
        self.unreplicated_txns.borrow_mut().retain(|u| u.0 < end);
        self.boundaries.borrow_mut().retain(|b| b.0 <= end);
        self.written_back.set((-1, 0));
    }

    async fn writer_loop(self: Rc<Self>) {
        loop {
            let mut group = {
                let mut pending = self.pending.borrow_mut();
                let mut group = Vec::new();
                let mut batch_count = 0;
                while let Some(next) = pending.front() {
                    // An append waiting for its verification goes alone, once those before it
                    // are written.
                    if !group.is_empty() && (next.gate.is_some() || batch_count + next.batches.len() > limits::APPEND_BATCHES_PER_WRITE_MAX) {
                        break;
                    }
                    batch_count += next.batches.len();
                    group.push(pending.pop_front().expect("front exists"));
                    if group[0].gate.is_some() {
                        break;
                    }
                }
                group
            };
            if group.is_empty() {
                self.writer_running.set(false);
                return;
            }
            if let Some(gate) = group[0].gate.take() {
                let answer = gate.recv_async().await.unwrap_or(crate::protocol::ErrorCode::NOT_ENOUGH_REPLICAS);
                if !answer.is_ok() {
                    let _ = group[0].reply.send(Err(AppendError::Unverified(answer)));
                    continue;
                }
            }
            self.write_group(group).await;
            self.start_flusher();
        }
    }

    /// Asks the kernel to start writing the active segment's bytes appended since the last ask
    /// to disk, once there are `interval` of them, without waiting for it (on the blocking pool:
    /// the call can still wait for a busy disk queue). Dirty pages then do not pile up: without
    /// it, a 1 GiB segment stayed dirty until its roll (1.0-1.4 GB Dirty in /proc/meminfo), and
    /// the fsync of all of it at once coincided with a throughput dip and 100-450 ms produce
    /// latencies (bench/RESULTS.md; what in the kernel held the appends was not isolated).
    /// Durability is unchanged: fsync still decides what is on disk; this only spreads the
    /// writing out.
    ///
    /// At most one writeback runs per shard (`WRITEBACK_RUNNING`): compio's blocking pool has
    /// `IO_WORKERS_MAX` threads, and when they are all busy, handing it more work spins the
    /// shard thread. A writeback that finds one running is skipped; the bytes stay pending and
    /// the next append after it ends asks for them too.
    fn start_writeback(&self, interval: u32) {
        let (base, size) = {
            let state = self.state.borrow();
            (state.active().base_offset, state.active().size as u64)
        };
        let Some((from, len)) = writeback_range(self.written_back.get(), base, size, interval) else { return };
        if WRITEBACK_RUNNING.with(|running| running.replace(true)) {
            return;
        }
        self.written_back.set((base, from + len));
        #[cfg(test)]
        self.writeback_ranges.borrow_mut().push((base, from, len));
        let file = self.state.borrow().active().log.shared();
        spawn_detached(async move {
            let _ = compio::runtime::spawn_blocking(move || crate::io::fs::start_writeback(&file, from, len)).await;
            WRITEBACK_RUNNING.with(|running| running.set(false));
        });
    }

    /// How far an fsync of the active segment makes the log durable: to its end, unless a
    /// rolled segment is still waiting for its own fsync (the flusher moves the recovery point
    /// past it once it is done).
    fn durable_end(&self, state: &LogState) -> i64 {
        self.rolled.borrow().front().map_or(state.log_end_offset(), |r| r.base_offset.min(state.log_end_offset()))
    }

    /// The active segment's pages are clean up to `size` (an fsync just wrote them).
    fn mark_written_back(&self) {
        let state = self.state.borrow();
        self.written_back.set((state.active().base_offset, state.active().size as u64));
    }

    fn start_flusher(self: &Rc<Self>) {
        if !self.rolled.borrow().is_empty() && !self.flusher_running.replace(true) {
            let log = self.clone();
            spawn_detached(async move { log.flush_rolled().await });
        }
    }

    /// Makes rolled segments durable, oldest first, off the shard thread (the fsyncs run on the
    /// runtime's blocking pool), and moves the recovery point after each (the log dir's
    /// checkpoint file records it at its next write, as in Kafka). A failed fsync takes
    /// the log offline: what was acknowledged may not be on disk, and Kafka stops there too.
    async fn flush_rolled(self: Rc<Self>) {
        loop {
            // Left at the front of the queue until it is durable: the recovery point may not
            // pass it meanwhile (`durable_end`).
            let next = self.rolled.borrow().front().map(|r| (r.log.clone(), r.index_paths.clone(), r.end_offset));
            let Some((log, index_paths, end)) = next else { break };
            if self.state.borrow().deleted {
                self.rolled.borrow_mut().clear();
                break;
            }
            let dir = self.dir_handle.clone();
            let flushed = compio::runtime::spawn_blocking(move || -> io::Result<()> {
                log.sync_data_blocking()?;
                for path in &index_paths {
                    crate::io::fs::sync_file(&std::fs::File::open(path)?)?;
                }
                crate::io::fs::sync_dir_handle(&dir)?;
                crate::io::crash::point("flush.after_segment_fsync");
                Ok(())
            })
            .await;
            // Retention, or a follower's cut (`truncate_to`), may have taken it off the queue
            // meanwhile.
            let queued = {
                let mut rolled = self.rolled.borrow_mut();
                let queued = rolled.front().is_some_and(|r| r.end_offset == end);
                if queued {
                    rolled.pop_front();
                }
                queued
            };
            // A cut segment's end is past the log's now: the recovery point stays where the
            // cut put it.
            let deleted_by_retention = end <= self.log_start_offset();
            match flushed {
                Ok(Ok(())) if queued || deleted_by_retention => {
                    let mut state = self.state.borrow_mut();
                    state.recovery_point = state.recovery_point.max(end);
                }
                Ok(Ok(())) => {}
                // Retention deleted the segment while it waited (an expired active segment is
                // rolled and deleted in one pass): there is nothing left to make durable.
                Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound && deleted_by_retention => {
                    let mut state = self.state.borrow_mut();
                    state.recovery_point = state.recovery_point.max(end);
                }
                // A cut removed its files (or its index files, making it active again): what
                // is left of it is the active segment's to make durable.
                Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound && !queued => {}
                Ok(Err(e)) => {
                    tracing::error!(topic = %self.topic, partition = self.partition, error = %e, "flushing a rolled segment failed; log offline");
                    self.state.borrow_mut().offline = true;
                }
                Err(_) => self.state.borrow_mut().offline = true,
            }
        }
        self.flusher_running.set(false);
    }

    /// Writes one group of appends: rolls where a request would not fit, stamps offsets into
    /// header copies, writes each run of requests that shares a segment with one writev.
    async fn write_group(&self, group: Vec<PendingAppend>) {
        let config = self.config();
        let now = now_ms();
        let log_append_time = config.message_timestamp_type_log_append.then_some(now);
        let mut staged: Vec<(PendingAppend, i64)> = Vec::new();
        let mut iovecs: Vec<Bytes> = Vec::new();
        let mut headers: Vec<(BatchHeader, u32)> = Vec::new();
        // Every stamped header of the group lives in one buffer; the iovecs that point at them
        // are filled in by `commit`, so a write costs one allocation, not one per batch.
        let mut stamped_headers = bytes::BytesMut::with_capacity(record_batch::HEADER_BYTES * group.iter().map(|r| r.batches.len()).sum::<usize>());
        let (mut next_offset, mut position) = {
            let state = self.state.borrow();
            (state.log_end_offset(), state.active().size)
        };
        for request in group {
            if self.state.borrow().offline || self.state.borrow().deleted {
                let error = if self.state.borrow().deleted { AppendError::Deleted } else { AppendError::Storage };
                let _ = request.reply.send(Err(error));
                continue;
            }
            if request.replica {
                // A follower's batches: the leader's offsets and epochs, as they are.
                let first = BatchView { bytes: &request.batches[0] };
                let request_bytes: u64 = request.batches.iter().map(|b| b.len() as u64).sum();
                if first.base_offset() != next_offset {
                    Self::fail(request, AppendError::OffsetMismatch);
                    continue;
                }
                if self.should_roll(&config, request_bytes, position, next_offset, now) {
                    if let Err(e) = self.commit_and_roll(&config, &mut staged, &mut stamped_headers, &mut iovecs, &mut headers, log_append_time, now).await {
                        Self::fail(request, e);
                        continue;
                    }
                    position = 0;
                }
                let base_offset = next_offset;
                for batch in &request.batches {
                    let view = BatchView { bytes: batch };
                    let batch_header = BatchHeader {
                        base_offset: view.base_offset(),
                        last_offset: view.last_offset(),
                        max_timestamp: view.max_timestamp(),
                        size: batch.len() as u32,
                    };
                    headers.push((batch_header, position));
                    stamped_headers.extend_from_slice(&batch[..record_batch::HEADER_BYTES]);
                    iovecs.push(batch.slice(record_batch::HEADER_BYTES..));
                    if let Err(e) = self.epochs.borrow_mut().assign(view.partition_leader_epoch(), view.base_offset()) {
                        tracing::error!(topic = %self.topic, partition = self.partition, error = %e, "could not write the leader epoch checkpoint");
                    }
                    // Idempotent producers' state and open transactions follow the leader's, so
                    // that a follower made leader still tells a retry from a new batch, and
                    // its consumers see the same last stable offset and aborted transactions.
                    if view.producer_id() >= 0 && view.is_control() {
                        if let Some(marker) = record_batch::control_record(&batch[record_batch::HEADER_BYTES..]) {
                            let done = self.producers.borrow_mut().complete(
                                view.producer_id(),
                                view.producer_epoch(),
                                marker.commit,
                                marker.coordinator_epoch,
                                view.base_offset(),
                                view.max_timestamp(),
                            );
                            if let Some(t) = done {
                                self.transaction_completed(t);
                            }
                        }
                    } else if view.producer_id() >= 0 {
                        self.producers.borrow_mut().record(
                            view.producer_id(),
                            view.producer_epoch(),
                            view.base_sequence(),
                            view.base_sequence().wrapping_add(view.last_offset_delta()),
                            view.base_offset(),
                            view.max_timestamp(),
                            view.is_transactional(),
                        );
                    }
                    next_offset = batch_header.last_offset + 1;
                    position += batch.len() as u32;
                }
                staged.push((request, base_offset));
                continue;
            }
            // Idempotent producers: a retried batch is answered with where it went, a gap or a
            // fenced epoch is refused. (Produce carries one batch per partition.)
            let first = BatchView { bytes: &request.batches[0] };
            let sequence = (first.producer_id(), first.producer_epoch(), first.base_sequence(), first.base_sequence().wrapping_add(first.last_offset_delta()));
            // A transaction marker (the broker's own write: WriteTxnMarkers), checked as
            // Kafka's `appendEndTxnMarker` checks it.
            let marker = first.is_control().then(|| record_batch::control_record(&request.batches[0][record_batch::HEADER_BYTES..]));
            if let Some(marker) = marker {
                let refusal = match marker.map(|m| self.producers.borrow().check_marker(sequence.0, sequence.1, m.coordinator_epoch)) {
                    None => Some(AppendError::InvalidTxnState),
                    Some(Ok(())) => None,
                    Some(Err(super::producer::MarkerError::ProducerFenced)) => Some(AppendError::InvalidProducerEpoch),
                    Some(Err(super::producer::MarkerError::CoordinatorFenced)) => Some(AppendError::CoordinatorFenced),
                };
                if let Some(e) = refusal {
                    Self::fail(request, e);
                    continue;
                }
            } else if self.producers.borrow().check_transaction(sequence.0, sequence.1, first.is_transactional(), request.guard)
                != super::producer::SequenceCheck::Append
            {
                Self::fail(request, AppendError::InvalidTxnState);
                continue;
            }
            let check = if marker.is_some() {
                super::producer::SequenceCheck::Append
            } else {
                self.producers.borrow().check(sequence.0, sequence.1, sequence.2, sequence.3)
            };
            match check {
                super::producer::SequenceCheck::Append => {}
                // An original already written is answered now; one staged in this group is
                // not on the file yet, so its duplicate is answered with it, after the write
                // (and fails with it).
                super::producer::SequenceCheck::Duplicate { base_offset } if base_offset < self.log_end_offset() => {
                    let _ = request.reply.send(Ok(AppendResult { base_offset, log_append_time_ms: -1, log_start_offset: self.log_start_offset() }));
                    continue;
                }
                super::producer::SequenceCheck::Duplicate { base_offset } => {
                    staged.push((request, base_offset));
                    continue;
                }
                super::producer::SequenceCheck::OutOfOrder => {
                    Self::fail(request, AppendError::OutOfOrderSequence);
                    continue;
                }
                super::producer::SequenceCheck::Fenced => {
                    Self::fail(request, AppendError::InvalidProducerEpoch);
                    continue;
                }
                super::producer::SequenceCheck::InvalidTxnState => {
                    Self::fail(request, AppendError::InvalidTxnState);
                    continue;
                }
            }
            let request_bytes: u64 = request.batches.iter().map(|b| b.len() as u64).sum();
            if self.should_roll(&config, request_bytes, position, next_offset, now) {
                if let Err(e) = self.commit_and_roll(&config, &mut staged, &mut stamped_headers, &mut iovecs, &mut headers, log_append_time, now).await {
                    Self::fail(request, e);
                    continue;
                }
                position = 0;
                next_offset = self.log_end_offset();
            }
            let base_offset = next_offset;
            for batch in &request.batches {
                let view = BatchView { bytes: batch };
                let mut header: [u8; record_batch::HEADER_BYTES] = batch[..record_batch::HEADER_BYTES].try_into().expect("validated batches hold a header");
                record_batch::stamp_header(&mut header, &batch[record_batch::HEADER_BYTES..], next_offset, self.leader_epoch.get(), log_append_time);
                let stamped = BatchView { bytes: &header };
                let batch_header = BatchHeader {
                    base_offset: next_offset,
                    last_offset: next_offset + view.last_offset_delta() as i64,
                    max_timestamp: stamped.max_timestamp(),
                    size: batch.len() as u32,
                };
                headers.push((batch_header, position));
                stamped_headers.extend_from_slice(&header);
                iovecs.push(batch.slice(record_batch::HEADER_BYTES..));
                next_offset = batch_header.last_offset + 1;
                position += batch.len() as u32;
            }
            let timestamp = log_append_time.unwrap_or(first.max_timestamp());
            match marker.flatten() {
                Some(m) => {
                    let done = self.producers.borrow_mut().complete(sequence.0, sequence.1, m.commit, m.coordinator_epoch, base_offset, timestamp);
                    if let Some(t) = done {
                        self.transaction_completed(t);
                    }
                }
                None => self.producers.borrow_mut().record(sequence.0, sequence.1, sequence.2, sequence.3, base_offset, timestamp, first.is_transactional()),
            }
            staged.push((request, base_offset));
        }
        self.commit(&config, &mut staged, &mut stamped_headers, &mut iovecs, &mut headers, log_append_time).await;
    }

    /// Writes what is staged, then rolls: what a request that does not fit the active segment
    /// needs first, as leader or follower.
    #[allow(clippy::too_many_arguments)]
    async fn commit_and_roll(
        &self,
        config: &LogConfig,
        staged: &mut Vec<(PendingAppend, i64)>,
        stamped_headers: &mut bytes::BytesMut,
        iovecs: &mut Vec<Bytes>,
        headers: &mut Vec<(BatchHeader, u32)>,
        log_append_time: Option<i64>,
        now: i64,
    ) -> Result<(), AppendError> {
        if !self.commit(config, staged, stamped_headers, iovecs, headers, log_append_time).await {
            return Err(AppendError::Storage);
        }
        // The commit awaited: the partition may have been deleted meanwhile, and a roll must
        // not create files in a folder that may now be another topic's.
        if self.state.borrow().deleted {
            return Err(AppendError::Deleted);
        }
        if let Err(e) = self.roll(now) {
            tracing::error!(topic = %self.topic, partition = self.partition, error = %e, "segment roll failed; log offline");
            self.state.borrow_mut().offline = true;
            return Err(AppendError::Storage);
        }
        Ok(())
    }

    fn should_roll(&self, config: &LogConfig, request_bytes: u64, position: u32, next_offset: i64, now: i64) -> bool {
        let state = self.state.borrow();
        let active = state.active();
        if position == 0 {
            return false;
        }
        let too_big = position as u64 + request_bytes > config.segment_bytes as u64;
        let too_old = now - active.created_ms > config.segment_ms;
        let index_full = active.indexes_full(config.segment_index_bytes);
        // Offsets relative to the segment must fit the index's 4 bytes.
        let offsets_full = next_offset - active.base_offset > i32::MAX as i64 / 2;
        too_big || too_old || index_full || offsets_full
    }

    fn fail(request: PendingAppend, error: AppendError) {
        let _ = request.reply.send(Err(error));
    }

    /// Writes what is staged to the active segment, updates the indexes and the log end
    /// offset, applies the flush policy and answers the staged requests. Returns false if the
    /// write failed (the log is then offline and the requests have been answered with an error).
    /// `iovecs` holds each staged batch's records (everything after its header); the stamped
    /// headers are in `stamped_headers`, in the same order, and are interleaved here.
    async fn commit(
        &self,
        config: &LogConfig,
        staged: &mut Vec<(PendingAppend, i64)>,
        stamped_headers: &mut bytes::BytesMut,
        iovecs: &mut Vec<Bytes>,
        headers: &mut Vec<(BatchHeader, u32)>,
        log_append_time: Option<i64>,
    ) -> bool {
        if staged.is_empty() {
            return true;
        }
        if self.state.borrow().deleted {
            for (request, _) in staged.drain(..) {
                Self::fail(request, AppendError::Deleted);
            }
            stamped_headers.clear();
            iovecs.clear();
            headers.clear();
            return false;
        }
        let mut stamped = stamped_headers.split().freeze();
        let records = std::mem::take(iovecs);
        let mut interleaved = Vec::with_capacity(records.len() * 2);
        for body in records {
            interleaved.push(stamped.split_to(record_batch::HEADER_BYTES));
            interleaved.push(body);
        }
        assert!(stamped.is_empty(), "one stamped header per batch");
        *iovecs = interleaved;
        let (file, start) = {
            let state = self.state.borrow();
            (state.active().log.clone(), state.active().size)
        };
        crate::io::crash::point("append.before_write");
        let result = file.write_all_at(std::mem::take(iovecs), start as u64, config.write_inline_max_bytes as usize).await;
        crate::io::crash::point("append.after_write");
        if let Err(e) = result {
            tracing::error!(topic = %self.topic, partition = self.partition, error = %e, "log write failed; log offline");
            let mut state = self.state.borrow_mut();
            state.offline = true;
            // Cut off whatever part of the write reached the file, so that the log still ends
            // on a batch boundary.
            let _ = file.set_len(start as u64);
            drop(state);
            for (request, _) in staged.drain(..) {
                Self::fail(request, AppendError::Storage);
            }
            headers.clear();
            return false;
        }
        let records: i64 = headers.iter().map(|(h, _)| h.last_offset - h.base_offset + 1).sum();
        {
            let mut state = self.state.borrow_mut();
            let active = state.active_mut();
            let base = active.base_offset;
            let replicated = self.replicated_high_watermark.get().is_some();
            for (header, position) in headers.drain(..) {
                active.record_batch_appended(&header, position, config.index_interval_bytes);
                if replicated {
                    self.boundaries.borrow_mut().push_back((header.last_offset + 1, base, position + header.size));
                }
            }
            state.unflushed_messages += records;
        }
        let needs_flush = {
            let state = self.state.borrow();
            state.unflushed_messages >= config.flush_messages || now_ms() - state.last_flush_ms >= config.flush_ms
        };
        if needs_flush {
            if let Err(e) = file.sync_data().await {
                tracing::error!(topic = %self.topic, partition = self.partition, error = %e, "fsync failed; log offline");
                self.state.borrow_mut().offline = true;
                for (request, _) in staged.drain(..) {
                    Self::fail(request, AppendError::Storage);
                }
                return false;
            }
            crate::io::crash::point("append.after_fsync");
            // A segment a roll just created: its name is made durable too, once.
            if !self.state.borrow().active().name_durable {
                let dir = self.dir_handle.clone();
                match compio::runtime::spawn_blocking(move || crate::io::fs::sync_dir_handle(&dir)).await {
                    Ok(Ok(())) => {
                        self.state.borrow_mut().active_mut().name_durable = true;
                        self.name_syncs.set(self.name_syncs.get() + 1);
                    }
                    _ => {
                        tracing::error!(topic = %self.topic, partition = self.partition, "fsync of the partition folder failed; log offline");
                        self.state.borrow_mut().offline = true;
                        for (request, _) in staged.drain(..) {
                            Self::fail(request, AppendError::Storage);
                        }
                        return false;
                    }
                }
            }
            {
                let mut state = self.state.borrow_mut();
                state.recovery_point = self.durable_end(&state);
                state.unflushed_messages = 0;
                state.last_flush_ms = now_ms();
            }
            self.mark_written_back();
        }
        self.start_writeback(config.writeback_interval_bytes);
        let log_start_offset = self.log_start_offset();
        for (request, base_offset) in staged.drain(..) {
            let _ = request.reply.send(Ok(AppendResult { base_offset, log_append_time_ms: log_append_time.unwrap_or(-1), log_start_offset }));
        }
        self.notify_waiters();
        true
    }

    /// Closes the active segment and opens a new one at the log end offset. The closed
    /// segment's indexes are written to the page cache here; its data and indexes are made
    /// durable by the flusher, off the append path, as Kafka does.
    fn roll(&self, now: i64) -> io::Result<()> {
        if self.state.borrow().deleted {
            return Err(io::Error::other("the partition was deleted"));
        }
        let rolled_txn_index;
        let rolled = {
            let mut state = self.state.borrow_mut();
            let active = state.active_mut();
            active.finish_time_index();
            active.write_indexes()?;
            crate::io::crash::point("roll.after_index_write");
            // From here on the closed segment's indexes are read from their files.
            active.seal_indexes();
            rolled_txn_index = active.txn_index_path();
            RolledSegment {
                log: active.log.clone(),
                index_paths: [active.index_path(), active.time_index_path()],
                base_offset: active.base_offset,
                end_offset: state.log_end_offset(),
            }
        };
        let segment = LogSegment::create(&self.dir, rolled.end_offset, now)?;
        crate::io::crash::point("roll.after_segment_create");
        self.state.borrow_mut().segments.push(segment);
        // The producers' state as of the new segment's start, as Kafka's `takeSnapshot` at a
        // roll: a restart replays only what follows it. Derived data, like the indexes: a
        // failure costs a longer replay, not a record, so it is logged and the roll goes on.
        let end = rolled.end_offset;
        self.rolled.borrow_mut().push_back(rolled);
        self.producers.borrow_mut().expire_before(now.saturating_sub(self.config.borrow().producer_id_expiration_ms));
        // A snapshot makes the next start trust the `.txnindex` files below it, so the rolled
        // segment's goes to disk first (an fsync on the shard, only for a segment that had an
        // abort since the last one); if it cannot, no snapshot: the replay covers it.
        let txn_index = if self.txn_index_dirty.replace(false) { super::txn_index::sync(&rolled_txn_index) } else { Ok(()) };
        let snapshot = txn_index
            .and_then(|()| super::producer::write_snapshot(&self.dir, end, &self.producers.borrow(), false))
            .and_then(|()| super::producer::prune_snapshots(&self.dir, self.log_start_offset(), end, SNAPSHOTS_KEPT));
        if let Err(e) = snapshot {
            tracing::warn!(topic = %self.topic, partition = self.partition, error = %e, "could not write the producer state snapshot");
        }
        Ok(())
    }

    fn notify_waiters(&self) {
        for waiter in self.waiters.borrow_mut().drain(..) {
            let _ = waiter.try_send(());
        }
    }

    /// Waits until the high watermark passes `offset`, or `timeout` passes.
    pub async fn wait_for_data(&self, offset: i64, timeout: std::time::Duration) {
        self.wait_for(offset, timeout, ReadLimit::HighWatermark).await
    }

    /// Waits until the high watermark (a follower's fetch: the log end offset; a
    /// read_committed consumer's: the last stable offset) passes `offset`, or `timeout` passes.
    pub async fn wait_for(&self, offset: i64, timeout: std::time::Duration, read_limit: ReadLimit) {
        let limit = match read_limit {
            ReadLimit::LogEnd => self.log_end_offset(),
            ReadLimit::HighWatermark => self.high_watermark(),
            ReadLimit::LastStable => self.last_stable_offset(),
        };
        if limit > offset || self.state.borrow().deleted {
            return;
        }
        let (tx, rx) = flume::bounded(1);
        {
            let mut waiters = self.waiters.borrow_mut();
            // Waiters whose fetch gave up are dropped here, so an idle partition's list stays
            // as long as its live fetches.
            waiters.retain(|w| !w.is_disconnected());
            waiters.push(tx);
        }
        let wait = std::pin::pin!(rx.recv_async());
        let sleep = std::pin::pin!(compio::time::sleep(timeout));
        futures_util::future::select(wait, sleep).await;
    }

    /// Finds the bytes to send for a fetch at `offset`: from the batch that holds `offset` up to
    /// `max_bytes` (never past the high watermark or the segment's end). With `min_one_batch`
    /// the first batch is returned whole even if it is larger than `max_bytes` (KIP-74).
    pub async fn read(&self, offset: i64, max_bytes: u32, min_one_batch: bool) -> Result<ReadResult, ReadError> {
        self.read_to(offset, max_bytes, min_one_batch, ReadLimit::HighWatermark).await
    }

    /// `read`, up to the high watermark (a consumer) or, `to_log_end`, to the log end offset
    /// (a follower, which fetches what is not committed yet).
    pub async fn read_to(&self, offset: i64, max_bytes: u32, min_one_batch: bool, read_limit: ReadLimit) -> Result<ReadResult, ReadError> {
        let (log_end, log_start_offset) = {
            let state = self.state.borrow();
            if state.deleted {
                return Err(ReadError::Deleted);
            }
            if state.offline {
                return Err(ReadError::Storage);
            }
            (state.log_end_offset(), state.log_start_offset)
        };
        let high_watermark = self.high_watermark();
        let last_stable_offset = self.last_stable_offset();
        let limit = match read_limit {
            ReadLimit::LogEnd => log_end,
            ReadLimit::HighWatermark => high_watermark,
            ReadLimit::LastStable => last_stable_offset,
        };
        if offset < log_start_offset || offset > log_end {
            return Err(ReadError::OffsetOutOfRange { log_start_offset, high_watermark });
        }
        let empty = ReadResult { records: None, first_batch_bytes: 0, high_watermark, log_start_offset, last_stable_offset, aborted: Vec::new() };
        if offset >= limit {
            return Ok(empty);
        }
        let Some((mut base, mut file, mut size, mut position, tail)) = self.locate(offset) else { return Ok(empty) };
        let first = match tail {
            Some(h) => h,
            None => 'found: loop {
                let mut cursor = HeaderCursor::new(&file, size);
                while let Some(header) = cursor.header_at(position).await.map_err(|_| ReadError::Storage)? {
                    if header.last_offset >= offset {
                        break 'found header;
                    }
                    position += header.size;
                }
                // Nothing at or after `offset` in this segment (compaction emptied its end):
                // the next segment's first batch comes next.
                // Found again by base offset: retention may have removed older segments while
                // this read awaited, which shifts the indexes.
                let next = {
                    let state = self.state.borrow();
                    let i = state.segments.partition_point(|s| s.base_offset <= base);
                    state.segments.get(i).map(|s| (s.base_offset, s.log.clone(), s.size))
                };
                let Some((next_base, next_file, next_size)) = next else { return Ok(empty) };
                (base, file, size, position) = (next_base, next_file, next_size, 0);
            },
        };
        // Below the log end (a consumer of a replicated log): nothing past the high watermark.
        let end = if limit < log_end {
            match self.position_of(base, limit) {
                HighWatermarkAt::Position(p) => p,
                HighWatermarkAt::PastSegment => size,
                // Not recorded (a new leadership, a restart, a cleaned segment): found by
                // reading the batch headers from the first batch served.
                HighWatermarkAt::Unknown => {
                    let mut cursor = HeaderCursor::new(&file, size);
                    let mut at = position;
                    while let Some(header) = cursor.header_at(at).await.map_err(|_| ReadError::Storage)? {
                        // Past what the read may return anyway: no need to find the limit.
                        if header.last_offset >= limit || (at > position && at - position >= max_bytes) {
                            break;
                        }
                        at += header.size;
                    }
                    at
                }
            }
        } else {
            size
        };
        if end <= position {
            return Ok(empty);
        }
        let available = end - position;
        let mut len = max_bytes.min(available);
        if len < first.size {
            if min_one_batch {
                len = first.size;
            } else {
                return Ok(empty);
            }
        }
        // The scrubber's findings: nothing damaged is served.
        for &(_, from, to) in self.damaged.borrow().iter().filter(|d| d.0 == base) {
            if position < to && from < position + len {
                if from <= position {
                    return Err(ReadError::Storage);
                }
                len = from - position;
                if len < first.size {
                    return Err(ReadError::Storage);
                }
            }
        }
        let (active_segment, next_base) = {
            let state = self.state.borrow();
            let i = state.segments.partition_point(|s| s.base_offset <= base);
            (state.active().base_offset == base, state.segments.get(i).map(|s| s.base_offset))
        };
        // A read_committed consumer is told of the aborted transactions its records may hold:
        // up to the first offset past the bytes it gets (an index entry past them, or the next
        // segment), as Kafka's `fetchUpperBoundOffset`.
        let aborted = if read_limit == ReadLimit::LastStable && !self.aborted.borrow().is_empty() {
            let upper = self.offset_after_position(base, position + len).or(next_base).unwrap_or(limit).min(limit);
            self.aborted.borrow().overlapping(offset, upper)
        } else {
            Vec::new()
        };
        Ok(ReadResult {
            records: Some(FileSlice { file, position: position as u64, len, active_segment }),
            first_batch_bytes: first.size,
            high_watermark,
            log_start_offset,
            last_stable_offset,
            aborted,
        })
    }

    /// The offset of the first offset index entry of segment `base` at or past byte `position`:
    /// every batch before `position` ends at or below it.
    fn offset_after_position(&self, base: i64, position: u32) -> Option<i64> {
        let state = self.state.borrow();
        let segment = state.segments.iter().find(|s| s.base_offset == base)?;
        let entries = &segment.index.entries;
        let i = entries.partition_point(|e| e.position < position);
        (i < entries.len()).then(|| base + entries.get(i).relative_offset as i64 + 1)
    }

    /// The last stable offset: the high watermark, or the first offset of the oldest
    /// transaction below it that is open, or whose marker is not replicated yet.
    pub fn last_stable_offset(&self) -> i64 {
        let hw = self.high_watermark();
        let mut unreplicated = self.unreplicated_txns.borrow_mut();
        while unreplicated.front().is_some_and(|(marker, _)| *marker < hw) {
            unreplicated.pop_front();
        }
        let first_unstable = [self.producers.borrow().first_unstable_offset(), unreplicated.iter().map(|u| u.1).min()].into_iter().flatten().min();
        first_unstable.map_or(hw, |f| f.min(hw))
    }

    /// A marker ended transaction `t`. An abort is remembered and appended to the active
    /// segment's `.txnindex`.
    fn transaction_completed(&self, t: super::producer::CompletedTxn) {
        if self.replicated_high_watermark.get().is_some() {
            self.unreplicated_txns.borrow_mut().push_back((t.last_offset, t.first_offset));
        }
        if t.committed {
            return;
        }
        let entry = self.producers.borrow().aborted_entry(&t);
        self.aborted.borrow_mut().push(entry);
        // Derived data, as the indexes are: a failure here is rebuilt from the log at start.
        let path = self.state.borrow().active().txn_index_path();
        if let Err(e) = super::txn_index::append(&path, &entry) {
            tracing::warn!(topic = %self.topic, partition = self.partition, error = %e, "could not write the transaction index");
        }
        self.txn_index_dirty.set(true);
    }

    /// Whether `producer_id` at `epoch` has a transaction open in this partition (a
    /// transactional batch then needs no verification with the coordinator).
    pub fn has_open_transaction(&self, producer_id: i64, epoch: i16) -> bool {
        self.producers.borrow().has_open_transaction(producer_id, epoch)
    }

    /// Starts a KIP-890 verification for `producer_id`'s first transactional batch here: the
    /// guard to append it with, if no marker comes first.
    pub fn start_verification(&self, producer_id: i64) -> u64 {
        thread_local! {
            static NEXT_GUARD: Cell<u64> = const { Cell::new(1) };
        }
        let guard = NEXT_GUARD.with(|g| g.replace(g.get() + 1));
        self.producers.borrow_mut().start_verification(producer_id, guard)
    }

    /// Every producer's state here (DescribeProducers).
    pub fn describe_producers(&self) -> Vec<(i64, i16, i32, i64, i32, i64)> {
        self.producers.borrow().describe()
    }

    /// Where in segment `base` the batches below `offset` (the high watermark) end, from the
    /// batch boundaries recorded at append.
    fn position_of(&self, base: i64, offset: i64) -> HighWatermarkAt {
        let boundaries = self.boundaries.borrow();
        let i = boundaries.partition_point(|b| b.0 <= offset);
        match i.checked_sub(1).map(|i| boundaries[i]) {
            Some((end, segment, position)) if end == offset && segment == base => HighWatermarkAt::Position(position),
            // A boundary at or below it in a later segment: this one is all below it.
            Some((_, segment, _)) if segment > base => HighWatermarkAt::PastSegment,
            _ => HighWatermarkAt::Unknown,
        }
    }

    /// The segment holding `offset`: its base offset, file and size, and the position to scan from
    /// (an index lookup), or the last batch itself when `offset` is in it.
    fn locate(&self, offset: i64) -> Option<(i64, LogFile, u32, u32, Option<BatchHeader>)> {
        let state = self.state.borrow();
        let i = state.segments.partition_point(|s| s.base_offset <= offset);
        if i == 0 {
            return None;
        }
        // A segment whose offsets all lie below `offset` (after compaction, say) hands over to
        // the next one.
        let mut i = i - 1;
        while i + 1 < state.segments.len() && state.segments[i].next_offset <= offset {
            i += 1;
        }
        let segment = &state.segments[i];
        if let Some((last, position)) = segment.last_batch {
            if offset >= last.base_offset && offset <= last.last_offset {
                return Some((segment.base_offset, segment.log.clone(), segment.size, position, Some(last)));
            }
        }
        let relative = (offset.max(segment.base_offset) - segment.base_offset).min(u32::MAX as i64) as u32;
        let entry = segment.index.lookup(relative);
        Some((segment.base_offset, segment.log.clone(), segment.size, entry.position, None))
    }

    /// The first offset whose batch has a timestamp at or after `timestamp`, with that
    /// timestamp: (-1, -1) when there is none. The time index narrows the search to a few
    /// batches; inside the batch (decompressed if need be) the exact record is found.
    pub async fn offset_for_timestamp(&self, timestamp: i64) -> io::Result<(i64, i64)> {
        let candidates: Vec<(LogFile, u32, u32)> = {
            let state = self.state.borrow();
            state
                .segments
                .iter()
                .filter(|s| s.max_timestamp >= timestamp)
                .map(|s| {
                    let start = s.time_index.lookup(timestamp).map(|e| s.index.lookup(e.relative_offset).position).unwrap_or(0);
                    (s.log.clone(), s.size, start)
                })
                .take(1)
                .collect()
        };
        for (file, size, mut position) in candidates {
            let mut cursor = HeaderCursor::new(&file, size);
            while let Some(header) = cursor.header_at(position).await? {
                if header.max_timestamp >= timestamp {
                    let bytes = file.read_at(position as u64, header.size as usize).await?;
                    return Ok(recovery::first_record_where(&bytes, |t| t >= timestamp).unwrap_or((header.max_timestamp, header.base_offset)));
                }
                position += header.size;
            }
        }
        Ok((-1, -1))
    }

    /// The largest timestamp in the log and the offset of the first record that has it, as
    /// Kafka answers ListOffsets for MAX_TIMESTAMP (KIP-734): the segment with the largest
    /// timestamp knows the batch (its `offset_of_max_timestamp` is that batch's last offset);
    /// the batch's records are searched for the first with that timestamp. (-1, -1) for an
    /// empty log.
    pub async fn offset_of_max_timestamp(&self) -> io::Result<(i64, i64)> {
        let found = {
            let state = self.state.borrow();
            let mut best: Option<&LogSegment> = None;
            for s in &state.segments {
                if s.max_timestamp > best.map_or(-1, |b| b.max_timestamp) {
                    best = Some(s);
                }
            }
            best.map(|s| {
                let relative = (s.offset_of_max_timestamp - s.base_offset).clamp(0, u32::MAX as i64) as u32;
                (s.log.clone(), s.size, s.index.lookup(relative).position, s.max_timestamp)
            })
        };
        let Some((file, size, mut position, max_timestamp)) = found else { return Ok((-1, -1)) };
        let mut cursor = HeaderCursor::new(&file, size);
        while let Some(header) = cursor.header_at(position).await? {
            if header.max_timestamp == max_timestamp {
                let bytes = file.read_at(position as u64, header.size as usize).await?;
                return Ok(recovery::first_record_where(&bytes, |t| t == max_timestamp).unwrap_or((max_timestamp, header.last_offset)));
            }
            position += header.size;
        }
        Ok((-1, -1))
    }

    /// Deletes whole segments that retention no longer keeps and moves the log start offset.
    /// An active segment whose records have all expired is rolled first (when no write is in
    /// progress), so that an idle partition's data still goes. Returns how many segments went.
    pub fn apply_retention(self: &Rc<Self>, now: i64) -> usize {
        let config = self.config();
        // As in Kafka, a compact-only topic keeps its data until compaction replaces it.
        if !config.cleanup_policy.split(',').any(|p| p.trim() == "delete") {
            return 0;
        }
        let active_expired = {
            let state = self.state.borrow();
            let active = state.active();
            active.size > 0
                && config.retention_ms >= 0
                && active.max_timestamp >= 0
                && now - active.max_timestamp > config.retention_ms
                && !state.deleted
                && !state.offline
        };
        if active_expired && !self.writer_running.get() {
            match self.roll(now) {
                Ok(()) => self.start_flusher(),
                Err(e) => tracing::warn!(topic = %self.topic, partition = self.partition, error = %e, "could not roll an expired segment"),
            }
        }
        let mut state = self.state.borrow_mut();
        let mut total: i64 = state.segments.iter().map(|s| s.size as i64).sum();
        let mut deleted = 0;
        let mut gone = Vec::new();
        while state.segments.len() > 1 {
            let oldest = &state.segments[0];
            // A segment compaction emptied has no timestamp left; it holds nothing to keep.
            let expired = config.retention_ms >= 0 && (oldest.size == 0 || oldest.max_timestamp >= 0 && now - oldest.max_timestamp > config.retention_ms);
            let oversized = config.retention_bytes >= 0 && total - oldest.size as i64 >= config.retention_bytes;
            if !(expired || oversized) {
                break;
            }
            // A replicated log keeps what is not committed yet (the log start never passes
            // the high watermark).
            if self.replicated_high_watermark.get().is_some_and(|hw| oldest.next_offset > hw) {
                break;
            }
            let segment = state.segments.remove(0);
            total -= segment.size as i64;
            // A log start that DeleteRecords moved further stays where it is.
            state.log_start_offset = state.log_start_offset.max(state.segments[0].base_offset);
            self.forget_deleted_segment(&segment, state.log_start_offset);
            deleted += 1;
            gone.push(segment);
        }
        drop_off_shard(gone);
        if deleted > 0 {
            self.aborted.borrow_mut().drop_before(state.log_start_offset);
            tracing::info!(topic = %self.topic, partition = self.partition, deleted, log_start_offset = state.log_start_offset, "retention deleted segments");
        }
        deleted
    }

    /// Takes a segment that left the front of the log off the disk. Open fetches keep the
    /// file itself readable; the names go now. The log file is renamed first, atomically
    /// taking the segment out of what recovery sees (as Kafka renames to `.deleted`): a crash
    /// before the last unlink leaves only files that recovery removes, never a segment that
    /// comes back. A rolled segment still waiting for its fsync needs none now.
    fn forget_deleted_segment(&self, segment: &LogSegment, log_start: i64) {
        self.rolled.borrow_mut().retain(|r| r.end_offset > log_start);
        let doomed = segment.path.with_extension("log.deleted");
        if let Err(e) = crate::io::fs::rename(&segment.path, &doomed) {
            tracing::warn!(path = %segment.path.display(), error = %e, "could not delete a segment file");
        }
        crate::io::crash::point("retention.after_segment_rename");
        if let Err(e) = crate::io::fs::remove_file_if_exists(&segment.txn_index_path()) {
            tracing::warn!(path = %segment.txn_index_path().display(), error = %e, "could not delete a segment file");
        }
        for path in [segment.index_path(), segment.time_index_path(), doomed] {
            if let Err(e) = crate::io::fs::remove_file_if_exists(&path) {
                tracing::warn!(path = %path.display(), error = %e, "could not delete a segment file");
            }
            crate::io::crash::point("retention.between_segment_files");
        }
        crate::io::crash::point("retention.after_segment_delete");
    }

    /// DeleteRecords (Kafka's `maybeIncrementLogStartOffset` for a client's deletion): the log
    /// start moves up to `offset` (the high watermark for -1), and the segments wholly below it
    /// go at once (Kafka leaves that to its next retention pass). Past the high watermark is
    /// OFFSET_OUT_OF_RANGE, as in Kafka. Returns the log start, which never moves back.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, ReadError> {
        let high_watermark = self.high_watermark();
        let offset = if offset == -1 { high_watermark } else { offset };
        if offset < 0 || offset > high_watermark {
            return Err(ReadError::OffsetOutOfRange { log_start_offset: self.log_start_offset(), high_watermark });
        }
        self.advance_log_start(offset);
        Ok(self.log_start_offset())
    }

    /// Moves the log start up to `offset` (never past the log end, never back) and deletes
    /// the segments that end at or below it; the active segment always stays.
    pub fn advance_log_start(&self, offset: i64) {
        let mut state = self.state.borrow_mut();
        let offset = offset.min(state.log_end_offset());
        if offset <= state.log_start_offset || state.deleted {
            return;
        }
        state.log_start_offset = offset;
        let mut gone = Vec::new();
        while state.segments.len() > 1 && state.segments[1].base_offset <= offset {
            let segment = state.segments.remove(0);
            self.forget_deleted_segment(&segment, offset);
            gone.push(segment);
        }
        drop_off_shard(gone);
        self.aborted.borrow_mut().drop_before(offset);
        tracing::info!(topic = %self.topic, partition = self.partition, log_start_offset = offset, "log start moved up");
    }

    /// Fsyncs the active segment if `flush.ms` has passed since the last flush (called by the
    /// shard's periodic task).
    pub async fn flush_if_due(&self, now: i64) {
        let (due, file) = {
            let state = self.state.borrow();
            (state.unflushed_messages > 0 && now - state.last_flush_ms >= self.config.borrow().flush_ms, state.active().log.clone())
        };
        if !due {
            return;
        }
        match file.sync_data().await {
            Ok(()) => {
                let mut state = self.state.borrow_mut();
                state.recovery_point = self.durable_end(&state);
                state.unflushed_messages = 0;
                state.last_flush_ms = now;
            }
            // After a failed fsync the kernel may already have dropped the dirty pages: what
            // was acknowledged may be gone, and a retry that succeeds would hide it. The log
            // goes offline (KAFKA_STORAGE_ERROR to every produce and fetch), as Kafka takes
            // its log dir offline.
            Err(e) => {
                tracing::error!(topic = %self.topic, partition = self.partition, error = %e, "periodic fsync (flush.ms) failed; log offline");
                self.state.borrow_mut().offline = true;
            }
        }
    }

    /// Flushes everything and writes the indexes, and moves the recovery point to the end:
    /// after this (and the log dir's checkpoint written from `checkpoint()`), a restart needs
    /// no recovery.
    pub fn close(&self) -> io::Result<()> {
        let mut state = self.state.borrow_mut();
        if state.deleted {
            return Ok(());
        }
        // A failed fsync may have lost acknowledged pages: a later one that succeeds proves
        // nothing, and the next start must not trust this log as cleanly stopped.
        if state.offline {
            return Err(io::Error::other(format!("{}-{} is offline; it is not closed cleanly", self.topic, self.partition)));
        }
        for s in &state.segments {
            s.log.sync_data_blocking()?;
        }
        for rolled in self.rolled.borrow_mut().drain(..) {
            for path in &rolled.index_paths {
                if let Ok(f) = std::fs::File::open(path) {
                    crate::io::fs::sync_file(&f)?;
                }
            }
        }
        state.active_mut().finish_time_index();
        state.active().write_indexes()?;
        for path in [state.active().index_path(), state.active().time_index_path()] {
            crate::io::fs::sync_file(&std::fs::File::open(path)?)?;
        }
        super::txn_index::sync(&state.active().txn_index_path())?;
        // The producers' state at the log end, so that the next start replays nothing.
        let end = state.log_end_offset();
        super::producer::write_snapshot(&self.dir, end, &self.producers.borrow(), true)?;
        super::producer::prune_snapshots(&self.dir, state.log_start_offset, end, SNAPSHOTS_KEPT)?;
        // The segments' names, a just-rolled one's included, as durable as their bytes.
        crate::io::fs::sync_dir_handle(&self.dir_handle)?;
        state.recovery_point = end;
        Ok(())
    }

    /// What the log dir's checkpoint files record of this log.
    pub fn checkpoint(&self) -> LogCheckpoint {
        let state = self.state.borrow();
        LogCheckpoint {
            topic: self.topic.clone(),
            partition: self.partition,
            recovery_point: state.recovery_point.min(state.log_end_offset()),
            log_start_offset: state.log_start_offset,
            first_segment_base_offset: state.segments[0].base_offset,
            high_watermark: self.replicated_high_watermark.get().map_or(state.log_end_offset(), |hw| hw.min(state.log_end_offset())),
        }
    }

    /// The sealed segments (every one but the active), as (base offset, file, size): what the
    /// scrubber reads.
    pub fn sealed_segments(&self) -> Vec<(i64, LogFile, u32)> {
        let state = self.state.borrow();
        state.segments[..state.segments.len() - 1].iter().map(|s| (s.base_offset, s.log.clone(), s.size)).collect()
    }

    /// Stops serving `from..to` of the segment at `base` (the scrubber found it damaged).
    /// Returns whether this range is new.
    pub fn mark_damaged(&self, base: i64, from: u32, to: u32) -> bool {
        let mut damaged = self.damaged.borrow_mut();
        let new = !damaged.contains(&(base, from, to));
        if new {
            damaged.push((base, from, to));
        }
        new
    }

    /// Whether the log was deleted (its checkpoint entries go with it).
    pub fn is_deleted(&self) -> bool {
        self.state.borrow().deleted
    }

    /// Whether compaction has work: the topic is compacted and a segment was rolled since the
    /// last run.
    pub fn compaction_due(&self) -> bool {
        let state = self.state.borrow();
        self.config.borrow().cleanup_policy.split(',').any(|p| p.trim() == "compact")
            && state.segments.len() > 1
            && state.active().base_offset > self.compacted_through.get()
            && !state.deleted
            && !state.offline
            // Cleaning would copy a damaged batch under a fresh CRC: an operator decides.
            && self.damaged.borrow().is_empty()
    }

    /// Compacts every closed segment (see `compaction`) and swaps the cleaned files in.
    /// Returns how many segments changed.
    pub async fn compact(self: &Rc<Self>) -> io::Result<usize> {
        let (snapshot, active_base, bounds) = {
            let state = self.state.borrow();
            let snapshot: Vec<SegmentSnapshot> =
                state.segments.iter().map(|s| SegmentSnapshot { base_offset: s.base_offset, file: s.log.clone(), size: s.size }).collect();
            // Per segment: (base, next segment's base, next offset, creation time), for the scan
            // of its cleaned file.
            let bounds: Vec<(i64, Option<i64>, i64, i64)> = state
                .segments
                .iter()
                .enumerate()
                .map(|(i, s)| (s.base_offset, state.segments.get(i + 1).map(|n| n.base_offset), s.next_offset, s.created_ms))
                .collect();
            (snapshot, state.active().base_offset, bounds)
        };
        let mut snapshot = snapshot;
        let mut dirty = snapshot.len() - 1;
        // A log is cleaned only below its last stable offset: a replicated one's high
        // watermark (a newer key above it may still be cut by a truncation), and never past a
        // transaction still open (its records may yet be aborted), as Kafka's cleaner stops at
        // the first unstable offset.
        let stable = self.last_stable_offset();
        if self.is_replicated() || stable < self.log_end_offset() {
            dirty = bounds[..dirty].iter().take_while(|b| b.2 <= stable).count();
            snapshot.truncate(dirty);
            if dirty == 0 {
                return Ok(0);
            }
            if self.is_replicated() {
                self.boundaries.borrow_mut().retain(|b| b.1 >= active_base);
            }
        }
        let aborted: Vec<super::txn_index::AbortedTxn> = self.aborted.borrow().entries().to_vec();
        let config = self.config();
        let dir = self.dir.clone();
        let now = now_ms();
        let dir_handle = self.dir_handle.clone();
        let index_interval_bytes = config.index_interval_bytes;
        // Cleaning and the scan of each cleaned file (up to a segment's size) run on the
        // blocking pool; the shard only swaps the files in.
        let written = compio::runtime::spawn_blocking(move || -> io::Result<Vec<(i64, PathBuf, LogSegment)>> {
            let mut written = Vec::new();
            compaction::clean(&snapshot, dirty, &aborted, now, config.delete_retention_ms, |base, bytes| {
                // Written through the folder's handle: a folder renamed away by a topic
                // deletion never receives a file meant for its successor.
                let name = format!("{}.cleaned", super::segment_file_name(base, "log"));
                crate::io::fs::write_durable_at(&dir_handle, &name, bytes)?;
                written.push((base, dir.join(name)));
                Ok(())
            })?;
            written
                .into_iter()
                .map(|(base, cleaned)| {
                    let &(_, next_base, next_offset, created_ms) = bounds.iter().find(|b| b.0 == base).expect("a cleaned segment was in the snapshot");
                    let segment = recovery::reload_segment(&cleaned, base, next_base, next_offset, created_ms, index_interval_bytes)?;
                    Ok((base, cleaned, segment))
                })
                .collect()
        })
        .await
        .map_err(|_| io::Error::other("compaction task failed"))??;
        let mut swapped = 0;
        let mut replaced = Vec::new();
        for (base, cleaned, mut segment) in written {
            let found = {
                let state = self.state.borrow();
                if state.deleted {
                    None
                } else {
                    state.segments.iter().position(|s| s.base_offset == base)
                }
            };
            let Some(i) = found else {
                // Deleted by retention (or the whole partition) while it was being cleaned.
                crate::io::fs::remove_file_if_exists(&cleaned)?;
                continue;
            };
            let path = self.state.borrow().segments[i].path.clone();
            // The old index files describe the old bytes: they go (durably) before the cleaned
            // log takes the segment's name, so a crash in between makes recovery rebuild them
            // instead of trusting stale positions.
            let index_paths = {
                let state = self.state.borrow();
                [state.segments[i].index_path(), state.segments[i].time_index_path()]
            };
            crate::io::crash::point("compaction.after_cleaned_write");
            for p in &index_paths {
                crate::io::fs::remove_file_if_exists(p)?;
            }
            crate::io::fs::sync_dir(&self.dir)?;
            crate::io::crash::point("compaction.after_index_remove");
            crate::io::fs::rename(&cleaned, &path)?;
            crate::io::crash::point("compaction.after_rename");
            // The open file is the same inode under its new name.
            segment.path = path;
            segment.finish_time_index();
            crate::io::fs::write_atomic(&index_paths[0], &segment.index.encode(), None)?;
            crate::io::fs::write_atomic(&index_paths[1], &segment.time_index.encode(), None)?;
            crate::io::crash::point("compaction.after_index_write");
            segment.seal_indexes();
            let old = std::mem::replace(&mut self.state.borrow_mut().segments[i], segment);
            replaced.push(old);
            swapped += 1;
        }
        drop_off_shard(replaced);
        crate::io::fs::sync_dir(&self.dir)?;
        self.compacted_through.set(active_base);
        if swapped > 0 {
            tracing::info!(topic = %self.topic, partition = self.partition, segments = swapped, "compacted");
        }
        Ok(swapped)
    }

    /// Calls `visit` with every batch of the log, oldest first, reading the files directly
    /// (blocking): for startup, before the shard serves, to rebuild state kept in a log (the
    /// group coordinator's `__consumer_offsets`).
    pub fn for_each_batch_blocking(&self, mut visit: impl FnMut(&[u8])) -> io::Result<()> {
        let segments: Vec<(LogFile, u32)> = self.state.borrow().segments.iter().map(|s| (s.log.clone(), s.size)).collect();
        for (file, size) in segments {
            let mut bytes = vec![0u8; size as usize];
            let mut read = 0;
            while read < bytes.len() {
                let n = file.read_at_blocking(read as u64, &mut bytes[read..])?;
                if n == 0 {
                    break;
                }
                read += n;
            }
            let mut at = 0;
            while at < read {
                let Ok(n) = record_batch::batch_size(&bytes[at..read]) else { break };
                visit(&bytes[at..at + n]);
                at += n;
            }
        }
        Ok(())
    }

    /// The offset index entries of every segment (for recovery checks in tests and fuzzing).
    #[doc(hidden)]
    pub fn index_entries_for_tests(&self) -> Vec<super::index::IndexEntry> {
        self.state.borrow().segments.iter().flat_map(|s| s.index.entries.to_vec()).collect()
    }

    /// Whether the log is offline (damage found in recovery, or a failed write).
    pub fn is_offline(&self) -> bool {
        self.state.borrow().offline
    }

    /// Marks the log deleted: queued and later appends fail, waiting fetches wake up. The
    /// caller removes the folder.
    pub fn mark_deleted(&self) {
        self.state.borrow_mut().deleted = true;
        for request in self.pending.borrow_mut().drain(..) {
            Self::fail(request, AppendError::Deleted);
        }
        self.notify_waiters();
    }
}

/// Walks batch headers forward through a segment with one read per 64 KiB instead of one per
/// header: between an index entry and the batch a fetch wants lie several small batches.
struct HeaderCursor<'a> {
    file: &'a LogFile,
    size: u32,
    buf: Vec<u8>,
    /// The file position of `buf[0]`.
    buf_position: u32,
}

impl<'a> HeaderCursor<'a> {
    const CHUNK_BYTES: u32 = 64 * 1024;

    fn new(file: &'a LogFile, size: u32) -> HeaderCursor<'a> {
        HeaderCursor { file, size, buf: Vec::new(), buf_position: 0 }
    }

    /// The header of the batch at `position`, or `None` at the end of the written data (or
    /// where the bytes do not form a header).
    async fn header_at(&mut self, position: u32) -> io::Result<Option<BatchHeader>> {
        if position >= self.size {
            return Ok(None);
        }
        let header_end = position as u64 + record_batch::HEADER_BYTES as u64;
        let buffered = position >= self.buf_position && header_end <= self.buf_position as u64 + self.buf.len() as u64;
        if !buffered {
            let len = Self::CHUNK_BYTES.min(self.size - position).max(record_batch::HEADER_BYTES as u32);
            self.buf = self.file.read_at(position as u64, len as usize).await?;
            self.buf_position = position;
        }
        let start = (position - self.buf_position) as usize;
        Ok(BatchHeader::parse(&self.buf[start..], self.size - position))
    }
}

#[cfg(test)]
mod model_fuzz;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::protocol::record_batch::{build_batch, RecordSpec};
    use std::collections::BTreeMap;

    fn config(segment_bytes: u32) -> LogConfig {
        let mut c = BrokerConfig::from_properties(&[]).unwrap().log;
        c.segment_bytes = segment_bytes;
        c.index_interval_bytes = 256;
        c
    }

    /// A batch of `count` records stamped `timestamp`, each value 100 bytes.
    fn batch(count: usize, timestamp: i64) -> Bytes {
        let value = [b'v'; 100];
        let records: Vec<RecordSpec<'_>> = (0..count).map(|i| RecordSpec { key: None, value: Some(&value), headers: &[], timestamp_delta: i as i64 }).collect();
        Bytes::from(build_batch(0, timestamp, &records))
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        compio::runtime::Runtime::new().unwrap().block_on(f)
    }

    /// Reads the batch that holds `offset` and returns its (base, last) offsets.
    async fn batch_at(log: &PartitionLog, offset: i64) -> (i64, i64) {
        let read = log.read(offset, 1 << 20, true).await.unwrap();
        let slice = read.records.expect("records");
        let bytes = slice.file.read_at(slice.position, slice.len as usize).await.unwrap();
        let view = record_batch::validate(&bytes[..record_batch::batch_size(&bytes).unwrap()]).unwrap();
        (view.base_offset(), view.last_offset())
    }

    #[test]
    fn appends_roll_segments_and_every_offset_reads_back_from_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        run(async {
            let log = PartitionLog::open(dir.path(), "t", 0, config(4096), crate::storage::RecoveryPoint::At(0)).unwrap();
            for i in 0..100 {
                let r = log.append(vec![batch(1 + i % 3, 1_000 + i as i64)]).await.unwrap();
                assert_eq!(r.base_offset, (0..i).map(|j| 1 + j % 3).sum::<usize>() as i64);
            }
            let end = log.log_end_offset();
            assert_eq!(end, (0..100).map(|j| 1 + j % 3).sum::<usize>() as i64);
            assert!(log.segment_count() > 5, "small segments roll: {}", log.segment_count());
            for offset in 0..end {
                let (base, last) = batch_at(&log, offset).await;
                assert!(base <= offset && offset <= last, "offset {offset} read from batch {base}..={last}");
            }
            assert_eq!(log.read(end + 1, 100, true).await.err(), Some(ReadError::OffsetOutOfRange { log_start_offset: 0, high_watermark: end }));
            assert!(log.read(end, 100, true).await.unwrap().records.is_none(), "a fetch at the end is empty");
            // Index files exist for rolled segments, match what is in memory, and are what
            // lookups read (memory-mapped): the reads above went through them.
            let state = log.state.borrow();
            for s in &state.segments[..state.segments.len() - 1] {
                let on_disk = std::fs::read(s.index_path()).unwrap();
                assert_eq!(on_disk, s.index.encode());
                assert!(
                    s.index.entries.is_empty() || matches!(s.index.entries, crate::storage::index::Entries::Sealed(_)),
                    "a rolled segment's index is sealed"
                );
                assert!(s.time_index.entries.is_empty() || matches!(s.time_index.entries, crate::storage::index::Entries::Sealed(_)));
            }
            assert!(matches!(state.active().index.entries, crate::storage::index::Entries::Open(_)), "the active segment's index is in memory");
        });
    }

    #[test]
    fn a_request_larger_than_a_segment_still_goes_in_whole() {
        let dir = tempfile::tempdir().unwrap();
        run(async {
            let log = PartitionLog::open(dir.path(), "t", 0, config(1024), crate::storage::RecoveryPoint::At(0)).unwrap();
            log.append(vec![batch(1, 0)]).await.unwrap();
            let big = log.append(vec![batch(20, 0), batch(20, 0)]).await.unwrap();
            assert_eq!(big.base_offset, 1);
            assert_eq!(log.log_end_offset(), 41);
            assert_eq!(batch_at(&log, 40).await, (21, 40));
        });
    }

    #[test]
    fn retention_by_size_and_time_deletes_old_segments_and_moves_the_start() {
        let dir = tempfile::tempdir().unwrap();
        run(async {
            let mut c = config(2048);
            c.retention_bytes = 5000;
            let log = PartitionLog::open(dir.path(), "t", 0, c.clone(), crate::storage::RecoveryPoint::At(0)).unwrap();
            for _ in 0..60 {
                log.append(vec![batch(2, crate::io::runtime::now_ms())]).await.unwrap();
            }
            let before = log.segment_count();
            assert!(log.apply_retention(crate::io::runtime::now_ms()) > 0);
            assert!(log.segment_count() < before);
            assert!(log.size_bytes() - log.state.borrow().active().size as u64 <= 5000);
            let start = log.log_start_offset();
            assert!(start > 0);
            assert!(matches!(log.read(start - 1, 100, true).await, Err(ReadError::OffsetOutOfRange { .. })));
            assert_eq!(batch_at(&log, start).await.0, start);
            let first_file = dir.path().join(crate::storage::segment_file_name(0, "log"));
            assert!(!first_file.exists(), "deleted segments leave no files");

            // Time: every closed segment is older than retention.ms once time has passed.
            c.retention_bytes = -1;
            c.retention_ms = 1000;
            log.set_config(c);
            log.apply_retention(crate::io::runtime::now_ms() + 10_000);
            assert_eq!(log.segment_count(), 1, "only the active segment is left");
            // The expired active segment was rolled and deleted in the same pass: its queued
            // fsync finds no file, and that must not take the log offline.
            while log.flusher_running.get() {
                compio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            assert!(!log.is_offline(), "retention of a just-rolled segment took the log offline");
            let end = log.log_end_offset();
            assert_eq!(log.append(vec![batch(1, 0)]).await.unwrap().base_offset, end);
        });
    }

    /// KIP-734 as Kafka answers it: the offset of the record with the largest timestamp, not
    /// its batch's first or last offset, in compressed batches too; the first of equal ones.
    #[test]
    fn max_timestamp_names_the_record_that_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        run(async {
            let log = PartitionLog::open(dir.path(), "t", 0, config(1 << 20), crate::storage::RecoveryPoint::At(0)).unwrap();
            assert_eq!(log.offset_of_max_timestamp().await.unwrap(), (-1, -1), "an empty log");
            log.append(vec![batch(3, 1_000)]).await.unwrap();
            // 20 records; the largest timestamp on the 8th (offset 3 + 7) and again on the 12th.
            let deltas = |i: i64| if i == 7 || i == 11 { 5_000 } else { i };
            let codecs = [(crate::protocol::compression::Compression::None, 2_000), (crate::protocol::compression::Compression::Zstd, 3_000)];
            for (codec, base_timestamp) in codecs {
                let base = log.log_end_offset();
                let mut b = record_batch::BatchBuilder::new(base_timestamp, 0);
                for i in 0..20 {
                    b.append_record(i as i32, deltas(i), None, Some(b"v"), std::iter::empty());
                }
                let bytes = b.finish(codec, &record_batch::BatchFields::new(0)).unwrap();
                log.append(vec![Bytes::from(bytes)]).await.unwrap();
                let expected = (base_timestamp + 5_000, base + 7);
                assert_eq!(log.offset_of_max_timestamp().await.unwrap(), expected, "{codec:?}");
                // A later batch with smaller timestamps changes nothing.
                log.append(vec![batch(2, 1_500)]).await.unwrap();
                assert_eq!(log.offset_of_max_timestamp().await.unwrap(), expected, "{codec:?}: the first batch holding it");
            }
        });
    }

    #[test]
    fn offsets_are_found_by_timestamp() {
        let dir = tempfile::tempdir().unwrap();
        run(async {
            let log = PartitionLog::open(dir.path(), "t", 0, config(4096), crate::storage::RecoveryPoint::At(0)).unwrap();
            // Batch i holds 5 records stamped 10_000 * i + 0..5.
            for i in 0..50 {
                log.append(vec![batch(5, 10_000 * i)]).await.unwrap();
            }
            assert_eq!(log.offset_for_timestamp(0).await.unwrap(), (0, 0));
            assert_eq!(log.offset_for_timestamp(10_000 * 7 + 3).await.unwrap(), (70_003, 7 * 5 + 3));
            assert_eq!(log.offset_for_timestamp(10_000 * 7 + 5).await.unwrap(), (80_000, 40), "between batches: the next batch's first record");
            assert_eq!(log.offset_for_timestamp(10_000 * 60).await.unwrap(), (-1, -1));
            assert_eq!(log.offset_of_max_timestamp().await.unwrap(), (490_004, 249), "the record holding the largest timestamp");
        });
    }

    /// A batch of keyed records; `None` values are tombstones.
    fn keyed(records: &[(&str, Option<&str>)], timestamp: i64) -> Bytes {
        let specs: Vec<RecordSpec<'_>> =
            records.iter().map(|(k, v)| RecordSpec { key: Some(k.as_bytes()), value: v.map(str::as_bytes), headers: &[], timestamp_delta: 0 }).collect();
        Bytes::from(build_batch(0, timestamp, &specs))
    }

    /// Every (key, value) the log serves, from the start, read as a client would.
    async fn dump(log: &PartitionLog) -> Vec<(String, Option<String>)> {
        let mut out = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.log_end_offset() {
            let read = log.read(offset, 1 << 20, true).await.unwrap();
            let Some(slice) = read.records else { break };
            let bytes = slice.file.read_at(slice.position, slice.len as usize).await.unwrap();
            let mut at = 0;
            while at < bytes.len() {
                let Ok(n) = record_batch::batch_size(&bytes[at..]) else { break };
                let batch = &bytes[at..at + n];
                let view = BatchView { bytes: batch };
                assert_eq!(view.computed_crc(), view.crc(), "every served batch is CRC-valid");
                for r in crate::protocol::records::Records::of_batch(view).expect("an uncompressed batch") {
                    let r = r.expect("a whole record");
                    let key = r.key.expect("a keyed record");
                    out.push((String::from_utf8(key.to_vec()).unwrap(), r.value.map(|v| String::from_utf8(v.to_vec()).unwrap())));
                }
                offset = view.last_offset() + 1;
                at += n;
            }
        }
        out
    }

    #[test]
    fn compaction_keeps_the_latest_record_of_each_key_and_drops_old_tombstones() {
        let dir = tempfile::tempdir().unwrap();
        run(async {
            let mut c = config(1024);
            c.cleanup_policy = "compact".into();
            c.delete_retention_ms = 1000;
            let log = PartitionLog::open(dir.path(), "t", 0, c, crate::storage::RecoveryPoint::At(0)).unwrap();
            let now = crate::io::runtime::now_ms();
            for round in 0..20 {
                let a = format!("a{round}");
                let b = format!("b{round}");
                log.append(vec![keyed(&[("a", Some(&a)), ("b", Some(&b)), ("gone", Some("x"))], now)]).await.unwrap();
            }
            // "gone" is deleted by an old tombstone; "fresh" by a recent one.
            log.append(vec![keyed(&[("gone", None)], now - 10_000)]).await.unwrap();
            log.append(vec![keyed(&[("fresh", Some("1"))], now)]).await.unwrap();
            log.append(vec![keyed(&[("fresh", None)], now)]).await.unwrap();
            // Roll so that every record above sits in a closed segment.
            for _ in 0..40 {
                log.append(vec![keyed(&[("z", Some("last"))], now)]).await.unwrap();
            }
            let end = log.log_end_offset();
            assert!(log.compaction_due());
            assert!(log.compact().await.unwrap() > 0);
            assert!(!log.compaction_due(), "nothing new to clean until the next roll");
            let records = dump(&log).await;
            let values = |key: &str| records.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect::<Vec<_>>();
            assert_eq!(values("a"), vec![Some("a19".to_string())]);
            assert_eq!(values("b"), vec![Some("b19".to_string())]);
            assert!(values("gone").is_empty(), "an old tombstone goes with its key");
            assert_eq!(values("fresh"), vec![None], "a recent tombstone stays");
            assert_eq!(log.log_end_offset(), end, "offsets do not move");
            // New appends continue from the same offset, and a restart reads the cleaned log.
            assert_eq!(log.append(vec![keyed(&[("a", Some("after"))], now)]).await.unwrap().base_offset, end);
            log.close().unwrap();
        });
        run(async {
            let mut c = config(1024);
            c.cleanup_policy = "compact".into();
            let log = PartitionLog::open(dir.path(), "t", 0, c, crate::storage::RecoveryPoint::At(0)).unwrap();
            let records = dump(&log).await;
            let a: Vec<_> = records.iter().filter(|(k, _)| k == "a").map(|(_, v)| v.clone().unwrap()).collect();
            assert_eq!(a, vec!["a19".to_string(), "after".to_string()]);
        });
    }

    #[test]
    fn writeback_ranges_start_where_the_last_ended_and_cover_each_interval() {
        assert_eq!(writeback_range((-1, 0), 0, 1023, 1024), None, "less than the interval");
        assert_eq!(writeback_range((-1, 0), 0, 1024, 1024), Some((0, 1024)));
        assert_eq!(writeback_range((0, 1024), 0, 2047, 1024), None);
        assert_eq!(writeback_range((0, 1024), 0, 5000, 1024), Some((1024, 3976)), "everything since the last");
        assert_eq!(writeback_range((0, 5000), 70, 1500, 1024), Some((0, 1500)), "a new segment starts at 0");
        assert_eq!(writeback_range((0, 5000), 0, 90_000, 0), None, "0 never asks");
    }

    #[test]
    fn writeback_is_asked_for_the_appended_bytes_of_each_segment_in_order() {
        let dir = tempfile::tempdir().unwrap();
        run(async {
            let mut c = config(8 * 1024);
            c.writeback_interval_bytes = 1024;
            let log = PartitionLog::open(dir.path(), "t", 0, c, crate::storage::RecoveryPoint::At(0)).unwrap();
            // Segment base offset -> its size after each append.
            let mut sizes: BTreeMap<i64, u64> = BTreeMap::new();
            for _ in 0..400 {
                log.append(vec![batch(2, 0)]).await.unwrap();
                {
                    let state = log.state.borrow();
                    sizes.insert(state.active().base_offset, state.active().size as u64);
                }
                // Let a running writeback finish now and then, as a busy shard would.
                crate::io::runtime::sleep(std::time::Duration::from_micros(200)).await;
            }
            assert!(sizes.len() >= 3, "rolled into new segments");
            let ranges = log.writeback_ranges.borrow().clone();
            let mut end: BTreeMap<i64, u64> = BTreeMap::new();
            for &(base, from, len) in &ranges {
                let last_end = end.get(&base).copied().unwrap_or(0);
                assert_eq!(from, last_end, "segment {base}: a range starts where the last one ended: {ranges:?}");
                assert!(len >= 1024, "at least the interval: {ranges:?}");
                assert!(from + len <= sizes[&base], "within the segment: {ranges:?}");
                end.insert(base, from + len);
            }
            let segments_asked = end.len();
            assert!(segments_asked >= 3, "writeback in {segments_asked} segments: {ranges:?}");
        });
        let dir = tempfile::tempdir().unwrap();
        run(async {
            let mut c = config(64 * 1024);
            c.writeback_interval_bytes = 0;
            let log = PartitionLog::open(dir.path(), "t", 0, c, crate::storage::RecoveryPoint::At(0)).unwrap();
            for _ in 0..100 {
                log.append(vec![batch(2, 0)]).await.unwrap();
            }
            assert!(log.writeback_ranges.borrow().is_empty(), "0 turns writeback off");
        });
    }

    #[test]
    fn flush_messages_1_fsyncs_every_write_before_acknowledging_it() {
        let dir = tempfile::tempdir().unwrap();
        run(async {
            let mut c = config(1 << 20);
            c.flush_messages = 1;
            let log = PartitionLog::open(dir.path(), "t", 0, c, crate::storage::RecoveryPoint::At(0)).unwrap();
            for _ in 0..10 {
                log.append(vec![batch(2, 0)]).await.unwrap();
                let state = log.state.borrow();
                assert_eq!(state.recovery_point, state.log_end_offset(), "acknowledged only once on disk");
                assert_eq!(state.unflushed_messages, 0);
            }
        });
        // Segments created by rolls: the first acknowledged append to each waits for the
        // folder entry naming its file to be fsynced as well.
        let dir = tempfile::tempdir().unwrap();
        run(async {
            let mut c = config(1024);
            c.flush_messages = 1;
            let log = PartitionLog::open(dir.path(), "t", 0, c, crate::storage::RecoveryPoint::At(0)).unwrap();
            for _ in 0..20 {
                log.append(vec![batch(2, 0)]).await.unwrap();
                assert!(log.state.borrow().active().name_durable, "acknowledged before the new segment's name was on disk");
            }
            let rolls = log.segment_count() as u64 - 1;
            assert!(rolls >= 5, "small segments rolled ({rolls})");
            assert_eq!(log.name_syncs.get(), rolls, "one folder fsync per new segment");
            // The rolled segments' flusher runs on the blocking pool, which outlives this
            // runtime: let it finish before the folder is opened again below.
            while log.flusher_running.get() {
                crate::io::runtime::sleep(std::time::Duration::from_millis(1)).await;
            }
        });
        run(async {
            let log = PartitionLog::open(dir.path(), "t", 0, config(1 << 20), crate::storage::RecoveryPoint::At(0)).unwrap();
            log.append(vec![batch(2, 0)]).await.unwrap();
            let state = log.state.borrow();
            assert!(state.recovery_point < state.log_end_offset(), "by default the OS decides when to write back");
        });
    }

    #[test]
    fn a_corrupted_base_offset_is_caught_in_recovery() {
        let dir = tempfile::tempdir().unwrap();
        run(async {
            let log = PartitionLog::open(dir.path(), "t", 0, config(1 << 20), crate::storage::RecoveryPoint::At(0)).unwrap();
            for _ in 0..10 {
                log.append(vec![batch(2, 0)]).await.unwrap();
            }
        });
        // The base offset is not covered by the CRC: flip its top bits, first in the sixth
        // batch (valid batches follow: the partition must go offline, with nothing cut), then
        // in the last one (a damaged tail: cut off).
        let path = dir.path().join(crate::storage::segment_file_name(0, "log"));
        let pristine = std::fs::read(&path).unwrap();
        let batch_bytes = record_batch::batch_size(&pristine).unwrap();
        let mut bytes = pristine.clone();
        bytes[5 * batch_bytes] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        crate::io::fs::remove_file_if_exists(&dir.path().join(crate::storage::RECOVERY_POINT_FILE)).unwrap();
        run(async {
            let log = PartitionLog::open(dir.path(), "t", 0, config(1 << 20), crate::storage::RecoveryPoint::At(0)).unwrap();
            assert!(log.is_offline(), "damage mid-log takes the partition offline");
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "and drops nothing");
            assert_eq!(log.append(vec![batch(1, 0)]).await, Err(AppendError::Storage));
            assert_eq!(log.read(0, 1000, true).await.err(), Some(ReadError::Storage));
        });
        let mut bytes = pristine.clone();
        bytes[9 * batch_bytes + 7] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        run(async {
            let log = PartitionLog::open(dir.path(), "t", 0, config(1 << 20), crate::storage::RecoveryPoint::At(0)).unwrap();
            assert!(!log.is_offline());
            assert_eq!(log.log_end_offset(), 18, "the damaged last batch is cut off");
            assert_eq!(std::fs::metadata(&path).unwrap().len(), 9 * batch_bytes as u64);
            assert_eq!(log.append(vec![batch(1, 0)]).await.unwrap().base_offset, 18);
        });
    }

    #[test]
    fn a_cut_inside_a_rolled_segment_makes_it_the_active_one_again() {
        let dir = tempfile::tempdir().unwrap();
        run(async {
            let log = PartitionLog::open(dir.path(), "t", 0, config(4096), crate::storage::RecoveryPoint::At(0)).unwrap();
            for _ in 0..40 {
                log.append(vec![batch(3, 5)]).await.unwrap();
            }
            let before = log.segment_count();
            assert!(before >= 3, "several segments: {before}");
            // 15 is a batch boundary inside the first, rolled segment: a follower's cut there.
            assert!(log.state.borrow().segments[1].base_offset > 15, "offset 15 is in the first segment");
            log.truncate_to(15).await.unwrap();
            assert_eq!((log.log_end_offset(), log.segment_count()), (15, 1));
            assert!(!log.state.borrow().segments[0].has_sealed_indexes(), "the cut segment takes appends again");
            assert_eq!(batch_at(&log, 13).await, (12, 14));
            let r = log.append(vec![batch(3, 5)]).await.unwrap();
            assert_eq!(r.base_offset, 15);
            for _ in 0..20 {
                log.append(vec![batch(3, 5)]).await.unwrap();
            }
            assert!(log.segment_count() > 1, "it rolls again, writing its indexes anew");
            assert_eq!(batch_at(&log, 16).await, (15, 17));
            log.close().unwrap();
        });
        for clean in [true, false] {
            run(async {
                let start = if clean { crate::storage::RecoveryPoint::CleanShutdown } else { crate::storage::RecoveryPoint::At(0) };
                let log = PartitionLog::open(dir.path(), "t", 0, config(4096), start).unwrap();
                assert_eq!(log.log_end_offset(), 78);
                assert_eq!(batch_at(&log, 13).await, (12, 14));
                assert_eq!(batch_at(&log, 61).await, (60, 62));
                log.close().unwrap();
            });
        }
    }

    #[test]
    fn a_reopened_log_continues_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        run(async {
            let log = PartitionLog::open(dir.path(), "t", 0, config(4096), crate::storage::RecoveryPoint::At(0)).unwrap();
            for _ in 0..40 {
                log.append(vec![batch(3, 5)]).await.unwrap();
            }
            log.close().unwrap();
        });
        for clean in [true, false] {
            // Reopened after a clean close, and as if after a crash (full recovery scan).
            run(async {
                let log = PartitionLog::open(
                    dir.path(),
                    "t",
                    0,
                    config(4096),
                    if clean { crate::storage::RecoveryPoint::CleanShutdown } else { crate::storage::RecoveryPoint::At(0) },
                )
                .unwrap();
                assert_eq!(log.log_end_offset(), 120);
                assert_eq!(batch_at(&log, 61).await, (60, 62));
                log.close().unwrap();
            });
        }
        // A missing recovery point and missing index files: everything is rebuilt.
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "index" || e == "timeindex") || path.ends_with(crate::storage::RECOVERY_POINT_FILE) {
                // If-exists: a file listed here once vanished before its removal in a loaded
                // test run (see the note on background flushes outliving `close`).
                crate::io::fs::remove_file_if_exists(&path).unwrap();
            }
        }
        run(async {
            let log = PartitionLog::open(dir.path(), "t", 0, config(4096), crate::storage::RecoveryPoint::At(0)).unwrap();
            assert_eq!(log.log_end_offset(), 120);
            let r = log.append(vec![batch(1, 5)]).await.unwrap();
            assert_eq!(r.base_offset, 120);
            assert_eq!(batch_at(&log, 119).await, (117, 119));
        });
    }

    /// `batch(count, timestamp)` as an idempotent producer's batch.
    fn idempotent(count: usize, producer_id: i64, sequence: i32) -> Bytes {
        let mut b = batch(count, 1_000).to_vec();
        b[record_batch::OFFSET_PRODUCER_ID..record_batch::OFFSET_PRODUCER_ID + 8].copy_from_slice(&producer_id.to_be_bytes());
        b[record_batch::OFFSET_PRODUCER_EPOCH..record_batch::OFFSET_PRODUCER_EPOCH + 2].copy_from_slice(&0i16.to_be_bytes());
        b[record_batch::OFFSET_BASE_SEQUENCE..record_batch::OFFSET_BASE_SEQUENCE + 4].copy_from_slice(&sequence.to_be_bytes());
        let crc = crc32c::crc32c(&b[record_batch::CRC_START..]);
        b[record_batch::OFFSET_CRC..record_batch::OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(b)
    }

    #[test]
    fn a_duplicate_in_its_originals_write_group_is_answered_after_the_original_is_written() {
        let dir = tempfile::tempdir().unwrap();
        run(async {
            let log = PartitionLog::open(dir.path(), "t", 0, config(1 << 20), crate::storage::RecoveryPoint::At(0)).unwrap();
            log.append(vec![idempotent(2, 9, 0)]).await.unwrap();
            // Queued together, so the writer takes both in one group: the retry must not be
            // acknowledged while its original is still on its way to the file.
            let original = log.append(vec![idempotent(3, 9, 2)]);
            let retry = log.append(vec![idempotent(3, 9, 2)]);
            let answer = retry.await.unwrap();
            assert_eq!(answer.base_offset, 2);
            assert_eq!(log.log_end_offset(), 5, "the retry was acknowledged before its original was written");
            assert_eq!(original.await.unwrap().base_offset, 2);
            assert_eq!(batch_at(&log, 4).await, (2, 4));
            assert_eq!(log.log_end_offset(), 5, "written once");
        });
    }

    #[test]
    fn a_failed_periodic_fsync_takes_the_log_offline() {
        let dir = tempfile::tempdir().unwrap();
        run(async {
            let mut c = config(1 << 20);
            c.flush_ms = 1_000;
            let log = PartitionLog::open(dir.path(), "t", 0, c, crate::storage::RecoveryPoint::At(0)).unwrap();
            log.append(vec![batch(2, 0)]).await.unwrap();
            crate::io::fault::fail_fsyncs_under(dir.path());
            log.flush_if_due(now_ms() + 10_000).await;
            crate::io::fault::heal(dir.path());
            assert!(log.is_offline(), "a failed fsync left the log online");
            assert_eq!(log.append(vec![batch(1, 0)]).await, Err(AppendError::Storage));
            assert_eq!(log.read(0, 1 << 20, true).await.err(), Some(ReadError::Storage));
            // Healed or not, it stays offline: the lost pages do not come back, and a later
            // fsync that succeeds does not make its close a clean one.
            log.flush_if_due(now_ms() + 20_000).await;
            assert!(log.is_offline());
            assert!(log.close().is_err(), "an offline log closed cleanly");
        });
    }

    #[test]
    fn the_time_index_is_sparse_and_a_full_one_rolls_the_segment() {
        let dir = tempfile::tempdir().unwrap();
        run(async {
            // 4 KiB between entries: a 150-byte batch per millisecond adds an entry to each
            // index every 28 batches, not one per batch.
            let mut c = config(1 << 20);
            c.index_interval_bytes = 4096;
            let log = PartitionLog::open(dir.path(), "t", 0, c.clone(), crate::storage::RecoveryPoint::At(0)).unwrap();
            for i in 0..1_000 {
                log.append(vec![batch(1, 1_000 + i)]).await.unwrap();
            }
            {
                let state = log.state.borrow();
                let active = state.active();
                let entries = active.size as usize / 4096 + 1;
                assert!(active.time_index.entries.len() <= entries, "{} time index entries for {} bytes", active.time_index.entries.len(), active.size);
                assert!(active.index.entries.len() <= entries);
                assert!(active.time_index.entries.len() > 1);
                // Kafka's entries: a batch's last offset, the largest timestamp so far.
                let e = active.index.entries.last().unwrap();
                assert_eq!(batch_header_at(&active.log, e.position).await.last_offset, e.relative_offset as i64);
            }
            assert_eq!(log.offset_of_max_timestamp().await.unwrap(), (1_999, 999));
            drop(log);

            // 96 bytes of index: room for 12 offset entries but only 8 time entries. Every
            // batch gets an entry in both: the time index fills first and rolls the segment.
            let dir = tempfile::tempdir().unwrap();
            c.index_interval_bytes = 1;
            c.segment_index_bytes = 96;
            let log = PartitionLog::open(dir.path(), "t", 0, c, crate::storage::RecoveryPoint::At(0)).unwrap();
            for i in 0..100 {
                log.append(vec![batch(1, 1_000 + i)]).await.unwrap();
            }
            assert!(log.segment_count() >= 100 / 8, "{} segments", log.segment_count());
            let state = log.state.borrow();
            for s in &state.segments {
                assert!(s.time_index.entries.len() * super::super::index::TIME_INDEX_ENTRY_BYTES <= 96, "a time index past segment.index.bytes");
            }
            // A rolled segment's last time entry holds its largest timestamp.
            let first = &state.segments[0];
            assert_eq!(first.time_index.entries.last().unwrap().timestamp, first.max_timestamp);
        });
    }

    async fn batch_header_at(file: &LogFile, position: u32) -> BatchHeader {
        let bytes = file.read_at(position as u64, record_batch::HEADER_BYTES).await.unwrap();
        BatchHeader::parse(&bytes, u32::MAX).unwrap()
    }
}
