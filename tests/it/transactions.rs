//! Transactions with librdkafka's transactional producer: what read_committed and
//! read_uncommitted consumers see of committed, aborted, open, fenced and timed-out
//! transactions; offsets committed in a transaction; and a consume-transform-produce loop that
//! stays exactly-once while its broker is killed with kill -9 and restarted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::support::{client_config, free_port, BrokerProcess, TestBroker};

/// A small `__transaction_state`, so that the tests' brokers create it quickly.
const TXN_SETTINGS: &[(&str, &str)] = &[("transaction.state.log.num.partitions", "4"), ("offsets.topic.num.partitions", "4")];

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

fn transactional_producer(bootstrap: &str, id: &str, extra: &[(&str, &str)]) -> BaseProducer {
    let mut config = client_config(bootstrap);
    config.set("transactional.id", id).set("linger.ms", "5");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    let producer: BaseProducer = config.create().unwrap();
    producer.init_transactions(Duration::from_secs(30)).unwrap();
    producer
}

fn send(producer: &BaseProducer, topic: &str, partition: i32, value: &str) {
    loop {
        match producer.send(BaseRecord::<str, str>::to(topic).partition(partition).key(value).payload(value)) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), _)) => {
                producer.poll(Duration::from_millis(5));
            }
            Err((e, _)) => panic!("send {value}: {e}"),
        }
    }
}

/// Every record of `topic` a consumer with `isolation` reads, up to its end (the high
/// watermark, or for read_committed the last stable offset), as partition -> values.
fn read_to_end(bootstrap: &str, topic: &str, partitions: i32, isolation: &str) -> BTreeMap<i32, Vec<String>> {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", "spate-txn-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "100")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out: BTreeMap<i32, Vec<String>> = (0..partitions).map(|p| (p, Vec::new())).collect();
    let mut at_end = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while at_end.len() < partitions as usize {
        assert!(Instant::now() < deadline, "{isolation} reader of {topic} did not reach the end: {at_end:?}");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.get_mut(&m.partition()).unwrap().push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap()),
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => panic!("{isolation} reader: {e}"),
            None => {}
        }
    }
    out
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// The end offset a consumer with `isolation` is given for partition 0 (ListOffsets latest).
fn end_offset(bootstrap: &str, topic: &str, isolation: &str) -> i64 {
    let consumer: BaseConsumer = client_config(bootstrap).set("group.id", "spate-txn-watermarks").set("isolation.level", isolation).create().unwrap();
    consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)).unwrap().1
}

#[test]
fn read_committed_consumers_see_committed_transactions_only() {
    let broker = TestBroker::start(TXN_SETTINGS);
    let b = broker.bootstrap();
    block_on(crate::support::create_topic(&b, "txn", 2));
    let producer = transactional_producer(&b, "committer", &[]);
    // Committed, aborted (after its records reached the broker), committed.
    for (name, commit) in [("a", true), ("b", false), ("c", true)] {
        producer.begin_transaction().unwrap();
        for (i, v) in values(name, 20).iter().enumerate() {
            send(&producer, "txn", i as i32 % 2, v);
        }
        producer.flush(Duration::from_secs(10)).unwrap();
        if commit {
            producer.commit_transaction(Duration::from_secs(10)).unwrap();
        } else {
            producer.abort_transaction(Duration::from_secs(10)).unwrap();
        }
    }
    // And one left open, its records written.
    producer.begin_transaction().unwrap();
    for v in values("d", 10) {
        send(&producer, "txn", 0, &v);
    }
    producer.flush(Duration::from_secs(10)).unwrap();

    let expect =
        |names: &[&str], partition: usize| -> Vec<String> { names.iter().flat_map(|n| values(n, 20).into_iter().skip(partition).step_by(2)).collect() };
    let committed = read_to_end(&b, "txn", 2, "read_committed");
    assert_eq!(committed[&0], expect(&["a", "c"], 0));
    assert_eq!(committed[&1], expect(&["a", "c"], 1));
    let everything = read_to_end(&b, "txn", 2, "read_uncommitted");
    let mut p0 = expect(&["a", "b", "c"], 0);
    p0.extend(values("d", 10));
    assert_eq!(everything[&0], p0, "read_uncommitted sees aborted and open records too");
    assert_eq!(everything[&1], expect(&["a", "b", "c"], 1));
    // 10 + 10 + 10 records and 3 markers, then the open transaction's 10: the last stable
    // offset stops at its first record.
    assert_eq!(end_offset(&b, "txn", "read_committed"), 33);
    assert_eq!(end_offset(&b, "txn", "read_uncommitted"), 43);

    producer.commit_transaction(Duration::from_secs(10)).unwrap();
    let committed = read_to_end(&b, "txn", 2, "read_committed");
    let mut p0 = expect(&["a", "c"], 0);
    p0.extend(values("d", 10));
    assert_eq!(committed[&0], p0, "the open transaction, once committed");
    assert_eq!(end_offset(&b, "txn", "read_committed"), 44);

    // The aborted transaction is in partition 0's transaction index, as Kafka writes it.
    let index = broker.log_dir().join("txn-0").join("00000000000000000000.txnindex");
    assert_eq!(std::fs::metadata(&index).map(|m| m.len()).unwrap_or(0), 34, "one aborted transaction in {}", index.display());
}

#[test]
fn a_new_producer_with_the_same_transactional_id_fences_the_old_one() {
    let broker = TestBroker::start(TXN_SETTINGS);
    let b = broker.bootstrap();
    block_on(crate::support::create_topic(&b, "fenced", 1));
    let zombie = transactional_producer(&b, "same-id", &[]);
    zombie.begin_transaction().unwrap();
    for v in values("zombie", 5) {
        send(&zombie, "fenced", 0, &v);
    }
    zombie.flush(Duration::from_secs(10)).unwrap();
    // The new instance's InitProducerId aborts the zombie's transaction and bumps the epoch.
    let fresh = transactional_producer(&b, "same-id", &[]);
    fresh.begin_transaction().unwrap();
    for v in values("fresh", 5) {
        send(&fresh, "fenced", 0, &v);
    }
    fresh.commit_transaction(Duration::from_secs(10)).unwrap();
    // The zombie can neither write nor commit any more.
    send(&zombie, "fenced", 0, "late");
    let _ = zombie.flush(Duration::from_secs(5));
    match zombie.commit_transaction(Duration::from_secs(10)) {
        Err(KafkaError::Transaction(e)) => assert!(e.is_fatal(), "the zombie's commit fails fatally: {e}"),
        other => panic!("the zombie's commit must fail: {other:?}"),
    }
    let committed = read_to_end(&b, "fenced", 1, "read_committed");
    assert_eq!(committed[&0], values("fresh", 5));
}

#[test]
fn an_abandoned_transaction_is_aborted_after_its_timeout() {
    let mut settings = TXN_SETTINGS.to_vec();
    settings.push(("transaction.abort.timed.out.transaction.cleanup.interval.ms", "200"));
    let broker = TestBroker::start(&settings);
    let b = broker.bootstrap();
    block_on(crate::support::create_topic(&b, "abandoned", 1));
    let abandoned = transactional_producer(&b, "abandoned", &[("transaction.timeout.ms", "1500")]);
    abandoned.begin_transaction().unwrap();
    for v in values("lost", 5) {
        send(&abandoned, "abandoned", 0, &v);
    }
    abandoned.flush(Duration::from_secs(10)).unwrap();
    // The producer hangs (its process stopped, say): it never ends the transaction.
    let other = transactional_producer(&b, "other", &[]);
    other.begin_transaction().unwrap();
    send(&other, "abandoned", 0, "after");
    other.commit_transaction(Duration::from_secs(10)).unwrap();
    assert_eq!(end_offset(&b, "abandoned", "read_committed"), 0, "the open transaction holds the last stable offset");
    let deadline = Instant::now() + Duration::from_secs(20);
    while end_offset(&b, "abandoned", "read_committed") == 0 {
        assert!(Instant::now() < deadline, "the transaction was not aborted after its timeout");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(read_to_end(&b, "abandoned", 1, "read_committed")[&0], vec!["after".to_string()]);
    // Its producer was fenced by the abort's epoch bump.
    match abandoned.commit_transaction(Duration::from_secs(10)) {
        Err(_) => {}
        Ok(()) => panic!("a commit after the coordinator aborted the transaction must fail"),
    }
}

/// Copies every record of `input` to `output` in transactions that also commit the copier's
/// consumer offsets (`send_offsets_to_transaction`). On an error the producer and consumer are
/// rebuilt (as an application restarts), and go on from the last committed offsets.
struct Copier {
    consumer: BaseConsumer,
    producer: BaseProducer,
}

impl Copier {
    fn new(bootstrap: &str) -> Result<Copier, KafkaError> {
        // The producer first: its InitProducerId fences a previous copier and aborts its
        // transaction, whose pending offsets would otherwise hold back the committed offsets
        // a read_committed consumer asks for (KIP-447's require_stable).
        let producer: BaseProducer = client_config(bootstrap)
            .set("transactional.id", "copier-txn")
            .set("linger.ms", "5")
            .set("transaction.timeout.ms", "10000")
            .set("message.timeout.ms", "10000")
            .create()?;
        producer.init_transactions(Duration::from_secs(15))?;
        let consumer: BaseConsumer = client_config(bootstrap)
            .set("group.id", "copier")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "50")
            .set("session.timeout.ms", "6000")
            .create()?;
        // A fixed assignment with the group's committed offsets: the copier is alone.
        let mut tpl = TopicPartitionList::new();
        for p in 0..2 {
            tpl.add_partition("copy-in", p);
        }
        let committed = consumer.committed_offsets(tpl, Duration::from_secs(10))?;
        let mut assignment = TopicPartitionList::new();
        for e in committed.elements() {
            let offset = if e.offset() == Offset::Invalid { Offset::Beginning } else { e.offset() };
            assignment.add_partition_offset("copy-in", e.partition(), offset)?;
        }
        consumer.assign(&assignment)?;
        Ok(Copier { consumer, producer })
    }

    /// One transaction of up to `max` records; how many it copied. With `crash`, the
    /// application dies after its records and offsets reached the broker, before the commit.
    fn copy_once(&self, max: usize, crash: bool) -> Result<usize, KafkaError> {
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        let mut batch = Vec::new();
        let deadline = Instant::now() + Duration::from_millis(300);
        while batch.len() < max && Instant::now() < deadline {
            match self.consumer.poll(Duration::from_millis(50)) {
                Some(Ok(m)) => {
                    next.insert(m.partition(), m.offset() + 1);
                    batch.push((m.partition(), String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap()));
                }
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        if batch.is_empty() {
            return Ok(0);
        }
        self.producer.begin_transaction()?;
        for (partition, value) in &batch {
            if let Err((e, _)) = self.producer.send(BaseRecord::<str, str>::to("copy-out").partition(*partition).key(value).payload(value)) {
                return Err(e);
            }
        }
        let mut offsets = TopicPartitionList::new();
        for (p, o) in &next {
            offsets.add_partition_offset("copy-in", *p, Offset::Offset(*o))?;
        }
        let metadata = self.consumer.group_metadata().expect("a consumer with a group id has group metadata");
        self.producer.send_offsets_to_transaction(&offsets, &metadata, Duration::from_secs(10))?;
        if crash {
            self.producer.flush(Duration::from_secs(10))?;
            return Ok(0);
        }
        self.producer.commit_transaction(Duration::from_secs(10))?;
        Ok(batch.len())
    }
}

/// A broker (a child process, for kill -9) with `input` holding `records` records "r00000",
/// "r00001", ... spread over its 2 partitions (record i in partition i % 2), and an empty
/// `output` of 2 partitions.
fn broker_with_input(input: &str, output: &str, records: usize) -> (tempfile::TempDir, BrokerProcess) {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), free_port(), TXN_SETTINGS);
    let b = broker.bootstrap();
    block_on(crate::support::create_topic(&b, input, 2));
    block_on(crate::support::create_topic(&b, output, 2));
    let producer: BaseProducer = client_config(&b).set("enable.idempotence", "true").create().unwrap();
    for i in 0..records {
        send(&producer, input, (i % 2) as i32, &format!("r{i:05}"));
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    (dir, broker)
}

/// The killer: `kills` times, once `copied` reaches the next `records / parts`, a kill -9 of
/// the broker and a restart, at whatever point the copier is then (mid-transaction,
/// mid-commit, between two). Gives the broker back when done.
fn spawn_killer(
    mut broker: BrokerProcess,
    copied: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    kills: usize,
    records: usize,
    parts: usize,
) -> std::thread::JoinHandle<BrokerProcess> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(120);
        for k in 1..=kills {
            while copied.load(std::sync::atomic::Ordering::Relaxed) < k * records / parts && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(7 * k as u64));
            broker.kill9();
            broker.restart();
        }
        broker
    })
}

#[test]
fn consume_transform_produce_stays_exactly_once_across_kill_9() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    const RECORDS: usize = 6_000;
    const KILLS: usize = 3;
    let (_dir, broker) = broker_with_input("copy-in", "copy-out", RECORDS);
    let b = broker.bootstrap();
    let copied = Arc::new(AtomicUsize::new(0));
    let killer = spawn_killer(broker, copied.clone(), KILLS, RECORDS, KILLS + 2);
    let started = Instant::now();
    let mut copier: Option<Copier> = None;
    let (mut starts, mut failures, mut crashes, mut transactions) = (0, 0, 0, 0usize);
    loop {
        assert!(started.elapsed() < Duration::from_secs(240), "the copy did not finish: {starts} copier starts, {failures} failures");
        if copier.is_none() {
            match Copier::new(&b) {
                Ok(c) => copier = Some(c),
                Err(e) => {
                    eprintln!("copier start failed ({e}); retrying");
                    std::thread::sleep(Duration::from_millis(300));
                    continue;
                }
            }
            starts += 1;
        }
        transactions += 1;
        // Every 9th transaction, the copier itself dies before its commit: the next one's
        // InitProducerId fences it and aborts its transaction.
        if transactions % 9 == 0 {
            if copier.as_ref().unwrap().copy_once(100, true).is_ok() {
                crashes += 1;
            }
            copier = None;
            continue;
        }
        match copier.as_ref().unwrap().copy_once(100, false) {
            Ok(0) if killer.is_finished() => {
                // Nothing left to read from the committed offsets on: done, if it is all there.
                let total: usize = read_to_end(&b, "copy-out", 2, "read_committed").values().map(Vec::len).sum();
                if total >= RECORDS {
                    break;
                }
            }
            Ok(n) => {
                copied.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                // As an application restarts: a new producer (which fences the old one and
                // aborts its transaction) and a consumer from the committed offsets.
                failures += 1;
                eprintln!("copier failed ({e}); starting a new one");
                copier = None;
            }
        }
    }
    let mut broker = killer.join().unwrap();
    let out = read_to_end(&b, "copy-out", 2, "read_committed");
    for p in 0..2 {
        let expected: Vec<String> = (0..RECORDS).filter(|i| i % 2 == p as usize).map(|i| format!("r{i:05}")).collect();
        assert_eq!(out[&p].len(), expected.len(), "partition {p}: every record copied once ({starts} copier starts, {failures} failures)");
        assert_eq!(out[&p], expected, "partition {p}: in order, no duplicate, none missing");
    }
    // read_uncommitted sees the aborted copies too: the crashed copiers' at least.
    let everything: usize = read_to_end(&b, "copy-out", 2, "read_uncommitted").values().map(Vec::len).sum();
    eprintln!("{KILLS} kills, {crashes} copier crashes, {starts} copier starts, {failures} failures, {} aborted copies", everything - RECORDS);
    assert!(crashes >= 3 && everything > RECORDS, "the crashed copiers' transactions were written, then aborted");
    drop(copier);
    broker.terminate();
}

/// Spate's own client: a transactional copier (the Rust producer's transactions, the Rust
/// consumer reading read_committed from the offsets committed in them) through kill -9s of
/// the broker and crashes of its own; then aborted records stay out of a Rust read_committed
/// reader and show to a read_uncommitted one.
#[test]
fn the_rust_client_copies_exactly_once_with_transactions() {
    use spate::client::{ClientConfig, Consumer as RustConsumer, Producer as RustProducer, ProducerRecord, TopicPartition};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    const RECORDS: usize = 3_000;
    let (_dir, broker) = broker_with_input("rust-in", "rust-out", RECORDS);
    let b = broker.bootstrap();
    let copied = Arc::new(AtomicUsize::new(0));
    let killer = spawn_killer(broker, copied.clone(), 2, RECORDS, 4);
    let config = |extra: &[(&str, &str)]| {
        let mut c = ClientConfig::new().set("bootstrap.servers", &b).set("request.timeout.ms", "5000").set("max.block.ms", "30000");
        for (k, v) in extra {
            c = c.set(k, v);
        }
        c
    };
    let tps: Vec<TopicPartition> = (0..2).map(|p| TopicPartition { topic: "rust-in".into(), partition: p }).collect();
    let rt = compio::runtime::Runtime::new().unwrap();
    let (starts, failures, crashes) = rt.block_on(async {
        let (mut starts, mut failures, mut crashes, mut transactions) = (0, 0, 0, 0usize);
        let started = Instant::now();
        'copier: loop {
            assert!(started.elapsed() < Duration::from_secs(240), "the Rust copier did not finish");
            // A new copier: the producer first (it fences the previous one), then the consumer
            // from the committed offsets.
            let producer = match RustProducer::new(&config(&[("transactional.id", "rust-copier"), ("linger.ms", "5"), ("transaction.timeout.ms", "10000")])) {
                Ok(p) => p,
                Err(e) => panic!("producer: {e}"),
            };
            if let Err(e) = producer.init_transactions().await {
                eprintln!("init_transactions: {e}");
                continue;
            }
            let consumer = RustConsumer::new(&config(&[
                ("group.id", "rust-copier"),
                ("isolation.level", "read_committed"),
                ("enable.auto.commit", "false"),
                ("fetch.max.wait.ms", "50"),
                ("max.poll.records", "100"),
            ]))
            .unwrap();
            consumer.assign(&tps);
            let committed = match consumer.committed(&tps).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("committed: {e}");
                    continue;
                }
            };
            for (tp, offset) in committed {
                let _ = consumer.seek(&tp, offset.unwrap_or(0));
            }
            starts += 1;
            loop {
                let records = match consumer.poll(Duration::from_millis(200)).await {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("poll: {e}");
                        failures += 1;
                        continue 'copier;
                    }
                };
                if records.is_empty() {
                    if killer.is_finished() && read_to_end(&b, "rust-out", 2, "read_committed").values().map(Vec::len).sum::<usize>() >= RECORDS {
                        break 'copier;
                    }
                    continue;
                }
                transactions += 1;
                let mut next: BTreeMap<i32, i64> = BTreeMap::new();
                let result = async {
                    producer.begin_transaction()?;
                    for r in &records {
                        next.insert(r.partition, r.offset + 1);
                        producer.enqueue(ProducerRecord::new("rust-out", r.value.clone().unwrap()).partition(r.partition)).await?;
                    }
                    let offsets: Vec<(String, i32, i64)> = next.iter().map(|(p, o)| ("rust-in".to_string(), *p, *o)).collect();
                    producer.send_offsets_to_transaction(&offsets, "rust-copier", -1, "").await?;
                    if transactions % 7 == 0 {
                        // The copier dies here: records and offsets written, no commit.
                        producer.flush().await;
                        return Ok(false);
                    }
                    producer.commit_transaction().await.map(|()| true)
                }
                .await;
                match result {
                    Ok(true) => {
                        copied.fetch_add(records.len(), Ordering::Relaxed);
                    }
                    Ok(false) => {
                        crashes += 1;
                        continue 'copier;
                    }
                    Err(e) => {
                        eprintln!("transaction: {e}");
                        failures += 1;
                        continue 'copier;
                    }
                }
            }
        }
        (starts, failures, crashes)
    });
    let mut broker = killer.join().unwrap();
    let out = read_to_end(&b, "rust-out", 2, "read_committed");
    for p in 0..2 {
        let expected: Vec<String> = (0..RECORDS).filter(|i| i % 2 == p as usize).map(|i| format!("r{i:05}")).collect();
        assert_eq!(out[&p], expected, "partition {p}: every record once, in order ({starts} starts, {failures} failures, {crashes} crashes)");
    }
    let everything: usize = read_to_end(&b, "rust-out", 2, "read_uncommitted").values().map(Vec::len).sum();
    eprintln!("Rust copier: 2 kills, {crashes} crashes, {starts} starts, {failures} failures, {} aborted copies", everything - RECORDS);
    assert!(crashes >= 2 && everything > RECORDS);

    // The Rust consumer, read_committed, leaves the aborted copies out; read_uncommitted not.
    rt.block_on(async {
        for (isolation, expected) in [("read_committed", RECORDS), ("read_uncommitted", everything)] {
            let consumer = RustConsumer::new(&config(&[("isolation.level", isolation), ("fetch.max.wait.ms", "50")])).unwrap();
            let out: Vec<TopicPartition> = (0..2).map(|p| TopicPartition { topic: "rust-out".into(), partition: p }).collect();
            consumer.assign(&out);
            consumer.seek_to_beginning(&out).await.unwrap();
            let mut seen = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(30);
            while seen.len() < expected && Instant::now() < deadline {
                seen.extend(consumer.poll(Duration::from_millis(200)).await.unwrap().into_iter().map(|r| r.value.unwrap()));
            }
            // Nothing more comes.
            seen.extend(consumer.poll(Duration::from_millis(500)).await.unwrap().into_iter().map(|r| r.value.unwrap()));
            assert_eq!(seen.len(), expected, "the Rust {isolation} consumer");
            if isolation == "read_committed" {
                let distinct: BTreeSet<_> = seen.iter().collect();
                assert_eq!(distinct.len(), RECORDS, "no aborted copy among what read_committed returns");
            }
        }
    });
    broker.terminate();
}
