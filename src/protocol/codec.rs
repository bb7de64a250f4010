//! The Kafka wire primitives: a bounds-checked `Reader` over a request's bytes and a `Writer`
//! that builds responses.
//!
//! Every length read from the wire is checked against the bytes that remain before it is used:
//! an array of `n` elements is only accepted when `n` times its smallest element's bytes
//! remain, and strings and byte fields borrow or copy exactly the bytes that are there. On top
//! of that, each reader has a heap budget of 7 times its frame or 56 KiB, whichever is more
//! (`heap_bound`, 8 times or 64 KiB, less what the broker allocates beside the fields):
//! every array and string is charged before it is allocated, and a request whose decoded form
//! would need more is refused (an array of a thousand empty topic names costs 48 bytes of
//! heap per 3 bytes of frame; the budget, not the per-element minimum, is what bounds it).
//!
//! Flexible versions (KIP-482) use compact lengths (unsigned varint of length + 1) and end
//! every struct with tagged fields; the same reader serves both encodings through the
//! `flexible` flag so that each message's decoder reads top to bottom like its JSON schema.

use bytes::{BufMut, Bytes, BytesMut};

/// Why a request could not be decoded. Every variant becomes INVALID_REQUEST or a closed
/// connection; none is a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes remain than the field needs.
    Truncated { needed: usize, remaining: usize },
    /// A length or count that is negative where null is not allowed, or absurd.
    InvalidLength(i64),
    /// A varint longer than its type allows.
    InvalidVarint,
    /// A string that is not UTF-8.
    InvalidString,
    /// Tagged fields out of order or repeated.
    InvalidTaggedFields,
    /// The decoded request would hold more heap than its frame's budget allows.
    HeapBudget { needed: usize, left: usize },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Truncated { needed, remaining } => {
                write!(f, "truncated: needed {needed} bytes, {remaining} remain")
            }
            DecodeError::InvalidLength(n) => write!(f, "invalid length {n}"),
            DecodeError::InvalidVarint => write!(f, "invalid varint"),
            DecodeError::InvalidString => write!(f, "string is not UTF-8"),
            DecodeError::InvalidTaggedFields => write!(f, "tagged fields out of order"),
            DecodeError::HeapBudget { needed, left } => write!(f, "decoding needs {needed} more bytes of heap, {left} left in the budget"),
        }
    }
}

impl std::error::Error for DecodeError {}

pub type DecodeResult<T> = Result<T, DecodeError>;

/// The most heap a decoded request may hold, per byte of its frame (size prefix included)...
pub const HEAP_BYTES_PER_FRAME_BYTE: usize = 8;
/// ...or this much, whichever is more: a small request of many short names (a Metadata
/// request for 30 two-letter topics holds 40 bytes of heap per 3 bytes of frame) is normal;
/// the bound is there against amplification by large frames, not against small ones.
pub const HEAP_FLOOR_BYTES: usize = 64 << 10;

/// The bound on the heap a request decoded from a frame of `received` bytes may hold.
pub fn heap_bound(received: usize) -> usize {
    (HEAP_BYTES_PER_FRAME_BYTE * received).max(HEAP_FLOOR_BYTES)
}

/// The reader's own budget: one frame's worth (and 8 KiB of the floor) less than the bound,
/// left for what the broker allocates beside the decoded fields (a Produce's batch ranges).
fn reader_heap_budget(received: usize) -> usize {
    ((HEAP_BYTES_PER_FRAME_BYTE - 1) * received).max(HEAP_FLOOR_BYTES - (8 << 10))
}

/// A cursor over a frame's bytes. Borrowing accessors (`bytes`) return slices of the frame's
/// `Bytes` without copying, which is how produce records travel to the log untouched.
pub struct Reader {
    buf: Bytes,
    pos: usize,
    /// Heap bytes that arrays and strings may still allocate.
    heap_budget: usize,
}

impl Reader {
    /// A reader for bytes from a client, with the heap budget of a request frame.
    pub fn new(buf: Bytes) -> Reader {
        let heap_budget = reader_heap_budget(buf.len() + 4);
        Reader { buf, pos: 0, heap_budget }
    }

    /// A reader without a heap budget, for what the client reads from the broker (responses),
    /// whose per-element heap may be many times its wire size (a list of short topic names
    /// with their error codes).
    pub fn unbudgeted(buf: Bytes) -> Reader {
        Reader { buf, pos: 0, heap_budget: usize::MAX }
    }

    /// Takes `bytes` from the heap budget, before they are allocated.
    fn charge(&mut self, bytes: usize) -> DecodeResult<()> {
        if bytes > self.heap_budget {
            return Err(DecodeError::HeapBudget { needed: bytes, left: self.heap_budget });
        }
        self.heap_budget -= bytes;
        Ok(())
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    fn take(&mut self, n: usize) -> DecodeResult<&[u8]> {
        let remaining = self.remaining();
        if n > remaining {
            return Err(DecodeError::Truncated { needed: n, remaining });
        }
        let slice = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    /// A zero-copy slice of the next `n` bytes.
    pub fn take_bytes(&mut self, n: usize) -> DecodeResult<Bytes> {
        let remaining = self.remaining();
        if n > remaining {
            return Err(DecodeError::Truncated { needed: n, remaining });
        }
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    pub fn i8(&mut self) -> DecodeResult<i8> {
        Ok(self.take(1)?[0] as i8)
    }

    pub fn bool(&mut self) -> DecodeResult<bool> {
        Ok(self.take(1)?[0] != 0)
    }

    pub fn u16(&mut self) -> DecodeResult<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn i16(&mut self) -> DecodeResult<i16> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub fn i32(&mut self) -> DecodeResult<i32> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes(b.try_into().expect("4 bytes")))
    }

    pub fn i64(&mut self) -> DecodeResult<i64> {
        let b = self.take(8)?;
        Ok(i64::from_be_bytes(b.try_into().expect("8 bytes")))
    }

    pub fn uuid(&mut self) -> DecodeResult<[u8; 16]> {
        Ok(self.take(16)?.try_into().expect("16 bytes"))
    }

    pub fn unsigned_varint(&mut self) -> DecodeResult<u32> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let byte = self.take(1)?[0];
            value |= ((byte & 0x7f) as u32) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::InvalidVarint)
    }

    /// A zig-zag encoded varint (record fields).
    pub fn varint(&mut self) -> DecodeResult<i32> {
        let raw = self.unsigned_varint()?;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    /// A zig-zag encoded varlong (record fields).
    pub fn varlong(&mut self) -> DecodeResult<i64> {
        let mut raw: u64 = 0;
        for i in 0..10 {
            let byte = self.take(1)?[0];
            raw |= ((byte & 0x7f) as u64) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(DecodeError::InvalidVarint)
    }

    /// A compact length (unsigned varint of `len + 1`, 0 for null): `None` for null. A length
    /// is only returned when that many units of `min_unit_bytes` could still follow.
    fn compact_length(&mut self, min_unit_bytes: usize) -> DecodeResult<Option<usize>> {
        let len = self.unsigned_varint()? as i64 - 1;
        self.check_length(len, min_unit_bytes)
    }

    fn check_length(&self, len: i64, min_unit_bytes: usize) -> DecodeResult<Option<usize>> {
        if len == -1 {
            return Ok(None);
        }
        if len < -1 {
            return Err(DecodeError::InvalidLength(len));
        }
        let len = len as usize;
        let needed = len.saturating_mul(min_unit_bytes);
        if needed > self.remaining() {
            return Err(DecodeError::Truncated { needed, remaining: self.remaining() });
        }
        Ok(Some(len))
    }

    fn string_length(&mut self, flexible: bool) -> DecodeResult<Option<usize>> {
        if flexible {
            self.compact_length(1)
        } else {
            let len = self.i16()? as i64;
            self.check_length(len, 1)
        }
    }

    pub fn nullable_string(&mut self, flexible: bool) -> DecodeResult<Option<String>> {
        match self.string_length(flexible)? {
            None => Ok(None),
            Some(len) => {
                self.charge(len)?;
                let raw = self.take(len)?;
                let s = std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidString)?;
                Ok(Some(s.to_owned()))
            }
        }
    }

    pub fn string(&mut self, flexible: bool) -> DecodeResult<String> {
        self.nullable_string(flexible)?.ok_or(DecodeError::InvalidLength(-1))
    }

    pub fn nullable_bytes(&mut self, flexible: bool) -> DecodeResult<Option<Bytes>> {
        let len = if flexible {
            self.compact_length(1)?
        } else {
            let len = self.i32()? as i64;
            self.check_length(len, 1)?
        };
        match len {
            None => Ok(None),
            Some(len) => Ok(Some(self.take_bytes(len)?)),
        }
    }

    /// The element count of an array whose elements take at least `min_element_bytes` each.
    /// `None` is a null array.
    pub fn array_len(&mut self, flexible: bool, min_element_bytes: usize) -> DecodeResult<Option<usize>> {
        let min = min_element_bytes.max(1);
        if flexible {
            self.compact_length(min)
        } else {
            let len = self.i32()? as i64;
            self.check_length(len, min)
        }
    }

    /// Decodes a non-null array with `element`, bounded as `array_len` describes.
    pub fn array<T>(&mut self, flexible: bool, min_element_bytes: usize, element: impl FnMut(&mut Reader) -> DecodeResult<T>) -> DecodeResult<Vec<T>> {
        self.nullable_array(flexible, min_element_bytes, element)?.ok_or(DecodeError::InvalidLength(-1))
    }

    /// Like `array`, but a null array decodes as `None`.
    pub fn nullable_array<T>(
        &mut self,
        flexible: bool,
        min_element_bytes: usize,
        mut element: impl FnMut(&mut Reader) -> DecodeResult<T>,
    ) -> DecodeResult<Option<Vec<T>>> {
        match self.array_len(flexible, min_element_bytes)? {
            None => Ok(None),
            Some(len) => {
                self.charge(len.saturating_mul(std::mem::size_of::<T>()))?;
                let mut out = Vec::with_capacity(len);
                for _ in 0..len {
                    out.push(element(self)?);
                }
                Ok(Some(out))
            }
        }
    }

    /// Skips the tagged fields that end a flexible struct, checking that tags are strictly
    /// increasing and that each field's size fits. Unknown tags are ignored, as Kafka does.
    pub fn tagged_fields(&mut self, flexible: bool) -> DecodeResult<()> {
        if !flexible {
            return Ok(());
        }
        self.read_tagged(|_, _| Ok(false))
    }

    /// Reads the tagged fields that end a flexible struct: `field(reader, tag)` decodes a known
    /// tag from the reader and returns true, or returns false to have it skipped. A field must
    /// not read past its size.
    pub fn read_tagged(&mut self, mut field: impl FnMut(&mut Reader, u32) -> DecodeResult<bool>) -> DecodeResult<()> {
        let count = self.unsigned_varint()? as usize;
        if count.saturating_mul(2) > self.remaining() {
            return Err(DecodeError::Truncated { needed: count * 2, remaining: self.remaining() });
        }
        let mut previous: Option<u32> = None;
        for _ in 0..count {
            let tag = self.unsigned_varint()?;
            if previous.is_some_and(|p| tag <= p) {
                return Err(DecodeError::InvalidTaggedFields);
            }
            previous = Some(tag);
            let size = self.unsigned_varint()? as usize;
            if size > self.remaining() {
                return Err(DecodeError::Truncated { needed: size, remaining: self.remaining() });
            }
            let end = self.pos + size;
            if field(self, tag)? && self.pos > end {
                return Err(DecodeError::InvalidTaggedFields);
            }
            self.pos = end;
        }
        Ok(())
    }
}

/// Builds a message. Writes never fail; sizes are explicit integers on the wire.
///
/// Record sets need not be copied in: a writer leaves a hole where one goes (`holes`), and
/// the sender sends the buffer's pieces with each hole's bytes between them (the broker splices
/// a fetch's file ranges; the client sends a produce's batches by reference).
pub struct Writer {
    buf: BytesMut,
    holes: Vec<Hole>,
    /// Byte fields at least this long become holes rather than copies.
    hole_bytes_over: usize,
}

/// Bytes that belong at `at` in a writer's buffer but are not in it.
#[derive(Debug, Clone)]
pub struct Hole {
    pub at: usize,
    pub fill: Fill,
}

#[derive(Debug, Clone)]
pub enum Fill {
    Bytes(Bytes),
    /// `len` bytes the sender supplies from its own source number `id`.
    Spliced {
        len: u32,
        id: u32,
    },
}

impl Fill {
    pub fn len(&self) -> usize {
        match self {
            Fill::Bytes(b) => b.len(),
            Fill::Spliced { len, .. } => *len as usize,
        }
    }
}

impl Default for Writer {
    fn default() -> Writer {
        Writer::new()
    }
}

impl Writer {
    pub fn new() -> Writer {
        Writer::with_capacity(256)
    }

    pub fn with_capacity(capacity: usize) -> Writer {
        Writer { buf: BytesMut::with_capacity(capacity), holes: Vec::new(), hole_bytes_over: usize::MAX }
    }

    /// A writer that leaves byte fields of `n` bytes or more as holes (`Fill::Bytes`).
    pub fn leaving_holes_over(mut self, n: usize) -> Writer {
        self.hole_bytes_over = n;
        self
    }

    /// The buffer and the holes in it, in order.
    pub fn finish_with_holes(self) -> (BytesMut, Vec<Hole>) {
        (self.buf, self.holes)
    }

    /// The bytes written and the holes' bytes together.
    pub fn encoded_len(&self) -> usize {
        self.buf.len() + self.holes.iter().map(|h| h.fill.len()).sum::<usize>()
    }

    /// A byte field (length, then bytes), left as a hole when it is long enough.
    pub fn bytes_field(&mut self, flexible: bool, b: &Bytes) {
        self.array_len(flexible, Some(b.len()));
        if b.len() >= self.hole_bytes_over {
            self.holes.push(Hole { at: self.buf.len(), fill: Fill::Bytes(b.clone()) });
        } else {
            self.buf.put_slice(b);
        }
    }

    /// A hole of `len` bytes from the sender's source `id`, here.
    pub fn hole(&mut self, len: u32, id: u32) {
        self.holes.push(Hole { at: self.buf.len(), fill: Fill::Spliced { len, id } });
    }

    /// One tagged field: its tag, its size, then what `value` writes.
    pub fn tagged_field(&mut self, tag: u32, value: impl FnOnce(&mut Writer)) {
        let mut field = Writer::with_capacity(16);
        value(&mut field);
        debug_assert!(field.holes.is_empty(), "a tagged field holds no record set");
        self.unsigned_varint(tag);
        self.unsigned_varint(field.buf.len() as u32);
        self.buf.put_slice(&field.buf);
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes written; the writer must hold no hole (`finish_with_holes` otherwise).
    pub fn finish(self) -> BytesMut {
        assert!(self.holes.is_empty(), "finish() would drop the holes: finish_with_holes");
        self.buf
    }

    pub fn i8(&mut self, v: i8) {
        self.buf.put_i8(v);
    }

    pub fn bool(&mut self, v: bool) {
        self.buf.put_u8(v as u8);
    }

    pub fn u16(&mut self, v: u16) {
        self.buf.put_u16(v);
    }

    pub fn i16(&mut self, v: i16) {
        self.buf.put_i16(v);
    }

    pub fn i32(&mut self, v: i32) {
        self.buf.put_i32(v);
    }

    pub fn i64(&mut self, v: i64) {
        self.buf.put_i64(v);
    }

    pub fn uuid(&mut self, v: &[u8; 16]) {
        self.buf.put_slice(v);
    }

    pub fn raw(&mut self, v: &[u8]) {
        self.buf.put_slice(v);
    }

    pub fn unsigned_varint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
    }

    pub fn varint(&mut self, v: i32) {
        self.unsigned_varint(((v << 1) ^ (v >> 31)) as u32);
    }

    pub fn varlong(&mut self, v: i64) {
        let mut raw = ((v << 1) ^ (v >> 63)) as u64;
        while raw >= 0x80 {
            self.buf.put_u8((raw as u8) | 0x80);
            raw >>= 7;
        }
        self.buf.put_u8(raw as u8);
    }

    /// An array, string or bytes length: compact (`len + 1` as unsigned varint, 0 for null)
    /// when flexible, else `i32` (`-1` for null).
    pub fn array_len(&mut self, flexible: bool, len: Option<usize>) {
        if flexible {
            self.unsigned_varint(len.map_or(0, |l| l as u32 + 1));
        } else {
            self.i32(len.map_or(-1, |l| l as i32));
        }
    }

    pub fn nullable_string(&mut self, flexible: bool, v: Option<&str>) {
        match v {
            None if flexible => self.unsigned_varint(0),
            None => self.i16(-1),
            Some(s) if flexible => {
                self.unsigned_varint(s.len() as u32 + 1);
                self.buf.put_slice(s.as_bytes());
            }
            Some(s) => {
                // A legacy string holds at most 32,767 bytes; a longer one (an error message
                // quoting a long name, say) is cut at a character boundary, not sent malformed.
                let mut end = s.len().min(i16::MAX as usize);
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                self.i16(end as i16);
                self.buf.put_slice(&s.as_bytes()[..end]);
            }
        }
    }

    pub fn string(&mut self, flexible: bool, v: &str) {
        self.nullable_string(flexible, Some(v));
    }

    pub fn nullable_bytes(&mut self, flexible: bool, v: Option<&[u8]>) {
        self.array_len(flexible, v.map(|b| b.len()));
        if let Some(b) = v {
            self.buf.put_slice(b);
        }
    }

    /// An empty tagged-field section, when flexible.
    pub fn tagged_fields(&mut self, flexible: bool) {
        if flexible {
            self.unsigned_varint(0);
        }
    }
}

/// Size in bytes of `v` as an unsigned varint.
pub fn unsigned_varint_len(mut v: u32) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0i32, 1, -1, 63, -64, 64, 300, i32::MAX, i32::MIN] {
            let mut w = Writer::new();
            w.varint(v);
            let mut r = Reader::new(w.finish().freeze());
            assert_eq!(r.varint().unwrap(), v);
            assert_eq!(r.remaining(), 0);
        }
        for v in [0i64, -1, 1 << 40, i64::MAX, i64::MIN] {
            let mut w = Writer::new();
            w.varlong(v);
            let mut r = Reader::new(w.finish().freeze());
            assert_eq!(r.varlong().unwrap(), v);
        }
        for v in [0u32, 127, 128, 16383, 16384, u32::MAX] {
            let mut w = Writer::new();
            w.unsigned_varint(v);
            assert_eq!(w.len(), unsigned_varint_len(v));
        }
    }

    #[test]
    fn huge_array_length_is_rejected_before_allocating() {
        let mut r = Reader::new(Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0]));
        let err = r.array(false, 4, |r| r.i32()).unwrap_err();
        assert!(matches!(err, DecodeError::Truncated { .. }));
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f]));
        assert!(r.array(true, 1, |r| r.i8()).is_err());
    }

    #[test]
    fn negative_lengths_other_than_null_are_invalid() {
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xfe]));
        assert_eq!(r.nullable_string(false), Err(DecodeError::InvalidLength(-2)));
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff]));
        assert_eq!(r.nullable_string(false), Ok(None));
        let mut r = Reader::new(Bytes::from_static(&[0x00]));
        assert_eq!(r.nullable_string(true), Ok(None));
    }

    #[test]
    fn tagged_fields_must_increase() {
        // Two fields, both tag 1, size 0.
        let mut r = Reader::new(Bytes::from_static(&[2, 1, 0, 1, 0]));
        assert_eq!(r.tagged_fields(true), Err(DecodeError::InvalidTaggedFields));
        let mut r = Reader::new(Bytes::from_static(&[2, 0, 1, 9, 1, 0]));
        assert_eq!(r.tagged_fields(true), Ok(()));
    }
}
