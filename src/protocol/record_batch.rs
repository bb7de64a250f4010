//! RecordBatch v2 (magic 2), the unit Spate stores: a view over the batch header that borrows
//! the producer's bytes, and the validation a batch passes before it reaches a log.
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

/// One record for `build_batch`.
pub struct RecordSpec<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [(&'a str, &'a [u8])],
    pub timestamp_delta: i64,
}

pub(crate) fn push_varlong(out: &mut Vec<u8>, v: i64) {
    let mut raw = ((v << 1) ^ (v >> 63)) as u64;
    while raw >= 0x80 {
        out.push((raw as u8) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
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

/// Appends one record (its length prefix included) with the given offset delta to `body`.
pub fn push_record(body: &mut Vec<u8>, offset_delta: i32, r: &RecordSpec<'_>) {
    let mut rec = vec![0u8]; // attributes
    push_varlong(&mut rec, r.timestamp_delta);
    push_varlong(&mut rec, offset_delta as i64);
    push_bytes(&mut rec, r.key);
    push_bytes(&mut rec, r.value);
    push_varlong(&mut rec, r.headers.len() as i64);
    for (k, v) in r.headers {
        push_bytes(&mut rec, Some(k.as_bytes()));
        push_bytes(&mut rec, Some(v));
    }
    push_varlong(body, rec.len() as i64);
    body.extend(rec);
}

/// Encodes an uncompressed RecordBatch v2 (producer id -1, CreateTime)  around `body`, whatever
/// it holds, with the given counts and a valid CRC: tests build malformed batches with it.
pub fn batch_around(base_offset: i64, base_timestamp: i64, max_timestamp: i64, record_count: i32, last_offset_delta: i32, body: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_BYTES + body.len());
    b.extend(base_offset.to_be_bytes());
    b.extend(((HEADER_BYTES - LOG_OVERHEAD + body.len()) as i32).to_be_bytes());
    b.extend(0i32.to_be_bytes());
    b.push(MAGIC_V2 as u8);
    b.extend(0u32.to_be_bytes());
    b.extend(0i16.to_be_bytes());
    b.extend(last_offset_delta.to_be_bytes());
    b.extend(base_timestamp.to_be_bytes());
    b.extend(max_timestamp.to_be_bytes());
    b.extend((-1i64).to_be_bytes());
    b.extend((-1i16).to_be_bytes());
    b.extend((-1i32).to_be_bytes());
    b.extend(record_count.to_be_bytes());
    b.extend_from_slice(body);
    let crc = crc32c::crc32c(&b[CRC_START..]);
    b[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Encodes an uncompressed RecordBatch v2 (producer id -1, CreateTime), with a valid CRC.
/// Used by tests and tools that speak the protocol directly.
pub fn build_batch(base_offset: i64, base_timestamp: i64, records: &[RecordSpec<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut max_timestamp = base_timestamp;
    for (i, r) in records.iter().enumerate() {
        push_record(&mut body, i as i32, r);
        max_timestamp = max_timestamp.max(base_timestamp + r.timestamp_delta);
    }
    let count = records.len() as i32;
    batch_around(base_offset, base_timestamp, max_timestamp, count, count - 1, &body)
}

#[cfg(test)]
pub mod tests {
    use super::*;

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
