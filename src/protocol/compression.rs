//! The record-batch codecs (the low three bits of a batch's attributes), byte-compatible with
//! Kafka's Java client and librdkafka.
//!
//! `decompress` takes a size limit because compressed bytes come from another process: a few
//! kilobytes of zstd can claim gigabytes, so no codec is allowed to grow its output past it.

use std::io::{self, Read, Write};

use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};

/// A batch's compression codec, numbered as in the batch attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

/// The attribute bits that hold the codec.
const CODEC_MASK: i16 = 0x07;

/// Kafka's default `compression.zstd.level`, and librdkafka's.
const ZSTD_LEVEL: i32 = 3;

/// The header of Java's xerial `SnappyOutputStream`: this magic, then two big-endian `i32`s
/// (version and compatible version), then `[i32 length, raw snappy block]` repeated.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_BYTES: usize = 16;

/// How much decompressed output a streaming decoder hands back per read.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// The most bytes one byte of a raw snappy block can decode to (a 3-byte copy of 64 bytes).
const SNAPPY_EXPANSION_MAX: usize = 22;

impl Compression {
    /// The codec in a batch's attributes; `None` for the unassigned codes 5 to 7.
    pub fn from_attributes(attributes: i16) -> Option<Compression> {
        match attributes & CODEC_MASK {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }

    pub fn attribute_bits(self) -> i16 {
        self as i16
    }

    /// A `compression.type` value. Kafka compares these names exactly, so this does too.
    pub fn parse(name: &str) -> Option<Compression> {
        match name {
            "none" => Some(Compression::None),
            "gzip" => Some(Compression::Gzip),
            "snappy" => Some(Compression::Snappy),
            "lz4" => Some(Compression::Lz4),
            "zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Compresses `input` and appends the result to `out`. On error `out` is left as it was.
pub fn compress(codec: Compression, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let start = out.len();
    let result = compress_into(codec, input, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Decompresses `input`, failing with `InvalidData` rather than producing (or allocating) more
/// than `limit` bytes.
pub fn decompress(codec: Compression, input: &[u8], limit: usize) -> io::Result<Vec<u8>> {
    match codec {
        Compression::None if input.len() > limit => Err(exceeds_limit(limit)),
        Compression::None => Ok(input.to_vec()),
        // Java's GZIPInputStream reads concatenated members, so a producer may send several.
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(input), limit),
        Compression::Snappy => decompress_snappy(input, limit),
        Compression::Lz4 => read_bounded(FrameDecoder::new(input), limit),
        Compression::Zstd => read_bounded(zstd::stream::read::Decoder::with_buffer(input)?, limit),
    }
}

/// A streaming decoder of `input`: what a walk over a compressed batch's records reads, so
/// that validating a batch never holds its decompressed bytes whole. Snappy has no streaming
/// form for a raw block: its blocks are decoded whole, each bounded by `limit` and by what
/// snappy can encode (at most about 21 bytes out per byte in), so the allocation stays
/// proportional to the bytes received.
pub fn decoder<'a>(codec: Compression, input: &'a [u8], limit: usize) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match codec {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Compression::Snappy => Box::new(io::Cursor::new(decompress_snappy(input, limit)?)),
        Compression::Lz4 => Box::new(FrameDecoder::new(input)),
        Compression::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(input)?;
            // A frame may claim a window of up to 2 GiB that the decoder would allocate; real
            // producers' windows are at most the batch's own size.
            decoder.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
            Box::new(decoder)
        }
    })
}

/// The largest zstd window a batch may use: 16 MiB (zstd sizes a window to at most its input,
/// so only a batch of more than 16 MiB of records at a high level would need more).
const ZSTD_WINDOW_LOG_MAX: u32 = 24;

fn compress_into(codec: Compression, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    match codec {
        Compression::None => out.extend_from_slice(input),
        Compression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            encoder.write_all(input)?;
            encoder.finish()?;
        }
        // One raw block, as librdkafka writes; Java's xerial SnappyInputStream reads a stream
        // without its header as a single raw block.
        Compression::Snappy => {
            let start = out.len();
            out.resize(start + snap::raw::max_compress_len(input.len()), 0);
            let written = snap::raw::Encoder::new().compress(input, &mut out[start..])?;
            out.truncate(start + written);
        }
        // Kafka's KafkaLZ4BlockInputStream rejects linked blocks and only knows the 64 KiB to
        // 4 MiB block sizes, so both are fixed rather than left to the encoder's defaults.
        Compression::Lz4 => {
            let frame_info = FrameInfo::new().block_size(BlockSize::Max64KB).block_mode(BlockMode::Independent);
            let mut encoder = FrameEncoder::with_frame_info(frame_info, out);
            encoder.write_all(input)?;
            encoder.finish()?;
        }
        Compression::Zstd => {
            let mut encoder = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
            encoder.write_all(input)?;
            encoder.finish()?;
        }
    }
    Ok(())
}

/// Drains a streaming decoder, growing the output at most to `limit` bytes: a bomb is refused
/// within one chunk of the limit, and the buffer never reserves more than the limit.
fn read_bounded(mut reader: impl Read, limit: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    // One byte more than the limit is enough to prove the limit exceeded; a zero-length
    // buffer would read as end of stream.
    let mut chunk = vec![0u8; limit.saturating_add(1).min(READ_CHUNK_BYTES)];
    loop {
        let read = match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if read > limit - out.len() {
            return Err(exceeds_limit(limit));
        }
        if out.capacity() - out.len() < read {
            let capacity = out.capacity().saturating_mul(2).max(out.len() + read).min(limit);
            out.reserve_exact(capacity - out.len());
        }
        out.extend_from_slice(&chunk[..read]);
    }
}

fn decompress_snappy(input: &[u8], limit: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    if input.len() >= XERIAL_HEADER_BYTES && input.starts_with(&XERIAL_MAGIC) {
        decompress_xerial_blocks(&input[XERIAL_HEADER_BYTES..], limit, &mut out)?;
    } else {
        decompress_snappy_block(input, limit, &mut out)?;
    }
    Ok(out)
}

fn decompress_xerial_blocks(mut rest: &[u8], limit: usize, out: &mut Vec<u8>) -> io::Result<()> {
    while !rest.is_empty() {
        // Concatenated xerial streams repeat the header. A block length is never negative, so
        // a leading 0x82 can only be a header.
        if rest.len() >= XERIAL_HEADER_BYTES && rest.starts_with(&XERIAL_MAGIC) {
            rest = &rest[XERIAL_HEADER_BYTES..];
            continue;
        }
        if rest.len() < 4 {
            return Err(invalid_data("xerial snappy block length is truncated"));
        }
        let (length_bytes, tail) = rest.split_at(4);
        let length = i32::from_be_bytes([length_bytes[0], length_bytes[1], length_bytes[2], length_bytes[3]]);
        let length = usize::try_from(length).map_err(|_| invalid_data("xerial snappy block length is negative"))?;
        if length > tail.len() {
            return Err(invalid_data("xerial snappy block is truncated"));
        }
        let (block, tail) = tail.split_at(length);
        decompress_snappy_block(block, limit, out)?;
        rest = tail;
    }
    Ok(())
}

/// Appends one raw snappy block to `out`. The block states its decompressed length up front,
/// so the limit is checked before anything is allocated.
fn decompress_snappy_block(block: &[u8], limit: usize, out: &mut Vec<u8>) -> io::Result<()> {
    let length = snap::raw::decompress_len(block).map_err(invalid_data)?;
    // A copy element of at most 64 bytes costs at least 3: no block expands more than that.
    if length > block.len().saturating_mul(SNAPPY_EXPANSION_MAX) {
        return Err(invalid_data("snappy block claims more bytes than it can encode"));
    }
    if length > limit - out.len() {
        return Err(exceeds_limit(limit));
    }
    let start = out.len();
    out.reserve_exact(length);
    out.resize(start + length, 0);
    let written = snap::raw::Decoder::new().decompress(block, &mut out[start..]).map_err(invalid_data)?;
    out.truncate(start + written);
    Ok(())
}

fn exceeds_limit(limit: usize) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("decompressed data exceeds the limit of {limit} bytes"))
}

fn invalid_data<E: Into<Box<dyn std::error::Error + Send + Sync>>>(error: E) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODECS: [Compression; 5] = [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];
    const LIMIT: usize = 64 << 20;

    /// Compressible but not trivially so: a byte pattern that shifts every 4 KiB.
    fn repetitive(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ (i / 4096) as u8).collect()
    }

    fn compressed(codec: Compression, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        compress(codec, input, &mut out).unwrap();
        out
    }

    #[test]
    fn attributes_and_names_round_trip() {
        for codec in CODECS {
            assert_eq!(Compression::from_attributes(codec.attribute_bits()), Some(codec));
            // Higher attribute bits (timestamp type, transactional, control) do not matter.
            assert_eq!(Compression::from_attributes(codec.attribute_bits() | 0x38), Some(codec));
            assert_eq!(Compression::parse(codec.name()), Some(codec));
        }
        for invalid in 5..=7 {
            assert_eq!(Compression::from_attributes(invalid), None);
        }
        assert_eq!(Compression::parse("brotli"), None);
        assert_eq!(Compression::parse(""), None);
    }

    #[test]
    fn every_codec_round_trips() {
        for codec in CODECS {
            for input in [Vec::new(), b"hello, spate".to_vec(), repetitive(1 << 20)] {
                let mut out = b"prefix".to_vec();
                compress(codec, &input, &mut out).unwrap();
                assert!(out.starts_with(b"prefix"), "{codec:?} must append");
                let decoded = decompress(codec, &out[6..], LIMIT).unwrap();
                assert_eq!(decoded, input, "{codec:?}, {} bytes", input.len());
                if codec != Compression::None && input.len() == 1 << 20 {
                    assert!(out.len() < input.len() / 2, "{codec:?} compressed 1 MiB to {} bytes", out.len());
                }
            }
        }
    }

    #[test]
    fn lz4_writes_a_standard_frame_with_independent_64_kib_blocks() {
        let frame = compressed(Compression::Lz4, b"kafka");
        assert_eq!(frame[..4], [0x04, 0x22, 0x4d, 0x18], "LZ4F magic, little-endian");
        // FLG: version 01, block independence set; BD: block size code 4 (64 KiB).
        assert_eq!(frame[4] & 0xc0, 0x40);
        assert_eq!(frame[4] & 0x20, 0x20);
        assert_eq!((frame[5] >> 4) & 0x07, 4);
    }

    #[test]
    fn gzip_and_zstd_write_their_standard_magic() {
        assert_eq!(compressed(Compression::Gzip, b"kafka")[..2], [0x1f, 0x8b]);
        assert_eq!(compressed(Compression::Zstd, b"kafka")[..4], [0x28, 0xb5, 0x2f, 0xfd]);
    }

    fn xerial_framed(input: &[u8], block_bytes: usize) -> Vec<u8> {
        let mut out = XERIAL_MAGIC.to_vec();
        out.extend_from_slice(&1i32.to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
        for block in input.chunks(block_bytes) {
            let raw = snap::raw::Encoder::new().compress_vec(block).unwrap();
            out.extend_from_slice(&(raw.len() as i32).to_be_bytes());
            out.extend_from_slice(&raw);
        }
        out
    }

    #[test]
    fn xerial_framed_snappy_decodes() {
        let input = repetitive(100_000);
        let framed = xerial_framed(&input, 32 * 1024);
        assert_eq!(decompress(Compression::Snappy, &framed, LIMIT).unwrap(), input);

        // A header with no blocks is an empty stream.
        assert_eq!(decompress(Compression::Snappy, &xerial_framed(b"", 1), LIMIT).unwrap(), b"");

        // Two streams back to back, as a concatenating writer leaves them.
        let mut twice = framed.clone();
        twice.extend_from_slice(&framed);
        assert_eq!(decompress(Compression::Snappy, &twice, LIMIT).unwrap(), [input.clone(), input].concat());
    }

    #[test]
    fn malformed_xerial_framing_is_an_error() {
        let framed = xerial_framed(&repetitive(10_000), 4096);
        // Cut inside a block, inside a block length, and a negative length.
        assert!(decompress(Compression::Snappy, &framed[..framed.len() - 1], LIMIT).is_err());
        assert!(decompress(Compression::Snappy, &framed[..XERIAL_HEADER_BYTES + 2], LIMIT).is_err());
        let mut negative = framed[..XERIAL_HEADER_BYTES].to_vec();
        negative.extend_from_slice(&(-5i32).to_be_bytes());
        assert!(decompress(Compression::Snappy, &negative, LIMIT).is_err());
    }

    #[test]
    fn limit_is_enforced() {
        let zeros = vec![0u8; 10 << 20];
        for codec in CODECS {
            let bomb = compressed(codec, &zeros);
            let error = decompress(codec, &bomb, 1 << 20).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{codec:?}: {error}");
        }
        // The same bomb in xerial framing, where each block is under the limit but the sum is not.
        let bomb = xerial_framed(&zeros, 32 * 1024);
        assert_eq!(decompress(Compression::Snappy, &bomb, 1 << 20).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn output_of_exactly_the_limit_is_accepted() {
        let input = repetitive(200_000);
        for codec in CODECS {
            let c = compressed(codec, &input);
            assert_eq!(decompress(codec, &c, input.len()).unwrap(), input, "{codec:?}");
            assert!(decompress(codec, &c, input.len() - 1).is_err(), "{codec:?}");
        }
        assert!(decompress(Compression::Gzip, &compressed(Compression::Gzip, b"x"), 0).is_err());
        assert_eq!(decompress(Compression::Zstd, &compressed(Compression::Zstd, b""), 0).unwrap(), b"");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let garbage = [0xffu8; 64];
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            assert!(decompress(codec, &garbage, LIMIT).is_err(), "{codec:?}");
        }
        // Truncated streams: each of these codecs marks its end, so a cut is detected.
        let input = repetitive(1 << 20);
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Zstd] {
            let c = compressed(codec, &input);
            assert!(decompress(codec, &c[..c.len() / 2], LIMIT).is_err(), "{codec:?}");
        }
        // Arbitrary bytes must never panic, whatever they decode to.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..500 {
            let len = (state % 200) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            for codec in CODECS {
                let _ = decompress(codec, &bytes, 1 << 16);
            }
        }
    }
}
