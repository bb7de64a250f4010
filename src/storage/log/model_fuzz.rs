//! The storage fuzzer: random sequences of appends, rolls, reads, retention deletes, crashes
//! (the process dies; the page cache survives) and torn crashes (the machine dies with the
//! end of the active segment unwritten), checked after every step against a plain
//! in-memory model of the log: a list of batches with their offsets and record bytes.
//!
//! Each seed is one sequence; a failure names the seed and the step, and
//! `SPATE_STORAGE_FUZZ_SEED=<seed> cargo test storage_model` replays it alone.
//! `SPATE_STORAGE_FUZZ_SEEDS=<n>` runs more seeds (the README shows a run of a thousand).

use super::*;
use crate::config::BrokerConfig;
use crate::protocol::record_batch::{build_batch, RecordSpec, HEADER_BYTES};
use crate::protocol::wire::Rng;

/// One batch as the model knows it: its offsets and the bytes after its header (the records,
/// which the log must keep untouched).
#[derive(Clone)]
struct ModelBatch {
    base: i64,
    last: i64,
    records: Bytes,
}

#[derive(Default)]
struct Model {
    batches: Vec<ModelBatch>,
    start: i64,
    end: i64,
}

impl Model {
    fn batch_at(&self, offset: i64) -> Option<&ModelBatch> {
        self.batches.iter().find(|b| b.base <= offset && offset <= b.last)
    }
}

fn config(rng: &mut Rng) -> LogConfig {
    let mut c = BrokerConfig::from_properties(&[]).unwrap().log;
    c.segment_bytes = 1024 + rng.below(8192) as u32;
    c.index_interval_bytes = 64 + rng.below(1024) as u32;
    // Both write paths: io_uring for everything, pwritev for everything, or a mix.
    c.write_inline_max_bytes = [0, u32::MAX, 2048][rng.below(3) as usize];
    c
}

/// A batch of 1 to 6 records with values of 0 to 400 bytes, some of them null.
fn random_batch(rng: &mut Rng, timestamp: i64) -> Bytes {
    let count = 1 + rng.below(6) as usize;
    let values: Vec<Option<Vec<u8>>> = (0..count).map(|_| (rng.below(8) != 0).then(|| vec![b'a' + rng.below(26) as u8; rng.below(400) as usize])).collect();
    let keys: Vec<Vec<u8>> = (0..count).map(|i| format!("k{}", rng.below(50) + i as u64).into_bytes()).collect();
    let records: Vec<RecordSpec<'_>> =
        (0..count).map(|i| RecordSpec { key: Some(&keys[i]), value: values[i].as_deref(), headers: &[], timestamp_delta: i as i64 }).collect();
    Bytes::from(build_batch(0, timestamp, &records))
}

/// Waits until the log's background tasks (writer, flusher of rolled segments) are idle, as
/// they would be frozen by a crash: the test then drops the log without closing it.
async fn quiesce(log: &PartitionLog) {
    for _ in 0..2000 {
        if !log.writer_running.get() && !log.flusher_running.get() {
            return;
        }
        compio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    panic!("the log's background tasks did not finish");
}

/// Checks the log against the model: its offsets, and a read at a random offset (and at the
/// edges) returns exactly the model's batch there.
async fn check(log: &PartitionLog, model: &Model, rng: &mut Rng, context: &str) {
    assert_eq!(log.log_end_offset(), model.end, "{context}: log end offset");
    assert_eq!(log.log_start_offset(), model.start, "{context}: log start offset");
    assert!(!log.is_offline(), "{context}: the log went offline");
    if model.start > 0 {
        assert!(
            matches!(log.read(model.start - 1, 1 << 20, true).await, Err(ReadError::OffsetOutOfRange { .. })),
            "{context}: a read below the start is out of range"
        );
    }
    assert!(log.read(model.end, 1 << 20, true).await.unwrap().records.is_none(), "{context}: a read at the end is empty");
    assert!(matches!(log.read(model.end + 1, 1 << 20, true).await, Err(ReadError::OffsetOutOfRange { .. })), "{context}: past the end");
    if model.end == model.start {
        return;
    }
    let mut offsets = vec![model.start, model.end - 1];
    offsets.extend((0..3).map(|_| model.start + rng.below((model.end - model.start) as u64) as i64));
    for offset in offsets {
        let expected = model.batch_at(offset).unwrap_or_else(|| panic!("{context}: the model has no batch at {offset}"));
        let read = log.read(offset, 1 + rng.below(4096) as u32, true).await.unwrap_or_else(|e| panic!("{context}: read at {offset}: {e:?}"));
        let slice = read.records.unwrap_or_else(|| panic!("{context}: no records at {offset}"));
        let bytes = slice.file.read_at(slice.position, slice.len as usize).await.unwrap();
        let size = record_batch::batch_size(&bytes).unwrap_or_else(|e| panic!("{context}: read at {offset} does not start with a batch: {e:?}"));
        let view = record_batch::validate_stored(&bytes[..size]).unwrap_or_else(|e| panic!("{context}: batch at {offset} is invalid: {e:?}"));
        assert_eq!((view.base_offset(), view.last_offset()), (expected.base, expected.last), "{context}: the batch read at {offset}");
        assert_eq!(&bytes[HEADER_BYTES..size], &expected.records[..], "{context}: the records of the batch at {offset}");
    }
}

/// The log start offset retention should leave, worked out from the segments' sizes and
/// newest timestamps by the documented rule: an expired active segment is rolled first; then
/// the oldest segments go while they are older than `retention.ms` or the rest still holds
/// `retention.bytes`; the active segment always stays.
fn predict_retention(log: &PartitionLog, c: &LogConfig, now: i64) -> i64 {
    let state = log.state.borrow();
    // (base offset, size, newest timestamp) of each segment.
    let mut segments: Vec<(i64, i64, i64)> = state.segments.iter().map(|s| (s.base_offset, s.size as i64, s.max_timestamp)).collect();
    let expired = |size: i64, max_ts: i64| c.retention_ms >= 0 && (size == 0 || max_ts >= 0 && now - max_ts > c.retention_ms);
    let active = *segments.last().expect("an active segment");
    if active.1 > 0 && c.retention_ms >= 0 && active.2 >= 0 && now - active.2 > c.retention_ms {
        segments.push((state.log_end_offset(), 0, -1));
    }
    let mut total: i64 = segments.iter().map(|s| s.1).sum();
    let mut first = 0;
    while segments.len() - first > 1 {
        let (_, size, max_ts) = segments[first];
        let oversized = c.retention_bytes >= 0 && total - size >= c.retention_bytes;
        if !(expired(size, max_ts) || oversized) {
            break;
        }
        total -= size;
        first += 1;
    }
    if first == 0 {
        state.log_start_offset
    } else {
        segments[first].0
    }
}

/// The (start, end) byte ranges of the whole batches in a segment file, read independently of
/// recovery: what a torn crash may keep.
fn batch_ends(bytes: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut at = 0;
    while let Ok(size) = record_batch::batch_size(&bytes[at..]) {
        at += size;
        ends.push(at);
    }
    ends
}

fn run_seed(seed: u64, steps: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let config = config(&mut rng);
    compio::runtime::Runtime::new().unwrap().block_on(async {
        let mut log = PartitionLog::open(dir.path(), "t", 0, config.clone(), crate::storage::RecoveryPoint::At(0)).unwrap();
        let mut model = Model::default();
        let mut now = 1_700_000_000_000i64;
        for step in 0..steps {
            now += rng.below(1000) as i64;
            let op = rng.below(100);
            let context = format!("seed {seed} step {step} (op {op})");
            match op {
                // Append one request of 1 to 4 batches; sometimes several requests at once.
                0..=54 => {
                    let requests = if rng.below(4) == 0 { 2 + rng.below(3) } else { 1 };
                    let mut futures = Vec::new();
                    let mut sent = Vec::new();
                    for _ in 0..requests {
                        let batches: Vec<Bytes> = (0..1 + rng.below(4)).map(|_| random_batch(&mut rng, now)).collect();
                        sent.push(batches.clone());
                        futures.push(log.append(batches));
                    }
                    for (future, batches) in futures.into_iter().zip(sent) {
                        let result = future.await.unwrap_or_else(|e| panic!("{context}: append failed: {e:?}"));
                        assert_eq!(result.base_offset, model.end, "{context}: offsets are assigned in request order");
                        for b in batches {
                            let count = record_batch::BatchView { bytes: &b }.record_count() as i64;
                            model.batches.push(ModelBatch { base: model.end, last: model.end + count - 1, records: b.slice(HEADER_BYTES..) });
                            model.end += count;
                        }
                    }
                }
                // A roll, as a full segment or an expired one causes (never of an empty one).
                55..=64 => {
                    quiesce(&log).await;
                    if log.state.borrow().active().size > 0 {
                        log.roll(now).unwrap();
                        log.start_flusher();
                    }
                }
                65..=74 => {
                    let mut c = config.clone();
                    if rng.below(3) == 0 {
                        c.retention_ms = 1 + rng.below(5000) as i64;
                    } else {
                        c.retention_bytes = rng.below(20_000) as i64;
                    }
                    log.set_config(c.clone());
                    quiesce(&log).await;
                    let predicted = predict_retention(&log, &c, now);
                    log.apply_retention(now);
                    log.set_config(config.clone());
                    let start = log.log_start_offset();
                    assert_eq!(
                        start, predicted,
                        "{context}: retention (retention.ms {}, retention.bytes {}) moved the start",
                        c.retention_ms, c.retention_bytes
                    );
                    assert!(start >= model.start && start <= model.end, "{context}: retention moved the start to {start}");
                    assert!(start == model.end || model.batches.iter().any(|b| b.base == start), "{context}: the new start {start} is not a batch start");
                    model.batches.retain(|b| b.base >= start);
                    model.start = start;
                }
                // A crash of the process: nothing is closed, the page cache keeps every write.
                75..=84 => {
                    quiesce(&log).await;
                    drop(log);
                    log = PartitionLog::open(dir.path(), "t", 0, config.clone(), crate::storage::RecoveryPoint::At(0))
                        .unwrap_or_else(|e| panic!("{context}: recovery failed: {e}"));
                }
                // A crash of the machine: the active segment loses a random tail.
                85..=89 => {
                    quiesce(&log).await;
                    let (path, active_base) = {
                        let state = log.state.borrow();
                        (state.active().path.clone(), state.active().base_offset)
                    };
                    drop(log);
                    let bytes = std::fs::read(&path).unwrap();
                    let cut = rng.below(bytes.len() as u64 + 1) as usize;
                    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(cut as u64).unwrap();
                    let kept = batch_ends(&bytes).iter().filter(|&&end| end <= cut).count();
                    // The model keeps the batches before the active segment and the first
                    // `kept` of those inside it.
                    let before = model.batches.iter().filter(|b| b.base < active_base).count();
                    model.batches.truncate(before + kept);
                    model.end = model.batches.last().map_or(active_base.max(model.start), |b| b.last + 1).max(active_base);
                    log = PartitionLog::open(dir.path(), "t", 0, config.clone(), crate::storage::RecoveryPoint::At(0))
                        .unwrap_or_else(|e| panic!("{context}: recovery after a cut at {cut} failed: {e}"));
                }
                // A clean shutdown and restart.
                90..=94 => {
                    quiesce(&log).await;
                    log.close().unwrap();
                    drop(log);
                    log = PartitionLog::open(dir.path(), "t", 0, config.clone(), crate::storage::RecoveryPoint::CleanShutdown)
                        .unwrap_or_else(|e| panic!("{context}: reopen failed: {e}"));
                }
                _ => {}
            }
            check(&log, &model, &mut rng, &context).await;
        }
        quiesce(&log).await;
    });
}

#[test]
fn storage_model_random_sequences_match_the_model() {
    let steps = 250;
    if let Some(seed) = std::env::var("SPATE_STORAGE_FUZZ_SEED").ok().and_then(|s| s.parse().ok()) {
        run_seed(seed, steps);
        return;
    }
    let seeds: u64 = std::env::var("SPATE_STORAGE_FUZZ_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(12);
    for seed in 0..seeds {
        run_seed(seed, steps);
    }
}
