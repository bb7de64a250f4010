//! Loading a partition's log at startup, and recovering it after an unclean shutdown.
//!
//! From the recovery point on (everything, when the recovery point is unknown), every batch's
//! size, magic, CRC-32C and offset order are checked while its indexes are rebuilt; the log is
//! cut at the first byte that is not part of a valid batch, and segments after that point are
//! removed. Truncating `[0..=9][10..=30][31..=99]` at offset 31 (a torn batch at the start of
//! the third segment) leaves `[0..=9][10..=30]` and an empty active segment at 31.
//!
//! Segments below the recovery point were fsynced before the crash: their index files are
//! loaded when they pass a sanity check and rebuilt otherwise.

use std::io::{self, Read};
use std::path::Path;

use super::index::{OffsetIndex, TimeIndex};
use super::segment::{BatchHeader, LogSegment};
use super::{segment_file_name, RecoveryPoint};
use crate::config::LogConfig;
use crate::io::runtime::now_ms;
use crate::io::LogFile;
use crate::protocol::record_batch::{self, BatchView};
use crate::protocol::records::Records;

pub struct RecoveredLog {
    pub segments: Vec<LogSegment>,
    pub recovery_point: i64,
    /// Damage in the middle of the log: an invalid batch with valid data after it. Nothing is
    /// cut; the log opens offline so that an operator decides (Kafka's answer to a damaged log
    /// directory), and the later data stay on disk.
    pub corruption: Option<Corruption>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    pub segment_base_offset: i64,
    pub position: u32,
    /// The offset the first invalid batch would have started at.
    pub offset: i64,
}

/// What a scan of one segment found.
struct ScanOutcome {
    /// Bytes of valid batches from the segment start.
    valid_bytes: u32,
    /// Whether the scan stopped before the end of the file (a torn or corrupt batch).
    truncated: bool,
}

pub fn recover(dir: &Path, topic: &str, partition: i32, config: &LogConfig, start: RecoveryPoint) -> io::Result<RecoveredLog> {
    let clean_shutdown = start == RecoveryPoint::CleanShutdown;
    let mut bases: Vec<i64> = Vec::new();
    for name in crate::io::fs::list_dir(dir)? {
        if let Some(stem) = name.strip_suffix(".log") {
            if stem.len() == 20 {
                if let Ok(base) = stem.parse::<i64>() {
                    bases.push(base);
                }
            }
        } else if name.ends_with(".tmp") || name.ends_with(".deleted") || name.ends_with(".cleaned") {
            crate::io::fs::remove_file_if_exists(&dir.join(&name))?;
        }
    }
    bases.sort_unstable();
    // Index files whose log is gone (a deletion that stopped half-way) describe nothing.
    for name in crate::io::fs::list_dir(dir)? {
        let stem = name.strip_suffix(".index").or_else(|| name.strip_suffix(".timeindex"));
        if let Some(base) = stem.filter(|s| s.len() == 20).and_then(|s| s.parse::<i64>().ok()) {
            if bases.binary_search(&base).is_err() {
                crate::io::fs::remove_file_if_exists(&dir.join(&name))?;
            }
        }
    }
    let now = now_ms();
    if bases.is_empty() {
        let mut segment = LogSegment::create(dir, 0, now)?;
        // A new partition: its folder's name (in the log folder) and its first segment's
        // name (in its folder) go to disk now, once, before anything is acknowledged.
        crate::io::fs::sync_dir(dir)?;
        if let Some(parent) = dir.parent() {
            crate::io::fs::sync_dir(parent)?;
        }
        segment.name_durable = true;
        return Ok(RecoveredLog { segments: vec![segment], recovery_point: 0, corruption: None });
    }
    let recovery_point = match start {
        RecoveryPoint::CleanShutdown => i64::MAX,
        RecoveryPoint::At(offset) => offset,
    };

    let mut segments: Vec<LogSegment> = Vec::new();
    let mut recovered_any = false;
    let mut corruption = None;
    for (i, &base) in bases.iter().enumerate() {
        let path = dir.join(segment_file_name(base, "log"));
        let log = LogFile::open(&path, false)?;
        let file_len = log.size_bytes()?;
        if file_len > config.segment_bytes.max(i32::MAX as u32) as u64 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{}: larger than a segment can be", path.display())));
        }
        let next_base = bases.get(i + 1).copied();
        let is_last = next_base.is_none();
        let mut segment = LogSegment::unscanned(base, log, path, now);
        // A segment entirely below the recovery point is trusted, if its indexes load.
        let trusted = !is_last && next_base.is_some_and(|n| n <= recovery_point) && load_indexes(&mut segment, file_len as u32, next_base.unwrap_or(base));
        if trusted {
            segments.push(segment);
            continue;
        }
        recovered_any |= !clean_shutdown;
        let contiguous = !config.cleanup_policy.split(',').any(|p| p.trim() == "compact");
        let outcome = scan_segment(&mut segment, file_len, next_base, contiguous, config.index_interval_bytes)?;
        let valid_bytes = outcome.valid_bytes;
        let later_data = bases[i + 1..].iter().any(|&b| std::fs::metadata(dir.join(segment_file_name(b, "log"))).is_ok_and(|m| m.len() > 0));
        if outcome.truncated && (later_data || valid_batch_after(&segment.log, valid_bytes as u64 + 1, file_len)?) {
            // Not a torn tail: valid batches follow the damage. Cutting here would drop them.
            let damage = Corruption { segment_base_offset: base, position: valid_bytes, offset: segment.next_offset };
            tracing::error!(
                topic,
                partition,
                segment = base,
                position = valid_bytes,
                offset = segment.next_offset,
                "CORRUPT LOG: an invalid batch in the middle of the log, with valid data after it; the partition stays offline and nothing is truncated"
            );
            corruption = Some(damage);
            segments.push(segment);
            break;
        }
        if outcome.truncated {
            tracing::warn!(topic, partition, segment = base, valid_bytes, file_len, "log ends in an invalid batch; truncating");
            segment.truncate_to(valid_bytes, segment.next_offset)?;
            segment.log.sync_data_blocking()?;
        }
        let truncated = outcome.truncated;
        segments.push(segment);
        if truncated {
            // Nothing after a cut is kept: later segments would leave a hole in the offsets.
            for &later in &bases[i + 1..] {
                tracing::warn!(topic, partition, segment = later, "removing a segment after the truncation point");
                for ext in ["log", "index", "timeindex"] {
                    crate::io::fs::remove_file_if_exists(&dir.join(segment_file_name(later, ext)))?;
                }
            }
            // Removed for good before anything is appended after the cut.
            crate::io::fs::sync_dir(dir)?;
            break;
        }
    }
    // A trailing segment whose scan found it empty but whose base is past the previous
    // segment's end would leave a hole; the base offsets themselves are the contract, so only
    // check the order.
    for w in segments.windows(2) {
        if w[0].next_offset > w[1].base_offset {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{topic}-{partition}: segment {} overlaps segment {}", w[0].base_offset, w[1].base_offset),
            ));
        }
    }
    if recovered_any {
        for s in &segments {
            s.log.sync_data_blocking()?;
        }
    }
    let log_end_offset = segments.last().expect("at least one segment").next_offset;
    if corruption.is_some() {
        // The checkpoint stays as it was: the next start checks the same bytes again.
        return Ok(RecoveredLog { segments, recovery_point: 0, corruption });
    }
    // Everything is on disk now (scanned segments were fsynced above); the log dir's
    // checkpoint records it at its next write.
    Ok(RecoveredLog { segments, recovery_point: log_end_offset, corruption: None })
}

/// Opens a segment file that compaction just rewrote and rebuilds its indexes. Its offset
/// range (`base_offset` up to `next_offset`) is what it was before: compaction removes records,
/// it never moves them.
pub fn reload_segment(
    path: &Path,
    base_offset: i64,
    next_base: Option<i64>,
    next_offset: i64,
    created_ms: i64,
    index_interval_bytes: u32,
) -> io::Result<LogSegment> {
    let log = LogFile::open(path, false)?;
    let file_len = log.size_bytes()?;
    let mut segment = LogSegment::unscanned(base_offset, log, path.to_owned(), created_ms);
    let outcome = scan_segment(&mut segment, file_len, next_base, false, index_interval_bytes)?;
    if outcome.truncated {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{}: a cleaned segment did not scan whole", path.display())));
    }
    segment.next_offset = next_offset;
    segment.last_batch = None;
    Ok(segment)
}

/// Whether a whole, CRC-valid batch starts anywhere in `[from, file_len)`: the test that tells
/// damage in the middle of a segment (data follows) from a torn tail (nothing valid follows).
/// Reads in windows; only positions holding magic 2 and a plausible length are checked.
fn valid_batch_after(log: &LogFile, from: u64, file_len: u64) -> io::Result<bool> {
    const WINDOW_BYTES: u64 = 4 << 20;
    let mut window_start = from;
    while window_start + record_batch::HEADER_BYTES as u64 <= file_len {
        let len = WINDOW_BYTES.min(file_len - window_start) as usize;
        let mut window = vec![0u8; len];
        let n = log.read_at_blocking(window_start, &mut window)?;
        window.truncate(n);
        for at in 0..window.len().saturating_sub(record_batch::OFFSET_MAGIC) {
            if window[at + record_batch::OFFSET_MAGIC] as i8 != record_batch::MAGIC_V2 || at + 12 > window.len() {
                continue;
            }
            let length = i32::from_be_bytes(window[at + 8..at + 12].try_into().expect("4 bytes"));
            let position = window_start + at as u64;
            if length < (record_batch::HEADER_BYTES - record_batch::LOG_OVERHEAD) as i32 || position + 12 + length as u64 > file_len {
                continue;
            }
            let mut batch = vec![0u8; 12 + length as usize];
            if log.read_at_blocking(position, &mut batch)? == batch.len() && record_batch::validate_stored(&batch).is_ok() {
                return Ok(true);
            }
        }
        if n == 0 {
            break;
        }
        window_start += (len - record_batch::HEADER_BYTES).max(1) as u64;
    }
    Ok(false)
}

/// Loads `.index` and `.timeindex` for a segment below the recovery point. False if either is
/// missing or fails its sanity check (the caller then rebuilds by scanning).
fn load_indexes(segment: &mut LogSegment, file_len: u32, next_base: i64) -> bool {
    let Ok(Some(index_bytes)) = crate::io::fs::read_if_exists(&segment.index_path()) else { return false };
    let Ok(Some(time_bytes)) = crate::io::fs::read_if_exists(&segment.time_index_path()) else { return false };
    let Some(index) = OffsetIndex::decode(&index_bytes, file_len) else { return false };
    let next_relative = (next_base - segment.base_offset).clamp(0, u32::MAX as i64) as u32;
    let Some(time_index) = TimeIndex::decode(&time_bytes, next_relative) else { return false };
    if index.entries.last().is_some_and(|e| e.relative_offset >= next_relative) {
        return false;
    }
    // The last entry must point at a batch that ends at its offset: one read that catches
    // an index left from other bytes (a segment rewritten since), from an older Spate (whose
    // entries named a batch's first offset), or plausible-looking garbage.
    if let Some(last) = index.entries.last() {
        let mut header = [0u8; record_batch::OFFSET_LAST_OFFSET_DELTA + 4];
        let read = segment.log.read_at_blocking(last.position as u64, &mut header).unwrap_or(0);
        let batch_last_offset = BatchView { bytes: &header }.last_offset();
        if read != header.len() || batch_last_offset != segment.base_offset + last.relative_offset as i64 {
            return false;
        }
    }
    // The last time entry must name a batch holding its offset with exactly its timestamp
    // (the segment's largest), found from the offset index with a short scan.
    if let Some(last) = time_index.entries.last() {
        let offset = segment.base_offset + last.relative_offset as i64;
        let mut position = index.lookup(last.relative_offset).position as u64;
        let matched = loop {
            let mut header = [0u8; record_batch::HEADER_BYTES];
            if segment.log.read_at_blocking(position, &mut header).unwrap_or(0) != header.len() {
                break false;
            }
            let Some(batch) = BatchHeader::parse(&header, (file_len as u64).saturating_sub(position).min(u32::MAX as u64) as u32) else { break false };
            if batch.last_offset >= offset {
                break batch.base_offset <= offset && batch.max_timestamp == last.timestamp;
            }
            position += batch.size as u64;
        };
        if !matched {
            return false;
        }
    }
    // Written at the roll, the last time entry holds the segment's largest timestamp.
    segment.max_timestamp = time_index.entries.last().map_or(-1, |e| e.timestamp);
    segment.offset_of_max_timestamp = time_index.entries.last().map_or(-1, |e| segment.base_offset + e.relative_offset as i64);
    segment.index = index;
    segment.time_index = time_index;
    segment.seal_indexes();
    segment.size = file_len;
    segment.next_offset = next_base;
    true
}

/// Reads the segment from the start, checking each batch and rebuilding the indexes, and
/// stops at the first invalid byte. Streams the file through a buffer: memory stays bounded
/// whatever a corrupt length field claims.
/// `contiguous`: the log was never compacted, so every batch starts exactly where the previous
/// one ended (the base offset is outside the CRC; this is how a damaged one is caught).
fn scan_segment(segment: &mut LogSegment, file_len: u64, next_base: Option<i64>, contiguous: bool, index_interval_bytes: u32) -> io::Result<ScanOutcome> {
    const BUFFER_BYTES: usize = 1 << 20;
    let file = segment.log.clone();
    let mut reader = io::BufReader::with_capacity(BUFFER_BYTES, FileReader { file: &file, position: 0 });
    let mut position: u64 = 0;
    let mut header = [0u8; record_batch::HEADER_BYTES];
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let remaining = file_len - position;
        if remaining == 0 {
            return Ok(ScanOutcome { valid_bytes: position as u32, truncated: false });
        }
        let torn = ScanOutcome { valid_bytes: position as u32, truncated: true };
        if remaining < record_batch::HEADER_BYTES as u64 {
            return Ok(torn);
        }
        reader.read_exact(&mut header)?;
        let Some(batch) = BatchHeader::parse(&header, remaining.min(u32::MAX as u64) as u32) else { return Ok(torn) };
        let view = BatchView { bytes: &header };
        // The base offset is outside the CRC: check it is plausible before trusting it. Offsets
        // must increase, stay inside this segment's range (relative offsets fit the index's
        // 4 bytes) and below the next segment's base.
        let relative_last = batch.last_offset.checked_sub(segment.base_offset);
        let in_range = relative_last.is_some_and(|r| (0..i32::MAX as i64).contains(&r)) && next_base.is_none_or(|n| batch.last_offset < n);
        let misplaced = if contiguous { batch.base_offset != segment.next_offset } else { batch.base_offset < segment.next_offset };
        if view.magic() != record_batch::MAGIC_V2 || misplaced || batch.last_offset < batch.base_offset || !in_range {
            return Ok(torn);
        }
        let mut crc = crc32c::crc32c(&header[record_batch::CRC_START..]);
        let mut left = batch.size as usize - record_batch::HEADER_BYTES;
        while left > 0 {
            let n = left.min(chunk.len());
            reader.read_exact(&mut chunk[..n])?;
            crc = crc32c::crc32c_append(crc, &chunk[..n]);
            left -= n;
        }
        if crc != view.crc() {
            return Ok(torn);
        }
        segment.record_batch_appended(&batch, position as u32, index_interval_bytes);
        position += batch.size as u64;
    }
}

/// A `Read` over a `LogFile` from a position, for the buffered startup scan.
struct FileReader<'a> {
    file: &'a LogFile,
    position: u64,
}

impl Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at_blocking(self.position, buf)?;
        self.position += n as u64;
        Ok(n)
    }
}

/// The timestamp and offset of the first record in a stored batch whose timestamp `found`
/// accepts, whatever the batch's codec (a compressed one is decompressed). A LogAppendTime
/// batch's records all have the batch's timestamp, as Kafka's `Record.timestamp()` says.
pub fn first_record_where(batch: &[u8], found: impl Fn(i64) -> bool) -> Option<(i64, i64)> {
    let view = BatchView { bytes: batch };
    let bytes = crate::protocol::records::record_bytes(view, crate::protocol::records::DECOMPRESSED_BATCH_BYTES_MAX).ok()?;
    let log_append_time = view.attributes() & record_batch::ATTR_LOG_APPEND_TIME != 0;
    for record in Records::new(&bytes, view.record_count()) {
        let record = record.ok()?;
        let timestamp = if log_append_time { view.max_timestamp() } else { view.base_timestamp().wrapping_add(record.timestamp_delta) };
        if found(timestamp) {
            return Some((timestamp, view.base_offset().wrapping_add(record.offset_delta as i64)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    //! Crash-consistency sweeps: a segment of mixed batches is cut at every byte of its last
    //! three batches and at random places, and bits are flipped everywhere in its last two
    //! batches and at random; each time the log is recovered and checked against what the
    //! bytes allow. Failures name the cut or the flip, so they can be replayed.

    use super::*;
    use crate::config::BrokerConfig;
    use crate::protocol::record_batch::{build_batch, RecordSpec};
    use crate::storage::log::PartitionLog;
    use crate::storage::RECOVERY_POINT_FILE;

    /// A deterministic generator (xorshift), so every run sweeps the same places.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// (start, end, base offset, next offset) of one batch in the test segment.
    type BatchSpan = (usize, usize, i64, i64);

    /// 60 batches of 1 to 9 records with values of 1 to 300 bytes; every fifth batch claims
    /// gzip compression (its bytes are opaque to the broker, as a real compressed batch's are).
    /// Returns the segment bytes and the (start, end, base offset, next offset) of each batch.
    fn segment_bytes() -> (Vec<u8>, Vec<BatchSpan>) {
        let mut rng = Rng(0x5eed);
        let mut bytes = Vec::new();
        let mut batches = Vec::new();
        let mut offset = 0i64;
        for i in 0..60 {
            let count = 1 + rng.below(9) as usize;
            let values: Vec<Vec<u8>> = (0..count).map(|_| vec![b'a' + rng.below(26) as u8; 1 + rng.below(300) as usize]).collect();
            let records: Vec<RecordSpec<'_>> =
                values.iter().map(|v| RecordSpec { key: Some(b"k"), value: Some(v), headers: &[], timestamp_delta: 0 }).collect();
            let mut batch = build_batch(offset, 1_700_000_000_000 + i, &records);
            if i % 5 == 4 {
                batch[record_batch::OFFSET_ATTRIBUTES + 1] |= 1; // gzip
                let crc = crc32c::crc32c(&batch[record_batch::CRC_START..]);
                batch[record_batch::OFFSET_CRC..record_batch::OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
            }
            let start = bytes.len();
            bytes.extend_from_slice(&batch);
            batches.push((start, bytes.len(), offset, offset + count as i64));
            offset += count as i64;
        }
        (bytes, batches)
    }

    fn config() -> LogConfig {
        let mut c = BrokerConfig::from_properties(&[]).unwrap().log;
        c.index_interval_bytes = 512;
        c
    }

    /// Writes `bytes` as the only segment of a fresh log folder (no checkpoint, no indexes, no
    /// clean-shutdown marker) and recovers it.
    fn recover_from(dir: &Path, bytes: &[u8]) -> (std::rc::Rc<PartitionLog>, Vec<u8>) {
        for name in crate::io::fs::list_dir(dir).unwrap() {
            std::fs::remove_file(dir.join(name)).unwrap();
        }
        let path = dir.join(segment_file_name(0, "log"));
        std::fs::write(&path, bytes).unwrap();
        let log = PartitionLog::open(dir, "t", 0, config(), crate::storage::RecoveryPoint::At(0)).unwrap();
        let after = std::fs::read(&path).unwrap();
        (log, after)
    }

    /// The log's in-memory index agrees with its bytes: every entry points at the start of
    /// the batch that ends at its offset (Kafka's entries name a batch's last offset).
    fn check_indexes(log: &PartitionLog, after: &[u8], batches: &[BatchSpan], context: &str) {
        for entry in log.index_entries_for_tests() {
            let batch =
                batches.iter().find(|b| b.0 == entry.position as usize).unwrap_or_else(|| panic!("{context}: index entry {entry:?} is not at a batch start"));
            assert_eq!(batch.3 - 1, entry.relative_offset as i64, "{context}: index entry {entry:?} names the wrong offset");
            assert!((entry.position as usize) < after.len(), "{context}: index entry past the end");
        }
    }

    #[test]
    fn a_torn_tail_is_cut_back_to_the_last_whole_batch() {
        let (bytes, batches) = segment_bytes();
        let dir = tempfile::tempdir().unwrap();
        let mut cuts: Vec<usize> = (batches[batches.len() - 3].0..=bytes.len()).collect();
        let mut rng = Rng(7);
        cuts.extend((0..1000).map(|_| rng.below(bytes.len() as u64) as usize));
        for &cut in &cuts {
            let context = format!("cut at byte {cut} of {}", bytes.len());
            let (log, after) = recover_from(dir.path(), &bytes[..cut]);
            let whole = batches.iter().filter(|b| b.1 <= cut).count();
            let (end, next) = if whole == 0 { (0, 0) } else { (batches[whole - 1].1, batches[whole - 1].3) };
            assert_eq!(after.len(), end, "{context}: the file ends at the last whole batch");
            assert_eq!(&after[..], &bytes[..end], "{context}: what stays is untouched");
            assert_eq!(log.log_end_offset(), next, "{context}: the next offset continues from it");
            assert!(!log.is_offline(), "{context}: a torn tail is not corruption");
            check_indexes(&log, &after, &batches, &context);
        }
        eprintln!("{} cuts of a {}-byte segment of {} batches, each recovered to its longest valid prefix", cuts.len(), bytes.len(), batches.len());
    }

    #[test]
    fn every_flipped_bit_is_caught_and_damage_mid_log_is_not_cut() {
        let (bytes, batches) = segment_bytes();
        let dir = tempfile::tempdir().unwrap();
        let last_two = batches[batches.len() - 2].0;
        let mut flips: Vec<usize> = (last_two * 8..bytes.len() * 8).collect();
        let flips_random: usize = std::env::var("SPATE_SWEEP_FLIPS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
        let mut rng = Rng(11);
        flips.extend((0..flips_random).map(|_| rng.below(bytes.len() as u64 * 8) as usize));
        let (mut caught, mut epoch_only) = (0, 0);
        for &bit in &flips {
            let (at, context) = (bit / 8, format!("flip of bit {} of byte {}", bit % 8, bit / 8));
            let mut damaged = bytes.clone();
            damaged[at] ^= 1 << (bit % 8);
            let (log, after) = recover_from(dir.path(), &damaged);
            let k = batches.iter().position(|b| b.0 <= at && at < b.1).expect("a byte of some batch");
            let in_epoch = (record_batch::OFFSET_LEADER_EPOCH..record_batch::OFFSET_LEADER_EPOCH + 4).contains(&(at - batches[k].0));
            if in_epoch {
                // The leader epoch is outside the CRC and says nothing about the records.
                epoch_only += 1;
                assert_eq!(log.log_end_offset(), batches.last().unwrap().3, "{context}");
                continue;
            }
            caught += 1;
            if k == batches.len() - 1 {
                assert_eq!(after.len(), batches[k].0, "{context}: a damaged last batch is cut off");
                assert_eq!(log.log_end_offset(), batches[k].2, "{context}");
                assert!(!log.is_offline(), "{context}");
            } else {
                assert!(log.is_offline(), "{context}: damage with valid data after it takes the partition offline");
                assert_eq!(after, damaged, "{context}: nothing after the damage is dropped");
            }
            // Whatever the log serves is CRC-valid and exactly the original bytes.
            let served = &after[..after.len().min(batches.iter().take_while(|b| b.1 <= after.len()).last().map_or(0, |b| b.1))];
            if !log.is_offline() {
                assert_eq!(served, &bytes[..served.len()], "{context}: served bytes are the original ones");
            }
        }
        eprintln!("{} flips: {caught} caught by the checks, {epoch_only} in leader-epoch bytes (not record data)", flips.len());
    }

    /// Every fetch and ListOffsets answer the log gives: the batch holding each offset, and the
    /// offset found for a spread of timestamps.
    fn answers(log: &PartitionLog) -> Vec<(i64, i64)> {
        compio::runtime::Runtime::new().unwrap().block_on(async {
            let mut out = Vec::new();
            for offset in 0..log.log_end_offset() {
                let read = log.read(offset, 1 << 20, true).await.unwrap();
                let slice = read.records.unwrap();
                let bytes = slice.file.read_at(slice.position, 12).await.unwrap();
                out.push((offset, i64::from_be_bytes(bytes[..8].try_into().unwrap())));
            }
            for t in (0..400).step_by(7) {
                out.push(log.offset_for_timestamp(1_700_000_000_000 + t).await.unwrap());
            }
            out
        })
    }

    #[test]
    fn damaged_indexes_and_checkpoints_are_rebuilt_with_identical_answers() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config();
        c.segment_bytes = 4096;
        compio::runtime::Runtime::new().unwrap().block_on(async {
            let log = PartitionLog::open(dir.path(), "t", 0, c.clone(), crate::storage::RecoveryPoint::At(0)).unwrap();
            for i in 0..300i64 {
                let value = vec![b'x'; 1 + (i as usize * 37) % 200];
                let records = [RecordSpec { key: Some(b"k"), value: Some(&value), headers: &[], timestamp_delta: 0 }];
                log.append(vec![bytes::Bytes::from(build_batch(0, 1_700_000_000_000 + i, &records))]).await.unwrap();
            }
            log.close().unwrap();
        });
        let before = {
            let log = PartitionLog::open(dir.path(), "t", 0, c.clone(), crate::storage::RecoveryPoint::CleanShutdown).unwrap();
            assert!(log.segment_count() > 4);
            // The log dir's checkpoint as the broker writes it (here, beside the segments).
            crate::storage::checkpoint::write(&dir.path().join(RECOVERY_POINT_FILE), &[("t".into(), 0, log.checkpoint().recovery_point)]).unwrap();
            answers(&log)
        };
        let names: Vec<String> = crate::io::fs::list_dir(dir.path()).unwrap();
        let first_index = names.iter().find(|n| n.ends_with(".index")).unwrap().clone();
        let first_time_index = names.iter().find(|n| n.ends_with(".timeindex")).unwrap().clone();
        type Damage = (&'static str, fn(&Path));
        let damages: [Damage; 3] = [
            ("deleted", |p| std::fs::remove_file(p).unwrap()),
            ("zero-filled", |p| {
                let len = std::fs::metadata(p).unwrap().len() as usize;
                std::fs::write(p, vec![0u8; len.max(24)]).unwrap()
            }),
            ("corrupted", |p| {
                let mut b = std::fs::read(p).unwrap();
                let mut rng = Rng(3);
                for _ in 0..b.len().max(1) / 2 {
                    let i = rng.below(b.len().max(1) as u64) as usize;
                    if let Some(x) = b.get_mut(i) {
                        *x = rng.next() as u8;
                    }
                }
                std::fs::write(p, b).unwrap()
            }),
        ];
        for file in [first_index.as_str(), first_time_index.as_str(), RECOVERY_POINT_FILE] {
            for (what, damage) in &damages {
                for clean in [true, false] {
                    let saved: Vec<(String, Vec<u8>)> =
                        crate::io::fs::list_dir(dir.path()).unwrap().into_iter().map(|n| (n.clone(), std::fs::read(dir.path().join(&n)).unwrap())).collect();
                    damage(&dir.path().join(file));
                    let checkpointed = crate::storage::checkpoint::read(&dir.path().join(RECOVERY_POINT_FILE)).first().map_or(0, |e| e.2);
                    let start = if clean { crate::storage::RecoveryPoint::CleanShutdown } else { crate::storage::RecoveryPoint::At(checkpointed) };
                    let log = PartitionLog::open(dir.path(), "t", 0, c.clone(), start).unwrap();
                    assert_eq!(answers(&log), before, "{file} {what}, clean shutdown {clean}: the answers change");
                    drop(log);
                    for (n, b) in saved {
                        std::fs::write(dir.path().join(n), b).unwrap();
                    }
                }
            }
        }
    }
}
