//! RecordBatch v2 (magic 2), the unit Spate stores: a view over the batch header that borrows
//! the producer's bytes, the validation a batch passes before it reaches a log, and the one
//! builder of batches (`BatchBuilder`: records, header, compression) that the client, the
//! cleaner and the coordinator share. (`records::Records` walks what it builds.)
//!
//! ```text
//! offset  size  field                 covered by crc
//!      0     8  base_offset           no   (assigned by the broker)
//!      8     4  batch_length          no   (bytes after this field)
//!     12     4  partition_leader_epoch no  (assigned by the broker)
//!     16     1  magic (= 2)           no
//!     17     4  crc (CRC-32C)         no
//!     21     2  attributes            yes  compression 0-2, timestamp type 3,
//!                                          transactional 4, control 5, delete horizon 6
//!     23     4  last_offset_delta     yes
//!     27     8  base_timestamp        yes
//!     35     8  max_timestamp         yes
//!     43     8  producer_id           yes
//!     51     2  producer_epoch        yes
//!     53     4  base_sequence         yes
//!     57     4  record_count          yes
//!     61     -  records               yes
//! ```

use std::io;

use bytes::Bytes;

use super::compression::{self, Compression};
use super::records::{self, RecordError, RecordsSummary};

pub const HEADER_BYTES: usize = 61;
/// The bytes before `batch_length` counts: base_offset and batch_length themselves.
pub const LOG_OVERHEAD: usize = 12;
pub const CRC_START: usize = 21;
pub const MAGIC_V2: i8 = 2;

pub const OFFSET_BASE_OFFSET: usize = 0;
pub const OFFSET_BATCH_LENGTH: usize = 8;
pub const OFFSET_LEADER_EPOCH: usize = 12;
pub const OFFSET_MAGIC: usize = 16;
pub const OFFSET_CRC: usize = 17;
pub const OFFSET_ATTRIBUTES: usize = 21;
pub const OFFSET_LAST_OFFSET_DELTA: usize = 23;
pub const OFFSET_BASE_TIMESTAMP: usize = 27;
pub const OFFSET_MAX_TIMESTAMP: usize = 35;
pub const OFFSET_PRODUCER_ID: usize = 43;
pub const OFFSET_PRODUCER_EPOCH: usize = 51;
pub const OFFSET_BASE_SEQUENCE: usize = 53;
pub const OFFSET_RECORD_COUNT: usize = 57;

pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
pub const ATTR_LOG_APPEND_TIME: i16 = 0x08;
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
pub const ATTR_CONTROL: i16 = 0x20;

/// Why a batch was refused. Each maps to the Kafka error code the protocol defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchError {
    /// Fewer bytes than a batch header, or a length that runs past the bytes given.
    Truncated,
    /// A `batch_length` that cannot describe a batch (smaller than the header).
    InvalidLength,
    /// A magic other than 2.
    UnsupportedMagic(i8),
    /// The CRC-32C does not match.
    CrcMismatch,
    /// Header fields that contradict each other (count vs. offset delta, negative counts).
    InvalidRecord,
    /// Records that disagree with their header, or a header a client may not send.
    Records(RecordError),
}

/// A borrowed view of one batch's header. `bytes` is exactly the batch (header and records).
#[derive(Clone, Copy)]
pub struct BatchView<'a> {
    pub bytes: &'a [u8],
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl<'a> BatchView<'a> {
    pub fn base_offset(&self) -> i64 {
        be_i64(self.bytes, OFFSET_BASE_OFFSET)
    }
    pub fn batch_length(&self) -> i32 {
        be_i32(self.bytes, OFFSET_BATCH_LENGTH)
    }
    pub fn partition_leader_epoch(&self) -> i32 {
        be_i32(self.bytes, OFFSET_LEADER_EPOCH)
    }
    pub fn magic(&self) -> i8 {
        self.bytes[OFFSET_MAGIC] as i8
    }
    pub fn crc(&self) -> u32 {
        be_u32(self.bytes, OFFSET_CRC)
    }
    pub fn attributes(&self) -> i16 {
        be_i16(self.bytes, OFFSET_ATTRIBUTES)
    }
    pub fn compression(&self) -> i16 {
        self.attributes() & ATTR_COMPRESSION_MASK
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes() & ATTR_TRANSACTIONAL != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes() & ATTR_CONTROL != 0
    }
    pub fn last_offset_delta(&self) -> i32 {
        be_i32(self.bytes, OFFSET_LAST_OFFSET_DELTA)
    }
    pub fn base_timestamp(&self) -> i64 {
        be_i64(self.bytes, OFFSET_BASE_TIMESTAMP)
    }
    pub fn max_timestamp(&self) -> i64 {
        be_i64(self.bytes, OFFSET_MAX_TIMESTAMP)
    }
    pub fn producer_id(&self) -> i64 {
        be_i64(self.bytes, OFFSET_PRODUCER_ID)
    }
    pub fn producer_epoch(&self) -> i16 {
        be_i16(self.bytes, OFFSET_PRODUCER_EPOCH)
    }
    pub fn base_sequence(&self) -> i32 {
        be_i32(self.bytes, OFFSET_BASE_SEQUENCE)
    }
    pub fn record_count(&self) -> i32 {
        be_i32(self.bytes, OFFSET_RECORD_COUNT)
    }
    pub fn last_offset(&self) -> i64 {
        // Wrapping: a corrupt base offset near i64::MAX must not panic; the result is then
        // below the base offset, which every caller rejects.
        self.base_offset().wrapping_add(self.last_offset_delta() as i64)
    }
    pub fn len(&self) -> usize {
        self.bytes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
    pub fn computed_crc(&self) -> u32 {
        crc32c::crc32c(&self.bytes[CRC_START..])
    }
}

/// Reads the total size (header included) of the batch that starts `bytes`, checking only
/// that its length field is plausible and within `bytes`. Used by recovery and fetch scans.
pub fn batch_size(bytes: &[u8]) -> Result<usize, BatchError> {
    if bytes.len() < LOG_OVERHEAD {
        return Err(BatchError::Truncated);
    }
    let length = be_i32(bytes, OFFSET_BATCH_LENGTH);
    if length < (HEADER_BYTES - LOG_OVERHEAD) as i32 {
        return Err(BatchError::InvalidLength);
    }
    let total = LOG_OVERHEAD + length as usize;
    if total > bytes.len() {
        return Err(BatchError::Truncated);
    }
    Ok(total)
}

/// The total size a batch's length field claims, if it is plausible, whatever the bytes after
/// the length field hold.
pub fn batch_size_claimed(bytes: &[u8]) -> Option<usize> {
    let length = be_i32(bytes.get(..LOG_OVERHEAD)?, OFFSET_BATCH_LENGTH);
    (length >= (HEADER_BYTES - LOG_OVERHEAD) as i32).then(|| LOG_OVERHEAD + length as usize)
}

/// Checks one complete batch from a producer: what `validate_stored` checks, that its
/// header's counts agree, and every record (`records::validate_records`).
pub fn validate(bytes: &[u8]) -> Result<BatchView<'_>, BatchError> {
    validate_produced(bytes).map(|(view, _)| view)
}

/// `validate`, with what the walk over the records found.
pub fn validate_produced(bytes: &[u8]) -> Result<(BatchView<'_>, RecordsSummary), BatchError> {
    let view = validate_header(bytes)?;
    // As Kafka's LogValidator: control batches are the broker's to write, and an idempotent
    // batch carries a sequence.
    if view.is_control() {
        return Err(BatchError::Records(RecordError::batch("clients may not write control batches")));
    }
    if view.producer_id() >= 0 && view.base_sequence() < 0 {
        return Err(BatchError::Records(RecordError::batch("an idempotent batch has a negative base sequence")));
    }
    let summary = records::validate_records(view).map_err(BatchError::Records)?;
    Ok((view, summary))
}

/// The header checks of `validate`, without the records.
fn validate_header(bytes: &[u8]) -> Result<BatchView<'_>, BatchError> {
    let view = validate_stored(bytes)?;
    let count = view.record_count();
    let delta = view.last_offset_delta();
    // A producer's batch holds exactly `last_offset_delta + 1` records (compaction may later
    // leave fewer, but compacted batches are written by the broker, not produced).
    if count <= 0 || delta < 0 || count as i64 != delta as i64 + 1 {
        return Err(BatchError::InvalidRecord);
    }
    Ok(view)
}

/// Checks a batch as stored in a log: size, magic and CRC-32C (not the producer-side rules: a
/// compacted batch may hold fewer records than its offset range).
pub fn validate_stored(bytes: &[u8]) -> Result<BatchView<'_>, BatchError> {
    let total = batch_size(bytes)?;
    if total != bytes.len() {
        return Err(BatchError::InvalidLength);
    }
    let view = BatchView { bytes };
    if view.magic() != MAGIC_V2 {
        return Err(BatchError::UnsupportedMagic(view.magic()));
    }
    if view.computed_crc() != view.crc() {
        return Err(BatchError::CrcMismatch);
    }
    Ok(view)
}

/// Splits a produce request's records into validated batches. Returns the batches' byte
/// ranges, or the first error. An empty input is an error: a produce carries records.
pub fn split_batches(bytes: &[u8]) -> Result<Vec<std::ops::Range<usize>>, BatchError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let size = batch_size(&bytes[at..])?;
        validate(&bytes[at..at + size])?;
        out.push(at..at + size);
        at += size;
    }
    if out.is_empty() {
        return Err(BatchError::Truncated);
    }
    Ok(out)
}

/// Stamps the broker's fields into a batch header copy: base offset, leader epoch, and for
/// LogAppendTime topics the timestamp type and max timestamp, with the CRC recomputed over
/// `header[21..61] ++ rest` (the records are unchanged, so only their CRC state is reused).
pub fn stamp_header(header: &mut [u8; HEADER_BYTES], records: &[u8], base_offset: i64, leader_epoch: i32, log_append_time: Option<i64>) {
    header[OFFSET_BASE_OFFSET..OFFSET_BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
    header[OFFSET_LEADER_EPOCH..OFFSET_LEADER_EPOCH + 4].copy_from_slice(&leader_epoch.to_be_bytes());
    if let Some(now) = log_append_time {
        let attributes = be_i16(header, OFFSET_ATTRIBUTES) | ATTR_LOG_APPEND_TIME;
        header[OFFSET_ATTRIBUTES..OFFSET_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        header[OFFSET_MAX_TIMESTAMP..OFFSET_MAX_TIMESTAMP + 8].copy_from_slice(&now.to_be_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&header[CRC_START..]), records);
        header[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
    }
}

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

/// The header fields a `BatchBuilder` writes as given; it derives the rest (length, record
/// count, base timestamp, CRC, and unless given the last offset delta and max timestamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchFields {
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    /// The attribute bits besides the codec's (timestamp type, transactional, control, ...);
    /// the codec's bits come from the codec the batch is built with.
    pub attributes: i16,
    /// `None`: `record_count - 1`. A compacted batch keeps its own, past its last record.
    pub last_offset_delta: Option<i32>,
    /// `None`: the largest record timestamp (the base timestamp when none is larger).
    pub max_timestamp: Option<i64>,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl BatchFields {
    /// A batch as a producer sends it: base offset 0, no leader epoch (-1), CreateTime.
    pub fn producer(producer_id: i64, producer_epoch: i16, base_sequence: i32) -> BatchFields {
        BatchFields {
            base_offset: 0,
            partition_leader_epoch: -1,
            attributes: 0,
            last_offset_delta: None,
            max_timestamp: None,
            producer_id,
            producer_epoch,
            base_sequence,
        }
    }

    /// A batch without a producer (id, epoch and sequence -1), leader epoch 0, CreateTime: what
    /// the broker writes itself (`__consumer_offsets`) and what tests build.
    pub fn new(base_offset: i64) -> BatchFields {
        BatchFields { base_offset, partition_leader_epoch: 0, ..BatchFields::producer(-1, -1, -1) }
    }

    /// Every field of an existing batch's header, kept as it is: compaction's rewrite.
    pub fn of(batch: BatchView<'_>) -> BatchFields {
        BatchFields {
            base_offset: batch.base_offset(),
            partition_leader_epoch: batch.partition_leader_epoch(),
            attributes: batch.attributes(),
            last_offset_delta: Some(batch.last_offset_delta()),
            max_timestamp: Some(batch.max_timestamp()),
            producer_id: batch.producer_id(),
            producer_epoch: batch.producer_epoch(),
            base_sequence: batch.base_sequence(),
        }
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

/// Appends Kafka's zig-zag varint (varlong) of `v`.
pub(crate) fn push_varlong(out: &mut Vec<u8>, v: i64) {
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

fn push_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => push_varlong(out, -1),
        Some(b) => {
            push_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// One record's encoded size without its length prefix, and its header count.
fn body_size<'h>(
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: impl Iterator<Item = (&'h [u8], Option<&'h [u8]>)>,
) -> (usize, i64) {
    let mut n = 1 + varint_len(timestamp_delta) + varint_len(offset_delta as i64) + bytes_len(key) + bytes_len(value);
    let mut count = 0i64;
    for (k, v) in headers {
        n += bytes_len(Some(k)) + bytes_len(v);
        count += 1;
    }
    (n + varint_len(count), count)
}

/// The one RecordBatch v2 builder: the client's producer batches, compaction's rewritten
/// batches, the coordinator's `__consumer_offsets` batches and the tests' batches. Records are
/// encoded as they arrive (uncompressed) after room for the header; `finish` writes the header
/// in place (or compresses into a new buffer), so an uncompressed batch is never copied.
/// (`client::records` adds `build`, the producer's `finish` with the client's error type.)
pub struct BatchBuilder {
    /// `HEADER_BYTES` reserved, then the records; empty once an uncompressed finish took it.
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
        let (body, _) = body_size(offset_delta, timestamp_delta, key, value, headers.iter().map(|h| (h.key.as_bytes(), h.value.as_deref())));
        varint_len(body as i64) + body
    }

    /// Appends a record stamped `timestamp`, with the next offset delta; returns that delta.
    pub fn append(&mut self, timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) -> i32 {
        let delta = self.count;
        self.append_record(delta, timestamp - self.base_timestamp, key, value, headers.iter().map(|h| (h.key.as_bytes(), h.value.as_deref())));
        delta
    }

    /// Appends a record with the offset and timestamp deltas given (compaction keeps each
    /// record's own offset delta) and (key, value) header pairs.
    pub fn append_record<'h>(
        &mut self,
        offset_delta: i32,
        timestamp_delta: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: impl Iterator<Item = (&'h [u8], Option<&'h [u8]>)> + Clone,
    ) {
        let (body, header_count) = body_size(offset_delta, timestamp_delta, key, value, headers.clone());
        let out = &mut self.buf;
        debug_assert!(out.len() >= HEADER_BYTES, "appending to a batch already built");
        push_varlong(out, body as i64);
        out.push(0); // attributes
        push_varlong(out, timestamp_delta);
        push_varlong(out, offset_delta as i64);
        push_bytes(out, key);
        push_bytes(out, value);
        push_varlong(out, header_count);
        for (k, v) in headers {
            push_bytes(out, Some(k));
            push_bytes(out, v);
        }
        self.size = out.len();
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(self.base_timestamp.wrapping_add(timestamp_delta));
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

    /// The builder's buffer, for reuse, if a finish has not taken it.
    pub fn take_buffer(&mut self) -> Option<Vec<u8>> {
        (self.buf.capacity() > 0).then(|| std::mem::take(&mut self.buf))
    }

    /// Encodes the batch: header (`fields`, the codec's attribute bits), records (compressed
    /// into a new buffer, or in place), CRC-32C. Called once: nothing can be appended afterwards.
    pub fn finish(&mut self, codec: Compression, fields: &BatchFields) -> io::Result<Vec<u8>> {
        if codec == Compression::None {
            return Ok(self.finish_uncompressed(fields));
        }
        let mut out = Vec::with_capacity(HEADER_BYTES + (self.buf.len() - HEADER_BYTES) / 2);
        out.resize(HEADER_BYTES, 0);
        compression::compress(codec, &self.buf[HEADER_BYTES..], &mut out)?;
        self.write_header(&mut out, codec, fields);
        Ok(out)
    }

    /// `finish` without compression, which cannot fail.
    pub fn finish_uncompressed(&mut self, fields: &BatchFields) -> Vec<u8> {
        let mut b = std::mem::take(&mut self.buf);
        self.write_header(&mut b, Compression::None, fields);
        b
    }

    fn write_header(&self, b: &mut [u8], codec: Compression, fields: &BatchFields) {
        let length = (b.len() - LOG_OVERHEAD) as i32;
        let attributes = (fields.attributes & !ATTR_COMPRESSION_MASK) | codec.attribute_bits();
        b[OFFSET_BASE_OFFSET..][..8].copy_from_slice(&fields.base_offset.to_be_bytes());
        b[OFFSET_BATCH_LENGTH..][..4].copy_from_slice(&length.to_be_bytes());
        b[OFFSET_LEADER_EPOCH..][..4].copy_from_slice(&fields.partition_leader_epoch.to_be_bytes());
        b[OFFSET_MAGIC] = MAGIC_V2 as u8;
        b[OFFSET_ATTRIBUTES..][..2].copy_from_slice(&attributes.to_be_bytes());
        b[OFFSET_LAST_OFFSET_DELTA..][..4].copy_from_slice(&fields.last_offset_delta.unwrap_or(self.count - 1).to_be_bytes());
        b[OFFSET_BASE_TIMESTAMP..][..8].copy_from_slice(&self.base_timestamp.to_be_bytes());
        b[OFFSET_MAX_TIMESTAMP..][..8].copy_from_slice(&fields.max_timestamp.unwrap_or(self.max_timestamp).to_be_bytes());
        b[OFFSET_PRODUCER_ID..][..8].copy_from_slice(&fields.producer_id.to_be_bytes());
        b[OFFSET_PRODUCER_EPOCH..][..2].copy_from_slice(&fields.producer_epoch.to_be_bytes());
        b[OFFSET_BASE_SEQUENCE..][..4].copy_from_slice(&fields.base_sequence.to_be_bytes());
        b[OFFSET_RECORD_COUNT..][..4].copy_from_slice(&self.count.to_be_bytes());
        let crc = crc32c::crc32c(&b[CRC_START..]);
        b[OFFSET_CRC..][..4].copy_from_slice(&crc.to_be_bytes());
    }
}

/// One record for `build_batch`.
pub struct RecordSpec<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [(&'a str, &'a [u8])],
    pub timestamp_delta: i64,
}

/// An uncompressed batch of `records` (offset deltas 0, 1, ...) through `BatchBuilder`, with
/// `BatchFields::new(base_offset)`: for tests and tools that speak the protocol directly.
pub fn build_batch(base_offset: i64, base_timestamp: i64, records: &[RecordSpec<'_>]) -> Vec<u8> {
    let mut b = BatchBuilder::new(base_timestamp, 0);
    for (i, r) in records.iter().enumerate() {
        b.append_record(i as i32, r.timestamp_delta, r.key, r.value, r.headers.iter().map(|&(k, v)| (k.as_bytes(), Some(v))));
    }
    b.finish_uncompressed(&BatchFields::new(base_offset))
}

/// A transaction marker: the one record of a control batch (KIP-98). Its key is a version
/// (0) and a type (0 abort, 1 commit); its value a version (0) and the coordinator epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlRecord {
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// The marker in a control batch's records (what follows its header), if they begin with one.
pub fn control_record(records: &[u8]) -> Option<ControlRecord> {
    let mut r = super::codec::Reader::new(Bytes::copy_from_slice(&records[..records.len().min(64)]));
    let mut read = || -> super::codec::DecodeResult<Option<ControlRecord>> {
        r.varint()?; // length
        r.i8()?; // attributes
        r.varlong()?; // timestamp delta
        r.varint()?; // offset delta
        if r.varint()? < 4 {
            return Ok(None);
        }
        let (_version, kind) = (r.i16()?, r.i16()?);
        let commit = match kind {
            0 => false,
            1 => true,
            _ => return Ok(None),
        };
        let coordinator_epoch = if r.varint()? >= 6 {
            r.i16()?;
            r.i32()?
        } else {
            -1
        };
        Ok(Some(ControlRecord { commit, coordinator_epoch }))
    };
    read().ok().flatten()
}

/// A control batch holding one transaction marker for `producer_id` at `producer_epoch`, as
/// the transaction coordinator has partitions write it (no sequence, transactional and
/// control bits set), built with the one batch builder.
pub fn control_batch(producer_id: i64, producer_epoch: i16, marker: ControlRecord, timestamp: i64) -> Vec<u8> {
    let key = [0u8, 0, 0, marker.commit as u8];
    let mut value = vec![0u8, 0];
    value.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    let mut batch = BatchBuilder::new(timestamp, 64);
    batch.append(timestamp, Some(&key), Some(&value), &[]);
    let fields = BatchFields { attributes: ATTR_TRANSACTIONAL | ATTR_CONTROL, ..BatchFields::producer(producer_id, producer_epoch, -1) };
    batch.finish_uncompressed(&fields)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    #[test]
    fn a_control_batch_carries_its_marker() {
        for commit in [false, true] {
            let batch = control_batch(42, 3, ControlRecord { commit, coordinator_epoch: 7 }, 1_000);
            let view = validate_stored(&batch).unwrap();
            assert!(view.is_control() && view.is_transactional());
            assert_eq!((view.producer_id(), view.producer_epoch(), view.base_sequence(), view.record_count()), (42, 3, -1, 1));
            assert_eq!(control_record(&batch[HEADER_BYTES..]), Some(ControlRecord { commit, coordinator_epoch: 7 }));
        }
    }

    /// A batch of `count` records with `value_bytes`-byte values and null keys.
    pub fn make_batch(base_offset: i64, count: i32, timestamp: i64, value_bytes: usize) -> Vec<u8> {
        let value = vec![b'v'; value_bytes];
        let records: Vec<RecordSpec<'_>> = (0..count).map(|_| RecordSpec { key: None, value: Some(&value), headers: &[], timestamp_delta: 0 }).collect();
        build_batch(base_offset, timestamp, &records)
    }

    #[test]
    fn a_valid_batch_passes_and_a_flipped_bit_fails() {
        let mut b = make_batch(0, 3, 1000, 10);
        let view = validate(&b).unwrap();
        assert_eq!(view.record_count(), 3);
        assert_eq!(view.last_offset_delta(), 2);
        b[70] ^= 1;
        assert_eq!(validate(&b).err(), Some(BatchError::CrcMismatch));
    }

    #[test]
    fn stamping_log_append_time_keeps_the_crc_valid() {
        let b = make_batch(0, 2, 1000, 5);
        let mut header: [u8; HEADER_BYTES] = b[..HEADER_BYTES].try_into().unwrap();
        stamp_header(&mut header, &b[HEADER_BYTES..], 42, 7, Some(99_999));
        let mut stamped = header.to_vec();
        stamped.extend_from_slice(&b[HEADER_BYTES..]);
        let view = validate(&stamped).unwrap();
        assert_eq!(view.base_offset(), 42);
        assert_eq!(view.max_timestamp(), 99_999);
        assert_eq!(view.attributes() & ATTR_LOG_APPEND_TIME, ATTR_LOG_APPEND_TIME);
    }

    #[test]
    fn lengths_are_checked_against_the_bytes() {
        let b = make_batch(0, 1, 0, 1);
        assert_eq!(split_batches(&b[..b.len() - 1]).err(), Some(BatchError::Truncated));
        let mut lying = b.clone();
        lying[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(split_batches(&lying).err(), Some(BatchError::Truncated));
        lying[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert_eq!(split_batches(&lying).err(), Some(BatchError::InvalidLength));
        let two = [b.clone(), b.clone()].concat();
        assert_eq!(split_batches(&two).unwrap().len(), 2);
    }
}
