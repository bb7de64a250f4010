//! ListOffsets as clients use it (earliest, latest, by timestamp), LogAppendTime topics, and
//! the broker's startup errors for bad configuration.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Timestamp;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::support::{assign_all, assigning_consumer, client_config, create_topic, TestBroker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_are_listed_by_position_and_by_timestamp() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "timed", 1).await;
    let producer: FutureProducer = client_config(&bootstrap).set("linger.ms", "0").create().unwrap();
    // Record i carries the timestamp 1_000_000 + 1_000 * i.
    for i in 0..50i64 {
        producer.send(FutureRecord::to("timed").key("k").payload("v").timestamp(1_000_000 + 1_000 * i), Duration::from_secs(10)).await.unwrap();
    }
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = assigning_consumer(&b);
        let (low, high) = consumer.fetch_watermarks("timed", 0, Duration::from_secs(10)).unwrap();
        assert_eq!((low, high), (0, 50));
        let mut query = TopicPartitionList::new();
        query.add_partition_offset("timed", 0, Offset::Offset(1_000_000 + 1_000 * 17 + 1)).unwrap();
        let found = consumer.offsets_for_times(query, Duration::from_secs(10)).unwrap();
        assert_eq!(found.find_partition("timed", 0).unwrap().offset(), Offset::Offset(18), "the first record at or after the timestamp");
        let mut late = TopicPartitionList::new();
        late.add_partition_offset("timed", 0, Offset::Offset(9_000_000)).unwrap();
        let found = consumer.offsets_for_times(late, Duration::from_secs(10)).unwrap();
        assert_eq!(found.find_partition("timed", 0).unwrap().offset(), Offset::End, "no record that late");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_append_time_topic_stamps_the_broker_time() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    let admin: AdminClient<DefaultClientContext> = client_config(&bootstrap).create().unwrap();
    admin
        .create_topics(&[NewTopic::new("appended", 1, TopicReplication::Fixed(1)).set("message.timestamp.type", "LogAppendTime")], &AdminOptions::new())
        .await
        .unwrap()[0]
        .clone()
        .unwrap();
    let producer: FutureProducer = client_config(&bootstrap).create().unwrap();
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let delivered = producer.send(FutureRecord::to("appended").key("k").payload("v").timestamp(42), Duration::from_secs(10)).await.unwrap();
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let consumer = assigning_consumer(&b);
        assign_all(&consumer, "appended", 1);
        let m = loop {
            if let Some(m) = consumer.poll(Duration::from_millis(200)) {
                break m.unwrap().detach();
            }
        };
        assert_eq!(m.offset(), delivered.offset);
        match m.timestamp() {
            Timestamp::LogAppendTime(t) => assert!(t >= before, "the broker's clock, not the producer's 42"),
            other => panic!("expected LogAppendTime, got {other:?}"),
        }
    })
    .await
    .unwrap();
}

#[test]
fn bad_configuration_stops_the_broker_with_the_key_named() {
    for (arg, key) in [("no.such.setting=1", "no.such.setting"), ("num.partitions=lots", "num.partitions"), ("log.retention.ms=x", "log.retention.ms")] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_spate"))
            .args(["broker", "--override", arg, "--override", "log.dirs=/nonexistent-never-created"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{arg}: exit code 2");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{arg}: the error names {key}: {stderr}");
    }
}
