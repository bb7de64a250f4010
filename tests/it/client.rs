//! Spate's own client against the broker and against librdkafka: records written by one are
//! read by the other with every codec, keys land where Java's partitioner puts them, batching
//! is real, consumer groups (Rust-only and mixed with librdkafka) split and hand over
//! partitions, and the `spate` command-line tools do what Kafka's scripts do.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use spate::client::consumer::RebalanceListener;
use spate::client::{partitioner, Admin, ClientConfig, Consumer, Producer, ProducerRecord, TopicPartition};

use crate::support::{assign_all, assigning_consumer, client_config, TestBroker};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    compio::runtime::Runtime::new().unwrap().block_on(f)
}

fn config(bootstrap: &str) -> ClientConfig {
    ClientConfig::new().set("bootstrap.servers", bootstrap)
}

fn create(bootstrap: &str, topic: &str, partitions: i32) {
    block_on(async {
        let admin = Admin::new(&config(bootstrap)).unwrap();
        admin.create_topic(topic, partitions, 1, &[]).await.unwrap();
        admin.wait_for_topic(topic).await.unwrap();
    })
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition { topic: topic.to_string(), partition }
}

/// Reads `count` records with the Rust consumer from the beginning of every partition.
fn rust_read_all(bootstrap: &str, topic: &str, partitions: i32, count: usize) -> Vec<spate::client::ConsumerRecord> {
    block_on(async {
        let consumer = Consumer::new(&config(bootstrap).set("fetch.max.wait.ms", "100")).unwrap();
        let all: Vec<TopicPartition> = (0..partitions).map(|p| tp(topic, p)).collect();
        consumer.assign(&all);
        consumer.seek_to_beginning(&all).await.unwrap();
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while out.len() < count {
            assert!(Instant::now() < deadline, "read {} of {count} records", out.len());
            out.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
        }
        assert_eq!(out.len(), count, "more records than were written");
        out
    })
}

#[test]
fn rust_and_librdkafka_read_each_others_records_with_every_codec() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    const N: usize = 1500;
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        create(&bootstrap, &topic, 3);
        // Rust producer -> librdkafka consumer.
        let metrics = block_on(async {
            let producer = Producer::new(&config(&bootstrap).set("compression.type", codec).set("linger.ms", "20")).unwrap();
            let mut pending = Vec::new();
            for i in 0..N {
                let record = ProducerRecord::new(&topic, format!("value-{i}-{}", "x".repeat(i % 50))).key(format!("key-{i}")).header("n", i.to_string());
                pending.push(producer.enqueue(record).await.unwrap());
            }
            for (i, p) in pending.into_iter().enumerate() {
                let md = p.await.unwrap_or_else(|e| panic!("{codec}: record {i} failed: {e}"));
                assert_eq!(md.partition, partitioner::partition_for_key(format!("key-{i}").as_bytes(), 3));
            }
            producer.close().await;
            producer.metrics()
        });
        assert_eq!(metrics.records, N as u64);
        let consumer = assigning_consumer(&bootstrap);
        assign_all(&consumer, &topic, 3);
        let mut seen = BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen.len() < N {
            assert!(Instant::now() < deadline, "{codec}: librdkafka read {} of {N}", seen.len());
            if let Some(m) = consumer.poll(Duration::from_millis(100)) {
                let m = m.unwrap();
                let key = std::str::from_utf8(m.key().unwrap()).unwrap();
                let i: usize = key.strip_prefix("key-").unwrap().parse().unwrap();
                assert_eq!(m.payload().unwrap(), format!("value-{i}-{}", "x".repeat(i % 50)).as_bytes(), "{codec}");
                let h = m.headers().unwrap().get(0);
                assert_eq!((h.key, h.value), ("n", Some(i.to_string().as_bytes())));
                assert!(seen.insert(i), "{codec}: record {i} twice");
            }
        }
        // librdkafka producer -> Rust consumer.
        let producer: FutureProducer = client_config(&bootstrap).set("compression.codec", codec).set("linger.ms", "20").create().unwrap();
        let futures: Vec<_> = (0..N)
            .map(|i| {
                let key = format!("rd-{i}");
                let value = format!("rd-value-{i}-{}", "y".repeat(i % 40));
                let headers = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header { key: "n", value: Some(&i.to_string()) });
                producer.send_result(FutureRecord::to(&topic).key(&key).payload(&value).headers(headers)).unwrap()
            })
            .collect();
        for f in futures {
            futures_block_on(f).unwrap().unwrap();
        }
        let records = rust_read_all(&bootstrap, &topic, 3, 2 * N);
        let mut from_rd = BTreeMap::new();
        for r in &records {
            let key = String::from_utf8(r.key.as_ref().unwrap().to_vec()).unwrap();
            if let Some(i) = key.strip_prefix("rd-") {
                let i: usize = i.parse().unwrap();
                assert_eq!(r.value.as_deref(), Some(format!("rd-value-{i}-{}", "y".repeat(i % 40)).as_bytes()), "{codec}");
                assert_eq!(r.headers[0].key, "n");
                assert_eq!(r.headers[0].value.as_deref(), Some(i.to_string().as_bytes()));
                assert!(from_rd.insert(i, r.offset).is_none(), "{codec}: record {i} twice");
            }
        }
        assert_eq!(from_rd.len(), N, "{codec}");
    }
}

fn futures_block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
}

/// librdkafka's `murmur2_random` partitioner is documented as Java-compatible; the Rust
/// producer must put every key where it does.
#[test]
fn keys_land_on_the_partition_javas_partitioner_chooses() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create(&bootstrap, "keys", 12);
    let producer: FutureProducer = client_config(&bootstrap).set("partitioner", "murmur2_random").create().unwrap();
    let keys: Vec<String> = (0..300).map(|i| format!("user-{i}-{}", "k".repeat(i % 17))).collect();
    let mut by_librdkafka = HashMap::new();
    for key in &keys {
        let partition = futures_block_on(producer.send_result(FutureRecord::to("keys").key(key).payload("v")).unwrap()).unwrap().unwrap().partition;
        by_librdkafka.insert(key.clone(), partition);
    }
    let by_rust: HashMap<String, i32> = block_on(async {
        let producer = Producer::new(&config(&bootstrap)).unwrap();
        let mut out = HashMap::new();
        for key in &keys {
            let md = producer.send(ProducerRecord::new("keys", "v").key(key.clone())).await.unwrap();
            out.insert(key.clone(), md.partition);
        }
        out
    });
    assert_eq!(by_rust, by_librdkafka);
    let spread: BTreeSet<i32> = by_rust.values().copied().collect();
    assert_eq!(spread.len(), 12, "300 keys reach every partition");
}

#[test]
fn linger_batches_a_burst_into_few_produce_requests() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create(&bootstrap, "burst", 1);
    let (metrics, offsets) = block_on(async {
        let producer = Producer::new(&config(&bootstrap).set("linger.ms", "50").set("acks", "1")).unwrap();
        let mut pending = Vec::new();
        for i in 0..1000 {
            pending.push(producer.enqueue(ProducerRecord::new("burst", format!("r{i}"))).await.unwrap());
        }
        let mut offsets = Vec::new();
        for p in pending {
            offsets.push(p.await.unwrap().offset);
        }
        (producer.metrics(), offsets)
    });
    assert_eq!(offsets, (0..1000).collect::<Vec<i64>>(), "one partition, dense offsets in send order");
    // 1000 records of ~10 bytes fit in one or two 16 KiB batches.
    assert!(metrics.requests <= 3, "{metrics:?}");
    assert_eq!(metrics.records, 1000);
    // Without linger and with one-record batches forced by batch.size, the same burst takes
    // many requests: the count above is batching, not an artefact.
    let unbatched = block_on(async {
        let producer = Producer::new(&config(&bootstrap).set("linger.ms", "0").set("batch.size", "1").set("acks", "1")).unwrap();
        for i in 0..200 {
            producer.send(ProducerRecord::new("burst", format!("s{i}"))).await.unwrap();
        }
        producer.metrics()
    });
    assert_eq!(unbatched.requests, 200, "{unbatched:?}");
}

/// Keyless records stick to a partition until a batch of it is complete, then move on: with
/// small batches, a burst spreads over the topic.
#[test]
fn keyless_records_move_to_another_partition_when_a_batch_completes() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create(&bootstrap, "sticky", 12);
    let partitions: BTreeSet<i32> = block_on(async {
        let producer = Producer::new(&config(&bootstrap).set("batch.size", "2048").set("linger.ms", "5")).unwrap();
        let mut pending = Vec::new();
        for i in 0..2000 {
            pending.push(producer.enqueue(ProducerRecord::new("sticky", format!("{i:0>100}"))).await.unwrap());
        }
        let mut used = BTreeSet::new();
        for p in pending {
            used.insert(p.await.unwrap().partition);
        }
        used
    });
    // About 100 batches of ~19 records each, each to a partition other than the last one's.
    assert!(partitions.len() >= 6, "2000 keyless records went to partitions {partitions:?}");
}

/// One fetch per leader is in flight at a time; a fetch sent while records are buffered does
/// not wait at the broker, so idle partitions in it cannot hold back a partition with data.
#[test]
fn idle_partitions_do_not_hold_back_a_partition_with_data() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create(&bootstrap, "lopsided", 6);
    block_on(async {
        let producer = Producer::new(&config(&bootstrap).set("batch.size", "65536")).unwrap();
        let mut pending = Vec::new();
        for i in 0..6000 {
            pending.push(producer.enqueue(ProducerRecord::new("lopsided", vec![b'x'; 1000]).partition(2).key(i.to_string())).await.unwrap());
        }
        for p in pending {
            p.await.unwrap();
        }
        // A long fetch.max.wait.ms: a fetch of only idle partitions would stall 10 s a round,
        // and 6000 records at 1 MiB per partition fetch take several rounds.
        let c = config(&bootstrap).set("fetch.max.wait.ms", "10000").set("max.poll.records", "200").set("max.partition.fetch.bytes", "262144");
        let consumer = Consumer::new(&c).unwrap();
        let all: Vec<TopicPartition> = (0..6).map(|p| tp("lopsided", p)).collect();
        consumer.assign(&all);
        consumer.seek_to_beginning(&all).await.unwrap();
        let started = Instant::now();
        let mut read = 0;
        while read < 6000 {
            assert!(started.elapsed() < Duration::from_secs(20), "read {read} of 6000: fetches are held back by long polls");
            read += consumer.poll(Duration::from_millis(500)).await.unwrap().len();
        }
        assert_eq!(read, 6000);
    });
}

/// A Rust group member running on its own thread, recording what it reads and holds.
struct Member {
    stop: Arc<AtomicBool>,
    /// Milliseconds the member's thread is to block for, without polling or heartbeating.
    freeze_ms: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
    assigned: Arc<Mutex<BTreeSet<i32>>>,
    revoked: Arc<Mutex<Vec<Vec<i32>>>>,
}

struct Recorder {
    assigned: Arc<Mutex<BTreeSet<i32>>>,
    revoked: Arc<Mutex<Vec<Vec<i32>>>>,
}

impl RebalanceListener for Recorder {
    fn on_partitions_revoked(&self, partitions: &[TopicPartition]) {
        let mut a = self.assigned.lock().unwrap();
        for p in partitions {
            a.remove(&p.partition);
        }
        self.revoked.lock().unwrap().push(partitions.iter().map(|p| p.partition).collect());
    }
    fn on_partitions_assigned(&self, partitions: &[TopicPartition]) {
        self.assigned.lock().unwrap().extend(partitions.iter().map(|p| p.partition));
    }
}

impl Member {
    fn start(bootstrap: &str, group: &str, topic: &str, strategy: &str, seen: Arc<Mutex<Vec<(i32, i64)>>>) -> Member {
        let stop = Arc::new(AtomicBool::new(false));
        let assigned = Arc::new(Mutex::new(BTreeSet::new()));
        let revoked = Arc::new(Mutex::new(Vec::new()));
        let (bootstrap, group, topic, strategy) = (bootstrap.to_string(), group.to_string(), topic.to_string(), strategy.to_string());
        let freeze_ms = Arc::new(AtomicU64::new(0));
        let (s, a, r, f) = (stop.clone(), assigned.clone(), revoked.clone(), freeze_ms.clone());
        let thread = std::thread::spawn(move || {
            block_on(async move {
                let c = config(&bootstrap)
                    .set("group.id", &group)
                    .set("partition.assignment.strategy", &strategy)
                    .set("session.timeout.ms", "6000")
                    .set("heartbeat.interval.ms", "300")
                    .set("auto.offset.reset", "earliest")
                    .set("enable.auto.commit", "false")
                    .set("fetch.max.wait.ms", "100");
                let consumer = Consumer::new(&c).unwrap();
                consumer.subscribe(&[topic.as_str()], Some(Rc::new(Recorder { assigned: a, revoked: r }))).unwrap();
                while !s.load(Ordering::Relaxed) {
                    let freeze = f.swap(0, Ordering::Relaxed);
                    if freeze > 0 {
                        // A member that hangs: its thread runs nothing, heartbeats included.
                        std::thread::sleep(Duration::from_millis(freeze));
                    }
                    let records = consumer.poll(Duration::from_millis(100)).await.unwrap();
                    if !records.is_empty() {
                        seen.lock().unwrap().extend(records.iter().map(|r| (r.partition, r.offset)));
                        consumer.commit_sync(None).await.unwrap();
                    }
                }
                consumer.close().await.unwrap();
            })
        });
        Member { stop, freeze_ms, thread: Some(thread), assigned, revoked }
    }

    fn assigned(&self) -> BTreeSet<i32> {
        self.assigned.lock().unwrap().clone()
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn produce_rust(bootstrap: &str, topic: &str, from: usize, count: usize) {
    block_on(async {
        let producer = Producer::new(&config(bootstrap)).unwrap();
        let mut pending = Vec::new();
        for i in from..from + count {
            pending.push(producer.enqueue(ProducerRecord::new(topic, i.to_string()).key(i.to_string())).await.unwrap());
        }
        for p in pending {
            p.await.unwrap();
        }
    })
}

fn group_broker() -> TestBroker {
    TestBroker::start(&[("group.initial.rebalance.delay.ms", "0"), ("group.min.session.timeout.ms", "1000")])
}

fn assert_exactly_once(seen: &Mutex<Vec<(i32, i64)>>, expected: usize) {
    let seen = seen.lock().unwrap();
    let unique: BTreeSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), expected);
    assert_eq!(seen.len(), expected, "a record was delivered twice");
}

#[test]
fn rust_consumers_split_a_topic_and_commit() {
    let broker = group_broker();
    let bootstrap = broker.bootstrap();
    create(&bootstrap, "split", 4);
    produce_rust(&bootstrap, "split", 0, 400);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut a = Member::start(&bootstrap, "rust-range", "split", "range", seen.clone());
    let mut b = Member::start(&bootstrap, "rust-range", "split", "range", seen.clone());
    wait_until("both members hold two partitions", Duration::from_secs(30), || a.assigned().len() == 2 && b.assigned().len() == 2);
    assert!(a.assigned().is_disjoint(&b.assigned()));
    wait_until("all 400 records read", Duration::from_secs(30), || seen.lock().unwrap().len() >= 400);
    a.stop();
    b.stop();
    assert_exactly_once(&seen, 400);
    // The commits hold: a new member reads only what is produced after.
    produce_rust(&bootstrap, "split", 400, 40);
    let later = Arc::new(Mutex::new(Vec::new()));
    let c = Member::start(&bootstrap, "rust-range", "split", "range", later.clone());
    wait_until("the 40 new records", Duration::from_secs(30), || later.lock().unwrap().len() >= 40);
    std::thread::sleep(Duration::from_millis(300));
    drop(c);
    assert_exactly_once(&later, 40);
    let offsets = block_on(async { Admin::new(&config(&bootstrap)).unwrap().group_offsets("rust-range").await.unwrap() });
    assert_eq!(offsets.values().sum::<i64>(), 440);
}

#[test]
fn cooperative_sticky_moves_only_what_the_new_member_takes() {
    let broker = group_broker();
    let bootstrap = broker.bootstrap();
    create(&bootstrap, "coop", 4);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let a = Member::start(&bootstrap, "rust-coop", "coop", "cooperative-sticky", seen.clone());
    wait_until("the first member holds everything", Duration::from_secs(30), || a.assigned().len() == 4);
    let b = Member::start(&bootstrap, "rust-coop", "coop", "cooperative-sticky", seen.clone());
    wait_until("two partitions each", Duration::from_secs(30), || a.assigned().len() == 2 && b.assigned().len() == 2);
    // Cooperative: the first member gave up exactly the two partitions that moved, once, and
    // kept the other two throughout.
    let revoked = a.revoked.lock().unwrap().clone();
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0].len(), 2);
    assert!(revoked[0].iter().all(|p| b.assigned().contains(p)));
    produce_rust(&bootstrap, "coop", 0, 200);
    wait_until("all 200 records read", Duration::from_secs(30), || seen.lock().unwrap().len() >= 200);
    drop(a);
    drop(b);
    assert_exactly_once(&seen, 200);
}

#[test]
fn a_mixed_group_of_rust_and_librdkafka_members_shares_a_topic() {
    let broker = group_broker();
    let bootstrap = broker.bootstrap();
    create(&bootstrap, "mixed", 4);
    produce_rust(&bootstrap, "mixed", 0, 400);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let rust = Member::start(&bootstrap, "mixed-group", "mixed", "range", seen.clone());
    wait_until("the Rust member holds everything", Duration::from_secs(30), || rust.assigned().len() == 4);
    let rd: BaseConsumer = client_config(&bootstrap)
        .set("group.id", "mixed-group")
        .set("partition.assignment.strategy", "range")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "300")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    rd.subscribe(&["mixed"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "rust {:?}, librdkafka {:?}", rust.assigned(), rd.assignment().unwrap().elements().len());
        if let Some(m) = rd.poll(Duration::from_millis(100)) {
            let m = m.unwrap();
            seen.lock().unwrap().push((m.partition(), m.offset()));
            rd.store_offset_from_message(&m).ok();
            rd.commit_message(&m, rdkafka::consumer::CommitMode::Sync).unwrap();
        }
        let rd_parts: BTreeSet<i32> = rd.assignment().unwrap().elements().iter().map(|e| e.partition()).collect();
        if rd_parts.len() == 2 && rust.assigned().len() == 2 && seen.lock().unwrap().len() >= 400 {
            assert!(rd_parts.is_disjoint(&rust.assigned()));
            break;
        }
    }
    drop(rust);
    // Every record was read; records of partitions that moved may be read by both members
    // only if they were not committed before the move, which the per-record commits exclude.
    let seen = seen.lock().unwrap();
    let unique: BTreeSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 400);
}

#[test]
fn a_hung_member_is_expired_and_its_partitions_move() {
    let broker = group_broker();
    let bootstrap = broker.bootstrap();
    create(&bootstrap, "hang", 2);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let a = Member::start(&bootstrap, "hang-group", "hang", "range", seen.clone());
    let b = Member::start(&bootstrap, "hang-group", "hang", "range", seen.clone());
    wait_until("one partition each", Duration::from_secs(30), || a.assigned().len() == 1 && b.assigned().len() == 1);
    // b stops heartbeating for longer than its 6 s session: the coordinator expires it and a
    // takes both partitions.
    b.freeze_ms.store(9_000, Ordering::Relaxed);
    wait_until("the live member holds both partitions", Duration::from_secs(30), || a.assigned().len() == 2);
    produce_rust(&bootstrap, "hang", 0, 100);
    wait_until("all 100 records read", Duration::from_secs(30), || seen.lock().unwrap().len() >= 100);
    assert!(seen.lock().unwrap().len() == 100);
    // Back from its pause, b learns it was expired, rejoins and gets a partition again.
    wait_until("the member that hung is back with one partition", Duration::from_secs(40), || a.assigned().len() == 1 && b.assigned().len() == 1);
    drop(a);
    drop(b);
    assert_exactly_once(&seen, 100);
}

#[test]
fn auto_commit_commits_positions_on_its_interval_and_on_close() {
    let broker = group_broker();
    let bootstrap = broker.bootstrap();
    create(&bootstrap, "auto", 1);
    produce_rust(&bootstrap, "auto", 0, 50);
    let committed =
        |bootstrap: &str| block_on(async { Admin::new(&config(bootstrap)).unwrap().group_offsets("auto-group").await.unwrap().values().sum::<i64>() });
    block_on(async {
        let c = config(&bootstrap)
            .set("group.id", "auto-group")
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "100")
            .set("max.poll.records", "20");
        let consumer = Consumer::new(&c).unwrap();
        consumer.subscribe(&["auto"], None).unwrap();
        let mut read = 0;
        while read < 20 {
            read += consumer.poll(Duration::from_millis(200)).await.unwrap().len();
        }
        assert_eq!(read, 20, "max.poll.records");
        // Keep polling (paused: nothing new is returned) past the interval: the position is
        // committed while the consumer runs, not only when it closes.
        let deadline = Instant::now() + Duration::from_secs(20);
        consumer.pause(&consumer.assignment());
        loop {
            consumer.poll(Duration::from_millis(150)).await.unwrap();
            let b = bootstrap.clone();
            let now = std::thread::spawn(move || committed(&b)).join().unwrap();
            if now == 20 {
                break;
            }
            assert!(Instant::now() < deadline, "auto-commit did not commit position 20 (saw {now})");
        }
        consumer.resume(&consumer.assignment());
        while read < 50 {
            read += consumer.poll(Duration::from_millis(200)).await.unwrap().len();
        }
        consumer.close().await.unwrap();
    });
    assert_eq!(committed(&bootstrap), 50, "close commits the final position");
}

/// A committed offset past the log's end (retention deleted below it, or a bad reset) is
/// replaced by `auto.offset.reset`, not fetched again and again.
#[test]
fn a_committed_offset_out_of_range_is_reset_by_auto_offset_reset() {
    let broker = group_broker();
    let bootstrap = broker.bootstrap();
    create(&bootstrap, "oor", 1);
    produce_rust(&bootstrap, "oor", 0, 10);
    block_on(async {
        let admin = Admin::new(&config(&bootstrap)).unwrap();
        admin.alter_group_offsets("oor-group", &BTreeMap::from([(tp("oor", 0), 1000)])).await.unwrap();
        let c = config(&bootstrap).set("group.id", "oor-group").set("auto.offset.reset", "earliest").set("enable.auto.commit", "false");
        let consumer = Consumer::new(&c).unwrap();
        consumer.subscribe(&["oor"], None).unwrap();
        let mut offsets = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while offsets.len() < 10 {
            assert!(Instant::now() < deadline, "read {offsets:?}");
            offsets.extend(consumer.poll(Duration::from_millis(200)).await.unwrap().iter().map(|r| r.offset));
        }
        assert_eq!(offsets, (0..10).collect::<Vec<i64>>());
        consumer.close().await.unwrap();
    });
}

/// The seeds' command-line walkthrough with `spate` in place of `kafka-*.sh`.
#[test]
fn the_command_line_tools_do_the_kafka_walkthrough() {
    let broker = group_broker();
    let b = broker.bootstrap();
    let spate = env!("CARGO_BIN_EXE_spate");
    let run = |args: &[&str], stdin: Option<&str>| -> (i32, String, String) {
        use std::io::Write;
        let mut cmd = std::process::Command::new(spate);
        cmd.args(args).arg("--bootstrap-server").arg(&b);
        cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
        drop(input);
        let out = child.wait_with_output().unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, out, err) =
        run(&["topics", "--create", "--topic", "walk", "--partitions", "3", "--replication-factor", "1", "--config", "retention.ms=86400000"], None);
    assert_eq!((code, out.trim()), (0, "Created topic walk."), "{err}");
    let (code, out, _) = run(&["topics", "--describe", "--topic", "walk"], None);
    assert_eq!(code, 0);
    assert!(out.starts_with("Topic: walk\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: retention.ms=86400000"), "{out}");
    for p in 0..3 {
        assert!(out.contains(&format!("\tTopic: walk\tPartition: {p}\tLeader: 0\tReplicas: 0\tIsr: 0")), "{out}");
    }
    let (_, out, _) = run(&["topics", "--list"], None);
    assert!(out.lines().any(|l| l == "walk"), "{out}");
    let lines: String = (0..30).map(|i| format!("k{i}:line {i}\n")).collect();
    let (code, _, err) = run(
        &["console-producer", "--topic", "walk", "--property", "parse.key=true", "--property", "key.separator=:", "--producer-property", "linger.ms=20"],
        Some(&lines),
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(
        &["console-consumer", "--topic", "walk", "--from-beginning", "--max-messages", "30", "--property", "print.key=true", "--property", "key.separator=="],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let got: BTreeSet<&str> = out.lines().collect();
    let want: BTreeSet<String> = (0..30).map(|i| format!("k{i}=line {i}")).collect();
    assert_eq!(got, want.iter().map(String::as_str).collect());
    assert!(err.contains("Processed a total of 30 messages"), "{err}");
    // Per key, the order of the lines holds (a key stays on one partition).
    let (_, out, _) =
        run(&["console-consumer", "--topic", "walk", "--partition", "0", "--offset", "0", "--max-messages", "1", "--property", "print.offset=true"], None);
    assert!(out.starts_with("Offset:0\tline "), "{out}");
    // In a group: read everything, then the group's lag is zero.
    let (code, out, err) = run(&["console-consumer", "--topic", "walk", "--group", "walkers", "--from-beginning", "--max-messages", "30"], None);
    assert_eq!((code, out.lines().count()), (0, 30), "{err}");
    let (_, out, _) = run(&["consumer-groups", "--list"], None);
    assert!(out.lines().any(|l| l == "walkers"), "{out}");
    let (code, out, _) = run(&["consumer-groups", "--describe", "--group", "walkers"], None);
    assert_eq!(code, 0);
    let rows: Vec<Vec<&str>> = out.lines().filter(|l| l.starts_with("walkers ")).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert_eq!(rows.iter().map(|r| r[3].parse::<i64>().unwrap()).sum::<i64>(), 30);
    assert!(rows.iter().all(|r| r[3] == r[4] && r[5] == "0"), "{out}");
    // Reset to the beginning: the group reads the 30 lines again.
    let (code, out, err) = run(&["consumer-groups", "--reset-offsets", "--group", "walkers", "--topic", "walk", "--to-earliest", "--execute"], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().filter(|l| l.starts_with("walkers ")).count(), 3, "{out}");
    let (_, out, _) = run(&["consumer-groups", "--describe", "--group", "walkers"], None);
    assert!(out.lines().filter(|l| l.starts_with("walkers ")).all(|l| l.split_whitespace().nth(3) == Some("0")), "{out}");
    let (code, out, _) = run(&["console-consumer", "--topic", "walk", "--group", "walkers", "--max-messages", "30", "--timeout-ms", "20000"], None);
    assert_eq!((code, out.lines().count()), (0, 30));
    // Failures: exit codes and one-line messages.
    let (code, _, err) = run(&["topics", "--describe", "--topic", "no-such-topic"], None);
    assert_ne!(code, 0);
    assert!(err.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{err}");
    let (code, _, err) = run(&["topics", "--create", "--topic", "walk", "--partitions", "1"], None);
    assert_ne!(code, 0);
    assert!(err.contains("TOPIC_ALREADY_EXISTS"), "{err}");
    let (code, _, err) = run(&["topics", "--frobnicate"], None);
    assert_eq!(code, 2, "{err}");
    let out = std::process::Command::new(spate)
        .args(["topics", "--list", "--bootstrap-server", &format!("127.0.0.1:{}", crate::support::free_port())])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"), "{}", String::from_utf8_lossy(&out.stderr));
    for tool in ["topics", "console-producer", "console-consumer", "consumer-groups"] {
        let out = std::process::Command::new(spate).args([tool, "--help"]).output().unwrap();
        assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("--bootstrap-server"), "{tool} --help");
    }
    // The seeds' own producer line, with the older flag: `kafka-console-producer.sh --broker-list
    // host:9092 --topic first`.
    let mut producer = std::process::Command::new(spate)
        .args(["console-producer", "--broker-list", &b, "--topic", "first"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        producer.stdin.take().unwrap().write_all(b"hello world\n").unwrap();
    }
    let out = producer.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, out, _) = run(&["console-consumer", "--topic", "first", "--from-beginning", "--max-messages", "1"], None);
    assert_eq!((code, out.as_str()), (0, "hello world\n"));
    let (code, _, _) = run(&["topics", "--delete", "--topic", "walk"], None);
    assert_eq!(code, 0);
}

/// SIGUSR1 makes the broker log its request times per API since the last report (frame read to
/// response written) and start anew; `bench/latency.sh` reads them beside the client's.
#[test]
fn sigusr1_logs_the_request_times_per_api_and_starts_anew() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    let spate = env!("CARGO_BIN_EXE_spate");
    let mut cmd = Command::new(spate);
    cmd.arg("broker");
    for (k, v) in crate::support::properties(dir.path(), port, &[]) {
        cmd.arg("--override").arg(format!("{k}={v}"));
    }
    let mut broker = cmd.env("RUST_LOG", "info").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let stderr = broker.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    crate::support::wait_for_port(port, Duration::from_secs(30));
    let pid = nix::unistd::Pid::from_raw(broker.id() as i32);
    // The report lines a SIGUSR1 makes the broker log: all of them, up to half a second of
    // quiet after the first.
    let report = || -> Vec<String> {
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).unwrap();
        let mut got: Vec<String> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match lines.recv_timeout(Duration::from_millis(500)) {
                // Only the report's lines: any other line the broker logs meanwhile is not one.
                Ok(line) if line.contains("request times") => got.push(line),
                Ok(_) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) if !got.is_empty() => return got,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("the broker's log ended (it exited?); logged: {got:?}"),
            }
        }
        panic!("no report after SIGUSR1; logged: {got:?}");
    };
    let b = format!("127.0.0.1:{port}");
    let out = Command::new(spate).args(["topics", "--create", "--topic", "timed", "--bootstrap-server", &b]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut producer = Command::new(spate)
        .args(["console-producer", "--topic", "timed", "--bootstrap-server", &b])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut input = producer.stdin.take().unwrap();
        for i in 0..20 {
            writeln!(input, "record {i}").unwrap();
        }
    }
    assert!(producer.wait().unwrap().success());
    let logged = report();
    let line = |api: &str| logged.iter().find(|l| l.contains(&format!(r#"request times api="{api}""#))).cloned();
    let create = line("CreateTopics").unwrap_or_else(|| panic!("{logged:?}"));
    assert!(create.contains("count=1 "), "{create}");
    let produce = line("Produce").unwrap();
    let field = |l: &str, name: &str| -> u64 {
        let at = l.find(&format!("{name}=")).unwrap_or_else(|| panic!("{name} in {l}")) + name.len() + 1;
        l[at..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    assert!(field(&produce, "count") >= 1, "{produce}");
    let (p50, p99, max) = (field(&produce, "p50_us"), field(&produce, "p99_us"), field(&produce, "max_us"));
    assert!(p50 >= 1 && p50 <= p99 && p99 <= max && max < 30_000_000, "{produce}");
    // The next report covers only what came after the first.
    let logged = report();
    assert!(logged.len() == 1 && logged[0].contains("no request since the last report"), "{logged:?}");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(broker.wait().unwrap().success());
}
