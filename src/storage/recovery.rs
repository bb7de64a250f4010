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

use super::checkpoint;
use super::index::{OffsetIndex, TimeIndex};
use super::segment::{BatchHeader, LogSegment};
use super::{segment_file_name, RECOVERY_POINT_FILE};
use crate::config::LogConfig;
use crate::io::runtime::now_ms;
use crate::io::LogFile;
use crate::protocol::record_batch::{self, BatchView};

pub struct RecoveredLog {
    pub segments: Vec<LogSegment>,
    pub recovery_point: i64,
}

/// What a scan of one segment found.
struct ScanOutcome {
    /// Bytes of valid batches from the segment start.
    valid_bytes: u32,
    /// Whether the scan stopped before the end of the file (a torn or corrupt batch).
    truncated: bool,
}

pub fn recover(dir: &Path, topic: &str, partition: i32, config: &LogConfig, clean_shutdown: bool) -> io::Result<RecoveredLog> {
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
    let now = now_ms();
    if bases.is_empty() {
        let segment = LogSegment::create(dir, 0, now)?;
        return Ok(RecoveredLog { segments: vec![segment], recovery_point: 0 });
    }
    let recovery_point = if clean_shutdown {
        i64::MAX
    } else {
        checkpoint::read(&dir.join(RECOVERY_POINT_FILE)).into_iter().find(|(t, p, _)| t == topic && *p == partition).map(|(_, _, offset)| offset).unwrap_or(0)
    };

    let mut segments: Vec<LogSegment> = Vec::new();
    let mut recovered_any = false;
    for (i, &base) in bases.iter().enumerate() {
        let path = dir.join(segment_file_name(base, "log"));
        let log = LogFile::open(&path, false)?;
        let file_len = log.size_bytes()?;
        if file_len > config.segment_bytes.max(i32::MAX as u32) as u64 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{}: larger than a segment can be", path.display())));
        }
        let next_base = bases.get(i + 1).copied();
        let is_last = next_base.is_none();
        let mut segment = LogSegment {
            base_offset: base,
            log,
            path,
            size: 0,
            next_offset: base,
            index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
            max_timestamp: -1,
            bytes_since_last_index_entry: 0,
            created_ms: now,
            last_batch: None,
        };
        // A segment entirely below the recovery point is trusted, if its indexes load.
        let trusted = !is_last && next_base.is_some_and(|n| n <= recovery_point) && load_indexes(&mut segment, file_len as u32, next_base.unwrap_or(base));
        if trusted {
            segments.push(segment);
            continue;
        }
        recovered_any |= !clean_shutdown;
        let outcome = scan_segment(&mut segment, file_len, next_base, config.index_interval_bytes)?;
        let valid_bytes = outcome.valid_bytes;
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
    let recovery_point = log_end_offset;
    checkpoint::write(&dir.join(RECOVERY_POINT_FILE), &[(topic.to_owned(), partition, recovery_point)])?;
    Ok(RecoveredLog { segments, recovery_point })
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
    let mut segment = LogSegment {
        base_offset,
        log,
        path: path.to_owned(),
        size: 0,
        next_offset: base_offset,
        index: OffsetIndex::default(),
        time_index: TimeIndex::default(),
        max_timestamp: -1,
        bytes_since_last_index_entry: 0,
        created_ms,
        last_batch: None,
    };
    let outcome = scan_segment(&mut segment, file_len, next_base, index_interval_bytes)?;
    if outcome.truncated {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{}: a cleaned segment did not scan whole", path.display())));
    }
    segment.next_offset = next_offset;
    segment.last_batch = None;
    Ok(segment)
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
    segment.max_timestamp = time_index.entries.last().map_or(-1, |e| e.timestamp);
    segment.index = index;
    segment.time_index = time_index;
    segment.size = file_len;
    segment.next_offset = next_base;
    true
}

/// Reads the segment from the start, checking each batch and rebuilding the indexes, and
/// stops at the first invalid byte. Streams the file through a buffer: memory stays bounded
/// whatever a corrupt length field claims.
fn scan_segment(segment: &mut LogSegment, file_len: u64, next_base: Option<i64>, index_interval_bytes: u32) -> io::Result<ScanOutcome> {
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
        if view.magic() != record_batch::MAGIC_V2 || batch.base_offset < segment.next_offset || batch.last_offset < batch.base_offset || !in_range {
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

/// In an uncompressed batch, the first record whose timestamp is at or after `target`:
/// (timestamp, offset). `None` for compressed batches or when no record qualifies.
pub fn first_record_at_or_after(batch: &[u8], target: i64) -> Option<(i64, i64)> {
    let view = BatchView { bytes: batch };
    if batch.len() < record_batch::HEADER_BYTES || view.compression() != 0 {
        return None;
    }
    let base_timestamp = view.base_timestamp();
    let log_append_time = view.attributes() & record_batch::ATTR_LOG_APPEND_TIME != 0;
    let mut r = crate::protocol::codec::Reader::new(bytes::Bytes::copy_from_slice(&batch[record_batch::HEADER_BYTES..]));
    for _ in 0..view.record_count().max(0) {
        let length = r.varint().ok()?;
        let start = r.position();
        r.i8().ok()?; // attributes
        let timestamp_delta = r.varlong().ok()?;
        let offset_delta = r.varint().ok()?;
        let timestamp = if log_append_time { view.max_timestamp() } else { base_timestamp.wrapping_add(timestamp_delta) };
        if timestamp >= target {
            return Some((timestamp, view.base_offset().wrapping_add(offset_delta as i64)));
        }
        let consumed = r.position() - start;
        let rest = (length as usize).checked_sub(consumed)?;
        r.take_bytes(rest).ok()?;
    }
    None
}
