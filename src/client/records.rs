//! Building RecordBatch v2 on the producer side and reading it on the consumer side.
//!
//! Written by hand rather than taken from a crate: this is the client's hottest code (every
//! record passes through it once), and the broker's `protocol::record_batch` already defines
//! the header layout both sides share.

use bytes::{Buf, Bytes};

use super::{Error, Result};
use crate::protocol::codec::Reader;
use crate::protocol::compression::{self, Compression};
use crate::protocol::record_batch::{self as rb, BatchView, HEADER_BYTES, LOG_OVERHEAD};

/// A record header: a string key and a byte value (which may be null).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Option<Bytes>,
}

impl Header {
    pub fn new(key: impl Into<String>, value: impl Into<Bytes>) -> Header {
        Header { key: key.into(), value: Some(value.into()) }
    }
}

fn varint_len(v: i64) -> usize {
    let mut raw = ((v << 1) ^ (v >> 63)) as u64;
    let mut n = 1;
    while raw >= 0x80 {
        raw >>= 7;
        n += 1;
    }
    n
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut raw = ((v << 1) ^ (v >> 63)) as u64;
    while raw >= 0x80 {
        out.push((raw as u8) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

fn bytes_len(b: Option<&[u8]>) -> usize {
    match b {
        None => 1,
        Some(b) => varint_len(b.len() as i64) + b.len(),
    }
}

fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// The records of one batch being filled, encoded as they arrive (uncompressed) after room
/// for the header; `build` writes the header in place (or compresses into a new buffer), so
/// an uncompressed batch is never copied on its way to the socket.
pub struct BatchBuilder {
    /// `HEADER_BYTES` reserved, then the records; empty once an uncompressed build took it.
    buf: Vec<u8>,
    size: usize,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl BatchBuilder {
    pub fn new(base_timestamp: i64, capacity: usize) -> BatchBuilder {
        BatchBuilder::with_buffer(Vec::with_capacity(capacity), base_timestamp)
    }

    /// A builder that fills `buf` (a recycled buffer: its contents are discarded).
    pub fn with_buffer(mut buf: Vec<u8>, base_timestamp: i64) -> BatchBuilder {
        buf.clear();
        buf.resize(HEADER_BYTES, 0);
        BatchBuilder { buf, size: HEADER_BYTES, count: 0, base_timestamp, max_timestamp: base_timestamp }
    }

    /// The encoded size of one record, with its length prefix, as it would be appended.
    pub fn record_size(offset_delta: i32, timestamp_delta: i64, key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) -> usize {
        let body = Self::body_size(offset_delta, timestamp_delta, key, value, headers);
        varint_len(body as i64) + body
    }

    fn body_size(offset_delta: i32, timestamp_delta: i64, key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) -> usize {
        let mut n = 1 + varint_len(timestamp_delta) + varint_len(offset_delta as i64) + bytes_len(key) + bytes_len(value);
        n += varint_len(headers.len() as i64);
        for h in headers {
            n += bytes_len(Some(h.key.as_bytes())) + bytes_len(h.value.as_deref());
        }
        n
    }

    /// Appends a record; returns its offset delta within the batch.
    pub fn append(&mut self, timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) -> i32 {
        let delta = self.count;
        let ts_delta = timestamp - self.base_timestamp;
        let body = Self::body_size(delta, ts_delta, key, value, headers);
        let out = &mut self.buf;
        debug_assert!(out.len() >= HEADER_BYTES, "appending to a batch already built");
        put_varint(out, body as i64);
        out.push(0); // attributes
        put_varint(out, ts_delta);
        put_varint(out, delta as i64);
        put_bytes(out, key);
        put_bytes(out, value);
        put_varint(out, headers.len() as i64);
        for h in headers {
            put_bytes(out, Some(h.key.as_bytes()));
            put_bytes(out, h.value.as_deref());
        }
        self.size = out.len();
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
        delta
    }

    pub fn count(&self) -> i32 {
        self.count
    }

    pub fn base_timestamp(&self) -> i64 {
        self.base_timestamp
    }

    /// The batch's size, uncompressed, header included.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The builder's buffer, for reuse, if a build has not taken it.
    pub fn take_buffer(&mut self) -> Option<Vec<u8>> {
        (self.buf.capacity() > 0).then(|| std::mem::take(&mut self.buf))
    }

    /// Encodes the batch: header (base offset 0, CreateTime), records (compressed into a new
    /// buffer, or in place), CRC-32C. Called once: nothing can be appended afterwards.
    pub fn build(&mut self, codec: Compression, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Result<Bytes> {
        let mut b = if codec == Compression::None {
            std::mem::take(&mut self.buf)
        } else {
            let mut out = Vec::with_capacity(HEADER_BYTES + (self.buf.len() - HEADER_BYTES) / 2);
            out.resize(HEADER_BYTES, 0);
            compression::compress(codec, &self.buf[HEADER_BYTES..], &mut out)
                .map_err(|e| Error::Invalid(format!("{} compression failed: {e}", codec.name())))?;
            out
        };
        let length = (b.len() - LOG_OVERHEAD) as i32;
        b[..8].copy_from_slice(&0i64.to_be_bytes());
        b[rb::OFFSET_BATCH_LENGTH..][..4].copy_from_slice(&length.to_be_bytes());
        b[rb::OFFSET_LEADER_EPOCH..][..4].copy_from_slice(&(-1i32).to_be_bytes());
        b[rb::OFFSET_MAGIC] = rb::MAGIC_V2 as u8;
        b[rb::OFFSET_ATTRIBUTES..][..2].copy_from_slice(&codec.attribute_bits().to_be_bytes());
        b[rb::OFFSET_LAST_OFFSET_DELTA..][..4].copy_from_slice(&(self.count - 1).to_be_bytes());
        b[rb::OFFSET_BASE_TIMESTAMP..][..8].copy_from_slice(&self.base_timestamp.to_be_bytes());
        b[rb::OFFSET_MAX_TIMESTAMP..][..8].copy_from_slice(&self.max_timestamp.to_be_bytes());
        b[rb::OFFSET_PRODUCER_ID..][..8].copy_from_slice(&producer_id.to_be_bytes());
        b[rb::OFFSET_PRODUCER_EPOCH..][..2].copy_from_slice(&producer_epoch.to_be_bytes());
        b[rb::OFFSET_BASE_SEQUENCE..][..4].copy_from_slice(&base_sequence.to_be_bytes());
        b[rb::OFFSET_RECORD_COUNT..][..4].copy_from_slice(&self.count.to_be_bytes());
        let crc = crc32c::crc32c(&b[rb::CRC_START..]);
        b[rb::OFFSET_CRC..][..4].copy_from_slice(&crc.to_be_bytes());
        Ok(Bytes::from(b))
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
        if view.is_control() || view.last_offset() < from_offset {
            continue;
        }
        read_batch(view, &batch, from_offset, out)?;
    }
    Ok(next)
}

fn read_batch(view: BatchView<'_>, batch: &Bytes, from_offset: i64, out: &mut Vec<Record>) -> Result<()> {
    let codec =
        Compression::from_attributes(view.attributes()).ok_or_else(|| Error::Protocol(format!("unknown compression in attributes {}", view.attributes())))?;
    let body = if codec == Compression::None {
        batch.slice(HEADER_BYTES..)
    } else {
        let raw = compression::decompress(codec, &batch[HEADER_BYTES..], MAX_DECOMPRESSED_BYTES)
            .map_err(|e| Error::Protocol(format!("{} batch: {e}", codec.name())))?;
        Bytes::from(raw)
    };
    let log_append_time = view.attributes() & rb::ATTR_LOG_APPEND_TIME != 0;
    let base_offset = view.base_offset();
    let base_timestamp = view.base_timestamp();
    let bad = |e| Error::Protocol(format!("record in batch at offset {base_offset}: {e}"));
    let mut r = Reader::new(body);
    for _ in 0..view.record_count().max(0) {
        let length = r.varint().map_err(bad)?;
        if length < 0 || length as usize > r.remaining() {
            return Err(Error::Protocol(format!("record length {length} in batch at offset {base_offset}")));
        }
        let mut rec = Reader::new(r.take_bytes(length as usize).map_err(bad)?);
        rec.i8().map_err(bad)?; // attributes
        let ts_delta = rec.varlong().map_err(bad)?;
        let offset_delta = rec.varint().map_err(bad)?;
        let key = varint_bytes(&mut rec).map_err(bad)?;
        let value = varint_bytes(&mut rec).map_err(bad)?;
        let count = rec.varint().map_err(bad)?;
        if count < 0 || count as usize > rec.remaining() / 2 {
            return Err(Error::Protocol(format!("header count {count} in batch at offset {base_offset}")));
        }
        let mut headers = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let k = varint_bytes(&mut rec).map_err(bad)?.unwrap_or_default();
            let key = String::from_utf8(k.to_vec()).map_err(|_| Error::Protocol("header key is not UTF-8".into()))?;
            headers.push(Header { key, value: varint_bytes(&mut rec).map_err(bad)? });
        }
        let offset = base_offset.wrapping_add(offset_delta as i64);
        if offset < from_offset {
            continue;
        }
        let timestamp = if log_append_time { view.max_timestamp() } else { base_timestamp.wrapping_add(ts_delta) };
        out.push(Record { offset, timestamp, log_append_time, key, value, headers });
    }
    Ok(())
}

fn varint_bytes(r: &mut Reader) -> crate::protocol::codec::DecodeResult<Option<Bytes>> {
    let len = r.varint()?;
    if len < 0 {
        return Ok(None);
    }
    r.take_bytes(len as usize).map(Some)
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
