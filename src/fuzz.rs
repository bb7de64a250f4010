//! The fuzz targets' bodies, shared by the cargo-fuzz binaries in `fuzz/` (the long campaigns
//! of `scripts/fuzz.sh`) and by the seeded runs in `cargo test` (`tests/fuzz_seeded.rs`), so
//! that a crash found by either replays in both.
//!
//! Each target takes arbitrary bytes and must not panic, whatever they are. Each also checks
//! what the code under test promises, and panics when a promise is broken: a recovered log
//! that is not a prefix of its file, a record parser that reads past its batch.

use std::path::Path;

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::codec::Reader;
use crate::protocol::header::{read_header_rest, read_prefix};
use crate::protocol::messages::{decode_body, produce};
use crate::protocol::record_batch::{self, CRC_START, HEADER_BYTES, OFFSET_CRC};
use crate::protocol::{api::SUPPORTED_APIS, ApiKey};

/// Decodes `data` as a request of the API and version its first two bytes choose (modulo
/// the APIs Spate serves and one past each one's newest version, so that unsupported
/// versions are covered too); the rest is the request after its fixed prefix: client id,
/// header tagged fields and body. A Produce's record sets are split and validated as the
/// broker does. Under `CountingAllocator`, also checks the heap the decoding held against
/// `HEAP_BYTES_PER_FRAME_BYTE` times the frame; returns (that heap, the frame's bytes).
pub fn request(data: &[u8]) -> Option<(usize, usize)> {
    let frame = request_frame(data)?;
    let received = frame.len() + 4;
    let peak = peak_heap(|| decode_request_frame(frame.clone()));
    assert!(
        peak <= crate::protocol::codec::heap_bound(received),
        "decoding a {received}-byte frame held {peak} bytes of heap ({:.1} times)",
        peak as f64 / received as f64
    );
    decode_request_frame_with(frame, true);
    Some((peak, received))
}

/// The frame `request` decodes: the chosen API's key and version, a correlation id, then the
/// rest of `data`.
pub fn request_frame(data: &[u8]) -> Option<Bytes> {
    let (&choice, rest) = data.split_first()?;
    let (&version_choice, rest) = rest.split_first()?;
    let api = &SUPPORTED_APIS[choice as usize % SUPPORTED_APIS.len()];
    let version = (version_choice as i16) % (api.max_version + 2);
    let mut frame = BytesMut::with_capacity(8 + rest.len());
    frame.put_i16(api.key as i16);
    frame.put_i16(version);
    frame.put_i32(7);
    frame.put_slice(rest);
    Some(frame.freeze())
}

/// What the broker does with a frame before any handler runs: prefix, header, body.
pub fn decode_request_frame(frame: Bytes) {
    decode_request_frame_with(frame, false);
}

/// `decode_request_frame`, validating compressed record sets too (`all`) or only uncompressed
/// ones. Validating a compressed batch allocates its codec's decoder state (a zstd context is
/// about 95 KB, an lz4 block buffer 64 KiB), a fixed amount per batch that the broker holds one
/// at a time per shard, outside the request's heap budget; `request` measures the decoding
/// without it, then validates those batches unmeasured.
fn decode_request_frame_with(frame: Bytes, all: bool) {
    let mut r = Reader::new(frame);
    let Ok(prefix) = read_prefix(&mut r) else { return };
    let Some(key) = ApiKey::from_i16(prefix.api_key) else { return };
    if !key.supports(prefix.api_version) {
        return;
    }
    let Ok(header) = read_header_rest(&mut r, prefix, key) else { return };
    if key == ApiKey::Produce {
        if let Ok(request) = <produce::ProduceRequest as crate::protocol::wire::Wire>::decode(&mut r, header.version()) {
            for partition in request.topics.iter().flat_map(|t| &t.partitions) {
                let compressed = |records: &Bytes| records.get(22).is_some_and(|attributes| attributes & 0x07 != 0);
                if let Some(records) = partition.records.as_ref().filter(|r| all || !compressed(r)) {
                    let _ = record_batch::split_batches(records);
                }
            }
        }
        return;
    }
    let _ = decode_body(&mut r, key, header.api_version, header.flexible);
}

pub use crate::protocol::wire::Rng;

/// Rewrites the CRC of every batch whose length field fits, so that a fuzzer reaches the
/// record parsers behind the CRC check (random bytes almost never carry a valid CRC-32C).
pub fn fix_crcs(bytes: &mut [u8]) {
    let mut at = 0;
    while let Ok(size) = record_batch::batch_size(&bytes[at..]) {
        let batch = &mut bytes[at..at + size];
        if size >= HEADER_BYTES {
            let crc = crc32c::crc32c(&batch[CRC_START..]);
            batch[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        }
        at += size;
    }
}

/// Every parser of record batches on `data` (a record set, as a Produce or a Fetch carries):
/// the broker's validation, its keyless-record and timestamp scans, compaction's record
/// reader, and the client's reader with every codec. When the first byte is odd, CRCs are
/// fixed first.
pub fn record_batches(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut bytes = rest.to_vec();
    if mode & 1 == 1 {
        fix_crcs(&mut bytes);
    }
    // A produce's record set splits into batches that follow one another and cover it.
    if let Ok(ranges) = record_batch::split_batches(&bytes) {
        assert_eq!(ranges[0].start, 0, "the first batch starts the record set");
        assert!(ranges.windows(2).all(|w| w[0].end == w[1].start), "batches follow one another");
        assert_eq!(ranges.last().map(|r| r.end), Some(bytes.len()), "the batches cover the record set");
    }
    // What the client's reader must return, worked out batch by batch: every record of every
    // complete non-control batch, and the offset after the last complete batch.
    let (mut expected_records, mut expected_next, mut all_valid) = (0usize, i64::MIN, true);
    let mut at = 0;
    while let Ok(size) = record_batch::batch_size(&bytes[at..]) {
        let batch = &bytes[at..at + size];
        at += size;
        let Ok(view) = record_batch::validate_stored(batch) else {
            all_valid = false;
            continue;
        };
        expected_next = expected_next.max(view.last_offset().saturating_add(1));
        if !view.is_control() {
            expected_records += view.record_count().max(0) as usize;
        }
        let produced = record_batch::validate_produced(batch);
        let producer_batch = produced.is_ok();
        // A batch the broker takes from a producer iterates whole: `count` records, in order.
        if let Some(records) = produced.ok().and_then(|(view, _)| crate::protocol::records::Records::of_batch(view)) {
            let mut read = 0;
            for (i, record) in records.enumerate() {
                assert_eq!(record.expect("a validated batch's records parse").offset_delta, i as i32, "offset deltas count up");
                read += 1;
            }
            assert_eq!(read, view.record_count(), "a validated batch holds as many records as its header counts");
        }
        let _ = crate::storage::recovery::first_record_where(batch, |_| true);
        // Compaction's reader: its records tile the batch body, one per record in the header.
        if let Some(records) = crate::storage::compaction::records(batch) {
            let mut end = HEADER_BYTES;
            for record in &records {
                assert_eq!(record.range.start, end, "compaction's records follow one another");
                end = record.range.end;
            }
            assert!(end <= batch.len(), "compaction's record reader went past its batch");
            if producer_batch {
                assert_eq!(records.len(), view.record_count() as usize, "compaction read as many records as the header counts");
            }
        }
    }
    let mut out = Vec::new();
    // The scan above stopped at a partial batch (a fetch may end in one) or at a bad length.
    let bad_length = at < bytes.len() && !matches!(record_batch::batch_size(&bytes[at..]), Err(record_batch::BatchError::Truncated));
    // An error is always an acceptable answer to damaged records; a success must be right.
    if let Ok(next) = crate::client::records::read_records(Bytes::from(bytes), i64::MIN, &mut out) {
        assert!(all_valid && !bad_length, "the client accepted a record set holding an invalid batch");
        assert_eq!(next, expected_next, "the client's next fetch offset follows the last complete batch");
        assert_eq!(out.len(), expected_records, "the client read every record of every batch");
    }
}

/// Writes `data` as a partition folder's first segment (and, by the first byte, an offset
/// index, a time index and a recovery-point checkpoint cut from the rest), opens the log as
/// after a crash, and checks the outcome against the bytes: the kept log is a prefix of the
/// file made of whole, CRC-valid batches, and the next offset continues from its last batch.
/// A log with damage in its middle stays offline and keeps every byte.
pub fn segment_recovery(data: &[u8], dir: &Path) {
    let Some((&mode, rest)) = data.split_first() else { return };
    for name in crate::io::fs::list_dir(dir).expect("list the fuzz folder") {
        std::fs::remove_file(dir.join(name)).expect("clean the fuzz folder");
    }
    let mut log_bytes = rest.to_vec();
    if mode & 1 == 1 {
        fix_crcs(&mut log_bytes);
    }
    // Optional derived files, cut from the end of the input so the log keeps its prefix.
    let mut extra = Vec::new();
    if mode & 2 == 2 && log_bytes.len() > 8 {
        let n = (mode as usize >> 2).min(log_bytes.len() / 2);
        extra = log_bytes.split_off(log_bytes.len() - n);
    }
    let base = if mode & 0x80 == 0x80 { 100 } else { 0 };
    let log_path = dir.join(crate::storage::segment_file_name(base, "log"));
    std::fs::write(&log_path, &log_bytes).expect("write the segment");
    if !extra.is_empty() {
        std::fs::write(dir.join(crate::storage::segment_file_name(base, "index")), &extra).expect("write the index");
        std::fs::write(dir.join(crate::storage::segment_file_name(base, "timeindex")), &extra).expect("write the time index");
    }
    // The recovery point the log dir's checkpoint gives, read from the same bytes as a
    // checkpoint file (damaged ones read as none, so recovery scans everything).
    let checkpoint_path = dir.join(crate::storage::RECOVERY_POINT_FILE);
    std::fs::write(&checkpoint_path, &extra).expect("write the checkpoint");
    let recovery_point = crate::storage::checkpoint::read(&checkpoint_path).first().map_or(0, |e| e.2);
    let mut config = crate::config::BrokerConfig::from_properties(&[]).expect("default config").log;
    config.index_interval_bytes = 64;
    let Ok(log) = crate::storage::log::PartitionLog::open(dir, "t", 0, config, crate::storage::RecoveryPoint::At(recovery_point)) else { return };
    let after = std::fs::read(&log_path).expect("read the segment back");
    if log.is_offline() {
        assert_eq!(after, log_bytes, "a log with damage in its middle was changed");
        return;
    }
    assert!(log_bytes.starts_with(&after), "recovery kept bytes that were not the file's prefix");
    let mut at = 0;
    let mut next = base;
    while at < after.len() {
        let size = record_batch::batch_size(&after[at..]).expect("a kept batch has a valid length");
        let view = record_batch::validate_stored(&after[at..at + size]).expect("a kept batch is CRC-valid");
        assert_eq!(view.base_offset(), next, "kept batches are contiguous from the segment's base");
        next = view.last_offset() + 1;
        at += size;
    }
    assert_eq!(log.log_end_offset(), next, "the next offset continues from the last kept batch");
    for entry in log.index_entries_for_tests() {
        assert!((entry.position as usize) < after.len().max(1), "an index entry past the end of the log");
    }
    let _ = log.close();
}

/// Batches of 1 to 5 records with keys, values and headers, one per codec, each with its
/// base offset set to follow the previous one: a realistic record set to start from.
pub fn batch_seeds() -> Vec<Vec<u8>> {
    use crate::client::records::{BatchBuilder, Header};
    use crate::protocol::compression::Compression;
    let headers = [Header::new("h", Bytes::from_static(b"v"))];
    let mut out = Vec::new();
    let mut offset = 0i64;
    for (i, codec) in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd].into_iter().enumerate() {
        let mut builder = BatchBuilder::new(1_700_000_000_000, 256);
        for j in 0..=i {
            let key = format!("key-{j}");
            let value = vec![b'a' + j as u8; 10 + 20 * j];
            let key = (j != 2).then_some(key.as_bytes());
            builder.append(1_700_000_000_000 + j as i64, key, (j != 3).then_some(&value[..]), &headers[..j % 2]);
        }
        let count = builder.count() as i64;
        let mut batch = builder.build(codec, -1, -1, -1).expect("build a seed batch").to_vec();
        batch[..8].copy_from_slice(&offset.to_be_bytes());
        fix_crcs(&mut batch);
        offset += count;
        out.push(batch);
    }
    out
}

/// Inputs for `record_batches`: each seed batch alone and all of them together.
pub fn record_batch_seeds() -> Vec<Vec<u8>> {
    let batches = batch_seeds();
    let mut seeds: Vec<Vec<u8>> = batches.iter().map(|b| [&[0u8][..], b].concat()).collect();
    seeds.push([vec![0u8], batches.concat()].concat());
    seeds
}

/// Inputs for `segment_recovery`: the seed batches as a segment, whole and torn.
pub fn segment_seeds() -> Vec<Vec<u8>> {
    let segment = batch_seeds().concat();
    vec![[vec![0u8], segment.clone()].concat(), [vec![0u8], segment[..segment.len() - 7].to_vec()].concat(), vec![0u8]]
}

/// Inputs for `request`, in the target's format (API index, version, then the header's client
/// id and the body): arbitrary requests of every API at every version Spate serves, encoded by
/// their definitions (`protocol::messages`), and produce requests that carry real batches.
pub fn request_seeds() -> Vec<Vec<u8>> {
    use crate::protocol::api::decodable_min_version;
    use crate::protocol::codec::Writer;
    use crate::protocol::messages::produce::{ProducePartition, ProduceRequest, ProduceTopic};
    use crate::protocol::wire::{Request, Rng, Version, Wire};
    fn seed<R: Request>(request: &R, version: i16) -> Vec<u8> {
        let index = SUPPORTED_APIS.iter().position(|a| a.key == R::KEY).expect("a served API");
        let v = Version::new(version, version >= R::FLEXIBLE_FROM);
        let mut w = Writer::new();
        w.nullable_string(false, Some("fuzz"));
        w.tagged_fields(v.flexible);
        request.encode(&mut w, v);
        [&[index as u8, version as u8][..], &w.finish()].concat()
    }
    let mut seeds = Vec::new();
    let mut rng = Rng(0xf022_5eed);
    macro_rules! every_version {
        ($($t:ty),*) => {$(
            let key = <$t as Request>::KEY;
            for version in decodable_min_version(key)..=key.range().max_version {
                let v = Version::new(version, version >= <$t as Request>::FLEXIBLE_FROM);
                seeds.push(seed(&<$t>::arbitrary(&mut rng, v), version));
            }
        )*};
    }
    crate::protocol::messages::every_request!(every_version);
    let batches = batch_seeds();
    let partition = |index: i32, batch: &Vec<u8>| ProducePartition { index, records: Some(Bytes::from(batch.clone())) };
    let produce = ProduceRequest {
        acks: -1,
        timeout_ms: 1000,
        topics: vec![ProduceTopic { name: "t".into(), partitions: vec![partition(0, &batches[0]), partition(1, &batches[4])] }],
        transactional_id: None,
    };
    seeds.push(seed(&produce, 7));
    let produce = ProduceRequest { topics: vec![ProduceTopic { name: "t".into(), partitions: vec![partition(0, &batches[1])] }], ..produce };
    seeds.push(seed(&produce, 9));
    seeds
}

/// A global allocator that counts the bytes the current thread holds, for the heap bound on
/// decoding: `#[global_allocator] static A: CountingAllocator = CountingAllocator;` in a test
/// or fuzz binary, then `peak_heap(|| ...)`.
pub struct CountingAllocator;

thread_local! {
    static LIVE: std::cell::Cell<isize> = const { std::cell::Cell::new(0) };
    static PEAK: std::cell::Cell<isize> = const { std::cell::Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counters are
// thread-local cells with constant initializers, which never allocate.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let _ = LIVE.try_with(|live| {
            live.set(live.get() + layout.size() as isize);
            let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
        });
        // SAFETY: the caller's layout is passed on as received.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        let _ = LIVE.try_with(|live| live.set(live.get() - layout.size() as isize));
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

/// The most heap the current thread held at once while running `f`, above what it held
/// before (only meaningful under `CountingAllocator`).
pub fn peak_heap(f: impl FnOnce()) -> usize {
    let start = LIVE.with(|l| l.get());
    PEAK.with(|p| p.set(start));
    f();
    (PEAK.with(|p| p.get()) - start).max(0) as usize
}

pub use crate::protocol::codec::{heap_bound, HEAP_BYTES_PER_FRAME_BYTE};
