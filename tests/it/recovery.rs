//! Restarts, kill -9 during a produce load, and torn segments: every acknowledged record is
//! read back and logs end on batch boundaries.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message};

use spate::protocol::record_batch;

use crate::support::{assign_all, assigning_consumer, client_config, create_topic, free_port, BrokerProcess, TestBroker};

/// Reads every record of `topic` from the beginning: (partition, offset) -> value.
pub fn read_all(bootstrap: &str, topic: &str, partitions: i32, expected_at_least: usize) -> HashMap<(i32, i64), Vec<u8>> {
    let consumer: BaseConsumer = assigning_consumer(bootstrap);
    assign_all(&consumer, topic, partitions);
    let mut out = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet_since = Instant::now();
    // Read until everything expected is in, then until the log has been quiet for a second.
    while Instant::now() < deadline && (out.len() < expected_at_least || quiet_since.elapsed() < Duration::from_secs(1)) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let previous = out.insert((m.partition(), m.offset()), m.payload().unwrap_or_default().to_vec());
                assert!(previous.is_none(), "offset {} of partition {} read twice", m.offset(), m.partition());
                quiet_since = Instant::now();
            }
            // librdkafka reports connection events (a broker that just restarted, say) through
            // the consumer; it reconnects by itself, as it would against Kafka.
            Some(Err(e)) => eprintln!("consumer event: {e}"),
            None => {}
        }
    }
    out
}

/// Walks a partition's `.log` files: each must be a sequence of whole, CRC-valid batches with
/// increasing offsets. Returns the offset after the last batch.
pub fn check_batch_boundaries(partition_dir: &Path) -> i64 {
    let mut logs: Vec<_> = std::fs::read_dir(partition_dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "log")).collect();
    logs.sort();
    let mut next = 0;
    for log in logs {
        let bytes = std::fs::read(&log).unwrap();
        let mut at = 0;
        while at < bytes.len() {
            let size = record_batch::batch_size(&bytes[at..]).unwrap_or_else(|e| panic!("{}: bad batch at {at}: {e:?}", log.display()));
            let view = record_batch::validate(&bytes[at..at + size]).unwrap_or_else(|e| panic!("{}: invalid batch at {at}: {e:?}", log.display()));
            assert!(view.base_offset() >= next, "offsets increase");
            next = view.last_offset() + 1;
            at += size;
        }
        assert_eq!(at, bytes.len(), "{} ends on a batch boundary", log.display());
    }
    next
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_broker_keeps_every_record_and_offsets_continue() {
    let mut broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "durable", 4).await;
    let produce = |bootstrap: String, from: u32| {
        tokio::task::spawn_blocking(move || {
            let producer: BaseProducer = client_config(&bootstrap).set("acks", "all").create().unwrap();
            for i in from..from + 10_000 {
                let v = format!("record-{i}");
                producer.send(BaseRecord::to("durable").key(&v).payload(&v)).unwrap();
                producer.poll(Duration::ZERO);
            }
            producer.flush(Duration::from_secs(30)).unwrap();
        })
    };
    produce(bootstrap.clone(), 0).await.unwrap();
    broker.restart();
    let b = bootstrap.clone();
    let before = tokio::task::spawn_blocking(move || read_all(&b, "durable", 4, 10_000)).await.unwrap();
    assert_eq!(before.len(), 10_000, "every record survives a restart");
    let ends: HashMap<i32, i64> = (0..4).map(|p| (p, before.keys().filter(|(q, _)| *q == p).count() as i64)).collect();

    produce(bootstrap.clone(), 10_000).await.unwrap();
    let b = bootstrap.clone();
    let after = tokio::task::spawn_blocking(move || read_all(&b, "durable", 4, 20_000)).await.unwrap();
    assert_eq!(after.len(), 20_000);
    for ((p, offset), value) in &after {
        let i: u32 = std::str::from_utf8(value).unwrap().trim_start_matches("record-").parse().unwrap();
        // Records from before the restart keep their offsets; new ones come after them.
        assert_eq!(i < 10_000, *offset < ends[p], "partition {p} offset {offset} holds record {i}");
    }
}

/// (partition, offset, value) of every acknowledged record.
pub type Acknowledged = Arc<Mutex<Vec<(i32, i64, Vec<u8>)>>>;

pub struct Acks(pub Acknowledged);

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Ok(m) = result {
            self.0.lock().unwrap().push((m.partition(), m.offset(), m.payload().unwrap().to_vec()));
        }
    }
}

/// A librdkafka producer (acks=all, plus `settings`) on its own thread, sending the records
/// `record(i)` makes (key, value) to `topic` until stopped or `max` are sent, and recording
/// every acknowledgement in `acked`.
pub struct Load {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Load {
    pub fn start(
        bootstrap: &str,
        topic: &'static str,
        settings: &[(&str, &str)],
        max: u64,
        acked: Acknowledged,
        record: impl Fn(u64) -> (String, String) + Send + 'static,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let mut config = client_config(bootstrap);
        config.set("acks", "all");
        for (k, v) in settings {
            config.set(*k, *v);
        }
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let producer: BaseProducer<Acks> = config.create_with_context(Acks(acked)).unwrap();
            let mut i = 0u64;
            while !stopped.load(Ordering::Relaxed) && i < max {
                let (key, value) = record(i);
                if producer.send(BaseRecord::to(topic).key(&key).payload(&value)).is_ok() {
                    i += 1;
                } else {
                    std::thread::sleep(Duration::from_millis(1));
                }
                producer.poll(Duration::ZERO);
            }
            let _ = producer.flush(Duration::from_secs(3));
        });
        Load { stop, thread }
    }

    /// Stops sending and waits for the producer's last acknowledgements (or failures).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_produce_load_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), free_port(), &[("num.partitions", "6"), ("log.segment.bytes", "262144")]);
    let bootstrap = broker.bootstrap();
    let acked: Acknowledged = Arc::new(Mutex::new(Vec::new()));
    // Bounded: stops when told, or after 200,000 records.
    let load = Load::start(&bootstrap, "load", &[("linger.ms", "2"), ("message.timeout.ms", "2000")], 200_000, acked.clone(), |i| {
        let v = format!("load-{i:08}");
        (v.clone(), v)
    });
    // Let acknowledged records pile up, then kill the broker in the middle of the load.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 20_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    broker.kill9();
    load.stop();
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 20_000, "the load ran ({} acknowledged)", acked.len());

    broker.restart();
    for p in 0..6 {
        check_batch_boundaries(&dir.path().join(format!("load-{p}")));
    }
    let b = bootstrap.clone();
    let expected = acked.len();
    let stored = tokio::task::spawn_blocking(move || read_all(&b, "load", 6, expected)).await.unwrap();
    let mut missing = 0;
    for (p, offset, value) in &acked {
        match stored.get(&(*p, *offset)) {
            Some(v) if v == value => {}
            _ => missing += 1,
        }
    }
    assert_eq!(missing, 0, "{missing} of {} acknowledged records are missing or changed after kill -9", acked.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_torn_in_the_middle_of_a_batch_is_cut_back_on_restart() {
    let mut broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "torn", 1).await;
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let producer: BaseProducer = client_config(&b).set("linger.ms", "0").set("batch.num.messages", "10").create().unwrap();
        for i in 0..1000 {
            let v = format!("torn-{i}");
            producer.send(BaseRecord::<(), _>::to("torn").payload(&v)).unwrap();
            if i % 10 == 9 {
                producer.flush(Duration::from_secs(10)).unwrap();
            }
        }
        producer.flush(Duration::from_secs(10)).unwrap();
    })
    .await
    .unwrap();
    broker.stop();

    // Find the last batch and cut the file in its middle.
    let log = broker.log_dir().join("torn-0").join("00000000000000000000.log");
    let bytes = std::fs::read(&log).unwrap();
    let (mut at, mut last_start, mut last_base) = (0, 0, 0);
    while at < bytes.len() {
        let size = record_batch::batch_size(&bytes[at..]).unwrap();
        last_start = at;
        last_base = record_batch::validate(&bytes[at..at + size]).unwrap().base_offset();
        at += size;
    }
    assert!(last_base > 0, "the topic holds several batches");
    let cut = last_start + (bytes.len() - last_start) / 2;
    std::fs::OpenOptions::new().write(true).open(&log).unwrap().set_len(cut as u64).unwrap();

    broker.start_again();
    assert_eq!(std::fs::metadata(&log).unwrap().len(), last_start as u64, "the torn batch is cut off");
    assert_eq!(check_batch_boundaries(&broker.log_dir().join("torn-0")), last_base);
    let b = bootstrap.clone();
    let records = tokio::task::spawn_blocking(move || read_all(&b, "torn", 1, last_base as usize)).await.unwrap();
    assert_eq!(records.len() as i64, last_base, "every record before the torn batch is there");
    let producer: rdkafka::producer::FutureProducer = client_config(&bootstrap).create().unwrap();
    let next = producer.send(rdkafka::producer::FutureRecord::<(), _>::to("torn").payload("after"), Duration::from_secs(10)).await.unwrap();
    assert_eq!(next.offset, last_base, "the next offset continues from the last whole batch");
}

/// `cycles` rounds of: start the broker on the same folder, produce with librdkafka (acks=all,
/// idempotent) for a random 100 to 600 ms after the first acknowledgement, `kill -9` it. After every restart each partition's
/// end offset must cover every acknowledged record; at the end every acknowledged record is
/// read back at its offset with its value, and each round's records are in the order they
/// were produced. Returns (acknowledged, missing, out of order).
/// What a kill loop saw: records acknowledged, acknowledged records not read back at their
/// offset, records out of send order within a round, and (power cuts) bytes the cuts dropped.
pub struct KillLoop {
    pub acked: usize,
    pub missing: usize,
    pub out_of_order: usize,
    pub bytes_dropped: u64,
}

/// Rounds of: start the broker, produce (librdkafka, acks=all, idempotent), kill -9 at a
/// random moment. With `power_cut`, every kill is also a power cut: the broker records what it
/// made durable (`SPATE_POWER_JOURNAL`) and `io::fault::power::apply_power_cut` drops the rest
/// before the next start. Acknowledged records must then survive only where an fsync preceded
/// the acknowledgement (`flush_every_batch`); in page-cache mode each partition must still be
/// whole batches with no hole in its offsets.
fn kill_9_loop(cycles: u32, flush_every_batch: bool, seed: u64, power_cut: bool) -> KillLoop {
    use rdkafka::consumer::Consumer;
    let dir = tempfile::tempdir().unwrap();
    let journal_dir = tempfile::tempdir().unwrap();
    let journal = journal_dir.path().join("power-journal");
    let port = free_port();
    // Power cuts in page-cache mode keep only rolled segments (their flusher fsyncs them):
    // small segments roll within a round, so a cut falls after durable data.
    let segment_bytes = if power_cut && !flush_every_batch { "65536" } else { "1048576" };
    let mut config = vec![("num.partitions", "3"), ("log.segment.bytes", segment_bytes), ("shards", "2")];
    if flush_every_batch {
        config.push(("log.flush.interval.messages", "1"));
    }
    let journal_env = journal.display().to_string();
    let env: Vec<(&str, &str)> = if power_cut { vec![("SPATE_POWER_JOURNAL", journal_env.as_str())] } else { vec![] };
    let mut bytes_dropped = 0;
    let mut cut = |broker: &mut BrokerProcess| {
        broker.kill9();
        if power_cut {
            let cut = spate::io::fault::power::apply_power_cut(&journal, dir.path()).expect("apply the power cut");
            bytes_dropped += cut.bytes_dropped;
        }
    };
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut broker = BrokerProcess::start_with_env(dir.path(), port, &config, &env);
    let bootstrap = broker.bootstrap();
    let acked: Acknowledged = Arc::new(Mutex::new(Vec::new()));
    // With power cuts in page-cache mode, acknowledged records may go: only what the cuts
    // must keep is checked.
    let keeps_acknowledged = flush_every_batch || !power_cut;
    for cycle in 0..cycles {
        if cycle > 0 {
            cut(&mut broker);
            broker.restart();
        }
        // Every record acknowledged in earlier rounds is below each partition's end offset.
        let ends: HashMap<i32, i64> = {
            let consumer: BaseConsumer = assigning_consumer(&bootstrap);
            let topic_exists = cycle > 0;
            (0..3)
                .map(|p| (p, if topic_exists { consumer.fetch_watermarks("kill", p, Duration::from_secs(10)).map(|w| w.1).unwrap_or(-1) } else { 0 }))
                .collect()
        };
        for (p, offset, _) in acked.lock().unwrap().iter().filter(|_| keeps_acknowledged) {
            assert!(*offset < ends[p], "seed {seed}, cycle {cycle}: partition {p} ends at {} after the restart, but offset {offset} was acknowledged", ends[p]);
        }
        // Bounded: until the kill, or 50,000 records a round.
        let settings = [("enable.idempotence", "true"), ("linger.ms", "1"), ("batch.num.messages", "50"), ("message.timeout.ms", "1500")];
        let load = Load::start(&bootstrap, "kill", &settings, 50_000, acked.clone(), move |i| {
            let v = format!("{cycle:03}-{i:08}");
            (v.clone(), v)
        });
        // The kill comes at a random moment once the load is flowing (its first
        // acknowledgement, or 10 s).
        let before = acked.lock().unwrap().len();
        let flowing = Instant::now() + Duration::from_secs(10);
        while acked.lock().unwrap().len() == before && Instant::now() < flowing {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(100 + next() % 500));
        broker.kill9();
        load.stop();
    }
    cut(&mut broker);
    broker.restart();
    let acked = acked.lock().unwrap().clone();
    let mut ends = Vec::new();
    for p in 0..3 {
        ends.push(check_batch_boundaries(&dir.path().join(format!("kill-{p}"))));
    }
    let expected = if keeps_acknowledged { acked.len() } else { ends.iter().sum::<i64>() as usize };
    let stored = read_all(&bootstrap, "kill", 3, expected);
    // Nothing after a hole is served: each partition reads back as offsets 0..end, every one.
    for (p, end) in ends.iter().enumerate() {
        let read = stored.keys().filter(|(q, _)| *q == p as i32).count() as i64;
        assert_eq!(read, *end, "seed {seed}: partition {p} holds offsets up to {end} but {read} of them were read");
    }
    let missing = acked.iter().filter(|(p, offset, value)| stored.get(&(*p, *offset)) != Some(value)).count();
    // Within a partition, each round's records must be in the order they were sent.
    let mut by_partition: Vec<Vec<(i64, &Vec<u8>)>> = vec![Vec::new(); 3];
    for ((p, offset), value) in &stored {
        by_partition[*p as usize].push((*offset, value));
    }
    let mut out_of_order = 0;
    for records in &mut by_partition {
        records.sort();
        let mut last: HashMap<&[u8], &[u8]> = HashMap::new();
        for (_, value) in records.iter() {
            let (round, sequence) = value.split_at(3);
            if last.get(round).is_some_and(|previous| *previous >= sequence) {
                out_of_order += 1;
            }
            last.insert(round, sequence);
        }
    }
    KillLoop { acked: acked.len(), missing, out_of_order, bytes_dropped }
}

fn kill_cycles() -> u32 {
    std::env::var("SPATE_KILL_CYCLES").ok().and_then(|s| s.parse().ok()).unwrap_or(8)
}

fn kill_seed() -> u64 {
    std::env::var("SPATE_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64)
}

/// Runs `kill_9_loop` with `SPATE_KILL_CYCLES` cycles (8 by default) from `SPATE_KILL_SEED`
/// (the clock by default), prints its figures and requires none missing (where the mode keeps
/// every acknowledged record) or out of order.
fn check_kill_9_loop(flush_every_batch: bool, power_cut: bool, mode: &str) {
    let (cycles, seed) = (kill_cycles(), kill_seed());
    let KillLoop { acked, missing, out_of_order, bytes_dropped } = kill_9_loop(cycles, flush_every_batch, seed, power_cut);
    println!("kill -9 loop, {mode}: {cycles} cycles (seed {seed}), {acked} acknowledged, {missing} missing, {out_of_order} out of order, {bytes_dropped} bytes dropped by power cuts");
    assert!(acked > 0, "seed {seed}: nothing was acknowledged");
    let missing_allowed = if power_cut && !flush_every_batch { missing } else { 0 };
    assert_eq!(
        (missing, out_of_order),
        (missing_allowed, 0),
        "seed {seed} (SPATE_KILL_SEED={seed} replays the kill moments): {missing} missing, {out_of_order} out of order of {acked}"
    );
    if power_cut && !flush_every_batch {
        assert!(bytes_dropped > 0, "seed {seed}: the power cuts dropped nothing: the emulation did not run");
        assert!(missing < acked, "seed {seed}: the power cuts dropped every record, even those of fsynced segments");
    }
}

#[test]
fn kill_9_loop_with_an_fsync_per_batch_loses_and_reorders_nothing() {
    check_kill_9_loop(true, false, "flush.messages=1");
}

#[test]
fn kill_9_loop_in_page_cache_mode_loses_and_reorders_nothing() {
    check_kill_9_loop(false, false, "page-cache mode");
}

#[test]
fn power_cuts_with_an_fsync_per_batch_lose_no_acknowledged_record() {
    check_kill_9_loop(true, true, "power cuts, flush.messages=1");
}

#[test]
fn power_cuts_in_page_cache_mode_leave_whole_batches_and_no_hole() {
    check_kill_9_loop(false, true, "power cuts, page-cache mode");
}
