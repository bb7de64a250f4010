//! Micro-benchmarks of the hot pieces of the broker and the client (criterion 0.8).
//!
//! Run them all with `cargo bench --bench micro` (a few minutes on 2 cores), or pick some by
//! id with a filter (a regex over the ids below): `cargo bench --bench micro -- validate`,
//! `cargo bench --bench micro -- 'index/offset'`, `cargo bench --bench micro -- append`.
//! Every group measures for 3 s after a 1 s warm-up, 20 samples.
//!
//! Record values are JSON-like text generated from a fixed-seed xorshift (so lz4 and zstd see
//! something like real event data, neither constant nor random bytes); every run uses the same
//! bytes. The benchmark binary uses mimalloc, the broker binary's global allocator.
//!
//! - `frame/next_frame` (frames/s): `protocol::frame::next_frame` splitting a `BytesMut` that holds
//!   64 Produce v7 request frames back to back until it is empty, as a connection's reader
//!   does. `next_frame` never touches a frame's bytes (it reads the 4-byte prefix and splits),
//!   so its cost is per frame, not per byte: the frames are small (one 100-byte record each)
//!   so that copying the buffer for each iteration (setup, not measured) stays cheap.
//! - `decode/request_header` (headers/s): `protocol::header::read_prefix`, the API key and
//!   version check the dispatcher makes, and `read_header_rest` (with its client id `String`)
//!   on a Produce request frame.
//! - `decode/produce_body/8x16KiB` (MB/s of body): `protocol::messages::produce::ProduceRequest::decode`
//!   of a Produce v7 body (one topic, 8 partitions, one 16 KiB batch each) encoded by the
//!   shared definition (`protocol::messages::produce::ProduceRequest`). Records are borrowed, not copied,
//!   so this measures the per-field decoding and the allocations of the decoded request.
//! - `validate/batch/{1KiB,16KiB,1MiB}` (MB/s): `protocol::record_batch::validate` on one
//!   producer batch: length, magic, counts and the CRC-32C over everything after byte 21.
//! - `validate/split_batches/8x16KiB` (MB/s): `record_batch::split_batches` on a partition's
//!   records holding 8 batches of 16 KiB back to back (each one validated).
//! - `index/offset_lookup/{16384,262144}` and `index/time_lookup/{16384,262144}` (lookups/s):
//!   `storage::index::OffsetIndex::lookup` and `TimeIndex::lookup` at 1,024 random offsets or
//!   timestamps per iteration, in indexes of 16,384 entries (a 64 MiB segment at the default
//!   `index.interval.bytes` of 4 KiB) and 262,144 entries (a 1 GiB segment, the default
//!   `segment.bytes`).
//! - `append/16KiB_batch_{uring,inline}_in_flight/{1,16}` (MB/s): `storage::PartitionLog::append` of a
//!   pre-built 16 KiB batch into a log in a temporary folder, on a compio (io_uring) runtime,
//!   with 64 MiB segments that roll as they fill (default flush policy: rolled segments are
//!   fsynced by the log's flusher in the background, the active one never). `1`: each append
//!   is awaited before the next is queued (one writev per batch). `16`: 16 appends are queued
//!   before the first is awaited, so the writer task gathers them into one writev (group
//!   commit). Stamping, writing to the page cache, index updates and rolls are all measured.
//!   `uring` writes through io_uring (`log.write.inline.max.bytes=0`), `inline` with
//!   `pwritev` on the calling thread (every write inline).
//!   The log is replaced by a fresh one (outside the measured time) whenever it holds more
//!   than 512 MiB, so the benchmark keeps at most 512 MiB plus one measurement's appends (about
//!   a second's worth) in its temporary folder (under `$TMPDIR`), which is deleted at the end.
//! - `batch_build/{none,lz4,zstd}` (MB/s of uncompressed batch): the client's
//!   `client::records::BatchBuilder`: a new builder, `append` of 1 KiB records (no key, no
//!   headers) while they fit in 16 KiB by the producer's own test (15 records), then `build`
//!   with that codec (header, compression, CRC-32C).

use std::hint::black_box;
use std::io::Write as _;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use compio::runtime::Runtime;
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, BenchmarkId, Criterion, Throughput};

use spate::client::conn::version_of;
use spate::client::records::BatchBuilder;
use spate::client::Compression;
use spate::config::{BrokerConfig, LogConfig};
use spate::protocol::api::ApiKey;
use spate::protocol::codec::{Reader, Writer};
use spate::protocol::frame::next_frame;
use spate::protocol::header::{read_header_rest, read_prefix, write_request_header};
use spate::protocol::messages::produce::{ProducePartition, ProduceRequest, ProduceTopic};
use spate::protocol::record_batch::{split_batches, validate};
use spate::protocol::wire::{Version, Wire};
use spate::storage::index::{IndexEntry, OffsetIndex, TimeIndex, TimeIndexEntry};
use spate::storage::{partition_dir_name, PartitionLog};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The base timestamp of every batch (2023-11-14, any fixed value would do).
const TS: i64 = 1_700_000_000_000;
/// The producer's default `batch.size`.
const BATCH_BYTES: usize = 16 * 1024;
const VALUE_BYTES: usize = 1024;
const CLIENT_ID: &str = "spate-bench";
const TOPIC: &str = "bench";

/// xorshift64: deterministic pseudo-random numbers without the rand crate.
struct XorShift(u64);

impl XorShift {
    fn new() -> XorShift {
        XorShift(0x9E37_79B9_7F4A_7C15)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// `count` values of exactly `len` bytes: JSON-like event lines with pseudo-random fields.
fn values(count: usize, len: usize) -> Vec<Vec<u8>> {
    const EVENTS: [&str; 6] = ["click", "view", "purchase", "login", "logout", "scroll"];
    let mut rng = XorShift::new();
    (0..count)
        .map(|_| {
            let mut v = Vec::with_capacity(len + 160);
            while v.len() < len {
                let r = rng.next_u64();
                writeln!(
                    v,
                    r#"{{"id":{},"user":"user-{}","event":"{}","page":"/p/{}","amount":{}.{:02}}}"#,
                    r >> 24,
                    (r >> 8) % 10_000,
                    EVENTS[(r % 6) as usize],
                    (r >> 16) % 500,
                    (r >> 32) % 1_000,
                    r % 100
                )
                .expect("writing to a Vec");
            }
            v.truncate(len);
            v
        })
        .collect()
}

/// An uncompressed producer batch (producer id -1) of about `target` bytes (within 16 bytes,
/// never above): records with values of up to 1 KiB, the last one cut to what still fits.
fn batch_of_size(target: usize, values: &[Vec<u8>]) -> Bytes {
    let mut b = BatchBuilder::new(TS, target);
    let mut i = 0;
    loop {
        // A record's framing around a value of up to 1 KiB is at most 11 bytes here.
        let len = (target - b.size()).saturating_sub(16).min(VALUE_BYTES);
        if len == 0 {
            break;
        }
        b.append(TS + i as i64, None, Some(&values[i % values.len()][..len]), &[]);
        i += 1;
    }
    assert!(b.size() <= target);
    let batch = b.build(Compression::None, -1, -1, -1).expect("an uncompressed build");
    validate(&batch).expect("a valid batch");
    batch
}

/// A Produce request (as the client's sender encodes it) for one topic, one batch per partition.
fn produce_request(batches: Vec<Bytes>) -> ProduceRequest {
    let partitions = batches.into_iter().enumerate().map(|(p, batch)| ProducePartition { index: p as i32, records: Some(batch) }).collect();
    ProduceRequest { acks: -1, timeout_ms: 30_000, topics: vec![ProduceTopic { name: TOPIC.to_owned(), partitions }], transactional_id: None }
}

/// A whole request frame as it arrives on a socket: size prefix, header v1, body.
fn produce_frame(correlation_id: i32, request: &ProduceRequest) -> BytesMut {
    let mut w = Writer::new();
    w.i32(0); // the size, patched below
    let v = Version::new(version_of(ApiKey::Produce), false);
    write_request_header(&mut w, ApiKey::Produce, v, correlation_id, CLIENT_ID);
    request.encode(&mut w, v);
    let mut frame = w.finish();
    let size = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    frame
}

fn default_config() -> BrokerConfig {
    BrokerConfig::from_properties(&[]).expect("the default configuration is valid")
}

/// A group with the file's common settings: short enough that the whole run takes minutes.
fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(20);
    g
}

// ---- 1. framing and decoding ----

fn bench_frame(c: &mut Criterion) {
    const FRAMES: usize = 64;
    let max_bytes = default_config().socket_request_max_bytes;
    let value = values(1, 100).pop().expect("one value");
    let mut builder = BatchBuilder::new(TS, 256);
    builder.append(TS, None, Some(value.as_slice()), &[]);
    let request = produce_request(vec![builder.build(Compression::None, -1, -1, -1).expect("build")]);
    let mut wire = BytesMut::new();
    for i in 0..FRAMES {
        wire.extend_from_slice(&produce_frame(i as i32, &request));
    }
    {
        let mut check = wire.clone();
        let mut n = 0;
        while next_frame(&mut check, max_bytes).expect("frames fit").is_some() {
            n += 1;
        }
        assert_eq!((n, check.len()), (FRAMES, 0));
    }

    let mut g = group(c, "frame");
    g.throughput(Throughput::Elements(FRAMES as u64));
    g.bench_function("next_frame", |b| {
        b.iter_batched(
            || wire.clone(),
            |mut buf| {
                let mut bytes = 0;
                while let Some(frame) = next_frame(&mut buf, max_bytes).expect("frames fit") {
                    bytes += black_box(frame).len();
                }
                // The emptied buffer goes back to criterion, so that freeing it is not measured.
                (buf, bytes)
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn bench_decode(c: &mut Criterion) {
    let values = values(32, VALUE_BYTES);
    let batch = batch_of_size(BATCH_BYTES, &values);
    let request = produce_request(vec![batch; 8]);
    let version = version_of(ApiKey::Produce);
    let v = Version::new(version, ApiKey::Produce.is_flexible(version));

    // What `next_frame` hands to the dispatcher: the frame without its size prefix.
    let frame = produce_frame(7, &request).freeze().slice(4..);
    let mut body = Writer::new();
    request.encode(&mut body, v);
    let body = body.finish().freeze();
    {
        let mut r = Reader::new(body.clone());
        let decoded = ProduceRequest::decode(&mut r, v).expect("the client's encoding decodes");
        assert_eq!((r.remaining(), decoded.topics[0].partitions.len()), (0, 8));
    }

    let mut g = group(c, "decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("request_header", |b| {
        b.iter(|| {
            let mut r = Reader::new(black_box(&frame).clone());
            let prefix = read_prefix(&mut r).expect("a prefix");
            let api_key = ApiKey::from_i16(prefix.api_key).expect("a known api key");
            assert!(api_key.supports(prefix.api_version));
            read_header_rest(&mut r, prefix, api_key).expect("a header")
        })
    });
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function(BenchmarkId::new("produce_body", "8x16KiB"), |b| {
        b.iter(|| {
            let mut r = Reader::new(black_box(&body).clone());
            ProduceRequest::decode(&mut r, v).expect("a produce request")
        })
    });
    g.finish();
}

// ---- 2. batch validation ----

fn bench_validate(c: &mut Criterion) {
    let values = values(32, VALUE_BYTES);
    let mut g = group(c, "validate");
    for (label, size) in [("1KiB", 1 << 10), ("16KiB", 16 << 10), ("1MiB", 1 << 20)] {
        let batch = batch_of_size(size, &values);
        g.throughput(Throughput::Bytes(batch.len() as u64));
        g.bench_function(BenchmarkId::new("batch", label), |b| b.iter(|| validate(black_box(&batch[..])).expect("valid").record_count()));
    }

    let one = batch_of_size(BATCH_BYTES, &values);
    let records: Vec<u8> = (0..8).flat_map(|_| one.iter().copied()).collect();
    assert_eq!(split_batches(&records).expect("valid batches").len(), 8);
    g.throughput(Throughput::Bytes(records.len() as u64));
    g.bench_function(BenchmarkId::new("split_batches", "8x16KiB"), |b| b.iter(|| split_batches(black_box(&records[..])).expect("valid batches")));
    g.finish();
}

// ---- 3. index lookups ----

fn bench_index(c: &mut Criterion) {
    const LOOKUPS: usize = 1024;
    // Records per index entry: 16 batches of ~256 bytes between entries 4 KiB apart.
    const OFFSETS_PER_ENTRY: u32 = 16;
    const POSITION_STEP: u32 = 4096;
    const TIME_STEP_MS: i64 = 50;

    let mut g = group(c, "index");
    g.throughput(Throughput::Elements(LOOKUPS as u64));
    for entries in [16_384u32, 262_144] {
        let mut offsets = OffsetIndex::default();
        let mut times = TimeIndex::default();
        for i in 0..entries {
            offsets.push(IndexEntry { relative_offset: i * OFFSETS_PER_ENTRY, position: i * POSITION_STEP });
            times.maybe_push(TimeIndexEntry { timestamp: TS + i as i64 * TIME_STEP_MS, relative_offset: i * OFFSETS_PER_ENTRY });
        }
        assert_eq!((offsets.entries.len(), times.entries.len()), (entries as usize, entries as usize));

        let mut rng = XorShift::new();
        let offset_span = (entries * OFFSETS_PER_ENTRY) as u64;
        let offset_queries: Vec<u32> = (0..LOOKUPS).map(|_| (rng.next_u64() % offset_span) as u32).collect();
        let time_span = entries as u64 * TIME_STEP_MS as u64;
        let time_queries: Vec<i64> = (0..LOOKUPS).map(|_| TS + (rng.next_u64() % time_span) as i64).collect();

        g.bench_function(BenchmarkId::new("offset_lookup", entries), |b| {
            b.iter(|| {
                let mut sum = 0u64;
                for &q in &offset_queries {
                    sum = sum.wrapping_add(offsets.lookup(black_box(q)).position as u64);
                }
                sum
            })
        });
        g.bench_function(BenchmarkId::new("time_lookup", entries), |b| {
            b.iter(|| {
                let mut sum = 0u64;
                for &q in &time_queries {
                    sum = sum.wrapping_add(times.lookup(black_box(q)).map_or(0, |e| e.relative_offset as u64));
                }
                sum
            })
        });
    }
    g.finish();
}

// ---- 4. the append path ----

/// Above this, the benchmark's log is replaced by a fresh one between measurements.
const ROTATE_BYTES: u64 = 512 << 20;

/// The log the append benchmark writes to, replaced by a fresh one (in a new folder) once it
/// holds `ROTATE_BYTES`, so that the benchmark's disk use stays bounded.
struct AppendTarget {
    root: tempfile::TempDir,
    config: LogConfig,
    generation: i32,
    log: Option<Rc<PartitionLog>>,
}

impl AppendTarget {
    fn log(&mut self, runtime: &Runtime) -> Rc<PartitionLog> {
        if let Some(log) = &self.log {
            if log.size_bytes() < ROTATE_BYTES {
                return log.clone();
            }
        }
        self.retire();
        self.generation += 1;
        let dir: PathBuf = self.root.path().join(partition_dir_name(TOPIC, self.generation));
        let (config, partition) = (self.config.clone(), self.generation);
        let log =
            runtime.block_on(async move { PartitionLog::open(&dir, TOPIC, partition, config, spate::storage::RecoveryPoint::At(0)) }).expect("opening the log");
        self.log = Some(log.clone());
        log
    }

    /// Drops the current log the way a topic deletion does: appends and the background flusher
    /// stop, then the folder goes.
    fn retire(&mut self) {
        if let Some(log) = self.log.take() {
            log.mark_deleted();
            let dir = log.dir().to_owned();
            drop(log);
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Appends `iters` copies of `batch`, `in_flight` queued at a time, and returns the time taken.
fn append_run(runtime: &Runtime, target: &mut AppendTarget, batch: &Bytes, in_flight: u64, iters: u64) -> Duration {
    let log = target.log(runtime);
    runtime.block_on(async move {
        let start = Instant::now();
        if in_flight == 1 {
            for _ in 0..iters {
                log.append(vec![batch.clone()]).await.expect("append");
            }
        } else {
            let mut left = iters;
            while left > 0 {
                let n = left.min(in_flight);
                // `append` queues synchronously; the writer task takes the whole queue at once.
                let acks: Vec<_> = (0..n).map(|_| log.append(vec![batch.clone()])).collect();
                for ack in acks {
                    ack.await.expect("append");
                }
                left -= n;
            }
        }
        start.elapsed()
    })
}

fn bench_append(c: &mut Criterion) {
    let values = values(32, VALUE_BYTES);
    let batch = batch_of_size(BATCH_BYTES, &values);
    let runtime = Runtime::new().expect("a compio runtime");
    let mut g = group(c, "append");
    g.throughput(Throughput::Bytes(batch.len() as u64));
    // `uring`: every write through io_uring (log.write.inline.max.bytes=0); `inline`: every
    // write with pwritev on the calling thread.
    for (mode, inline_max_bytes) in [("uring", 0), ("inline", u32::MAX)] {
        let mut config = default_config().log;
        config.segment_bytes = 64 << 20;
        config.write_inline_max_bytes = inline_max_bytes;
        let mut target = AppendTarget { root: tempfile::tempdir().expect("a temporary folder"), config, generation: 0, log: None };
        for in_flight in [1u64, 16] {
            g.bench_function(BenchmarkId::new(format!("16KiB_batch_{mode}_in_flight"), in_flight), |b| {
                b.iter_custom(|iters| append_run(&runtime, &mut target, &batch, in_flight, iters))
            });
        }
        target.retire();
        drop(target); // removes the temporary folder
    }
    g.finish();
    drop(runtime);
}

// ---- 5. the client's batch building ----

fn bench_batch_build(c: &mut Criterion) {
    let values = values(32, VALUE_BYTES);
    // As many records as the producer puts in a batch of `batch.size` (its own fit test).
    let mut probe = BatchBuilder::new(TS, BATCH_BYTES);
    let mut records = 0;
    while probe.size() + BatchBuilder::record_size(0, 0, None, Some(values[records % values.len()].as_slice()), &[]) + 16 <= BATCH_BYTES {
        probe.append(TS + records as i64, None, Some(values[records % values.len()].as_slice()), &[]);
        records += 1;
    }
    let uncompressed = probe.size();

    let mut g = group(c, "batch_build");
    g.throughput(Throughput::Bytes(uncompressed as u64));
    for codec in [Compression::None, Compression::Lz4, Compression::Zstd] {
        g.bench_function(codec.name(), |b| {
            b.iter(|| {
                let mut builder = BatchBuilder::new(TS, BATCH_BYTES);
                for (i, value) in values.iter().cycle().take(records).enumerate() {
                    builder.append(TS + i as i64, None, Some(black_box(value.as_slice())), &[]);
                }
                builder.build(codec, -1, -1, -1).expect("build")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_frame, bench_decode, bench_validate, bench_index, bench_append, bench_batch_build);
criterion_main!(benches);
