//! Log compaction (`cleanup.policy=compact`): every closed segment is rewritten to keep, per
//! key, only the latest record; a tombstone (null value) is kept until it is older than
//! `delete.retention.ms`, then dropped too.
//!
//! Batches keep their base offset and last offset delta, and the kept records their own
//! offset deltas, exactly as Kafka's cleaner does, so offsets never move; a batch left with no
//! record goes. Compressed batches are kept whole (their records are not read), which is safe:
//! keeping a record too many never loses the latest value of a key.
//!
//! The work (reading the segments one at a time, writing the cleaned files) runs on the
//! runtime's blocking pool; the owning shard then swaps the cleaned files in
//! (`PartitionLog::compact`). The key map holds every distinct key in full: a topic with more
//! distinct keys than memory allows needs Kafka's bounded dedupe buffer, which this is not yet.

use std::collections::HashMap;
use std::io;

use crate::io::LogFile;
use crate::protocol::codec::Reader;
use crate::protocol::record_batch::{self, BatchView, HEADER_BYTES};

/// A segment as compaction sees it: its file and the bytes of complete batches in it.
#[derive(Clone)]
pub struct SegmentSnapshot {
    pub base_offset: i64,
    pub file: LogFile,
    pub size: u32,
}

/// One record inside an uncompressed batch: where its bytes are (length prefix included),
/// its offset and timestamp, its key, and whether it is a tombstone.
pub(crate) struct RecordSpan<'a> {
    pub(crate) range: std::ops::Range<usize>,
    offset: i64,
    timestamp: i64,
    key: Option<&'a [u8]>,
    tombstone: bool,
}

/// The records of an uncompressed, non-control batch; `None` for batches compaction keeps
/// whole (compressed, control, or not parseable).
pub(crate) fn records(batch: &[u8]) -> Option<Vec<RecordSpan<'_>>> {
    let view = BatchView { bytes: batch };
    if batch.len() < HEADER_BYTES || view.compression() != 0 || view.is_control() {
        return None;
    }
    let body = &batch[HEADER_BYTES..];
    let mut r = Reader::new(bytes::Bytes::copy_from_slice(body));
    let mut out = Vec::new();
    for _ in 0..view.record_count().max(0) {
        let start = r.position();
        let length = r.varint().ok()?;
        let body_start = r.position();
        if length < 0 {
            return None;
        }
        r.i8().ok()?; // attributes
        let timestamp_delta = r.varlong().ok()?;
        let offset_delta = r.varint().ok()?;
        let key_len = r.varint().ok()?;
        let key_start = r.position();
        let key = if key_len < 0 { None } else { Some(&body[key_start..key_start.checked_add(key_len as usize)?.min(body.len())]) };
        if key_len > 0 {
            r.take_bytes(key_len as usize).ok()?;
        }
        let value_len = r.varint().ok()?;
        let end = body_start.checked_add(length as usize)?;
        if end > body.len() {
            return None;
        }
        r.take_bytes(end.checked_sub(r.position())?).ok()?;
        out.push(RecordSpan {
            range: HEADER_BYTES + start..HEADER_BYTES + end,
            offset: view.base_offset().wrapping_add(offset_delta as i64),
            timestamp: view.base_timestamp().wrapping_add(timestamp_delta),
            key,
            tombstone: value_len < 0,
        });
    }
    Some(out)
}

fn read_segment(s: &SegmentSnapshot) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; s.size as usize];
    let mut read = 0;
    while read < bytes.len() {
        let n = s.file.read_at_blocking(read as u64, &mut bytes[read..])?;
        if n == 0 {
            break;
        }
        read += n;
    }
    bytes.truncate(read);
    Ok(bytes)
}

fn batches(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let n = record_batch::batch_size(&bytes[at..]).ok()?;
        let batch = &bytes[at..at + n];
        at += n;
        Some(batch)
    })
}

/// Cleans the first `dirty` segments of `segments`, one at a time: a first pass streams every
/// segment (the newest ones only for their keys) to find each key's latest offset, a second
/// rewrites each dirty segment that changes through `write(base_offset, cleaned_bytes)`.
/// Memory holds the key map and one segment, never the whole log.
pub fn clean(
    segments: &[SegmentSnapshot],
    dirty: usize,
    now_ms: i64,
    delete_retention_ms: i64,
    mut write: impl FnMut(i64, &[u8]) -> io::Result<()>,
) -> io::Result<usize> {
    let mut latest: HashMap<Vec<u8>, i64> = HashMap::new();
    // Records inside compressed batches are not read: while any exist, a tombstone cannot
    // know it shadows nothing there, so tombstones are kept.
    let mut saw_compressed = false;
    for segment in segments {
        let bytes = read_segment(segment)?;
        for batch in batches(&bytes) {
            match records(batch) {
                Some(recs) => {
                    for rec in recs {
                        if let Some(key) = rec.key {
                            let slot = latest.entry(key.to_vec()).or_insert(rec.offset);
                            *slot = (*slot).max(rec.offset);
                        }
                    }
                }
                None => saw_compressed |= BatchView { bytes: batch }.compression() != 0,
            }
        }
    }
    let mut rewritten = 0;
    for segment in segments.iter().take(dirty) {
        let bytes = read_segment(segment)?;
        let mut cleaned = Vec::with_capacity(bytes.len());
        let mut changed = false;
        let mut parsed = 0;
        for batch in batches(&bytes) {
            parsed += batch.len();
            let Some(recs) = records(batch) else {
                cleaned.extend_from_slice(batch);
                continue;
            };
            let keep: Vec<&RecordSpan<'_>> = recs
                .iter()
                .filter(|r| match r.key {
                    None => true,
                    Some(k) => latest.get(k) == Some(&r.offset) && !(r.tombstone && !saw_compressed && now_ms - r.timestamp > delete_retention_ms),
                })
                .collect();
            if keep.len() == recs.len() {
                cleaned.extend_from_slice(batch);
                continue;
            }
            changed = true;
            if keep.is_empty() {
                continue;
            }
            let start = cleaned.len();
            cleaned.extend_from_slice(&batch[..HEADER_BYTES]);
            for r in &keep {
                cleaned.extend_from_slice(&batch[r.range.clone()]);
            }
            let total = cleaned.len() - start;
            let header = &mut cleaned[start..];
            header[record_batch::OFFSET_BATCH_LENGTH..record_batch::OFFSET_BATCH_LENGTH + 4]
                .copy_from_slice(&((total - record_batch::LOG_OVERHEAD) as i32).to_be_bytes());
            header[record_batch::OFFSET_RECORD_COUNT..record_batch::OFFSET_RECORD_COUNT + 4].copy_from_slice(&(keep.len() as i32).to_be_bytes());
            let crc = crc32c::crc32c(&header[record_batch::CRC_START..total]);
            header[record_batch::OFFSET_CRC..record_batch::OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        }
        // A segment that does not parse to its end is left alone rather than cut short.
        if changed && parsed == bytes.len() {
            write(segment.base_offset, &cleaned)?;
            rewritten += 1;
        }
    }
    Ok(rewritten)
}
