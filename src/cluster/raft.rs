//! The metadata quorum: a KRaft-style replicated log of `MetadataRecord` batches, run by
//! openraft (0.10.0-alpha.37) on the controller's compio runtime.
//!
//! Four parts, each what openraft asks an application for:
//! - `MetadataLog`, the Raft log and vote on disk in the node's `__cluster_metadata-0` folder;
//! - `MetadataStateMachine`, which applies committed batches to a `MetadataImage` and keeps a
//!   snapshot of it in `snapshot.json`;
//! - `NetworkFactory`/`PeerClient` and `serve`, Raft's RPCs (and the brokers' controller
//!   requests) over TCP, one JSON frame each way per round trip;
//! - `Quorum`, the handle the rest of the broker holds: propose records, read the latest image,
//!   see the leader and the replication status.
//!
//! Everything runs on one thread (openraft's `single-threaded` feature removes the `Send`
//! bounds), so the log, the state machine and the image cell share state through `Rc<RefCell>`.
//! The files are written with blocking `std::fs` calls (through `io::fs`): this is the control
//! plane, a few writes a second at most, and a blocking fsync here delays only the controller.
//!
//! Files in `dir`:
//! - `raft.log`: records `[u32 BE length][u32 BE CRC-32C of the payload][payload]`, the payload a
//!   JSON `LogRecord` (an entry, or the id the log was purged up to). Appends are fsynced before
//!   openraft hears they are durable. On open the file is read back and cut at the first record
//!   that is short or fails its CRC (a torn tail); a record that passes its CRC but does not fit
//!   (bad JSON, an index out of order) is corruption and fails the open.
//! - `quorum-state`: the vote (term and voted-for), replaced atomically (Kafka's file of that name
//!   holds the same thing).
//! - `committed.json`: the last committed log id, so that a restart re-applies the log up to it
//!   before any leader is elected. A hint, not durable state (see `save_committed`).
//! - `snapshot.json`: the last snapshot: last applied log id, last membership and the image.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Debug;
use std::future::Future;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::ops::{Bound, RangeBounds, RangeInclusive};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use compio::io::{AsyncReadExt, AsyncWriteExt};
use compio::net::{TcpListener, TcpStream};
use compio::BufResult;
use futures_util::future::Either;
use futures_util::{Stream, TryStreamExt};
use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ClientWriteError, InitializeError, NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError, Timeout, Unreachable};
use openraft::network::v2::RaftNetworkV2;
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse};
use openraft::storage::{EntryResponder, IOFlushed, LogState, RaftLogReader, RaftLogStorage, RaftSnapshotBuilder, RaftStateMachine};
use openraft::vote::leader_id_std;
use openraft::{BasicNode, Config, EntryPayload, OptionalSend, RPCTypes, Raft, RaftMetrics, SnapshotPolicy};
use serde::{Deserialize, Serialize};

use crate::cluster::image::{MetadataImage, MetadataRecord};
use crate::cluster::rpc::{ControllerRequest, ControllerResponse};

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/// What one Raft entry carries: records proposed together, applied together (a broker
/// registration and its fencing, a topic and its partitions), as Kafka's controller writes a
/// batch of records atomically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MetadataBatch(pub Vec<MetadataRecord>);

impl fmt::Display for MetadataBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MetadataBatch({} records)", self.0.len())
    }
}

openraft::declare_raft_types!(
    /// The quorum's openraft types. The standard (one leader per term) leader id is chosen over
    /// openraft's default "advanced" one, which allows several leaders in one term: here the term
    /// is Kafka's leader epoch, and an epoch must name one leader, for fencing and for
    /// `metadata-quorum --describe`.
    pub TypeConfig:
        D = MetadataBatch,
        R = (),
        NodeId = u64,
        Node = BasicNode,
        Term = u64,
        LeaderId = leader_id_std::LeaderId<u64, u64>,
        AsyncRuntime = openraft_rt_compio::CompioRuntime,
);

/// The concrete forms of openraft's generic types for `TypeConfig` (the same types as its
/// `RaftTypeConfig` projections, spelled out so they can be built with struct literals).
pub type CommittedLeaderId = leader_id_std::CommittedLeaderId<u64>;
pub type LogId = openraft::LogId<CommittedLeaderId>;
pub type Vote = openraft::Vote<leader_id_std::LeaderId<u64, u64>>;
pub type Entry = openraft::Entry<CommittedLeaderId, EntryPayload<MetadataBatch, u64, BasicNode>>;
pub type StoredMembership = openraft::StoredMembership<CommittedLeaderId, u64, BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<CommittedLeaderId, u64, BasicNode>;
/// A snapshot's data is the bytes of `snapshot.json`.
pub type Snapshot = openraft::Snapshot<CommittedLeaderId, u64, BasicNode, Vec<u8>>;

/// The Raft handle of the metadata quorum.
pub type MetadataRaft = Raft<TypeConfig, MetadataStateMachine>;

/// What serves the brokers' controller requests that arrive on the quorum's port.
pub type ControllerHandler = Rc<dyn Fn(ControllerRequest) -> Pin<Box<dyn Future<Output = ControllerResponse>>>>;

const LOG_FILE: &str = "raft.log";
const VOTE_FILE: &str = "quorum-state";
const COMMITTED_FILE: &str = "committed.json";
const SNAPSHOT_FILE: &str = "snapshot.json";

/// The largest log record and the largest RPC frame. The metadata log is small; the bound is the
/// backstop against a corrupt length prefix (checked before anything is allocated).
const MAX_RECORD_BYTES: usize = 64 << 20;
const MAX_FRAME_BYTES: usize = 64 << 20;

/// Raft timing. A heartbeat every 150 ms and an election timeout of 500 to 1000 ms elect a new
/// leader about a second after the old one stops (the leader lease is the maximum timeout).
const HEARTBEAT_INTERVAL_MS: u64 = 150;
const ELECTION_TIMEOUT_MIN_MS: u64 = 500;
const ELECTION_TIMEOUT_MAX_MS: u64 = 1000;
/// A snapshot every 1000 entries, and 500 entries kept behind it, so that a follower a little
/// behind catches up from the log rather than by a snapshot transfer.
const SNAPSHOT_EVERY_LOGS: u64 = 1000;
const LOGS_KEPT_AFTER_SNAPSHOT: u64 = 500;
/// Sending and installing a snapshot: the image of a large cluster is megabytes of JSON.
const INSTALL_SNAPSHOT_TIMEOUT_MS: u64 = 10_000;

/// The least time an RPC is given. openraft asks for replication RPCs to end within 3/4 of the
/// heartbeat interval (about 110 ms here), less than a follower's fsync may take on a busy disk:
/// a replication that always timed out would never catch up. Where openraft needs a bound it
/// enforces its own around the call (heartbeats, votes), so the floor cannot delay those.
const MIN_RPC_TIMEOUT: Duration = Duration::from_secs(1);
/// How long `propose` waits for its batch to be committed and applied.
const PROPOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// A server connection with no request for this long is closed (peers reconnect at once).
const SERVE_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
const SERVE_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

fn invalid_data(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

// ---------------------------------------------------------------------------------------------
// The log: `raft.log`, `quorum-state`, `committed.json`
// ---------------------------------------------------------------------------------------------

/// One record of `raft.log`.
#[derive(Deserialize)]
enum LogRecord {
    Entry(Entry),
    /// Every entry up to this id is purged (they are in the snapshot). Written first when the
    /// file is rewritten by a purge, so the purged id survives a restart with an empty log.
    Purged(LogId),
}

/// `LogRecord`, borrowed, to serialize without cloning (the same JSON).
#[derive(Serialize)]
enum LogRecordRef<'a> {
    Entry(&'a Entry),
    Purged(&'a LogId),
}

/// Appends one framed record to `out`.
fn encode_record(out: &mut Vec<u8>, record: &LogRecordRef<'_>) -> io::Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    serde_json::to_writer(&mut *out, record)?;
    let len = out.len() - start - 8;
    if len > MAX_RECORD_BYTES {
        out.truncate(start);
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("a metadata log record of {len} bytes is over the limit")));
    }
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// What reading `raft.log` back found.
#[derive(Default)]
struct Scan {
    entries: BTreeMap<u64, Entry>,
    /// The file position of each entry's record, to truncate at.
    positions: BTreeMap<u64, u64>,
    last_purged: Option<LogId>,
    /// The length of the records that are whole and valid; what follows is a torn tail.
    valid_len: usize,
}

/// Reads the records of `raft.log`, stopping at the first one that is short or fails its CRC
/// (a write the process did not finish: everything after it is dropped). A record that passes
/// its CRC but cannot be used is corruption, not a torn write, and is an error: truncating there
/// could silently drop entries this node acknowledged.
fn scan(bytes: &[u8]) -> io::Result<Scan> {
    let mut scan = Scan::default();
    let mut pos = 0usize;
    loop {
        let rest = &bytes[pos..];
        if rest.len() < 8 {
            break;
        }
        let len = u32::from_be_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(rest[4..8].try_into().expect("4 bytes"));
        // A zero length is never written (a payload is a JSON object); it is what a file
        // extended by a crash but never written holds, and its CRC (of nothing) is zero too.
        if len == 0 || len > MAX_RECORD_BYTES || rest.len() - 8 < len {
            break;
        }
        let payload = &rest[8..8 + len];
        if crc32c::crc32c(payload) != crc {
            // A torn write can only be the last record: a bad CRC with more records after it
            // is damage inside the log, and cutting there would drop acknowledged entries.
            if rest.len() - 8 - len >= 8 {
                return Err(invalid_data(format!("metadata log record at byte {pos} fails its CRC and more records follow it")));
            }
            break;
        }
        let record: LogRecord =
            serde_json::from_slice(payload).map_err(|e| invalid_data(format!("metadata log record at byte {pos} passes its CRC but does not decode: {e}")))?;
        match record {
            LogRecord::Purged(id) => {
                scan.entries.retain(|index, _| *index > id.index);
                scan.positions.retain(|index, _| *index > id.index);
                if scan.last_purged.as_ref().is_none_or(|p| *p < id) {
                    scan.last_purged = Some(id);
                }
            }
            LogRecord::Entry(entry) => {
                let index = entry.log_id.index;
                let expected = scan.entries.keys().next_back().map(|last| last + 1).or(scan.last_purged.as_ref().map(|p| p.index + 1));
                if expected.is_some_and(|e| e != index) {
                    return Err(invalid_data(format!("metadata log record at byte {pos} holds index {index}, expected {}", expected.unwrap_or(0))));
                }
                scan.positions.insert(index, pos as u64);
                scan.entries.insert(index, entry);
            }
        }
        pos += 8 + len;
    }
    scan.valid_len = pos;
    Ok(scan)
}

/// `(first, last)` inclusive indexes of `range`, or `None` when it is empty. (`BTreeMap::range`
/// panics on an inverted range; openraft's ranges come from its own arithmetic.)
fn index_range(range: &impl RangeBounds<u64>) -> Option<RangeInclusive<u64>> {
    let first = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let last = match range.end_bound() {
        Bound::Included(&e) => e,
        Bound::Excluded(&e) => e.checked_sub(1)?,
        Bound::Unbounded => u64::MAX,
    };
    (first <= last).then_some(first..=last)
}

fn open_append(path: &Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new().create(true).append(true).open(path)
}

/// Cuts `file` to `len` bytes and makes that durable (recorded for the power-cut emulation, as
/// `io::LogFile::set_len` does).
fn truncate_durably(file: &std::fs::File, len: u64) -> io::Result<()> {
    use crate::io::fault::power;
    file.set_len(len)?;
    if power::armed() {
        power::record(power::Event::Truncate { path: power::path_of(file), len });
    }
    crate::io::fs::sync_file(file)
}

/// Creates `dir` if it is missing, durably (the parent folder is fsynced too).
fn ensure_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    crate::io::fs::create_dir_all(dir)?;
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    crate::io::fs::sync_dir(parent)
}

/// The Raft log and vote of one node, on disk and in memory. Synchronous: `MetadataLog` wraps
/// it for openraft, and the tests drive it directly.
pub struct RaftLogFile {
    dir: PathBuf,
    /// `raft.log`, opened for appending.
    file: std::fs::File,
    /// Bytes of valid records in `raft.log`.
    len: u64,
    entries: BTreeMap<u64, Entry>,
    positions: BTreeMap<u64, u64>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
    /// Set when a write or fsync failed: what the file holds is then unknown (a failed fsync may
    /// have dropped the dirty pages), so every later write is refused rather than built on it.
    failed: Option<String>,
}

impl RaftLogFile {
    /// Opens (or creates) the log in `dir`, reading it back and cutting a torn tail.
    pub fn open(dir: &Path) -> io::Result<RaftLogFile> {
        ensure_dir(dir)?;
        let vote = match crate::io::fs::read_if_exists(&dir.join(VOTE_FILE))? {
            // The vote is replaced atomically, so a file that does not parse is damage, not a torn
            // write; starting with no vote could vote twice in one term.
            Some(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| invalid_data(format!("{}: {e}", dir.join(VOTE_FILE).display())))?),
            None => None,
        };
        let path = dir.join(LOG_FILE);
        let bytes = crate::io::fs::read_if_exists(&path)?;
        let existed = bytes.is_some();
        let bytes = bytes.unwrap_or_default();
        let scan = scan(&bytes).map_err(|e| invalid_data(format!("{}: {e}", path.display())))?;
        let file = open_append(&path)?;
        if !existed {
            crate::io::fs::sync_dir(dir)?;
        }
        if scan.valid_len < bytes.len() {
            tracing::warn!(
                log = %path.display(),
                dropped_bytes = bytes.len() - scan.valid_len,
                "metadata log: cutting a torn tail (a write that did not finish)"
            );
            truncate_durably(&file, scan.valid_len as u64)?;
        }
        let mut log = RaftLogFile {
            dir: dir.to_owned(),
            file,
            len: scan.valid_len as u64,
            entries: scan.entries,
            positions: scan.positions,
            last_purged: scan.last_purged,
            vote,
            committed: None,
            failed: None,
        };
        log.committed = log.read_committed_hint();
        Ok(log)
    }

    /// `committed.json`, if it is readable and names an entry this log holds (or has purged).
    /// It is written without fsync, so after a crash it may be missing, empty or old: each is
    /// safe, as an older committed id only means re-applying less before a leader is heard.
    fn read_committed_hint(&self) -> Option<LogId> {
        let bytes = crate::io::fs::read_if_exists(&self.dir.join(COMMITTED_FILE)).ok()??;
        let committed: LogId = serde_json::from_slice(&bytes).ok()?;
        let held = self.entries.get(&committed.index).is_some_and(|e| e.log_id == committed);
        let purged = self.last_purged.as_ref().is_some_and(|p| committed.index <= p.index);
        (held || purged).then_some(committed)
    }

    fn check_healthy(&self) -> io::Result<()> {
        match &self.failed {
            Some(why) => Err(io::Error::other(format!("the metadata log failed earlier and takes no more writes: {why}"))),
            None => Ok(()),
        }
    }

    fn fail(&mut self, e: &io::Error) {
        tracing::error!(dir = %self.dir.display(), error = %e, "metadata log write failed");
        self.failed.get_or_insert_with(|| e.to_string());
    }

    pub fn vote(&self) -> Option<Vote> {
        self.vote
    }

    pub fn committed(&self) -> Option<LogId> {
        self.committed
    }

    pub fn last_purged(&self) -> Option<LogId> {
        self.last_purged
    }

    /// The id of the last entry, or the last purged one when the log is empty.
    pub fn last_log_id(&self) -> Option<LogId> {
        self.entries.values().next_back().map(|e| e.log_id).or(self.last_purged)
    }

    pub fn entries(&self, range: impl RangeBounds<u64>) -> Vec<Entry> {
        match index_range(&range) {
            Some(range) => self.entries.range(range).map(|(_, e)| e.clone()).collect(),
            None => Vec::new(),
        }
    }

    /// The index the next appended entry must have, when the log has one to follow.
    fn next_index(&self) -> Option<u64> {
        self.last_log_id().map(|id| id.index + 1)
    }

    /// Replaces the vote, durably (temporary file, fsync, rename, folder fsync).
    pub fn save_vote(&mut self, vote: &Vote) -> io::Result<()> {
        self.check_healthy()?;
        let bytes = serde_json::to_vec(vote)?;
        crate::io::fs::write_atomic(&self.dir.join(VOTE_FILE), &bytes, None)?;
        self.vote = Some(*vote);
        Ok(())
    }

    /// Records the committed id (see `read_committed_hint`): renamed into place so a reader never
    /// sees half a file, but not fsynced, as it costs an fsync per commit and guarantees nothing
    /// Raft needs. It never names an entry that is not durable: entries are fsynced in `append`
    /// before openraft learns they are stored, and committed entries are never truncated.
    pub fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        let Some(id) = committed else { return Ok(()) };
        if self.committed == Some(id) {
            return Ok(());
        }
        let path = self.dir.join(COMMITTED_FILE);
        let tmp = path.with_extension("tmp");
        crate::io::fs::write_file(&tmp, &serde_json::to_vec(&id)?)?;
        crate::io::fs::rename(&tmp, &path)?;
        self.committed = Some(id);
        Ok(())
    }

    /// Appends `entries` and fsyncs them; when this returns `Ok` they are durable and readable.
    /// An entry already in the log with the same id is skipped (a repeated append); one that
    /// would leave a hole or overwrite a different entry is refused (openraft truncates first).
    pub fn append(&mut self, entries: impl IntoIterator<Item = Entry>) -> io::Result<()> {
        self.check_healthy()?;
        let mut buf = Vec::new();
        let mut added = Vec::new();
        let mut next = self.next_index();
        for entry in entries {
            let index = entry.log_id.index;
            if let Some(existing) = self.entries.get(&index) {
                if existing.log_id == entry.log_id && added.is_empty() {
                    continue;
                }
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("append of {} over a different entry {} without a truncate", entry.log_id, existing.log_id),
                ));
            }
            if next.is_some_and(|n| n != index) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("append of index {index} would leave a hole: the next index is {}", next.unwrap_or(0)),
                ));
            }
            let position = self.len + buf.len() as u64;
            encode_record(&mut buf, &LogRecordRef::Entry(&entry))?;
            next = Some(index + 1);
            added.push((position, entry));
        }
        if added.is_empty() {
            return Ok(());
        }
        let written = self.file.write_all(&buf).and_then(|()| crate::io::fs::sync_file(&self.file));
        if let Err(e) = written {
            self.fail(&e);
            return Err(e);
        }
        self.len += buf.len() as u64;
        for (position, entry) in added {
            self.positions.insert(entry.log_id.index, position);
            self.entries.insert(entry.log_id.index, entry);
        }
        Ok(())
    }

    /// Removes every entry after `last` (all of them for `None`), durably: the file is cut where
    /// the first removed entry's record starts.
    pub fn truncate_after(&mut self, last: Option<LogId>) -> io::Result<()> {
        self.check_healthy()?;
        let from = last.map_or(0, |id| id.index + 1);
        let Some(&position) = self.positions.range(from..).next().map(|(_, p)| p) else { return Ok(()) };
        if let Err(e) = truncate_durably(&self.file, position) {
            self.fail(&e);
            return Err(e);
        }
        self.len = position;
        self.entries.retain(|index, _| *index < from);
        self.positions.retain(|index, _| *index < from);
        Ok(())
    }

    /// Removes every entry up to `upto`, inclusive. The file is rewritten (the metadata log is
    /// small, and purges come once per snapshot): a `Purged` record, then the entries kept,
    /// replaced atomically.
    pub fn purge(&mut self, upto: LogId) -> io::Result<()> {
        self.check_healthy()?;
        if self.last_purged.is_some_and(|p| p >= upto) {
            return Ok(());
        }
        let mut buf = Vec::new();
        encode_record(&mut buf, &LogRecordRef::Purged(&upto))?;
        let mut positions = BTreeMap::new();
        for (index, entry) in self.entries.range(upto.index + 1..) {
            positions.insert(*index, buf.len() as u64);
            encode_record(&mut buf, &LogRecordRef::Entry(entry))?;
        }
        let path = self.dir.join(LOG_FILE);
        let replaced = crate::io::fs::write_atomic(&path, &buf, None).and_then(|()| open_append(&path));
        match replaced {
            Ok(file) => self.file = file,
            Err(e) => {
                self.fail(&e);
                return Err(e);
            }
        }
        self.entries = self.entries.split_off(&(upto.index + 1));
        self.positions = positions;
        self.len = buf.len() as u64;
        self.last_purged = Some(upto);
        Ok(())
    }
}

/// The log for openraft: one `RaftLogFile` shared by the log store and its readers (the
/// replication tasks). Every call borrows it for a synchronous step, never across an await.
#[derive(Clone)]
pub struct MetadataLog(Rc<RefCell<RaftLogFile>>);

impl MetadataLog {
    pub fn open(dir: &Path) -> io::Result<MetadataLog> {
        Ok(MetadataLog(Rc::new(RefCell::new(RaftLogFile::open(dir)?))))
    }
}

impl RaftLogReader<TypeConfig> for MetadataLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(&mut self, range: RB) -> Result<Vec<Entry>, io::Error> {
        Ok(self.0.borrow().entries(range))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.0.borrow().vote())
    }
}

impl RaftLogStorage<TypeConfig> for MetadataLog {
    type LogReader = MetadataLog;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let log = self.0.borrow();
        Ok(LogState { last_purged_log_id: log.last_purged(), last_log_id: log.last_log_id() })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.0.borrow_mut().save_vote(vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        self.0.borrow_mut().save_committed(committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.0.borrow().committed())
    }

    /// Writes and fsyncs before returning, then reports the flush: the durability openraft's
    /// callback promises is the fsync's, and a failed fsync is reported to it and returned.
    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let result = self.0.borrow_mut().append(entries);
        match result {
            Ok(()) => {
                callback.io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.io_completed(Err(io::Error::new(e.kind(), e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        self.0.borrow_mut().truncate_after(last_log_id)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        self.0.borrow_mut().purge(log_id)
    }
}

// ---------------------------------------------------------------------------------------------
// The image: who sees the state machine's output
// ---------------------------------------------------------------------------------------------

/// The latest applied image, and the subscribers to its changes. Each subscriber has a
/// one-slot flume channel that holds the newest image it has not taken yet (an older one is
/// drained first), so a slow subscriber sees the latest state, never a backlog. The images are
/// `Arc`s, so a subscriber may hand them to other threads (the broker's shards).
struct ImageCell {
    current: RefCell<Arc<MetadataImage>>,
    /// Each subscriber's sender, and a receiver of the same channel to drain a stale image.
    subscribers: RefCell<Vec<(flume::Sender<Arc<MetadataImage>>, flume::Receiver<Arc<MetadataImage>>)>>,
}

impl ImageCell {
    fn new(image: Arc<MetadataImage>) -> ImageCell {
        ImageCell { current: RefCell::new(image), subscribers: RefCell::new(Vec::new()) }
    }

    fn current(&self) -> Arc<MetadataImage> {
        self.current.borrow().clone()
    }

    fn publish(&self, image: Arc<MetadataImage>) {
        *self.current.borrow_mut() = image.clone();
        self.subscribers.borrow_mut().retain(|(tx, stale)| {
            // Only our own draining receiver left: the subscriber went away.
            if tx.receiver_count() <= 1 {
                return false;
            }
            let _ = stale.try_recv();
            let _ = tx.try_send(image.clone());
            true
        });
    }

    fn subscribe(&self) -> flume::Receiver<Arc<MetadataImage>> {
        // Subscribers that went away since the last change go now, so a quiet cluster's list
        // stays as long as its live subscribers.
        self.subscribers.borrow_mut().retain(|(tx, _)| tx.receiver_count() > 1);
        let (tx, rx) = flume::bounded(1);
        let _ = tx.try_send(self.current());
        self.subscribers.borrow_mut().push((tx, rx.clone()));
        rx
    }
}

// ---------------------------------------------------------------------------------------------
// The state machine: `snapshot.json`
// ---------------------------------------------------------------------------------------------

/// `snapshot.json`: what the state machine is rebuilt from.
#[derive(Deserialize)]
struct SnapshotFile {
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    image: MetadataImage,
}

/// `SnapshotFile`, borrowed, to serialize without cloning the image.
#[derive(Serialize)]
struct SnapshotFileRef<'a> {
    last_applied: &'a Option<LogId>,
    last_membership: &'a StoredMembership,
    image: &'a MetadataImage,
}

/// The snapshot on disk, kept in memory too (openraft reads it to send it to a follower).
#[derive(Clone)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

impl StoredSnapshot {
    fn to_snapshot(&self) -> Snapshot {
        Snapshot { meta: self.meta.clone(), snapshot: self.data.clone() }
    }
}

/// Applies committed batches to the image. It is not persisted on each apply: the snapshot is,
/// and on start the state machine is the snapshot's, then openraft re-applies the log after it
/// (up to `committed.json` at once, the rest as a leader commits it).
pub struct MetadataStateMachine {
    dir: PathBuf,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    image: Arc<MetadataImage>,
    /// Shared with the snapshot builders, which run in their own tasks.
    snapshot: Rc<RefCell<Option<StoredSnapshot>>>,
    images: Rc<ImageCell>,
}

impl MetadataStateMachine {
    /// Restores the state machine from `dir/snapshot.json`, if there is one.
    fn open(dir: &Path) -> io::Result<MetadataStateMachine> {
        ensure_dir(dir)?;
        let path = dir.join(SNAPSHOT_FILE);
        let mut sm = MetadataStateMachine {
            dir: dir.to_owned(),
            last_applied: None,
            last_membership: StoredMembership::default(),
            image: Arc::new(MetadataImage::default()),
            snapshot: Rc::new(RefCell::new(None)),
            images: Rc::new(ImageCell::new(Arc::new(MetadataImage::default()))),
        };
        if let Some(data) = crate::io::fs::read_if_exists(&path)? {
            // Replaced atomically, so unreadable means damaged; starting empty would lose what
            // the purged log held.
            let file: SnapshotFile = serde_json::from_slice(&data).map_err(|e| invalid_data(format!("{}: {e}", path.display())))?;
            let meta = SnapshotMeta { last_log_id: file.last_applied, last_membership: file.last_membership.clone() };
            sm.last_applied = file.last_applied;
            sm.last_membership = file.last_membership;
            sm.image = Arc::new(file.image);
            sm.images = Rc::new(ImageCell::new(sm.image.clone()));
            *sm.snapshot.borrow_mut() = Some(StoredSnapshot { meta, data });
        }
        Ok(sm)
    }

    fn apply_entry(&mut self, entry: &Entry) {
        // The published image is shared, so the first entry of an apply call clones it (once
        // per call, not per entry: the clone is then unshared).
        let image = Arc::make_mut(&mut self.image);
        match &entry.payload {
            EntryPayload::Blank => {}
            EntryPayload::Normal(batch) => {
                // The batch's index is its records' offset (a broker's epoch is its registration's).
                image.apply_batch(entry.log_id.index, &batch.0);
            }
            EntryPayload::Membership(membership) => {
                self.last_membership = StoredMembership::new(Some(entry.log_id), membership.clone());
            }
        }
        // The image's offset is the index of the last entry applied to it (blank and membership
        // entries included), so a broker can tell whether it has seen a given `propose`.
        image.offset = entry.log_id.index;
        self.last_applied = Some(entry.log_id);
    }
}

impl RaftStateMachine<TypeConfig> for MetadataStateMachine {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = MetadataSnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    /// Applies the entries, publishes the new image, then answers the proposers: when
    /// `propose` returns, `Quorum::image` already shows its records.
    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut responders = Vec::new();
        let mut failure = None;
        loop {
            match entries.try_next().await {
                Ok(Some((entry, responder))) => {
                    self.apply_entry(&entry);
                    responders.extend(responder);
                }
                Ok(None) => break,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        self.images.publish(self.image.clone());
        for responder in responders {
            responder.send(());
        }
        failure.map_or(Ok(()), Err)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        MetadataSnapshotBuilder {
            dir: self.dir.clone(),
            last_applied: self.last_applied,
            last_membership: self.last_membership.clone(),
            image: self.image.clone(),
            snapshot: self.snapshot.clone(),
        }
    }

    /// Installs a snapshot received from the leader (openraft also calls this on start when the
    /// stored snapshot is ahead of the state machine, which `open` avoids by starting from it).
    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: Vec<u8>) -> Result<(), io::Error> {
        let file: SnapshotFile = serde_json::from_slice(&snapshot).map_err(|e| invalid_data(format!("received snapshot: {e}")))?;
        if file.last_applied != meta.last_log_id {
            return Err(invalid_data(format!("received snapshot holds state up to {:?} but is described as {:?}", file.last_applied, meta.last_log_id)));
        }
        crate::io::fs::write_atomic(&self.dir.join(SNAPSHOT_FILE), &snapshot, None)?;
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        self.image = Arc::new(file.image);
        *self.snapshot.borrow_mut() = Some(StoredSnapshot { meta: meta.clone(), data: snapshot });
        self.images.publish(self.image.clone());
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        Ok(self.snapshot.borrow().as_ref().map(StoredSnapshot::to_snapshot))
    }
}

/// The state machine as it was when openraft asked for a snapshot.
pub struct MetadataSnapshotBuilder {
    dir: PathBuf,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    image: Arc<MetadataImage>,
    snapshot: Rc<RefCell<Option<StoredSnapshot>>>,
}

impl RaftSnapshotBuilder<TypeConfig> for MetadataSnapshotBuilder {
    type SnapshotData = Vec<u8>;

    /// Writes `snapshot.json` atomically. A builder runs in its own task, so a snapshot installed
    /// (or built) since it was made may be newer: that one is kept and returned instead. The check
    /// and the write run without an await between them, so nothing interleaves.
    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let mut current = self.snapshot.borrow_mut();
        if let Some(newer) = current.as_ref().filter(|s| s.meta.last_log_id >= self.last_applied) {
            return Ok(newer.to_snapshot());
        }
        let file = SnapshotFileRef { last_applied: &self.last_applied, last_membership: &self.last_membership, image: &self.image };
        let data = serde_json::to_vec(&file)?;
        crate::io::fs::write_atomic(&self.dir.join(SNAPSHOT_FILE), &data, None)?;
        let stored = StoredSnapshot { meta: SnapshotMeta { last_log_id: self.last_applied, last_membership: self.last_membership.clone() }, data };
        let snapshot = stored.to_snapshot();
        *current = Some(stored);
        Ok(snapshot)
    }
}

// ---------------------------------------------------------------------------------------------
// The network: frames, the client of each peer, the server
// ---------------------------------------------------------------------------------------------

/// A request on the quorum's port: Raft's RPCs between controllers, and brokers' requests to
/// the controller.
#[derive(Debug, Serialize, Deserialize)]
pub enum Rpc {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<TypeConfig>),
    PreVote(VoteRequest<TypeConfig>),
    /// A whole snapshot. `data` is the snapshot file's JSON text as a string: a `Vec<u8>` would be
    /// written by serde_json as an array of numbers, four times the size.
    FullSnapshot {
        vote: Vote,
        meta: SnapshotMeta,
        data: String,
    },
    TransferLeader(TransferLeaderRequest<TypeConfig>),
    Controller(ControllerRequest),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum RpcReply {
    AppendEntries(AppendEntriesResponse<TypeConfig>),
    /// The answer to a `Vote` or a `PreVote`.
    Vote(VoteResponse<TypeConfig>),
    FullSnapshot(SnapshotResponse<TypeConfig>),
    TransferLeader(TransferLeaderResponse<TypeConfig>),
    Controller(ControllerResponse),
    /// The request could not be served (undecodable, or this node's Raft has stopped).
    Error(String),
}

/// A frame: a u32 big-endian length, then that many bytes of JSON.
fn encode_frame(value: &impl Serialize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; 4];
    serde_json::to_writer(&mut buf, value)?;
    let len = buf.len() - 4;
    if len > MAX_FRAME_BYTES {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("a frame of {len} bytes is over the {MAX_FRAME_BYTES}-byte limit")));
    }
    buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(buf)
}

/// Reads one frame's JSON. The length is checked before the body is allocated. A connection
/// closed between frames is `UnexpectedEof`.
async fn read_frame(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let BufResult(result, header) = stream.read_exact([0u8; 4]).await;
    result?;
    let len = u32::from_be_bytes(header) as usize;
    if len == 0 || len > MAX_FRAME_BYTES {
        return Err(invalid_data(format!("a frame of {len} bytes (the limit is {MAX_FRAME_BYTES})")));
    }
    let BufResult(result, body) = stream.read_exact(Vec::with_capacity(len)).await;
    result?;
    Ok(body)
}

/// One round trip on an open connection: the request's frame out, the reply's frame back.
async fn send_and_receive(stream: &mut TcpStream, frame: Vec<u8>) -> io::Result<RpcReply> {
    let BufResult(result, _) = stream.write_all(frame).await;
    result?;
    let body = read_frame(stream).await?;
    Ok(serde_json::from_slice(&body)?)
}

async fn connect(addr: impl compio::net::ToSocketAddrsAsync) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    crate::io::net::configure_stream(&stream)?;
    Ok(stream)
}

/// A one-off request to a quorum node on a connection of its own (brokers use it for controller
/// requests), bounded by `timeout` from connecting to the reply.
pub async fn call(addr: SocketAddr, rpc: &Rpc, timeout: Duration) -> io::Result<RpcReply> {
    let frame = encode_frame(rpc)?;
    match compio::time::timeout(timeout, connect_and_exchange(addr, frame)).await {
        Ok(reply) => reply,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("no reply from {addr} within {timeout:?}"))),
    }
}

async fn connect_and_exchange(addr: SocketAddr, frame: Vec<u8>) -> io::Result<RpcReply> {
    let mut stream = connect(addr).await?;
    send_and_receive(&mut stream, frame).await
}

/// Makes the clients openraft sends RPCs through.
pub struct NetworkFactory {
    node_id: u64,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerClient {
        PeerClient { node_id: self.node_id, target, addr: node.addr.clone(), conn: None }
    }
}

/// Why a round trip failed, before it is told to openraft.
enum ExchangeError {
    /// No connection could be made: openraft backs off before trying this peer again.
    Connect(io::Error),
    Io(io::Error),
}

/// The errors a kept connection shows when the peer closed it while it was idle.
fn is_stale(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionAborted)
}

/// The client of one peer, as openraft holds it (one for replication, one for heartbeats, a
/// short-lived one per election). It keeps its connection between calls: one request, then its
/// reply, at a time. Any error or timeout drops the connection (a late reply must not be read as
/// the next one's); the next call reconnects.
pub struct PeerClient {
    node_id: u64,
    target: u64,
    addr: String,
    conn: Option<TcpStream>,
}

impl PeerClient {
    async fn exchange(&mut self, frame: Vec<u8>) -> Result<RpcReply, ExchangeError> {
        // The connection is taken out for the call: if the call times out, it is dropped with it.
        let (mut stream, reused) = match self.conn.take() {
            Some(stream) => (stream, true),
            None => (connect(self.addr.as_str()).await.map_err(ExchangeError::Connect)?, false),
        };
        let retry = reused.then(|| frame.clone());
        match send_and_receive(&mut stream, frame).await {
            Ok(reply) => {
                self.conn = Some(stream);
                Ok(reply)
            }
            // A kept connection the peer closed while idle (its idle timeout, a restart): once
            // more on a new one. Raft's RPCs may be delivered twice.
            Err(e) if is_stale(&e) && retry.is_some() => {
                tracing::debug!(peer = self.target, error = %e, "quorum peer connection went stale; reconnecting");
                let mut stream = connect(self.addr.as_str()).await.map_err(ExchangeError::Connect)?;
                let reply = send_and_receive(&mut stream, retry.unwrap_or_default()).await.map_err(ExchangeError::Io)?;
                self.conn = Some(stream);
                Ok(reply)
            }
            Err(e) => Err(ExchangeError::Io(e)),
        }
    }

    async fn round_trip(&mut self, rpc: &Rpc, action: RPCTypes, option: &RPCOption) -> Result<RpcReply, RPCError<TypeConfig>> {
        let timeout = option.soft_ttl().max(MIN_RPC_TIMEOUT);
        let frame = encode_frame(rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        match compio::time::timeout(timeout, self.exchange(frame)).await {
            Ok(Ok(RpcReply::Error(why))) => Err(RPCError::Unreachable(Unreachable::from_string(format!("node {}: {why}", self.target)))),
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(ExchangeError::Connect(e))) => Err(RPCError::Unreachable(Unreachable::new(&e))),
            Ok(Err(ExchangeError::Io(e))) => Err(RPCError::Network(NetworkError::new(&e))),
            Err(_) => Err(RPCError::Timeout(Timeout { action, id: self.node_id, target: self.target, timeout })),
        }
    }

    fn unexpected(&self, reply: &RpcReply) -> RPCError<TypeConfig> {
        RPCError::Network(NetworkError::from_string(format!("node {} answered with an unexpected reply: {reply:?}", self.target)))
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.round_trip(&Rpc::AppendEntries(rpc), RPCTypes::AppendEntries, &option).await? {
            RpcReply::AppendEntries(resp) => Ok(resp),
            other => Err(self.unexpected(&other)),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest<TypeConfig>, option: RPCOption) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.round_trip(&Rpc::Vote(rpc), RPCTypes::Vote, &option).await? {
            RpcReply::Vote(resp) => Ok(resp),
            other => Err(self.unexpected(&other)),
        }
    }

    async fn pre_vote(&mut self, rpc: VoteRequest<TypeConfig>, option: RPCOption) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.round_trip(&Rpc::PreVote(rpc), RPCTypes::Vote, &option).await? {
            RpcReply::Vote(resp) => Ok(resp),
            other => Err(self.unexpected(&other)),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let data = String::from_utf8(snapshot.snapshot).map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
        let rpc = Rpc::FullSnapshot { vote, meta: snapshot.meta, data };
        let reply = {
            let send = std::pin::pin!(self.round_trip(&rpc, RPCTypes::InstallSnapshot, &option));
            let cancel = std::pin::pin!(cancel);
            match futures_util::future::select(cancel, send).await {
                Either::Left((closed, _)) => return Err(StreamingError::Closed(closed)),
                Either::Right((reply, _)) => reply?,
            }
        };
        match reply {
            RpcReply::FullSnapshot(resp) => Ok(resp),
            other => Err(StreamingError::from(self.unexpected(&other))),
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.round_trip(&Rpc::TransferLeader(req), RPCTypes::TransferLeader, &option).await? {
            RpcReply::TransferLeader(resp) => Ok(resp),
            other => Err(self.unexpected(&other)),
        }
    }
}

/// Serves the quorum's port: each connection gets a task that reads a request, answers it and
/// writes the reply, in a loop. Raft's RPCs go to `raft`, controller requests to `controller`.
/// Runs until the task running it is dropped; connections already open are served until their
/// peer closes them or goes idle.
pub async fn serve(listener: TcpListener, raft: MetadataRaft, controller: ControllerHandler) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let (raft, controller) = (raft.clone(), controller.clone());
                compio::runtime::spawn(async move { serve_connection(stream, peer, raft, controller).await }).detach();
            }
            Err(e) => {
                // Out of descriptors, most likely: wait rather than spin.
                tracing::warn!(error = %e, "quorum listener: accept failed");
                compio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_connection(mut stream: TcpStream, peer: SocketAddr, raft: MetadataRaft, controller: ControllerHandler) {
    if let Err(e) = crate::io::net::configure_stream(&stream) {
        tracing::debug!(%peer, error = %e, "quorum connection: could not configure the socket");
        return;
    }
    loop {
        let frame = match compio::time::timeout(SERVE_IDLE_TIMEOUT, read_frame(&mut stream)).await {
            Ok(Ok(frame)) => frame,
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "quorum connection: read failed");
                return;
            }
            Err(_) => return,
        };
        // An undecodable request is answered, not dropped: the frame boundary is intact.
        let reply = match serde_json::from_slice::<Rpc>(&frame) {
            Ok(rpc) => answer(&raft, &controller, rpc).await,
            Err(e) => RpcReply::Error(format!("undecodable request: {e}")),
        };
        let bytes = match encode_frame(&reply) {
            Ok(bytes) => bytes,
            Err(e) => match encode_frame(&RpcReply::Error(e.to_string())) {
                Ok(bytes) => bytes,
                Err(_) => return,
            },
        };
        match compio::time::timeout(SERVE_WRITE_TIMEOUT, stream.write_all(bytes)).await {
            Ok(BufResult(Ok(()), _)) => {}
            Ok(BufResult(Err(e), _)) => {
                tracing::debug!(%peer, error = %e, "quorum connection: write failed");
                return;
            }
            Err(_) => return,
        }
    }
}

async fn answer(raft: &MetadataRaft, controller: &ControllerHandler, rpc: Rpc) -> RpcReply {
    fn failed(e: impl fmt::Display) -> RpcReply {
        RpcReply::Error(e.to_string())
    }
    match rpc {
        Rpc::AppendEntries(req) => raft.append_entries(req).await.map_or_else(failed, RpcReply::AppendEntries),
        Rpc::Vote(req) => raft.vote(req).await.map_or_else(failed, RpcReply::Vote),
        Rpc::PreVote(req) => raft.pre_vote(req).await.map_or_else(failed, RpcReply::Vote),
        Rpc::FullSnapshot { vote, meta, data } => {
            let snapshot = Snapshot { meta, snapshot: data.into_bytes() };
            raft.install_full_snapshot(vote, snapshot).await.map_or_else(failed, RpcReply::FullSnapshot)
        }
        Rpc::TransferLeader(req) => raft.handle_transfer_leader(req).await.map_or_else(failed, RpcReply::TransferLeader),
        Rpc::Controller(req) => RpcReply::Controller(controller(req).await),
    }
}

// ---------------------------------------------------------------------------------------------
// The quorum handle
// ---------------------------------------------------------------------------------------------

/// Why a proposal was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposeError {
    /// This node cannot accept writes; `leader` is the leader it knows of, if any. `None` also
    /// when this node is the leader but its lease has lapsed (no quorum has answered it within
    /// the election timeout): it may be deposed already, so it takes no writes until it hears
    /// from a quorum again.
    NotLeader {
        leader: Option<u64>,
    },
    /// The batch was appended but its fate is unknown: leadership changed before it was known to
    /// be committed, or the wait timed out. It may still be applied: a retry must be harmless
    /// twice, or check the image first.
    Uncertain(String),
    Other(String),
}

impl fmt::Display for ProposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProposeError::NotLeader { leader: Some(l) } => write!(f, "not the controller leader; the leader is node {l}"),
            ProposeError::NotLeader { leader: None } => write!(f, "not the controller leader; no leader is known"),
            ProposeError::Uncertain(why) => write!(f, "the proposal's outcome is unknown: {why}"),
            ProposeError::Other(why) => write!(f, "the proposal failed: {why}"),
        }
    }
}

impl std::error::Error for ProposeError {}

/// What `kafka-metadata-quorum --describe --status / --replication` shows, as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuorumStatus {
    pub node_id: u64,
    /// This node's Raft state: "Leader", "Follower", "Candidate", "Learner" or "Shutdown".
    pub state: String,
    pub leader: Option<u64>,
    /// The Raft term: Kafka's leader epoch.
    pub term: u64,
    /// The index of the last committed entry (Kafka's HighWatermark is the offset after it).
    pub committed_index: Option<u64>,
    pub last_log_index: Option<u64>,
    pub last_applied_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub voters: Vec<VoterStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VoterStatus {
    pub node_id: u64,
    pub addr: String,
    /// The last index known replicated to this voter. Known on the leader only.
    pub matched_index: Option<u64>,
    /// When this voter last acknowledged the leader (milliseconds since the Unix epoch): Kafka's
    /// LastFetchTimestamp. Known on the leader only; for the leader itself, now.
    pub last_ack_unix_ms: Option<u64>,
}

/// The metadata log's folder, in `metadata.log.dir`: KRaft's name for it.
pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";

/// The metadata quorum as this node takes part in it.
pub struct Quorum {
    node_id: u64,
    voters: BTreeMap<u64, String>,
    raft: MetadataRaft,
    images: Rc<ImageCell>,
}

impl Quorum {
    /// Opens the log and snapshot in `dir` and starts Raft among `voters` (node id to
    /// "host:port"). A node that has never been part of the quorum (empty log, vote zero)
    /// initializes it with all the voters as its membership. Every voter does so: openraft
    /// documents initializing several nodes with the same membership as safe (`Raft::initialize`),
    /// and with the standard leader id the first entry is identical on all of them
    /// (`((term 0), index 0)`); this way the quorum forms whichever voters start first. The voters
    /// must therefore be configured identically on every node, as Kafka's
    /// `controller.quorum.voters` must. Once initialized, the membership is the log's and
    /// `voters` is used only for display. Binds nothing: the caller binds the quorum's port and
    /// runs `serve`.
    pub async fn open(node_id: u64, voters: BTreeMap<u64, String>, dir: PathBuf) -> io::Result<Rc<Quorum>> {
        if !voters.contains_key(&node_id) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("node {node_id} is not among the quorum voters {:?}", voters.keys())));
        }
        let log = MetadataLog::open(&dir)?;
        let state_machine = MetadataStateMachine::open(&dir)?;
        let images = state_machine.images.clone();
        let config = Config {
            cluster_name: "spate-metadata".to_string(),
            heartbeat_interval: HEARTBEAT_INTERVAL_MS,
            election_timeout_min: ELECTION_TIMEOUT_MIN_MS,
            election_timeout_max: ELECTION_TIMEOUT_MAX_MS,
            install_snapshot_timeout: INSTALL_SNAPSHOT_TIMEOUT_MS,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(SNAPSHOT_EVERY_LOGS),
            max_in_snapshot_log_to_keep: LOGS_KEPT_AFTER_SNAPSHOT,
            // A voter that was cut off (or lost its disk) asks first whether it could win, so it
            // does not raise the term and unseat a healthy leader when it comes back (KIP-996).
            enable_pre_vote: Some(true),
            ..Config::default()
        }
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("raft config: {e}")))?;
        let raft = MetadataRaft::new(node_id, Arc::new(config), NetworkFactory { node_id }, log, state_machine)
            .await
            .map_err(|e| io::Error::other(format!("starting the metadata quorum: {e}")))?;
        let initialized = raft.is_initialized().await.map_err(|e| io::Error::other(format!("metadata quorum: {e}")))?;
        if !initialized {
            let members: BTreeMap<u64, BasicNode> = voters.iter().map(|(id, addr)| (*id, BasicNode::new(addr))).collect();
            match raft.initialize(members).await {
                Ok(()) => tracing::info!(node_id, voters = ?voters, "metadata quorum initialized"),
                // Another voter reached this one first: it is part of the quorum already.
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(io::Error::other(format!("initializing the metadata quorum: {e}"))),
            }
        }
        Ok(Rc::new(Quorum { node_id, voters, raft, images }))
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    pub fn raft(&self) -> &MetadataRaft {
        &self.raft
    }

    /// The image as of the last applied entry.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.images.current()
    }

    /// A receiver of the image each time it changes: it holds the current one at once, then the
    /// newest not yet taken (a slow receiver skips intermediate images, never falls behind).
    /// Dropping it unsubscribes.
    pub fn image_changes(&self) -> flume::Receiver<Arc<MetadataImage>> {
        self.images.subscribe()
    }

    /// The leader this node knows of (openraft reports one only once its election is committed).
    pub fn leader(&self) -> Option<u64> {
        self.raft.metrics().borrow_watched().current_leader
    }

    pub fn is_leader(&self) -> bool {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        m.state.is_leader() && m.current_leader == Some(self.node_id)
    }

    /// Appends `records` as one batch; `Ok` with its log index once it is committed and applied
    /// here (`image()` then shows it). Waits at most `PROPOSE_TIMEOUT`: a leader cut off from the
    /// other voters cannot commit, and the caller should not wait for ever.
    pub async fn propose(&self, records: Vec<MetadataRecord>) -> Result<u64, ProposeError> {
        let write = self.raft.client_write(MetadataBatch(records));
        match compio::time::timeout(PROPOSE_TIMEOUT, write).await {
            Ok(Ok(response)) => Ok(response.log_id.index),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => Err(ProposeError::NotLeader { leader: f.leader_id }),
            Ok(Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(f)))) => {
                Err(ProposeError::Uncertain(format!("leadership moved to {:?} before the batch was known committed", f.leader_id)))
            }
            Ok(Err(e)) => Err(ProposeError::Other(e.to_string())),
            Err(_) => Err(ProposeError::Uncertain(format!("not committed within {PROPOSE_TIMEOUT:?}"))),
        }
    }

    /// On the leader, returns once everything committed before the call is applied here
    /// (Raft's ReadIndex: a heartbeat round confirms the leadership), so that a decision made
    /// from `image()` sees every earlier one. Fails on a node that does not lead.
    pub async fn ensure_linearizable(&self) -> Result<(), ProposeError> {
        match compio::time::timeout(PROPOSE_TIMEOUT, self.raft.ensure_linearizable(openraft::ReadPolicy::ReadIndex)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(ProposeError::Other(e.to_string())),
            Err(_) => Err(ProposeError::Uncertain(format!("leadership not confirmed within {PROPOSE_TIMEOUT:?}"))),
        }
    }

    fn metrics(&self) -> RaftMetrics<TypeConfig> {
        // A copy, so the watch's borrow ends here (the sender runs on this thread too).
        let metrics = self.raft.metrics();
        let current = metrics.borrow_watched();
        (*current).clone()
    }

    pub fn status(&self) -> QuorumStatus {
        let m = self.metrics();
        let leading = m.state.is_leader();
        let voters = m
            .membership_config
            .voter_ids()
            .map(|id| {
                let addr = m.membership_config.get_node(&id).map(|n| n.addr.clone()).or_else(|| self.voters.get(&id).cloned()).unwrap_or_default();
                let matched_index = m.replication.as_ref().and_then(|r| r.get(&id).cloned().flatten()).map(|l| l.index);
                let last_ack_unix_ms = if leading && id == self.node_id {
                    unix_ms_ago(Duration::ZERO)
                } else {
                    m.heartbeat.as_ref().and_then(|h| h.get(&id).cloned().flatten()).and_then(|at| unix_ms_ago(at.elapsed()))
                };
                VoterStatus { node_id: id, addr, matched_index, last_ack_unix_ms }
            })
            .collect();
        QuorumStatus {
            node_id: self.node_id,
            state: format!("{:?}", m.state),
            leader: m.current_leader,
            term: m.current_term,
            committed_index: m.cluster_committed.or(m.local_committed).map(|l| l.index),
            last_log_index: m.last_log_index,
            last_applied_index: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            voters,
        }
    }

    /// Stops Raft (its tasks end; the files stay as they are, durable).
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "metadata quorum: shutdown");
        }
    }
}

/// The Unix time, in milliseconds, `ago` before now.
fn unix_ms_ago(ago: Duration) -> Option<u64> {
    SystemTime::now().checked_sub(ago)?.duration_since(UNIX_EPOCH).ok().map(|d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn broker(id: i32) -> MetadataRecord {
        MetadataRecord::RegisterBroker { broker_id: id, host: "localhost".to_string(), port: 9092, rack: None, incarnation_id: format!("inc-{id}") }
    }

    fn entry(term: u64, index: u64) -> Entry {
        Entry { log_id: LogId::new_term_index(term, index), payload: EntryPayload::Normal(MetadataBatch(vec![broker(index as i32)])) }
    }

    fn indexes(log: &RaftLogFile) -> Vec<u64> {
        log.entries(..).iter().map(|e| e.log_id.index).collect()
    }

    #[test]
    fn the_log_reads_back_what_was_appended() {
        let dir = tempfile::tempdir().unwrap();
        let written: Vec<Entry> = (0..5).map(|i| entry(1, i)).collect();
        {
            let mut log = RaftLogFile::open(dir.path()).unwrap();
            log.append(written.clone()).unwrap();
            log.save_vote(&Vote::new_committed(1, 2)).unwrap();
            log.save_committed(Some(LogId::new_term_index(1, 3))).unwrap();
            assert_eq!(log.entries(1..3), written[1..3].to_vec());
            assert!(log.append([entry(1, 7)]).is_err(), "an append that leaves a hole is refused");
        }
        let log = RaftLogFile::open(dir.path()).unwrap();
        assert_eq!(log.entries(..), written);
        assert_eq!(log.last_log_id(), Some(LogId::new_term_index(1, 4)));
        assert_eq!(log.vote(), Some(Vote::new_committed(1, 2)));
        assert_eq!(log.committed(), Some(LogId::new_term_index(1, 3)));
        assert!(log.entries(4..2).is_empty(), "an inverted range reads nothing");
    }

    #[test]
    fn a_torn_tail_is_cut_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        {
            let mut log = RaftLogFile::open(dir.path()).unwrap();
            log.append((0..3).map(|i| entry(1, i))).unwrap();
        }
        let whole = std::fs::metadata(&path).unwrap().len();
        // Garbage after the last record (a write that did not finish), including zeros.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&[0, 0, 0, 9, 1, 2, 3, 4, 5, 0, 0, 0, 0, 0]).unwrap();
        {
            let mut log = RaftLogFile::open(dir.path()).unwrap();
            assert_eq!(indexes(&log), [0, 1, 2]);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), whole, "the garbage is cut off");
            log.append([entry(1, 3)]).unwrap();
        }
        // A record cut in the middle.
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 3).unwrap();
        let mut log = RaftLogFile::open(dir.path()).unwrap();
        assert_eq!(indexes(&log), [0, 1, 2], "the half-written entry is gone");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
        log.append([entry(2, 3)]).unwrap();
        drop(log);
        assert_eq!(RaftLogFile::open(dir.path()).unwrap().entries(3..), vec![entry(2, 3)]);
    }

    #[test]
    fn a_record_that_passes_its_crc_but_is_out_of_order_fails_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        encode_record(&mut bytes, &LogRecordRef::Entry(&entry(1, 0))).unwrap();
        encode_record(&mut bytes, &LogRecordRef::Entry(&entry(1, 5))).unwrap();
        std::fs::write(dir.path().join(LOG_FILE), bytes).unwrap();
        assert_eq!(RaftLogFile::open(dir.path()).err().map(|e| e.kind()), Some(io::ErrorKind::InvalidData));
    }

    #[test]
    fn truncate_and_purge_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = RaftLogFile::open(dir.path()).unwrap();
            log.append((0..6).map(|i| entry(1, i))).unwrap();
            log.truncate_after(Some(LogId::new_term_index(1, 3))).unwrap();
            assert_eq!(indexes(&log), [0, 1, 2, 3]);
            // A new leader's entries replace the truncated ones.
            log.append([entry(2, 4)]).unwrap();
        }
        {
            let mut log = RaftLogFile::open(dir.path()).unwrap();
            assert_eq!(indexes(&log), [0, 1, 2, 3, 4]);
            assert_eq!(log.entries(4..), vec![entry(2, 4)]);
            log.purge(LogId::new_term_index(1, 2)).unwrap();
            assert_eq!(indexes(&log), [3, 4]);
            log.append([entry(2, 5)]).unwrap();
        }
        {
            let mut log = RaftLogFile::open(dir.path()).unwrap();
            assert_eq!(indexes(&log), [3, 4, 5]);
            assert_eq!(log.last_purged(), Some(LogId::new_term_index(1, 2)));
            // Purging everything leaves the purged id as the last log id.
            log.purge(LogId::new_term_index(2, 5)).unwrap();
            log.truncate_after(None).unwrap();
        }
        let mut log = RaftLogFile::open(dir.path()).unwrap();
        assert!(indexes(&log).is_empty());
        assert_eq!(log.last_log_id(), Some(LogId::new_term_index(2, 5)));
        assert!(log.append([entry(2, 7)]).is_err());
        log.append([entry(3, 6)]).unwrap();
    }

    #[test]
    fn an_oversized_frame_is_refused_before_it_is_read() {
        compio::runtime::RuntimeBuilder::new().build().unwrap().block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let client = compio::runtime::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                let BufResult(result, _) = stream.write_all(u32::MAX.to_be_bytes()).await;
                result.unwrap();
                stream
            });
            let (mut stream, _) = listener.accept().await.unwrap();
            let error = read_frame(&mut stream).await.unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
            drop(client.await);
        });
    }

    /// What the test asks a node's thread to do.
    enum Command {
        Leader(flume::Sender<Option<u64>>),
        Image(flume::Sender<Arc<MetadataImage>>),
        Propose(Vec<MetadataRecord>, flume::Sender<Result<u64, ProposeError>>),
        Stop,
    }

    /// A quorum node on its own thread and compio runtime, driven by commands.
    struct Node {
        commands: flume::Sender<Command>,
        stopped: flume::Receiver<()>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    const WAIT: Duration = Duration::from_secs(10);

    impl Node {
        fn start(id: u64, voters: BTreeMap<u64, String>, dir: PathBuf, listener: std::net::TcpListener) -> Node {
            let (commands, inbox) = flume::unbounded::<Command>();
            let (done, stopped) = flume::bounded(1);
            let thread = std::thread::spawn(move || {
                let runtime = compio::runtime::RuntimeBuilder::new().build().expect("a compio runtime");
                runtime.block_on(async move {
                    let quorum = Quorum::open(id, voters, dir).await.expect("the quorum opens");
                    let listener = TcpListener::from_std(listener).expect("the listener");
                    let controller: ControllerHandler = Rc::new(|_request: ControllerRequest| -> Pin<Box<dyn Future<Output = ControllerResponse>>> {
                        Box::pin(async { ControllerResponse::NotController { leader: None, address: None } })
                    });
                    let server = compio::runtime::spawn(serve(listener, quorum.raft().clone(), controller));
                    while let Ok(command) = inbox.recv_async().await {
                        match command {
                            Command::Leader(reply) => drop(reply.send(quorum.leader())),
                            Command::Image(reply) => drop(reply.send(quorum.image())),
                            Command::Propose(records, reply) => {
                                let quorum = quorum.clone();
                                compio::runtime::spawn(async move { drop(reply.send(quorum.propose(records).await)) }).detach();
                            }
                            Command::Stop => break,
                        }
                    }
                    quorum.shutdown().await;
                    drop(server);
                });
                // The runtime (and the tasks still on it) goes before `stop` hears of it, so its
                // bounded wait covers all of it.
                drop(runtime);
                let _ = done.send(());
            });
            Node { commands, stopped, thread: Some(thread) }
        }

        fn ask<T>(&self, command: impl FnOnce(flume::Sender<T>) -> Command) -> T {
            let (tx, rx) = flume::bounded(1);
            self.commands.send(command(tx)).expect("the node is running");
            // A proposal's own timeout ends it first.
            rx.recv_timeout(PROPOSE_TIMEOUT + Duration::from_secs(1)).expect("the node answers")
        }

        fn stop(&mut self) {
            let _ = self.commands.send(Command::Stop);
            self.stopped.recv_timeout(WAIT).expect("the node stops in time");
            self.thread.take().expect("not stopped yet").join().expect("the node's thread ends cleanly");
        }
    }

    /// The leader every node names, once they all name the same one.
    fn agreed_leader(nodes: &BTreeMap<u64, Node>) -> Option<u64> {
        let seen: Vec<Option<u64>> = nodes.values().map(|n| n.ask(Command::Leader)).collect();
        seen[0].filter(|_| seen.iter().all(|s| *s == seen[0]))
    }

    fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(found) = check() {
                return found;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn three_nodes_elect_a_leader_and_replicate_a_proposal() {
        let dir = tempfile::tempdir().unwrap();
        let listeners: Vec<std::net::TcpListener> = (0..3).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
        let voters: BTreeMap<u64, String> = listeners.iter().enumerate().map(|(i, l)| (i as u64 + 1, l.local_addr().unwrap().to_string())).collect();
        let mut nodes: BTreeMap<u64, Node> = listeners
            .into_iter()
            .enumerate()
            .map(|(i, listener)| {
                let id = i as u64 + 1;
                (id, Node::start(id, voters.clone(), dir.path().join(format!("node-{id}")).join("__cluster_metadata-0"), listener))
            })
            .collect();

        // Under load an election may come between two steps: each step is retried until its
        // deadline while leadership is moving.
        let (leader, index) = wait_for("a leader to commit a proposal", || {
            let leader = agreed_leader(&nodes)?;
            match nodes[&leader].ask(|reply| Command::Propose(vec![broker(7)], reply)) {
                Ok(index) => Some((leader, index)),
                Err(ProposeError::NotLeader { .. } | ProposeError::Uncertain(_)) => None,
                Err(e) => panic!("the leader's proposal failed: {e}"),
            }
        });
        for (id, node) in &nodes {
            wait_for(&format!("node {id} to apply the proposal"), || {
                let image = node.ask(Command::Image);
                (image.offset >= index && image.brokers.contains_key(&7)).then_some(())
            });
        }

        wait_for("a follower to refuse a proposal and name the leader", || {
            let current = agreed_leader(&nodes)?;
            let follower = *nodes.keys().find(|id| **id != current)?;
            match nodes[&follower].ask(|reply| Command::Propose(vec![broker(8)], reply)) {
                Err(ProposeError::NotLeader { leader: Some(named) }) if named == current => Some(()),
                Err(ProposeError::NotLeader { .. }) => None,
                other => panic!("node {follower} is not the leader ({current} is, {leader} was) and must refuse, got {other:?}"),
            }
        });

        for node in nodes.values_mut() {
            node.stop();
        }
    }
}
