//! Log compaction (`cleanup.policy=compact`): every closed segment is rewritten to keep, per
//! key, only the latest record; a tombstone (null value) is kept until it is older than
//! `delete.retention.ms`, then dropped too.
//!
//! Batches keep their base offset and last offset delta, and the kept records their own
//! offset deltas, exactly as Kafka's cleaner does, so offsets never move; a batch left with no
//! record goes. Records are read with `protocol::records::Records`, and a batch that loses
//! some is rebuilt by `protocol::record_batch::BatchBuilder` with every header field it had
//! (producer, attributes, timestamps). Compressed batches are kept whole (their records are
//! not read), which is safe: keeping a record too many never loses the latest value of a key.
//!
//! The work (reading the segments one at a time, writing the cleaned files) runs on the
//! runtime's blocking pool; the owning shard then swaps the cleaned files in
//! (`PartitionLog::compact`). The key map holds every distinct key in full: a topic with more
//! distinct keys than memory allows needs Kafka's bounded dedupe buffer, which this is not yet.

use std::collections::HashMap;
use std::io;

use super::txn_index::AbortedTxn;
use crate::io::LogFile;
use crate::protocol::record_batch::{self, BatchBuilder, BatchFields, BatchView, HEADER_BYTES};
use crate::protocol::records::{Record, Records};

/// A segment as compaction sees it: its file and the bytes of complete batches in it.
#[derive(Clone)]
pub struct SegmentSnapshot {
    pub base_offset: i64,
    pub file: LogFile,
    pub size: u32,
}

/// One record inside an uncompressed batch: where its bytes are (length prefix included),
/// its offset and timestamp, and the record itself (key, value, headers, deltas).
pub(crate) struct RecordSpan<'a> {
    pub(crate) range: std::ops::Range<usize>,
    offset: i64,
    timestamp: i64,
    record: Record<'a>,
}

impl RecordSpan<'_> {
    fn tombstone(&self) -> bool {
        self.record.value.is_none()
    }
}

/// The records of an uncompressed, non-control batch; `None` for batches compaction keeps
/// whole (compressed, control, or not parseable).
pub(crate) fn records(batch: &[u8]) -> Option<Vec<RecordSpan<'_>>> {
    let view = BatchView { bytes: batch };
    if batch.len() < HEADER_BYTES || view.is_control() {
        return None;
    }
    let mut records = Records::of_batch(view)?;
    let mut out = Vec::new();
    let mut start = HEADER_BYTES;
    while let Some(record) = records.next() {
        let record = record.ok()?;
        let end = HEADER_BYTES + records.position();
        out.push(RecordSpan {
            range: start..end,
            offset: view.base_offset().wrapping_add(record.offset_delta as i64),
            timestamp: view.base_timestamp().wrapping_add(record.timestamp_delta),
            record,
        });
        start = end;
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

/// Whether `batch` belongs to an aborted transaction (`aborted`: the log's `.txnindex`
/// entries): its records count for nothing, and the cleaner removes them, as Kafka's does.
fn is_aborted(batch: &[u8], aborted: &[AbortedTxn]) -> bool {
    let view = BatchView { bytes: batch };
    if batch.len() < HEADER_BYTES || !view.is_transactional() || view.is_control() {
        return false;
    }
    let (producer_id, offset) = (view.producer_id(), view.base_offset());
    aborted.iter().any(|t| t.producer_id == producer_id && t.first_offset <= offset && offset < t.last_offset)
}

/// Cleans the first `dirty` segments of `segments`, one at a time: a first pass streams every
/// segment (the newest ones only for their keys) to find each key's latest offset, a second
/// rewrites each dirty segment that changes through `write(base_offset, cleaned_bytes)`.
/// Memory holds the key map and one segment, never the whole log. Records of aborted
/// transactions shadow nothing and are removed; transaction markers are kept. The caller
/// passes only segments below the last stable offset (an open transaction's records may still
/// be aborted).
pub fn clean(
    segments: &[SegmentSnapshot],
    dirty: usize,
    aborted: &[AbortedTxn],
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
        for batch in batches(&bytes).filter(|b| !is_aborted(b, aborted)) {
            match records(batch) {
                Some(recs) => {
                    for rec in recs {
                        if let Some(key) = rec.record.key {
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
    // The buffer each rewritten batch is built in, reused from one to the next.
    let mut scratch = Vec::new();
    for segment in segments.iter().take(dirty) {
        let bytes = read_segment(segment)?;
        let mut cleaned = Vec::with_capacity(bytes.len());
        let mut changed = false;
        let mut parsed = 0;
        for batch in batches(&bytes) {
            parsed += batch.len();
            if is_aborted(batch, aborted) {
                changed = true;
                continue;
            }
            let Some(recs) = records(batch) else {
                cleaned.extend_from_slice(batch);
                continue;
            };
            let keep: Vec<&RecordSpan<'_>> = recs
                .iter()
                .filter(|r| match r.record.key {
                    None => true,
                    Some(k) => latest.get(k) == Some(&r.offset) && !(r.tombstone() && !saw_compressed && now_ms - r.timestamp > delete_retention_ms),
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
            // The kept records under the batch's own header fields (its base offset, last
            // offset delta and max timestamp among them); only the length, count and CRC change.
            let view = BatchView { bytes: batch };
            let mut builder = BatchBuilder::with_buffer(std::mem::take(&mut scratch), view.base_timestamp());
            for r in &keep {
                let rec = &r.record;
                builder.append_record(rec.offset_delta, rec.timestamp_delta, rec.key, rec.value, rec.headers());
            }
            let rebuilt = builder.finish_uncompressed(&BatchFields::of(view));
            cleaned.extend_from_slice(&rebuilt);
            scratch = rebuilt;
        }
        // A segment that does not parse to its end is left alone rather than cut short.
        if changed && parsed == bytes.len() {
            write(segment.base_offset, &cleaned)?;
            rewritten += 1;
        }
    }
    Ok(rewritten)
}
