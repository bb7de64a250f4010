//! One definition of each Kafka message, for both directions.
//!
//! A message is declared once with `message!`, field by field, the way Kafka's JSON schemas
//! (clients/src/main/resources/common/message/) describe it: the versions each field is in, the
//! versions it is nullable in, and its tag when it is a tagged field. The macro generates the
//! struct, `Default` (the schema's defaults) and `Wire`: `encode`, `decode`, the smallest
//! encoding (`min_size`, which bounds array lengths), and `arbitrary` values for the round-trip
//! property test. The broker decodes requests and encodes responses with it; the client and
//! the cluster's own callers encode requests and decode responses with the same code.
//!
//! Why a `macro_rules!` and not a generator or the `kafka-protocol` crate: the definitions stay
//! Rust that reads like the schema and compiles without a build step, and decoding keeps
//! `codec::Reader`'s heap budget and its check of every length against the bytes that remain
//! (`kafka-protocol` decodes into its own types with no such budget, and adopting it would
//! replace every handler's types). Hot fields keep their hand-tuned types: produce records are
//! `Bytes` borrowed from the frame, fetch records are `RecordSet`s that the writer leaves as
//! holes for the sender to fill from segment files.
//!
//! Declaring a message:
//!
//! ```ignore
//! message! {
//!     pub struct JoinGroupRequest {
//!         pub group_id: String,
//!         pub rebalance_timeout_ms: i32 [1..] = -1,         // in versions 1+; -1 when absent
//!         pub group_instance_id: Option<String> [5..],      // nullable in all its versions
//!         pub protocol_name: Option<String> [0.., nullable 7..],  // nullable from 7 only
//!         pub current_leader: Option<LeaderIdAndEpoch> [12.., tag 1],  // tagged field 1
//!     }
//! }
//! ```
//!
//! Tagged fields are declared in increasing tag order (they are written in declaration order).

use bytes::Bytes;

use super::codec::{DecodeError, DecodeResult, Reader, Writer};
use super::error::ErrorCode;

/// The version a message is encoded in, and whether it is a flexible one (KIP-482).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub v: i16,
    pub flexible: bool,
}

impl Version {
    pub fn new(v: i16, flexible: bool) -> Version {
        Version { v, flexible }
    }
}

/// A type that has a Kafka wire encoding.
pub trait Wire: Sized {
    fn encode(&self, w: &mut Writer, v: Version);
    fn decode(r: &mut Reader, v: Version) -> DecodeResult<Self>;
    /// The fewest bytes an encoding takes in `v`: what an array's length is checked against
    /// before anything is allocated.
    fn min_size(v: Version) -> usize;
    /// An arbitrary value that `v` can carry, for the round-trip property test.
    fn arbitrary(g: &mut Rng, v: Version) -> Self;
}

/// A type whose encoding has a null (strings, bytes, arrays): `Option<T>` encodes it.
pub trait Nullable: Wire + Default {
    fn encode_null(w: &mut Writer, v: Version);
    fn decode_nullable(r: &mut Reader, v: Version) -> DecodeResult<Option<Self>>;
}

/// A deterministic generator (xorshift64*) for the seeded runs, the storage fuzzer and the
/// round-trip property test: the same seed gives the same sequence, so a failure replays.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// An index below `n` (0 when `n` is 0).
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    pub fn bool(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

macro_rules! int_wire {
    ($($t:ty, $read:ident, $write:ident, $size:expr;)*) => {$(
        impl Wire for $t {
            fn encode(&self, w: &mut Writer, _: Version) {
                w.$write(*self)
            }
            fn decode(r: &mut Reader, _: Version) -> DecodeResult<Self> {
                r.$read()
            }
            fn min_size(_: Version) -> usize {
                $size
            }
            fn arbitrary(g: &mut Rng, _: Version) -> Self {
                // Small values as often as extreme ones.
                match g.below(3) {
                    0 => g.below(4) as $t,
                    1 => <$t>::MAX - g.below(2) as $t,
                    _ => g.next() as $t,
                }
            }
        }
    )*};
}

int_wire! {
    i8, i8, i8, 1;
    i16, i16, i16, 2;
    u16, u16, u16, 2;
    i32, i32, i32, 4;
    i64, i64, i64, 8;
}

impl Wire for bool {
    fn encode(&self, w: &mut Writer, _: Version) {
        w.bool(*self)
    }
    fn decode(r: &mut Reader, _: Version) -> DecodeResult<Self> {
        r.bool()
    }
    fn min_size(_: Version) -> usize {
        1
    }
    fn arbitrary(g: &mut Rng, _: Version) -> Self {
        g.bool()
    }
}

impl Wire for ErrorCode {
    fn encode(&self, w: &mut Writer, _: Version) {
        w.i16(self.0)
    }
    fn decode(r: &mut Reader, _: Version) -> DecodeResult<Self> {
        Ok(ErrorCode(r.i16()?))
    }
    fn min_size(_: Version) -> usize {
        2
    }
    fn arbitrary(g: &mut Rng, _: Version) -> Self {
        ErrorCode(g.below(120) as i16 - 1)
    }
}

/// A UUID (topic ids), 16 bytes on the wire.
impl Wire for [u8; 16] {
    fn encode(&self, w: &mut Writer, _: Version) {
        w.uuid(self)
    }
    fn decode(r: &mut Reader, _: Version) -> DecodeResult<Self> {
        r.uuid()
    }
    fn min_size(_: Version) -> usize {
        16
    }
    fn arbitrary(g: &mut Rng, _: Version) -> Self {
        let (a, b) = (g.next(), g.next());
        let mut out = [0; 16];
        out[..8].copy_from_slice(&a.to_be_bytes());
        out[8..].copy_from_slice(&b.to_be_bytes());
        out
    }
}

fn arbitrary_string(g: &mut Rng) -> String {
    const ALPHABET: &[char] = &['a', 'z', '0', '-', '.', '_', 'é', '日'];
    (0..g.below(12)).map(|_| ALPHABET[g.index(ALPHABET.len())]).collect()
}

impl Wire for String {
    fn encode(&self, w: &mut Writer, v: Version) {
        w.string(v.flexible, self)
    }
    fn decode(r: &mut Reader, v: Version) -> DecodeResult<Self> {
        r.string(v.flexible)
    }
    fn min_size(v: Version) -> usize {
        if v.flexible {
            1
        } else {
            2
        }
    }
    fn arbitrary(g: &mut Rng, _: Version) -> Self {
        arbitrary_string(g)
    }
}

impl Nullable for String {
    fn encode_null(w: &mut Writer, v: Version) {
        w.nullable_string(v.flexible, None)
    }
    fn decode_nullable(r: &mut Reader, v: Version) -> DecodeResult<Option<Self>> {
        r.nullable_string(v.flexible)
    }
}

impl Wire for Bytes {
    fn encode(&self, w: &mut Writer, v: Version) {
        w.bytes_field(v.flexible, self)
    }
    fn decode(r: &mut Reader, v: Version) -> DecodeResult<Self> {
        r.nullable_bytes(v.flexible)?.ok_or(DecodeError::InvalidLength(-1))
    }
    fn min_size(v: Version) -> usize {
        if v.flexible {
            1
        } else {
            4
        }
    }
    fn arbitrary(g: &mut Rng, _: Version) -> Self {
        Bytes::from((0..g.below(20)).map(|_| g.next() as u8).collect::<Vec<u8>>())
    }
}

impl Nullable for Bytes {
    fn encode_null(w: &mut Writer, v: Version) {
        w.nullable_bytes(v.flexible, None)
    }
    fn decode_nullable(r: &mut Reader, v: Version) -> DecodeResult<Option<Self>> {
        r.nullable_bytes(v.flexible)
    }
}

impl<T: Wire> Wire for Vec<T> {
    fn encode(&self, w: &mut Writer, v: Version) {
        w.array_len(v.flexible, Some(self.len()));
        for x in self {
            x.encode(w, v);
        }
    }
    fn decode(r: &mut Reader, v: Version) -> DecodeResult<Self> {
        r.array(v.flexible, T::min_size(v), |r| T::decode(r, v))
    }
    fn min_size(v: Version) -> usize {
        if v.flexible {
            1
        } else {
            4
        }
    }
    fn arbitrary(g: &mut Rng, v: Version) -> Self {
        (0..g.below(4)).map(|_| T::arbitrary(g, v)).collect()
    }
}

impl<T: Wire> Nullable for Vec<T> {
    fn encode_null(w: &mut Writer, v: Version) {
        w.array_len(v.flexible, None)
    }
    fn decode_nullable(r: &mut Reader, v: Version) -> DecodeResult<Option<Self>> {
        r.nullable_array(v.flexible, T::min_size(v), |r| T::decode(r, v))
    }
}

impl<T: Nullable> Wire for Option<T> {
    fn encode(&self, w: &mut Writer, v: Version) {
        match self {
            Some(x) => x.encode(w, v),
            None => T::encode_null(w, v),
        }
    }
    fn decode(r: &mut Reader, v: Version) -> DecodeResult<Self> {
        T::decode_nullable(r, v)
    }
    fn min_size(v: Version) -> usize {
        T::min_size(v)
    }
    fn arbitrary(g: &mut Rng, v: Version) -> Self {
        (g.below(4) != 0).then(|| T::arbitrary(g, v))
    }
}

/// An `Option` field in a version where the schema does not allow null: `None` is written as
/// the type's empty value (an empty string or array), and what is read is always `Some`.
pub trait NonNull: Sized {
    fn encode_non_null(&self, w: &mut Writer, v: Version);
    fn decode_non_null(r: &mut Reader, v: Version) -> DecodeResult<Self>;
    fn arbitrary_non_null(g: &mut Rng, v: Version) -> Self;
}

impl<T: Nullable> NonNull for Option<T> {
    fn encode_non_null(&self, w: &mut Writer, v: Version) {
        match self {
            Some(x) => x.encode(w, v),
            None => T::default().encode(w, v),
        }
    }
    fn decode_non_null(r: &mut Reader, v: Version) -> DecodeResult<Self> {
        T::decode(r, v).map(Some)
    }
    fn arbitrary_non_null(g: &mut Rng, v: Version) -> Self {
        Some(T::arbitrary(g, v))
    }
}

/// A tagged field's type: `Option<T>`, absent when `None`.
pub trait Tagged {
    type Inner: Wire;
}

impl<T: Wire> Tagged for Option<T> {
    type Inner = T;
}

/// A records field (a Produce's or a Fetch's record set). Decoded, it is the frame's bytes,
/// borrowed. Encoded, it is either bytes or a hole of `len` bytes that the sender fills in
/// place (the broker splices file ranges, numbered by `id`, into a fetch response); either
/// way the writer records where it goes (`Writer::holes`) when asked to, so record bytes are
/// never copied into a response or request buffer.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordSet {
    Bytes(Bytes),
    Spliced { len: u32, id: u32 },
}

impl Default for RecordSet {
    fn default() -> RecordSet {
        RecordSet::Bytes(Bytes::new())
    }
}

impl Wire for RecordSet {
    fn encode(&self, w: &mut Writer, v: Version) {
        match self {
            RecordSet::Bytes(b) => w.bytes_field(v.flexible, b),
            RecordSet::Spliced { len, id } => {
                w.array_len(v.flexible, Some(*len as usize));
                w.hole(*len, *id);
            }
        }
    }
    fn decode(r: &mut Reader, v: Version) -> DecodeResult<Self> {
        Ok(RecordSet::Bytes(r.nullable_bytes(v.flexible)?.unwrap_or_default()))
    }
    fn min_size(v: Version) -> usize {
        Bytes::min_size(v)
    }
    fn arbitrary(g: &mut Rng, v: Version) -> Self {
        RecordSet::Bytes(Bytes::arbitrary(g, v))
    }
}

impl Nullable for RecordSet {
    fn encode_null(w: &mut Writer, v: Version) {
        w.nullable_bytes(v.flexible, None)
    }
    fn decode_nullable(r: &mut Reader, v: Version) -> DecodeResult<Option<Self>> {
        Ok(r.nullable_bytes(v.flexible)?.map(RecordSet::Bytes))
    }
}

/// A request body of one API: its key, the response it is answered with, and the versions
/// Kafka's schema defines (what Spate advertises is a subset, `protocol::api`).
pub trait Request: Wire {
    const KEY: super::ApiKey;
    /// The schema's valid versions.
    const VERSIONS: (i16, i16);
    /// The first flexible version (`i16::MAX` when none is).
    const FLEXIBLE_FROM: i16;
    type Response: Wire;
}

/// Declares messages; see the module documentation.
#[macro_export]
macro_rules! message {
    ($(
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident : $ty:ty
                $([$vers:pat $(, tag $tag:literal)? $(, nullable $nvers:pat)?])?
                $(= $default:expr)?
            ),* $(,)?
        }
    )*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $($field: $crate::message!(@default $($default)?),)* }
            }
        }

        impl $crate::protocol::wire::Wire for $name {
            #[allow(unused_variables)]
            fn encode(&self, w: &mut $crate::protocol::codec::Writer, v: $crate::protocol::wire::Version) {
                $($crate::message!(@encode self, w, v, $field, [$($($tag)?)?], [$($vers)?], [$($($nvers)?)?]);)*
                if v.flexible {
                    let count = 0u32 $(+ $crate::message!(@tag_count self, v, $field, [$($($tag)?)?], [$($vers)?]))*;
                    w.unsigned_varint(count);
                    $($crate::message!(@encode_tagged self, w, v, $field, [$($($tag)?)?], [$($vers)?]);)*
                }
            }

            #[allow(unused_variables, unused_mut)]
            fn decode(r: &mut $crate::protocol::codec::Reader, v: $crate::protocol::wire::Version) -> $crate::protocol::codec::DecodeResult<Self> {
                $(let mut $field: $ty = $crate::message!(@decode r, v, $ty, [$($($tag)?)?], [$($vers)?], [$($($nvers)?)?], [$($default)?]);)*
                if v.flexible {
                    r.read_tagged(|r, tag| {
                        $($crate::message!(@decode_tagged r, v, tag, $field, $ty, [$($($tag)?)?], [$($vers)?]);)*
                        Ok(false)
                    })?;
                }
                Ok($name { $($field,)* })
            }

            #[allow(unused_variables)]
            fn min_size(v: $crate::protocol::wire::Version) -> usize {
                0 $(+ $crate::message!(@min v, $ty, [$($($tag)?)?], [$($vers)?]))* + v.flexible as usize
            }

            #[allow(unused_variables)]
            fn arbitrary(g: &mut $crate::protocol::wire::Rng, v: $crate::protocol::wire::Version) -> Self {
                $name { $($field: $crate::message!(@arbitrary g, v, $ty, [$($($tag)?)?], [$($vers)?], [$($($nvers)?)?], [$($default)?]),)* }
            }
        }
    )*};

    (@default) => { Default::default() };
    (@default $default:expr) => { $default };

    (@present $v:ident, []) => { true };
    (@present $v:ident, [$vers:pat]) => { matches!($v.v, $vers) };

    // Untagged fields.
    (@encode $s:ident, $w:ident, $v:ident, $field:ident, [], [$($vers:pat)?], []) => {
        if $crate::message!(@present $v, [$($vers)?]) {
            $crate::protocol::wire::Wire::encode(&$s.$field, $w, $v);
        }
    };
    (@encode $s:ident, $w:ident, $v:ident, $field:ident, [], [$vers:pat], [$nvers:pat]) => {
        if matches!($v.v, $vers) {
            if matches!($v.v, $nvers) {
                $crate::protocol::wire::Wire::encode(&$s.$field, $w, $v);
            } else {
                $crate::protocol::wire::NonNull::encode_non_null(&$s.$field, $w, $v);
            }
        }
    };
    (@encode $s:ident, $w:ident, $v:ident, $field:ident, [$tag:literal], $($rest:tt)*) => {};

    (@decode $r:ident, $v:ident, $ty:ty, [], [$($vers:pat)?], [], [$($default:expr)?]) => {
        if $crate::message!(@present $v, [$($vers)?]) {
            <$ty as $crate::protocol::wire::Wire>::decode($r, $v)?
        } else {
            $crate::message!(@default $($default)?)
        }
    };
    (@decode $r:ident, $v:ident, $ty:ty, [], [$vers:pat], [$nvers:pat], [$($default:expr)?]) => {
        if !matches!($v.v, $vers) {
            $crate::message!(@default $($default)?)
        } else if matches!($v.v, $nvers) {
            <$ty as $crate::protocol::wire::Wire>::decode($r, $v)?
        } else {
            <$ty as $crate::protocol::wire::NonNull>::decode_non_null($r, $v)?
        }
    };
    (@decode $r:ident, $v:ident, $ty:ty, [$tag:literal], $vers:tt, $nvers:tt, $default:tt) => { None };

    (@min $v:ident, $ty:ty, [], [$($vers:pat)?]) => {
        if $crate::message!(@present $v, [$($vers)?]) { <$ty as $crate::protocol::wire::Wire>::min_size($v) } else { 0 }
    };
    (@min $v:ident, $ty:ty, [$tag:literal], $vers:tt) => { 0 };

    (@arbitrary $g:ident, $v:ident, $ty:ty, [], [$($vers:pat)?], [], [$($default:expr)?]) => {
        if $crate::message!(@present $v, [$($vers)?]) {
            <$ty as $crate::protocol::wire::Wire>::arbitrary($g, $v)
        } else {
            $crate::message!(@default $($default)?)
        }
    };
    (@arbitrary $g:ident, $v:ident, $ty:ty, [], [$vers:pat], [$nvers:pat], [$($default:expr)?]) => {
        if !matches!($v.v, $vers) {
            $crate::message!(@default $($default)?)
        } else if matches!($v.v, $nvers) {
            <$ty as $crate::protocol::wire::Wire>::arbitrary($g, $v)
        } else {
            <$ty as $crate::protocol::wire::NonNull>::arbitrary_non_null($g, $v)
        }
    };
    (@arbitrary $g:ident, $v:ident, $ty:ty, [$tag:literal], [$vers:pat], $nvers:tt, $default:tt) => {
        if $v.flexible && matches!($v.v, $vers) && $g.bool() {
            Some(<<$ty as $crate::protocol::wire::Tagged>::Inner as $crate::protocol::wire::Wire>::arbitrary($g, $v))
        } else {
            None
        }
    };

    // Tagged fields.
    (@tag_count $s:ident, $v:ident, $field:ident, [], $vers:tt) => { 0 };
    (@tag_count $s:ident, $v:ident, $field:ident, [$tag:literal], [$vers:pat]) => {
        (matches!($v.v, $vers) && $s.$field.is_some()) as u32
    };
    (@encode_tagged $s:ident, $w:ident, $v:ident, $field:ident, [], $vers:tt) => {};
    (@encode_tagged $s:ident, $w:ident, $v:ident, $field:ident, [$tag:literal], [$vers:pat]) => {
        if let (true, Some(value)) = (matches!($v.v, $vers), &$s.$field) {
            $w.tagged_field($tag, |w| $crate::protocol::wire::Wire::encode(value, w, $v));
        }
    };
    (@decode_tagged $r:ident, $v:ident, $t:ident, $field:ident, $ty:ty, [], $vers:tt) => {};
    (@decode_tagged $r:ident, $v:ident, $t:ident, $field:ident, $ty:ty, [$tag:literal], [$vers:pat]) => {
        if $t == $tag && matches!($v.v, $vers) {
            $field = Some(<<$ty as $crate::protocol::wire::Tagged>::Inner as $crate::protocol::wire::Wire>::decode($r, $v)?);
            return Ok(true);
        }
    };
}

pub use crate::message;

/// Encodes `value` in `v`, then decodes it and encodes it again: the two encodings must be the
/// same bytes and the decoded value the one encoded. For the property tests.
#[cfg(test)]
pub fn round_trip<T: Wire + PartialEq + std::fmt::Debug>(value: &T, v: Version) -> Result<(), String> {
    let mut w = Writer::new();
    value.encode(&mut w, v);
    let first = w.finish().freeze();
    let mut r = Reader::new(first.clone());
    let decoded = T::decode(&mut r, v).map_err(|e| format!("decoding failed: {e}"))?;
    if r.remaining() != 0 {
        return Err(format!("{} bytes left after decoding", r.remaining()));
    }
    if &decoded != value {
        return Err(format!("decoded {decoded:?}\n  encoded {value:?}"));
    }
    let mut w = Writer::new();
    decoded.encode(&mut w, v);
    if w.finish().freeze() != first {
        return Err("the second encoding differs".into());
    }
    Ok(())
}
