//! Building RecordBatch v2 on the producer side and reading it on the consumer side.
//!
//! Written by hand rather than taken from a crate: this is the client's hottest code (every
//! record passes through it once). The builder is the broker's own
//! (`protocol::record_batch::BatchBuilder`, re-exported here with its `Header`; `build` below
//! is its producer form), and the reader walks each batch with `protocol::records::Records`.

use std::borrow::Cow;

use bytes::{Buf, Bytes};

use super::{Error, Result};
use crate::protocol::compression::Compression;
use crate::protocol::record_batch::{self as rb, BatchFields, BatchView};
use crate::protocol::records::{record_bytes, Records};

pub use crate::protocol::record_batch::{BatchBuilder, Header};

impl BatchBuilder {
    /// Encodes the batch as a producer sends it: header (base offset 0, CreateTime), records
    /// (compressed into a new buffer, or in place), CRC-32C. Called once: nothing can be
    /// appended afterwards.
    pub fn build(&mut self, codec: Compression, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Result<Bytes> {
        self.build_with(codec, producer_id, producer_epoch, base_sequence, false)
    }

    /// `build`, with the transactional bit set for a transactional producer's batch.
    pub fn build_with(&mut self, codec: Compression, producer_id: i64, producer_epoch: i16, base_sequence: i32, transactional: bool) -> Result<Bytes> {
        let attributes = if transactional { rb::ATTR_TRANSACTIONAL } else { 0 };
        self.finish(codec, &BatchFields { attributes, ..BatchFields::producer(producer_id, producer_epoch, base_sequence) })
            .map(Bytes::from)
            .map_err(|e| Error::Invalid(format!("{} compression failed: {e}", codec.name())))
    }
}

/// A copy of an encoded batch with another producer id, epoch and base sequence (the CRC
/// recomputed): for a batch sent once and to be sent again under a new producer id.
pub fn restamp_producer(batch: &[u8], producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Bytes {
    let mut b = batch.to_vec();
    b[rb::OFFSET_PRODUCER_ID..][..8].copy_from_slice(&producer_id.to_be_bytes());
    b[rb::OFFSET_PRODUCER_EPOCH..][..2].copy_from_slice(&producer_epoch.to_be_bytes());
    b[rb::OFFSET_BASE_SEQUENCE..][..4].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&b[rb::CRC_START..]);
    b[rb::OFFSET_CRC..][..4].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

/// One record read from a fetch.
#[derive(Debug, Clone)]
pub struct Record {
    pub offset: i64,
    pub timestamp: i64,
    /// Whether `timestamp` was set by the broker (LogAppendTime) rather than the producer.
    pub log_append_time: bool,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

/// The largest batch the reader decompresses; a batch that claims more is refused.
pub const MAX_DECOMPRESSED_BYTES: usize = 64 << 20;

/// Reads the records of every complete batch in `data` (a fetch's record set; it may end
/// with a partial batch, which is ignored). Each batch's CRC-32C is checked; control batches
/// are skipped; records before `from_offset` are left out. Returns the offset to fetch next:
/// past the last complete batch, even when it returned no record (a control batch, or a
/// batch that compaction emptied at its end).
pub fn read_records(data: Bytes, from_offset: i64, out: &mut Vec<Record>) -> Result<i64> {
    read_records_isolated(data, from_offset, None, out)
}

/// `read_records` for a read_committed consumer: the records of the aborted transactions the
/// fetch response lists (`aborted`: producer id and first offset of each) are left out too,
/// as Kafka's consumer does: a producer's transactional batches from the transaction's first
/// offset on are dropped until its abort marker.
pub fn read_records_isolated(data: Bytes, from_offset: i64, aborted: Option<&[(i64, i64)]>, out: &mut Vec<Record>) -> Result<i64> {
    let mut upcoming: Vec<(i64, i64)> = aborted.map(<[_]>::to_vec).unwrap_or_default();
    upcoming.sort_by_key(|&(_, first)| std::cmp::Reverse(first));
    let mut aborting: Vec<i64> = Vec::new();
    let mut next = from_offset;
    let mut at = 0;
    while at < data.len() {
        let size = match rb::batch_size(&data[at..]) {
            Ok(size) => size,
            Err(rb::BatchError::Truncated) => break,
            Err(e) => return Err(Error::Protocol(format!("record batch at byte {at}: {e:?}"))),
        };
        let batch = data.slice(at..at + size);
        at += size;
        let view = rb::validate_stored(&batch).map_err(|e| Error::Protocol(format!("record batch: {e:?}")))?;
        next = next.max(view.last_offset().saturating_add(1));
        while upcoming.last().is_some_and(|&(_, first)| first <= view.last_offset()) {
            aborting.push(upcoming.pop().expect("just checked").0);
        }
        if view.is_control() {
            // An abort marker ends its producer's aborted transaction.
            let abort = batch.get(rb::HEADER_BYTES..).and_then(rb::control_record).is_some_and(|m| !m.commit);
            if abort {
                aborting.retain(|&id| id != view.producer_id());
            }
            continue;
        }
        if view.last_offset() < from_offset || (view.is_transactional() && aborting.contains(&view.producer_id())) {
            continue;
        }
        read_batch(view, &batch, from_offset, out)?;
    }
    Ok(next)
}

fn read_batch(view: BatchView<'_>, batch: &Bytes, from_offset: i64, out: &mut Vec<Record>) -> Result<()> {
    let codec =
        Compression::from_attributes(view.attributes()).ok_or_else(|| Error::Protocol(format!("unknown compression in attributes {}", view.attributes())))?;
    // The records' bytes as `Bytes`, so keys, values and headers are slices of them, not copies.
    let body = match record_bytes(view, MAX_DECOMPRESSED_BYTES).map_err(|e| Error::Protocol(format!("{} batch: {e}", codec.name())))? {
        Cow::Borrowed(records) => batch.slice_ref(records),
        Cow::Owned(records) => Bytes::from(records),
    };
    let log_append_time = view.attributes() & rb::ATTR_LOG_APPEND_TIME != 0;
    let base_offset = view.base_offset();
    let base_timestamp = view.base_timestamp();
    let slice = |b: &[u8]| body.slice_ref(b);
    for record in Records::new(&body, view.record_count()) {
        let record = record.map_err(|e| Error::Protocol(format!("record in batch at offset {base_offset}: {e}")))?;
        let mut headers = Vec::with_capacity(record.header_count as usize);
        for (key, value) in record.headers() {
            let key = std::str::from_utf8(key).map_err(|_| Error::Protocol("header key is not UTF-8".into()))?;
            headers.push(Header { key: key.to_owned(), value: value.map(slice) });
        }
        let offset = base_offset.wrapping_add(record.offset_delta as i64);
        if offset < from_offset {
            continue;
        }
        let timestamp = if log_append_time { view.max_timestamp() } else { base_timestamp.wrapping_add(record.timestamp_delta) };
        out.push(Record { offset, timestamp, log_append_time, key: record.key.map(slice), value: record.value.map(slice), headers });
    }
    Ok(())
}

/// The number of bytes a `Bytes` value would add; used for buffer accounting.
pub fn payload_len(key: Option<&Bytes>, value: Option<&Bytes>, headers: &[Header]) -> usize {
    key.map_or(0, Buf::remaining)
        + value.map_or(0, Buf::remaining)
        + headers.iter().map(|h| h.key.len() + h.value.as_ref().map_or(0, Bytes::len)).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_batches_validate_and_read_back_with_every_codec() {
        for codec in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let mut b = BatchBuilder::new(1_000, 0);
            for i in 0..100 {
                let headers = [Header::new("h", format!("v{i}"))];
                let key = format!("key-{i}");
                let size_before = b.size();
                let expected = BatchBuilder::record_size(i, 1_000 + i as i64 - 1_000, Some(key.as_bytes()), Some(b"value"), &headers);
                b.append(1_000 + i as i64, Some(key.as_bytes()), Some(b"value"), &headers);
                assert_eq!(b.size() - size_before, expected);
            }
            b.append(5_000, None, None, &[]);
            let batch = b.build(codec, 7, 1, 40).unwrap();
            let view = rb::validate(&batch).unwrap();
            let restamped = restamp_producer(&batch, 9, 2, 0);
            let moved = rb::validate(&restamped).unwrap();
            assert_eq!((moved.producer_id(), moved.producer_epoch(), moved.base_sequence()), (9, 2, 0));
            assert_eq!(view.record_count(), 101);
            assert_eq!(view.base_sequence(), 40);
            assert_eq!(view.compression(), codec.attribute_bits());
            let mut records = Vec::new();
            read_records(batch.clone(), 0, &mut records).unwrap();
            assert_eq!(records.len(), 101, "{codec:?}");
            assert_eq!(records[7].key.as_deref(), Some(&b"key-7"[..]));
            assert_eq!(records[7].timestamp, 1_007);
            assert_eq!(records[7].headers[0].value.as_deref(), Some(&b"v7"[..]));
            assert_eq!(records[100].key, None);
            assert_eq!(records[100].value, None);
            // From an offset inside the batch, and with a partial batch after it.
            let mut partial = batch.to_vec();
            partial.extend_from_slice(&batch[..30]);
            records.clear();
            read_records(Bytes::from(partial), 95, &mut records).unwrap();
            assert_eq!(records.first().map(|r| r.offset), Some(95));
            assert_eq!(records.len(), 6);
        }
    }

    #[test]
    fn a_corrupt_batch_is_an_error_not_a_panic() {
        let mut b = BatchBuilder::new(0, 0);
        b.append(0, Some(b"k"), Some(b"v"), &[]);
        let batch = b.build(Compression::None, -1, -1, -1).unwrap();
        for i in 0..batch.len() {
            let mut bad = batch.to_vec();
            bad[i] ^= 0x40;
            let _ = read_records(Bytes::from(bad), 0, &mut Vec::new());
        }
        let mut flipped = batch.to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(read_records(Bytes::from(flipped), 0, &mut Vec::new()).is_err());
    }
}
