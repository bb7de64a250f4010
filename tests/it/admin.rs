//! Topic administration through librdkafka's admin client, and what producers see of it.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::support::{client_config, TestBroker};

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    client_config(bootstrap).create().unwrap()
}

fn partition_count(bootstrap: &str, topic: &str) -> Result<usize, RDKafkaErrorCode> {
    let consumer: rdkafka::consumer::BaseConsumer = client_config(bootstrap).create().unwrap();
    let md = rdkafka::consumer::Consumer::fetch_metadata(&consumer, Some(topic), Duration::from_secs(10)).unwrap();
    let t = &md.topics()[0];
    match t.error() {
        Some(e) => Err(e.into()),
        None => Ok(t.partitions().len()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_grown_described_and_deleted() {
    let broker = TestBroker::start(&[("auto.create.topics.enable", "false")]);
    let bootstrap = broker.bootstrap();
    let admin = admin(&bootstrap);
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));

    let topic = NewTopic::new("orders", 12, TopicReplication::Fixed(1)).set("retention.ms", "3600000").set("segment.bytes", "1048576");
    let results = admin.create_topics(&[topic], &opts).await.unwrap();
    assert_eq!(results, vec![Ok("orders".to_string())]);
    let b = bootstrap.clone();
    assert_eq!(tokio::task::spawn_blocking(move || partition_count(&b, "orders")).await.unwrap(), Ok(12));
    assert!(broker.log_dir().join("orders-11").is_dir(), "every partition has its folder");

    // Creating it again, or with an impossible replication factor, fails with Kafka's errors.
    let again = admin.create_topics(&[NewTopic::new("orders", 3, TopicReplication::Fixed(1))], &opts).await.unwrap();
    assert_eq!(again, vec![Err(("orders".to_string(), RDKafkaErrorCode::TopicAlreadyExists))]);
    let replicated = admin.create_topics(&[NewTopic::new("replicated", 3, TopicReplication::Fixed(3))], &opts).await.unwrap();
    assert_eq!(replicated, vec![Err(("replicated".to_string(), RDKafkaErrorCode::InvalidReplicationFactor))]);
    let bad_config = admin.create_topics(&[NewTopic::new("badconfig", 1, TopicReplication::Fixed(1)).set("retention.ms", "soon")], &opts).await.unwrap();
    assert_eq!(bad_config, vec![Err(("badconfig".to_string(), RDKafkaErrorCode::InvalidConfig))]);

    // The topic's overrides and the broker's defaults are both described.
    let described = admin.describe_configs(&[ResourceSpecifier::Topic("orders")], &opts).await.unwrap();
    let resource = described[0].as_ref().unwrap();
    let entry = |name: &str| resource.entries.iter().find(|e| e.name == name).unwrap_or_else(|| panic!("{name} described"));
    assert_eq!(entry("retention.ms").value.as_deref(), Some("3600000"));
    assert!(!entry("retention.ms").is_default);
    assert_eq!(entry("segment.bytes").value.as_deref(), Some("1048576"));
    assert_eq!(entry("max.message.bytes").value.as_deref(), Some("1048588"));
    assert!(entry("max.message.bytes").is_default);

    let grown = admin.create_partitions(&[NewPartitions::new("orders", 16)], &opts).await.unwrap();
    assert_eq!(grown, vec![Ok("orders".to_string())]);
    let b = bootstrap.clone();
    assert_eq!(tokio::task::spawn_blocking(move || partition_count(&b, "orders")).await.unwrap(), Ok(16));
    let shrink = admin.create_partitions(&[NewPartitions::new("orders", 4)], &opts).await.unwrap();
    assert_eq!(shrink, vec![Err(("orders".to_string(), RDKafkaErrorCode::InvalidPartitions))]);

    // A new partition takes records.
    let producer: FutureProducer = client_config(&bootstrap).create().unwrap();
    let delivered = producer.send(FutureRecord::to("orders").partition(15).key("k").payload("v"), Duration::from_secs(10)).await.unwrap();
    assert_eq!((delivered.partition, delivered.offset), (15, 0));

    let deleted = admin.delete_topics(&["orders"], &opts).await.unwrap();
    assert_eq!(deleted, vec![Ok("orders".to_string())]);
    let b = bootstrap.clone();
    assert_eq!(tokio::task::spawn_blocking(move || partition_count(&b, "orders")).await.unwrap(), Err(RDKafkaErrorCode::UnknownTopicOrPartition));
    assert!(!broker.log_dir().join("orders-0").exists(), "a deleted topic's folders are gone");
    let missing = admin.delete_topics(&["orders"], &opts).await.unwrap();
    assert_eq!(missing, vec![Err(("orders".to_string(), RDKafkaErrorCode::UnknownTopicOrPartition))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producing_to_an_unknown_topic_fails_when_auto_create_is_off() {
    let broker = TestBroker::start(&[("auto.create.topics.enable", "false")]);
    let producer: FutureProducer =
        client_config(&broker.bootstrap()).set("message.timeout.ms", "3000").set("topic.metadata.propagation.max.ms", "100").create().unwrap();
    let result = producer.send(FutureRecord::to("no-such-topic").key("k").payload("v"), Duration::from_secs(10)).await;
    match result {
        Err((KafkaError::MessageProduction(code), _)) => {
            assert!(matches!(code, RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic), "unexpected error {code:?}");
        }
        other => panic!("expected an unknown-topic error, got {other:?}"),
    }
    assert!(!broker.log_dir().join("no-such-topic-0").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producing_to_an_unknown_topic_creates_it_when_auto_create_is_on() {
    let broker = TestBroker::start(&[("num.partitions", "5")]);
    let producer: FutureProducer = client_config(&broker.bootstrap()).create().unwrap();
    let delivered = producer.send(FutureRecord::to("created-on-use").key("k").payload("v"), Duration::from_secs(10)).await.unwrap();
    assert_eq!(delivered.offset, 0);
    let b = broker.bootstrap();
    assert_eq!(tokio::task::spawn_blocking(move || partition_count(&b, "created-on-use")).await.unwrap(), Ok(5));
}

/// The cluster APIs on a single node, through Spate's own client over a real socket:
/// OffsetForLeaderEpoch (epoch 0 ends at the log end; a newer current epoch is unknown, an
/// epoch past the last is undefined), DescribeLogDirs (the log dir and the partition's size),
/// ElectLeaders (the only replica leads already) and the reassignment APIs (nothing can move).
#[test]
fn a_single_node_answers_the_cluster_apis_as_kafka_would() {
    use spate::protocol::messages::alter_partition_reassignments::{AlterPartitionReassignmentsRequest, AlterReassignmentsPartition, AlterReassignmentsTopic};
    use spate::protocol::messages::describe_log_dirs::DescribeLogDirsRequest;
    use spate::protocol::messages::elect_leaders::{ElectLeadersRequest, ElectLeadersTopic, PREFERRED};
    use spate::protocol::messages::list_partition_reassignments::ListPartitionReassignmentsRequest;
    use spate::protocol::messages::offset_for_leader_epoch::{OffsetForLeaderEpochRequest, OffsetForLeaderPartition, OffsetForLeaderTopic};
    use spate::protocol::ErrorCode;

    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    let producer: rdkafka::producer::BaseProducer = client_config(&bootstrap).create().unwrap();
    for i in 0..10 {
        producer.send(rdkafka::producer::BaseRecord::<(), _>::to("epochs").partition(0).payload(&format!("r{i}"))).unwrap();
    }
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(10)).unwrap();
    compio::runtime::Runtime::new().unwrap().block_on(async {
        let admin = spate::client::Admin::new(&spate::client::ClientConfig::new().set("bootstrap.servers", &bootstrap)).unwrap();
        let conn = admin.cluster().any().await.unwrap();
        let ask = |current_leader_epoch: i32, leader_epoch: i32, topic: &str| OffsetForLeaderEpochRequest {
            replica_id: -1,
            topics: vec![OffsetForLeaderTopic {
                topic: topic.into(),
                partitions: vec![OffsetForLeaderPartition { partition: 0, current_leader_epoch, leader_epoch }],
            }],
        };
        let answer = |r: spate::protocol::messages::offset_for_leader_epoch::OffsetForLeaderEpochResponse| {
            let p = &r.topics[0].partitions[0];
            (p.error, p.leader_epoch, p.end_offset)
        };
        assert_eq!(answer(conn.send(&ask(0, 0, "epochs")).await.unwrap()), (ErrorCode::NONE, 0, 10), "epoch 0 ends at the log end");
        assert_eq!(answer(conn.send(&ask(-1, 0, "epochs")).await.unwrap()), (ErrorCode::NONE, 0, 10), "no current epoch: no fencing");
        assert_eq!(answer(conn.send(&ask(1, 0, "epochs")).await.unwrap()).0, ErrorCode::UNKNOWN_LEADER_EPOCH);
        assert_eq!(answer(conn.send(&ask(0, 3, "epochs")).await.unwrap()), (ErrorCode::NONE, -1, -1), "an epoch past the last is undefined");
        assert_eq!(answer(conn.send(&ask(0, 0, "nothing")).await.unwrap()).0, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);

        let dirs = conn.send(&DescribeLogDirsRequest { topics: None }).await.unwrap();
        assert_eq!(dirs.results.len(), 1);
        let dir = &dirs.results[0];
        assert_eq!(dir.error, ErrorCode::NONE);
        assert_eq!(std::path::Path::new(&dir.log_dir).canonicalize().unwrap(), broker.log_dir().canonicalize().unwrap());
        let epochs = dir.topics.iter().find(|t| t.name == "epochs").expect("the topic's replica is listed");
        assert_eq!(epochs.partitions.len(), 1);
        assert!(epochs.partitions[0].partition_size > 10 * 2, "the partition's segments hold its records: {:?}", epochs.partitions[0]);

        let elected = conn
            .send(&ElectLeadersRequest {
                election_type: PREFERRED,
                topic_partitions: Some(vec![ElectLeadersTopic { topic: "epochs".into(), partitions: vec![0, 7] }]),
                timeout_ms: 10_000,
            })
            .await
            .unwrap();
        let results: Vec<(i32, ErrorCode)> = elected.replica_election_results[0].partition_result.iter().map(|p| (p.partition_id, p.error)).collect();
        assert_eq!(results, vec![(0, ErrorCode::ELECTION_NOT_NEEDED), (7, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)]);

        let move_to = |replicas: Option<Vec<i32>>| AlterPartitionReassignmentsRequest {
            timeout_ms: 10_000,
            allow_replication_factor_change: true,
            topics: vec![AlterReassignmentsTopic { name: "epochs".into(), partitions: vec![AlterReassignmentsPartition { partition_index: 0, replicas }] }],
        };
        let error = |r: spate::protocol::messages::alter_partition_reassignments::AlterPartitionReassignmentsResponse| r.responses[0].partitions[0].error;
        let me = admin.describe_cluster().await.unwrap().brokers[0].broker_id;
        assert_eq!(error(conn.send(&move_to(Some(vec![me]))).await.unwrap()), ErrorCode::NONE, "onto itself: nothing to move");
        assert_eq!(error(conn.send(&move_to(Some(vec![99]))).await.unwrap()), ErrorCode::INVALID_REPLICA_ASSIGNMENT);
        assert_eq!(error(conn.send(&move_to(None)).await.unwrap()), ErrorCode::NO_REASSIGNMENT_IN_PROGRESS);
        let listed = conn.send(&ListPartitionReassignmentsRequest { timeout_ms: 10_000, topics: None }).await.unwrap();
        assert!(listed.topics.is_empty());
    });
}

/// DeleteRecords through librdkafka's admin client: the log start moves to the offset asked
/// for, whole segments below it go from the disk, a consumer from the beginning starts there,
/// the new start outlives a kill -9 once the log dir's checkpoint has it, and Kafka's refusals
/// come back (past the high watermark, a compact-only topic, an unknown partition).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_deleted_below_an_offset_and_the_log_start_outlives_a_restart() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    let mut broker = crate::support::BrokerProcess::start(dir.path(), port, &[("log.segment.bytes", "4096")]);
    let bootstrap = broker.bootstrap();
    let admin = admin(&bootstrap);
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let topics = [NewTopic::new("trim", 1, TopicReplication::Fixed(1)), NewTopic::new("kept", 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact")];
    for r in admin.create_topics(&topics, &opts).await.unwrap() {
        r.unwrap();
    }
    let producer: FutureProducer = client_config(&bootstrap).set("linger.ms", "0").create().unwrap();
    let value = [b'x'; 200];
    for i in 0..100 {
        producer.send(FutureRecord::to("trim").key(&format!("k{i}")).payload(&value[..]), Duration::from_secs(10)).await.unwrap();
    }
    producer.send(FutureRecord::to("kept").key("k").payload("v"), Duration::from_secs(10)).await.unwrap();
    let segments = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join("trim-0"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".log"))
            .collect();
        names.sort();
        names
    };
    assert!(segments().len() > 3, "small segments: {:?}", segments());

    let mut asked = TopicPartitionList::new();
    asked.add_partition_offset("trim", 0, Offset::Offset(60)).unwrap();
    let done = admin.delete_records(&asked, &opts).await.unwrap();
    let element = done.find_partition("trim", 0).unwrap();
    assert_eq!(element.error(), Ok(()));
    assert_eq!(element.offset(), Offset::Offset(60), "the low watermark is the new log start");
    let first = segments()[0].trim_end_matches(".log").parse::<i64>().unwrap();
    assert!(first > 0 && first <= 60, "the segments wholly below offset 60 are gone, the one holding it stays: {:?}", segments());

    let consumer: BaseConsumer = client_config(&bootstrap).set("group.id", "trim-reader").set("auto.offset.reset", "earliest").create().unwrap();
    assert_eq!(consumer.fetch_watermarks("trim", 0, Duration::from_secs(10)).unwrap(), (60, 100));
    consumer.subscribe(&["trim"]).unwrap();
    let mut offsets = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while offsets.len() < 40 && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            offsets.push(rdkafka::Message::offset(&m));
        }
    }
    assert_eq!(offsets, (60..100).collect::<Vec<_>>(), "a reader from the beginning starts at the new log start");
    drop(consumer);

    // Kafka's refusals.
    let mut refused = TopicPartitionList::new();
    refused.add_partition_offset("trim", 0, Offset::Offset(1_000)).unwrap();
    refused.add_partition_offset("kept", 0, Offset::Offset(1)).unwrap();
    refused.add_partition_offset("trim", 7, Offset::Offset(1)).unwrap();
    let answers = admin.delete_records(&refused, &opts).await.unwrap();
    let code = |topic: &str, p: i32| answers.find_partition(topic, p).unwrap().error().err().and_then(|e| e.rdkafka_error_code());
    assert_eq!(code("trim", 0), Some(RDKafkaErrorCode::OffsetOutOfRange), "past the high watermark");
    assert_eq!(code("kept", 0), Some(RDKafkaErrorCode::PolicyViolation), "a compact-only topic");
    // librdkafka refuses a partition its metadata lacks itself (UnknownPartition, -190).
    assert!(matches!(code("trim", 7), Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownPartition)), "{:?}", code("trim", 7));

    // -1 (librdkafka's Offset::End) deletes up to the high watermark; the log dir's checkpoint
    // has it shortly after, and a kill -9 then keeps it.
    let mut all = TopicPartitionList::new();
    all.add_partition_offset("trim", 0, Offset::End).unwrap();
    let done = admin.delete_records(&all, &opts).await.unwrap();
    assert_eq!(done.find_partition("trim", 0).unwrap().offset(), Offset::Offset(100));
    let checkpoint = dir.path().join("log-start-offset-checkpoint");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&checkpoint).unwrap_or_default().lines().any(|l| l == "trim 0 100") {
        assert!(std::time::Instant::now() < deadline, "the checkpoint never had the new log start: {:?}", std::fs::read_to_string(&checkpoint));
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(admin);
    broker.restart(); // kill -9
    let consumer: BaseConsumer = client_config(&bootstrap).create().unwrap();
    assert_eq!(consumer.fetch_watermarks("trim", 0, Duration::from_secs(10)).unwrap(), (100, 100), "the log start after a kill -9");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_configs_are_altered_live_and_kept_across_a_restart() {
    use rdkafka::admin::{AlterConfig, OwnedResourceSpecifier};
    let mut broker = TestBroker::start(&[("auto.create.topics.enable", "false")]);
    let bootstrap = broker.bootstrap();
    let admin = admin(&bootstrap);
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    admin.create_topics(&[NewTopic::new("live", 1, TopicReplication::Fixed(1)).set("retention.ms", "3600000")], &opts).await.unwrap()[0].clone().unwrap();
    let producer: FutureProducer = client_config(&bootstrap).set("linger.ms", "0").create().unwrap();
    let value = [b'x'; 500];
    let produce = |n: usize| {
        let producer = producer.clone();
        async move {
            for i in 0..n {
                producer.send(FutureRecord::to("live").key(&format!("k{i}")).payload(&value[..]), Duration::from_secs(10)).await.unwrap();
            }
        }
    };
    let segments = |dir: &std::path::Path| {
        std::fs::read_dir(dir.join("live-0")).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".log")).count()
    };
    produce(20).await;
    assert_eq!(segments(&broker.log_dir()), 1);

    // AlterConfigs replaces the whole set: retention.ms goes back to the default.
    let altered = admin.alter_configs(&[AlterConfig::new(ResourceSpecifier::Topic("live")).set("segment.bytes", "4096")], &opts).await.unwrap();
    assert_eq!(altered, vec![Ok(OwnedResourceSpecifier::Topic("live".into()))]);
    produce(40).await;
    let rolled = segments(&broker.log_dir());
    assert!(rolled >= 4, "the new segment.bytes applies to the next appends: {rolled} segments");

    let describe = || async {
        let described = admin.describe_configs(&[ResourceSpecifier::Topic("live")], &opts).await.unwrap();
        let resource = described[0].as_ref().unwrap();
        let entry = |name: &str| resource.entries.iter().find(|e| e.name == name).map(|e| (e.value.clone(), e.is_default)).unwrap();
        (entry("segment.bytes"), entry("retention.ms"))
    };
    let (segment_bytes, retention) = describe().await;
    assert_eq!(segment_bytes, (Some("4096".to_string()), false));
    assert_eq!(retention, (Some("604800000".to_string()), true));

    broker.restart();
    let admin = self::admin(&broker.bootstrap());
    let described = admin.describe_configs(&[ResourceSpecifier::Topic("live")], &opts).await.unwrap();
    let resource = described[0].as_ref().unwrap();
    let entry = resource.entries.iter().find(|e| e.name == "segment.bytes").unwrap();
    assert_eq!((entry.value.as_deref(), entry.is_default), (Some("4096"), false), "the override outlives a restart");
}
