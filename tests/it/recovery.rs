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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_produce_load_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(dir.path(), free_port(), &[("num.partitions", "6"), ("log.segment.bytes", "262144")]);
    let bootstrap = broker.bootstrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (bootstrap, acked, stop) = (bootstrap.clone(), acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let producer: BaseProducer<Acks> =
                client_config(&bootstrap).set("acks", "all").set("linger.ms", "2").set("message.timeout.ms", "2000").create_with_context(Acks(acked)).unwrap();
            let mut i = 0u64;
            // Bounded: stops when told, or after 200,000 records.
            while !stop.load(Ordering::Relaxed) && i < 200_000 {
                let v = format!("load-{i:08}");
                if producer.send(BaseRecord::to("load").key(&v).payload(&v)).is_ok() {
                    i += 1;
                }
                producer.poll(Duration::ZERO);
            }
            let _ = producer.flush(Duration::from_secs(5));
        })
    };
    // Let acknowledged records pile up, then kill the broker in the middle of the load.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 20_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    broker.kill9();
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
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
