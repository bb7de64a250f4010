//! The records inside a RecordBatch v2: a borrowing iterator over an uncompressed batch's
//! records (`Records`), the one record walker of Spate (the client's fetch reader, compaction,
//! ListOffsets by time and the coordinator's loader all use it; `record_bytes` decompresses a
//! compressed batch's records for it), and the check every produced batch passes before it is
//! stored (`validate_records`), which walks an uncompressed batch in place and a compressed one
//! through a streaming decoder, as Kafka's `LogValidator` walks both. Two parsers apply the
//! same rules: `parse_record_slice` for records in memory (the produce path, hand-written for
//! speed) and `parse_record` over a `Source` for streams; a test holds them to each other.
//! Batches are built by `record_batch::BatchBuilder`.
//!
//! ```text
//! record := length varint            bytes after this field
//!           attributes i8            unused in v2
//!           timestamp_delta varlong  from the batch's base timestamp
//!           offset_delta varint      0, 1, ... count - 1 in a produced batch
//!           key_length varint, key   -1 for a null key
//!           value_length varint, value
//!           header_count varint, [header_key_length varint (>= 0), header_key,
//!                                 header_value_length varint, header_value]
//! ```
//!
//! Every length is checked against the bytes that remain, in the record and in the batch,
//! before it is used; a varint may not run past 5 bytes (10 for a varlong), as in Kafka.

use std::borrow::Cow;
use std::io::{self, BufRead, Read};

use super::compression::{self, Compression};
use super::record_batch::{BatchView, HEADER_BYTES};

/// Why a batch's records were refused, with the index of the record at fault (KIP-467's
/// `batch_index`) when one record is to blame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordError {
    pub index: Option<i32>,
    pub reason: &'static str,
}

impl RecordError {
    pub fn at(index: i32, reason: &'static str) -> RecordError {
        RecordError { index: Some(index), reason }
    }
    pub fn batch(reason: &'static str) -> RecordError {
        RecordError { index: None, reason }
    }
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(f, "record {i}: {}", self.reason),
            None => f.write_str(self.reason),
        }
    }
}

/// The most bytes a compressed batch's records may decompress to. Kafka sets no bound; one is
/// needed because a few KiB of zstd can claim gigabytes, and the walk costs CPU per byte.
pub const DECOMPRESSED_BATCH_BYTES_MAX: usize = 256 << 20;

/// One record, its fields borrowed from the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub header_count: i32,
    /// The headers' bytes, already checked: `headers()` walks them.
    headers: &'a [u8],
}

impl<'a> Record<'a> {
    /// The record's headers as (key, value) pairs.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + Clone + 'a {
        let (bytes, mut at) = (self.headers, 0);
        (0..self.header_count).map(move |_| {
            let key = slice_bytes(bytes, &mut at).ok().flatten().unwrap_or_default();
            let value = slice_bytes(bytes, &mut at).ok().flatten();
            (key, value)
        })
    }
}

/// What the generic parser reads from: a decompressing stream, whose fields are skipped.
/// (Records in memory have their own parser, `parse_record_slice`, for speed.)
trait Source {
    type Bytes: Copy;
    fn byte(&mut self) -> io::Result<u8>;
    /// The next `n` bytes; fails if fewer remain.
    fn take(&mut self, n: usize) -> io::Result<Self::Bytes>;
    /// How far the source has been read.
    fn position(&self) -> usize;
    /// The bytes read since `start` (a `position()`).
    fn since(&self, start: usize) -> Self::Bytes;
}

/// A decompressing stream, read through a fixed buffer: skipped fields are never held.
struct StreamSource<R: BufRead> {
    reader: R,
    /// Bytes read so far, against `DECOMPRESSED_BATCH_BYTES_MAX`.
    read: usize,
}

impl<R: BufRead> StreamSource<R> {
    fn count(&mut self, n: usize) -> io::Result<()> {
        self.read = self.read.saturating_add(n);
        if self.read > DECOMPRESSED_BATCH_BYTES_MAX {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "records decompress past the limit"));
        }
        Ok(())
    }
    fn at_end(&mut self) -> io::Result<bool> {
        Ok(self.reader.fill_buf()?.is_empty())
    }
}

impl<R: BufRead> Source for StreamSource<R> {
    type Bytes = ();
    fn byte(&mut self) -> io::Result<u8> {
        self.count(1)?;
        let mut b = [0u8];
        self.reader.read_exact(&mut b)?;
        Ok(b[0])
    }
    fn take(&mut self, n: usize) -> io::Result<()> {
        self.count(n)?;
        let skipped = io::copy(&mut (&mut self.reader).take(n as u64), &mut io::sink())?;
        if skipped != n as u64 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
    fn position(&self) -> usize {
        self.read
    }
    fn since(&self, _start: usize) {}
}

/// A source limited to one record's `length` bytes.
struct Bounded<'s, S> {
    source: &'s mut S,
    left: usize,
}

impl<S: Source> Source for Bounded<'_, S> {
    type Bytes = S::Bytes;
    fn byte(&mut self) -> io::Result<u8> {
        if self.left == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= 1;
        self.source.byte()
    }
    fn take(&mut self, n: usize) -> io::Result<S::Bytes> {
        if n > self.left {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n;
        self.source.take(n)
    }
    fn position(&self) -> usize {
        self.source.position()
    }
    fn since(&self, start: usize) -> S::Bytes {
        self.source.since(start)
    }
}

/// Kafka's zig-zag varint of at most `max_bytes` bytes.
fn varlong(source: &mut impl Source, max_bytes: u32) -> Result<i64, &'static str> {
    let mut raw: u64 = 0;
    for i in 0..max_bytes {
        let b = source.byte().map_err(|_| "truncated varint")?;
        raw |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    Err("varint too long")
}

fn varint(source: &mut impl Source) -> Result<i32, &'static str> {
    let v = varlong(source, 5)?;
    i32::try_from(v).map_err(|_| "varint too long")
}

fn nullable_bytes<S: Source>(source: &mut S) -> Result<Option<S::Bytes>, &'static str> {
    match varint(source)? {
        -1 => Ok(None),
        n if n < 0 => Err("negative length"),
        n => source.take(n as usize).map(Some).map_err(|_| "length runs past the record"),
    }
}

/// One record's fields, borrowed or skipped.
struct Parsed<B> {
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<B>,
    value: Option<B>,
    header_count: i32,
    headers: B,
}

/// Reads one record, borrowing or skipping its fields.
fn parse_record<S: Source>(source: &mut S) -> Result<Parsed<S::Bytes>, &'static str> {
    let length = varint(source)?;
    if length < 0 {
        return Err("negative record length");
    }
    let mut body = Bounded { source, left: length as usize };
    body.byte().map_err(|_| "record shorter than its fields")?; // attributes
    let timestamp_delta = varlong(&mut body, 10)?;
    let offset_delta = varint(&mut body)?;
    let key = nullable_bytes(&mut body)?;
    let value = nullable_bytes(&mut body)?;
    let header_count = varint(&mut body)?;
    if header_count < 0 {
        return Err("negative header count");
    }
    let headers_start = body.position();
    for _ in 0..header_count {
        match varint(&mut body)? {
            n if n < 0 => return Err("null or negative header key length"),
            n => body.take(n as usize).map_err(|_| "header key runs past the record")?,
        };
        nullable_bytes(&mut body)?;
    }
    if body.left != 0 {
        return Err("record length does not match its fields");
    }
    Ok(Parsed { timestamp_delta, offset_delta, key, value, header_count, headers: body.since(headers_start) })
}

/// Kafka's zig-zag varint of at most `max_bytes` bytes, read from `bytes` at `*at`; the fast
/// path of the slice parser (one byte, the usual case for deltas and small lengths, costs one
/// load and a branch).
#[inline(always)]
fn slice_varlong(bytes: &[u8], at: &mut usize, max_bytes: u32) -> Result<i64, &'static str> {
    if let Some(&b) = bytes.get(*at) {
        if b < 0x80 {
            *at += 1;
            return Ok((b >> 1) as i64 ^ -((b & 1) as i64));
        }
    }
    slice_varlong_long(bytes, at, max_bytes)
}

#[cold]
fn slice_varlong_long(bytes: &[u8], at: &mut usize, max_bytes: u32) -> Result<i64, &'static str> {
    let mut raw: u64 = 0;
    for i in 0..max_bytes {
        let b = *bytes.get(*at).ok_or("truncated varint")?;
        *at += 1;
        raw |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    Err("varint too long")
}

#[inline(always)]
fn slice_varint(bytes: &[u8], at: &mut usize) -> Result<i32, &'static str> {
    i32::try_from(slice_varlong(bytes, at, 5)?).map_err(|_| "varint too long")
}

#[inline(always)]
fn slice_bytes<'a>(bytes: &'a [u8], at: &mut usize) -> Result<Option<&'a [u8]>, &'static str> {
    match slice_varint(bytes, at)? {
        -1 => Ok(None),
        n if n < 0 => Err("negative length"),
        n if n as usize > bytes.len() - *at => Err("length runs past the record"),
        n => {
            *at += n as usize;
            Ok(Some(&bytes[*at - n as usize..*at]))
        }
    }
}

/// `parse_record` for records in memory, hand-written for the produce path (a batch's records
/// are walked once per produce): the same checks, in the same order, with the same reasons,
/// on a slice and an index instead of a `Source`. `the_slice_and_stream_parsers_agree` holds
/// the two to each other.
fn parse_record_slice<'a>(records: &'a [u8], at: &mut usize) -> Result<Parsed<&'a [u8]>, &'static str> {
    let length = slice_varint(records, at)?;
    if length < 0 {
        return Err("negative record length");
    }
    let body = records.get(*at..*at + length as usize).ok_or("record shorter than its fields")?;
    *at += length as usize;
    let mut i = 0;
    if body.is_empty() {
        return Err("record shorter than its fields");
    }
    i += 1; // attributes
    let timestamp_delta = slice_varlong(body, &mut i, 10)?;
    let offset_delta = slice_varint(body, &mut i)?;
    let key = slice_bytes(body, &mut i)?;
    let value = slice_bytes(body, &mut i)?;
    let header_count = slice_varint(body, &mut i)?;
    if header_count < 0 {
        return Err("negative header count");
    }
    let headers_start = i;
    for _ in 0..header_count {
        match slice_bytes(body, &mut i) {
            Ok(Some(_)) => {}
            Ok(None) | Err("negative length") => return Err("null or negative header key length"),
            Err(_) => return Err("header key runs past the record"),
        }
        slice_bytes(body, &mut i)?;
    }
    if i != body.len() {
        return Err("record length does not match its fields");
    }
    Ok(Parsed { timestamp_delta, offset_delta, key, value, header_count, headers: &body[headers_start..] })
}

/// The records of an uncompressed batch (`bytes` starts at the first record), borrowing it.
/// Yields at most `count` records and stops at the first malformed one.
pub struct Records<'a> {
    bytes: &'a [u8],
    at: usize,
    index: i32,
    count: i32,
}

impl<'a> Records<'a> {
    /// The records after a batch's header; `count` is the header's record count.
    pub fn new(records: &'a [u8], count: i32) -> Records<'a> {
        Records { bytes: records, at: 0, index: 0, count: count.max(0) }
    }

    /// The records of an uncompressed batch (`None` for a compressed one, or fewer bytes than
    /// a header).
    pub fn of_batch(batch: BatchView<'a>) -> Option<Records<'a>> {
        (batch.len() >= HEADER_BYTES && batch.compression() == 0).then(|| Records::new(&batch.bytes[HEADER_BYTES..], batch.record_count()))
    }

    /// How far into the records' bytes the walk is: the end of the last record yielded.
    pub fn position(&self) -> usize {
        self.at
    }
}

/// The record bytes of a batch whatever its codec, for `Records::new(&bytes, record_count)`:
/// an uncompressed batch's borrowed in place, a compressed batch's decompressed (at most
/// `limit` bytes, `InvalidData` past it, or for an unknown codec).
pub fn record_bytes(batch: BatchView<'_>, limit: usize) -> io::Result<Cow<'_, [u8]>> {
    if batch.len() < HEADER_BYTES {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "a batch shorter than its header"));
    }
    let records = &batch.bytes[HEADER_BYTES..];
    match Compression::from_attributes(batch.attributes()) {
        Some(Compression::None) => Ok(Cow::Borrowed(records)),
        Some(codec) => compression::decompress(codec, records, limit).map(Cow::Owned),
        None => Err(io::Error::new(io::ErrorKind::InvalidData, "unknown compression codec")),
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, RecordError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.index >= self.count {
            return None;
        }
        let index = self.index;
        self.index += 1;
        let result = parse_record_slice(self.bytes, &mut self.at).map(|p| Record {
            timestamp_delta: p.timestamp_delta,
            offset_delta: p.offset_delta,
            key: p.key,
            value: p.value,
            header_count: p.header_count,
            headers: p.headers,
        });
        if result.is_err() {
            self.index = self.count;
        }
        Some(result.map_err(|reason| RecordError::at(index, reason)))
    }
}

/// What `validate_records` found in a batch that passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordsSummary {
    /// Whether some record has a null key (refused by compacted topics).
    pub keyless: bool,
    /// The largest record timestamp (base timestamp plus the largest delta).
    pub max_timestamp: i64,
}

/// Checks that a produced batch's records agree with its header, as Kafka's `LogValidator`
/// does: exactly `record_count` records, offset deltas 0..count-1, every length inside the
/// record and the batch, no bytes after the last record. A compressed batch is decompressed
/// as a stream through a fixed buffer (see `compression::decoder`), and its records walked
/// the same way; its decompressed size is bounded by `DECOMPRESSED_BATCH_BYTES_MAX`.
pub fn validate_records(batch: BatchView<'_>) -> Result<RecordsSummary, RecordError> {
    let count = batch.record_count();
    let base_timestamp = batch.base_timestamp();
    let mut summary = RecordsSummary { keyless: false, max_timestamp: -1 };
    let mut check = |index: i32, timestamp_delta: i64, offset_delta: i32, keyless: bool| {
        if offset_delta != index {
            return Err(RecordError::at(index, "offset delta does not follow the previous record's"));
        }
        summary.keyless |= keyless;
        summary.max_timestamp = summary.max_timestamp.max(base_timestamp.wrapping_add(timestamp_delta));
        Ok(())
    };
    let records = &batch.bytes[HEADER_BYTES..];
    let codec = Compression::from_attributes(batch.attributes()).ok_or(RecordError::batch("unknown compression codec"))?;
    if codec == Compression::None {
        let mut at = 0;
        for index in 0..count {
            let p = parse_record_slice(records, &mut at).map_err(|reason| RecordError::at(index, reason))?;
            check(index, p.timestamp_delta, p.offset_delta, p.key.is_none())?;
        }
        if at != records.len() {
            return Err(RecordError::batch("bytes remain after the batch's last record"));
        }
    } else {
        let decoder = compression::decoder(codec, records, DECOMPRESSED_BATCH_BYTES_MAX).map_err(|_| RecordError::batch("records cannot be decompressed"))?;
        let mut source = StreamSource { reader: io::BufReader::with_capacity(STREAM_BUFFER_BYTES, decoder), read: 0 };
        for index in 0..count {
            let p = parse_record(&mut source).map_err(|reason| RecordError::at(index, reason))?;
            check(index, p.timestamp_delta, p.offset_delta, p.key.is_none())?;
        }
        if !source.at_end().map_err(|_| RecordError::batch("records cannot be decompressed"))? {
            return Err(RecordError::batch("bytes remain after the batch's last record"));
        }
    }
    Ok(summary)
}

/// The buffer a compressed batch's records are read through.
const STREAM_BUFFER_BYTES: usize = 16 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::record_batch::{
        build_batch, validate_produced, BatchBuilder, BatchError, BatchFields, Header, RecordSpec, CRC_START, LOG_OVERHEAD, OFFSET_BATCH_LENGTH, OFFSET_CRC,
        OFFSET_RECORD_COUNT,
    };
    use bytes::Bytes;

    fn spec<'a>(key: Option<&'a [u8]>, value: &'a [u8], headers: &'a [(&'a str, &'a [u8])]) -> RecordSpec<'a> {
        RecordSpec { key, value: Some(value), headers, timestamp_delta: 3 }
    }

    /// One record as the builder encodes it (length prefix included), with any offset delta.
    fn encoded(offset_delta: i32, r: &RecordSpec<'_>) -> Vec<u8> {
        let mut b = BatchBuilder::new(0, 0);
        b.append_record(offset_delta, r.timestamp_delta, r.key, r.value, r.headers.iter().map(|&(k, v)| (k.as_bytes(), Some(v))));
        b.finish_uncompressed(&BatchFields::new(0))[HEADER_BYTES..].to_vec()
    }

    fn fix_crc(b: &mut [u8]) {
        let crc = crc32c::crc32c(&b[CRC_START..]);
        b[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
    }

    /// A builder's header (uncompressed, CreateTime, no producer) claiming `count` records
    /// around `body`, whatever it holds, with a valid CRC: the malformed batches refused here.
    fn around(count: i32, body: &[u8]) -> Vec<u8> {
        let mut b = BatchBuilder::new(0, 0).finish_uncompressed(&BatchFields { last_offset_delta: Some(count.wrapping_sub(1)), ..BatchFields::new(0) });
        b.extend_from_slice(body);
        let length = (b.len() - LOG_OVERHEAD) as i32;
        b[OFFSET_BATCH_LENGTH..OFFSET_BATCH_LENGTH + 4].copy_from_slice(&length.to_be_bytes());
        b[OFFSET_RECORD_COUNT..OFFSET_RECORD_COUNT + 4].copy_from_slice(&count.to_be_bytes());
        fix_crc(&mut b);
        b
    }

    fn refusal(batch: &[u8]) -> RecordError {
        match validate_produced(batch) {
            Err(BatchError::Records(e)) => e,
            other => panic!("expected a record error, got {:?}", other.map(|(_, s)| s)),
        }
    }

    #[test]
    fn records_iterate_borrowing_their_fields() {
        let headers: [(&str, &[u8]); 2] = [("a", b"1"), ("bb", b"")];
        let batch = build_batch(0, 1_000, &[spec(Some(b"k0"), b"v0", &headers), spec(None, b"v1", &[])]);
        let view = BatchView { bytes: &batch };
        let records: Vec<Record<'_>> = Records::of_batch(view).unwrap().map(Result::unwrap).collect();
        assert_eq!(records.len(), 2);
        assert_eq!((records[0].key, records[0].value, records[0].offset_delta), (Some(&b"k0"[..]), Some(&b"v0"[..]), 0));
        assert_eq!(records[0].headers().collect::<Vec<_>>(), vec![(&b"a"[..], Some(&b"1"[..])), (&b"bb"[..], Some(&b""[..]))]);
        assert_eq!((records[1].key, records[1].offset_delta, records[1].header_count), (None, 1, 0));
        let (_, summary) = validate_produced(&batch).unwrap();
        assert!(summary.keyless);
        assert_eq!(summary.max_timestamp, 1_003);
    }

    #[test]
    fn a_header_claiming_more_records_than_it_holds_is_refused() {
        // 61 bytes claiming 2^31-1 records: the header's counts agree with each other.
        let batch = around(i32::MAX, &[]);
        assert_eq!(batch.len(), 61);
        assert_eq!(refusal(&batch), RecordError::at(0, "truncated varint"));
        // Two records where the header counts three.
        let mut body = Vec::new();
        body.extend(encoded(0, &spec(None, b"a", &[])));
        body.extend(encoded(1, &spec(None, b"b", &[])));
        assert_eq!(refusal(&around(3, &body)).index, Some(2));
        // Three records where the header counts two: bytes remain.
        body.extend(encoded(2, &spec(None, b"c", &[])));
        assert_eq!(refusal(&around(2, &body)), RecordError::batch("bytes remain after the batch's last record"));
    }

    #[test]
    fn offset_deltas_must_count_up_from_zero() {
        for deltas in [[0, 2, 3], [1, 2, 3], [0, 1, 1], [0, 1, -1]] {
            let mut body = Vec::new();
            for d in deltas {
                body.extend(encoded(d, &spec(Some(b"k"), b"v", &[])));
            }
            let e = refusal(&around(3, &body));
            let first_wrong = deltas.iter().enumerate().position(|(i, d)| *d != i as i32).unwrap();
            assert_eq!(e.index, Some(first_wrong as i32), "{deltas:?}");
        }
    }

    #[test]
    fn lengths_and_varints_that_run_past_the_record_are_refused() {
        let body = encoded(0, &spec(Some(b"key"), b"value", &[("h", b"x")]));
        let good = around(1, &body);
        assert!(validate_produced(&good).is_ok());
        // Every cut of the record body is refused, whatever field it falls in.
        for cut in 0..body.len() {
            assert!(matches!(validate_produced(&around(1, &body[..cut])), Err(BatchError::Records(_))), "cut at {cut}");
        }
        // A record length larger than the record, and one smaller.
        for length in [body[0] as i8 / 2 + 1, body[0] as i8 / 2 - 1] {
            let mut lying = body.clone();
            lying[0] = (length as u8) << 1;
            assert!(matches!(validate_produced(&around(1, &lying)), Err(BatchError::Records(_))), "length {length}");
        }
        // A varint of six bytes, and a key longer than what is left.
        let mut long_varint = vec![0x80u8; 5];
        long_varint.push(0x01);
        assert_eq!(refusal(&around(1, &long_varint)).reason, "varint too long");
        let mut body = vec![];
        body.extend([0x20, 0x00, 0x00, 0x00, 0x7e]); // length 16, attributes, ts 0, delta 0, key 63 bytes
        body.extend([0u8; 12]);
        assert_eq!(refusal(&around(1, &body)).reason, "length runs past the record");
        // A header with a null key.
        let body = [0x0c, 0x00, 0x00, 0x00, 0x01, 0x02, b'v', 0x02, 0x01, 0x01, 0x01, 0x00];
        assert!(validate_produced(&around(1, &body)).is_err());
    }

    #[test]
    fn the_slice_and_stream_parsers_agree() {
        // Every cut and every byte flip of a batch of varied records: both parsers take each
        // record with the same fields or both refuse it (their reasons may name different
        // fields: the slice parser checks the record's length against the bytes first).
        let headers: [(&str, &[u8]); 2] = [("k", b"v"), ("", b"")];
        let mut body = Vec::new();
        for i in 0..6 {
            let value = vec![b'x'; i * 40];
            body.extend(encoded(i as i32, &spec(if i % 2 == 0 { Some(b"key") } else { None }, &value, &headers[..i % 3])));
        }
        let mut cases = vec![body.clone()];
        for cut in 0..body.len() {
            cases.push(body[..cut].to_vec());
        }
        for at in 0..body.len() {
            for flip in [0x01u8, 0x40, 0x80, 0xff] {
                let mut b = body.clone();
                b[at] ^= flip;
                cases.push(b);
            }
        }
        for case in cases {
            let (mut at, mut stream) = (0, StreamSource { reader: std::io::BufReader::new(&case[..]), read: 0 });
            for _ in 0..6 {
                let slice = parse_record_slice(&case, &mut at).map(|p| (p.timestamp_delta, p.offset_delta, p.key.is_none(), p.header_count)).ok();
                let streamed = parse_record(&mut stream).map(|p| (p.timestamp_delta, p.offset_delta, p.key.is_none(), p.header_count)).ok();
                assert_eq!(slice, streamed, "{case:?}");
                if slice.is_none() {
                    break;
                }
            }
        }
    }

    #[test]
    fn control_batches_and_sequenceless_idempotent_batches_are_refused() {
        let good = build_batch(0, 0, &[spec(None, b"v", &[])]);
        let restamp = |at: usize, bytes: &[u8]| {
            let mut b = good.clone();
            b[at..at + bytes.len()].copy_from_slice(bytes);
            fix_crc(&mut b);
            b
        };
        assert!(refusal(&restamp(21, &0x20i16.to_be_bytes())).reason.contains("control"));
        assert!(refusal(&restamp(43, &7i64.to_be_bytes())).reason.contains("sequence"));
    }

    #[test]
    fn compressed_batches_are_walked_through_their_codec() {
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let mut b = BatchBuilder::new(1_000, 0);
            for i in 0..50 {
                b.append(1_000 + i, Some(format!("k{i}").as_bytes()), Some(b"value"), &[]);
            }
            let batch = b.finish(codec, &BatchFields::producer(-1, -1, -1)).unwrap();
            let (_, summary) = validate_produced(&batch).unwrap();
            assert!(!summary.keyless, "{codec:?}");
            assert_eq!(summary.max_timestamp, 1_049);
            // The same records under a header that counts one more: refused at the missing one.
            let mut lying = batch.to_vec();
            lying[57..61].copy_from_slice(&51i32.to_be_bytes());
            lying[23..27].copy_from_slice(&50i32.to_be_bytes());
            fix_crc(&mut lying);
            assert_eq!(refusal(&lying).index, Some(50), "{codec:?}");
            // Damaged compressed bytes (CRC fixed) are refused, never a panic.
            for at in (61..batch.len()).step_by(7) {
                let mut bad = batch.to_vec();
                bad[at] ^= 0x5a;
                fix_crc(&mut bad);
                let _ = validate_produced(&bad);
            }
        }
    }

    #[test]
    fn a_compression_bomb_is_refused_at_the_limit_without_holding_it() {
        // 300 MiB of zeros in one zstd record value: a few KiB on the wire, streamed into
        // the encoder so the test holds none of it either.
        use std::io::Write;
        let value_bytes = DECOMPRESSED_BATCH_BYTES_MAX + (44 << 20);
        let mut prefix = Vec::new();
        let mut fields = vec![0u8, 0, 0, 1]; // attributes, timestamp delta, offset delta, null key
        crate::protocol::record_batch::push_varlong(&mut fields, value_bytes as i64);
        crate::protocol::record_batch::push_varlong(&mut prefix, (fields.len() + value_bytes + 1) as i64);
        prefix.extend(fields);
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        encoder.write_all(&prefix).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..value_bytes >> 20 {
            encoder.write_all(&zeros).unwrap();
        }
        encoder.write_all(&[0]).unwrap(); // no headers
        let compressed = encoder.finish().unwrap();
        let mut batch = around(1, &compressed);
        batch[22] = Compression::Zstd as u8;
        fix_crc(&mut batch);
        assert!(batch.len() < 64 << 10, "the bomb is small: {} bytes", batch.len());
        assert_eq!(refusal(&batch), RecordError::at(0, "length runs past the record"));
    }

    #[test]
    fn a_built_batch_iterates_back_under_every_codec() {
        let headers = [Header::new("h", Bytes::from_static(b"x")), Header { key: "null".into(), value: None }, Header::new("", Bytes::new())];
        for codec in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let mut b = BatchBuilder::new(1_000, 0);
            for i in 0..40usize {
                let key = format!("k{i}");
                let value = vec![b'a' + (i % 26) as u8; i * 7];
                b.append(1_000 + 3 * i as i64, (i % 4 != 1).then_some(key.as_bytes()), (i % 5 != 2).then_some(&value[..]), &headers[..i % 4]);
            }
            let batch = b.finish(codec, &BatchFields::producer(-1, -1, -1)).unwrap();
            let (view, _) = validate_produced(&batch).unwrap();
            assert_eq!(view.compression(), codec.attribute_bits());
            let bytes = record_bytes(view, DECOMPRESSED_BATCH_BYTES_MAX).unwrap();
            let mut records = Records::new(&bytes, view.record_count());
            for i in 0..40usize {
                let r = records.next().expect("a record per append").unwrap();
                let (key, value) = (format!("k{i}"), vec![b'a' + (i % 26) as u8; i * 7]);
                assert_eq!((r.offset_delta, r.timestamp_delta), (i as i32, 3 * i as i64), "{codec:?}");
                assert_eq!(r.key, (i % 4 != 1).then_some(key.as_bytes()), "{codec:?}");
                assert_eq!(r.value, (i % 5 != 2).then_some(&value[..]), "{codec:?}");
                let want: Vec<(&[u8], Option<&[u8]>)> = headers[..i % 4].iter().map(|h| (h.key.as_bytes(), h.value.as_deref())).collect();
                assert_eq!(r.headers().collect::<Vec<_>>(), want, "{codec:?}");
            }
            assert!(records.next().is_none());
            assert_eq!(records.position(), bytes.len(), "{codec:?}: the records end where the batch does");
        }
    }

    #[test]
    fn a_batch_rebuilt_from_its_records_and_fields_is_the_same_batch() {
        // Compaction's rewrite: each record's own offset delta, every header field kept.
        let fields = BatchFields {
            base_offset: 42,
            partition_leader_epoch: 7,
            attributes: crate::protocol::record_batch::ATTR_TRANSACTIONAL | crate::protocol::record_batch::ATTR_LOG_APPEND_TIME,
            last_offset_delta: Some(9),
            max_timestamp: Some(99_999),
            producer_id: 5,
            producer_epoch: 1,
            base_sequence: 10,
        };
        let headers = [Header::new("h", Bytes::from_static(b"v"))];
        let mut b = BatchBuilder::new(1_000, 0);
        for (delta, key) in [(0, Some(&b"a"[..])), (4, None), (9, Some(&b"c"[..]))] {
            b.append_record(delta, delta as i64, key, Some(b"value"), headers.iter().map(|h| (h.key.as_bytes(), h.value.as_deref())));
        }
        let original = b.finish_uncompressed(&fields);
        let view = BatchView { bytes: &original };
        assert_eq!(BatchFields::of(view), fields);
        assert_eq!((view.record_count(), view.base_timestamp()), (3, 1_000));
        let mut again = BatchBuilder::new(view.base_timestamp(), 0);
        for r in Records::of_batch(view).unwrap() {
            let r = r.unwrap();
            again.append_record(r.offset_delta, r.timestamp_delta, r.key, r.value, r.headers());
        }
        assert_eq!(again.finish_uncompressed(&BatchFields::of(view)), original);
    }
}
