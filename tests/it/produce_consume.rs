//! Produce and consume with librdkafka: every record, key, value, header and per-key order
//! checked, with acks 0, 1 and all; and a long-poll fetch that answers when data arrives.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message};

use crate::support::{assign_all, assigning_consumer, client_config, create_topic, TestBroker};

const RECORDS: u64 = 1_000_000;
const PARTITIONS: i32 = 12;
const KEYS: u64 = 10_000;

#[derive(Default)]
struct Counts {
    delivered: AtomicU64,
    failed: AtomicU64,
}

struct CountingContext(Arc<Counts>);

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.0.delivered.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.0.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

fn key(i: u64) -> String {
    format!("key-{}", i % KEYS)
}

fn value(i: u64) -> String {
    format!("value-{i:010}-{}", "x".repeat((i % 64) as usize))
}

/// Produces `RECORDS` keyed records with one header each, then reads them all back.
fn produce_and_check(bootstrap: &str, topic: &str, acks: &str) {
    let counts = Arc::new(Counts::default());
    let producer: BaseProducer<CountingContext> = client_config(bootstrap)
        .set("acks", acks)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "200000")
        .create_with_context(CountingContext(counts.clone()))
        .unwrap();
    for i in 0..RECORDS {
        let (k, v, h) = (key(i), value(i), i.to_be_bytes());
        loop {
            let record = BaseRecord::to(topic).key(&k).payload(&v).headers(OwnedHeaders::new().insert(Header { key: "seq", value: Some(&h[..]) }));
            match producer.send(record) {
                Ok(()) => break,
                Err((e, _)) if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) => {
                    producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => panic!("send failed: {e}"),
            }
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    assert_eq!(counts.failed.load(Ordering::Relaxed), 0, "acks={acks}: no delivery may fail");
    assert_eq!(counts.delivered.load(Ordering::Relaxed), RECORDS, "acks={acks}: every record is reported delivered");

    let consumer = assigning_consumer(bootstrap);
    assign_all(&consumer, topic, PARTITIONS);
    let mut seen = vec![false; RECORDS as usize];
    let mut last_per_key = vec![-1i64; KEYS as usize];
    let mut per_partition = [0u64; PARTITIONS as usize];
    let mut next_offset = [0i64; PARTITIONS as usize];
    let mut received = 0u64;
    let deadline = Instant::now() + Duration::from_secs(180);
    while received < RECORDS {
        assert!(Instant::now() < deadline, "acks={acks}: only {received} of {RECORDS} records came back");
        let Some(message) = consumer.poll(Duration::from_millis(200)) else { continue };
        let m = message.unwrap();
        let headers = m.headers().expect("every record has a header");
        let seq = u64::from_be_bytes(headers.get(0).value.unwrap().try_into().unwrap());
        assert_eq!(headers.get(0).key, "seq");
        assert_eq!(m.key().unwrap(), key(seq).as_bytes(), "key of record {seq}");
        assert_eq!(m.payload().unwrap(), value(seq).as_bytes(), "value of record {seq}");
        assert!(!seen[seq as usize], "record {seq} came back twice");
        seen[seq as usize] = true;
        let p = m.partition() as usize;
        assert_eq!(m.offset(), next_offset[p], "partition {p}: offsets are dense and in order");
        next_offset[p] += 1;
        let k = (seq % KEYS) as usize;
        assert!((seq as i64) > last_per_key[k], "records of one key come back in the order produced");
        last_per_key[k] = seq as i64;
        per_partition[p] += 1;
        received += 1;
    }
    assert!(per_partition.iter().all(|&n| n > 0), "keys spread over every partition: {per_partition:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_keyed_records_round_trip_with_acks_0_1_and_all() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    for acks in ["0", "1", "all"] {
        let topic = format!("records-acks-{acks}");
        create_topic(&bootstrap, &topic, PARTITIONS).await;
        let b = bootstrap.clone();
        tokio::task::spawn_blocking(move || produce_and_check(&b, &topic, acks)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_fetch_returns_when_data_arrives() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    // One partition: librdkafka keeps one fetch in flight per broker, and a fetch sent before a
    // second partition's start offset was known would not include it (against Kafka too).
    create_topic(&bootstrap, "long-poll", 1).await;
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let consumer: rdkafka::consumer::BaseConsumer = client_config(&b)
            .set("group.id", "spate-tests")
            .set("enable.auto.commit", "false")
            // The broker may hold each fetch for up to 10 s; it must answer as soon as a
            // record arrives instead.
            .set("fetch.wait.max.ms", "10000")
            .set("fetch.min.bytes", "1")
            .create()
            .unwrap();
        assign_all(&consumer, "long-poll", 1);
        // Let the consumer's first (empty) fetches settle into their long poll.
        let settle = Instant::now();
        while settle.elapsed() < Duration::from_secs(2) {
            assert!(consumer.poll(Duration::from_millis(100)).is_none());
        }
        let producer: BaseProducer = client_config(&b).set("linger.ms", "0").create().unwrap();
        producer.send(BaseRecord::to("long-poll").key("k").payload("wake up")).unwrap();
        producer.flush(Duration::from_secs(10)).unwrap();
        // Timed from the acknowledgement: the record is in the log from here on.
        let sent = Instant::now();
        loop {
            if let Some(m) = consumer.poll(Duration::from_millis(50)) {
                assert_eq!(m.unwrap().payload().unwrap(), b"wake up");
                break;
            }
            assert!(sent.elapsed() < Duration::from_secs(20), "the record never arrived");
        }
        let latency = sent.elapsed();
        // Waiting out the fetch's 10 s would take at least that; answering on arrival takes
        // milliseconds. The bound is wide on purpose: this checks behaviour, not speed.
        assert!(latency < Duration::from_secs(5), "fetch answered after {latency:?}, not when data arrived");
    })
    .await
    .unwrap();
}
