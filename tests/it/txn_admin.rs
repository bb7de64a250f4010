//! The transaction admin APIs (DescribeProducers, DescribeTransactions, ListTransactions) and
//! `spate transactions` (kafka-transactions.sh) over transactions librdkafka leaves open: what
//! the Rust admin client and the tool show of an open transaction, and a hanging one (its
//! coordinator's state lost) found by `find-hanging` and ended by `abort`, after which a
//! read_committed consumer reads past it.

use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use spate::client::admin::TransactionFilter;
use spate::client::{Admin, ClientConfig, Error, TopicPartition};
use spate::protocol::ErrorCode;

use crate::support::{client_config, TestBroker};

/// A small `__transaction_state`, so that the tests' brokers create it quickly.
const TXN_SETTINGS: &[(&str, &str)] = &[("transaction.state.log.num.partitions", "4"), ("offsets.topic.num.partitions", "4")];

/// librdkafka's default `transaction.timeout.ms`.
const LIBRDKAFKA_TXN_TIMEOUT_MS: i32 = 60_000;

fn tokio_block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// Runs the Rust admin client on a runtime of its own.
fn with_admin<T>(bootstrap: &str, f: impl AsyncFnOnce(&Admin) -> T) -> T {
    compio::runtime::Runtime::new().unwrap().block_on(async {
        let admin = Admin::new(&ClientConfig::new().set("bootstrap.servers", bootstrap)).unwrap();
        f(&admin).await
    })
}

fn transactional_producer(bootstrap: &str, id: &str) -> BaseProducer {
    let producer: BaseProducer = client_config(bootstrap).set("transactional.id", id).set("linger.ms", "5").create().unwrap();
    producer.init_transactions(Duration::from_secs(30)).unwrap();
    producer
}

fn send(producer: &BaseProducer, topic: &str, partition: i32, values: &[&str]) {
    for value in values {
        producer.send(BaseRecord::<str, str>::to(topic).partition(partition).key(*value).payload(*value)).unwrap_or_else(|(e, _)| panic!("send {value}: {e}"));
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// The end offset of partition 0 for a consumer with `isolation` (read_committed: the last
/// stable offset).
fn end_offset(bootstrap: &str, topic: &str, isolation: &str) -> i64 {
    let consumer: BaseConsumer = client_config(bootstrap).set("group.id", "txn-admin-watermarks").set("isolation.level", isolation).create().unwrap();
    consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)).unwrap().1
}

/// What a read_committed consumer reads of partition 0, to its end.
fn read_committed(bootstrap: &str, topic: &str) -> Vec<String> {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", "txn-admin-reader")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "100")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "the read_committed reader of {topic} did not reach the end");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap()),
            Some(Err(KafkaError::PartitionEOF(_))) => return out,
            Some(Err(e)) => panic!("read_committed reader: {e}"),
            None => {}
        }
    }
}

/// `spate transactions --bootstrap-server <b> <args>`: exit code, stdout, stderr.
fn tool(bootstrap: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_spate")).arg("transactions").arg("--bootstrap-server").arg(bootstrap).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The table a successful `spate transactions` command printed, header first: Kafka's
/// layout, every cell padded and followed by a tab.
fn table(bootstrap: &str, args: &[&str]) -> Vec<Vec<String>> {
    let (code, stdout, stderr) = tool(bootstrap, args);
    assert_eq!(code, 0, "spate transactions {args:?}: {stderr}");
    stdout
        .lines()
        .map(|line| {
            let line = line.strip_suffix('\t').unwrap_or_else(|| panic!("{args:?}: a row ends with a tab: {line:?}"));
            line.split('\t').map(|cell| cell.trim_end().to_string()).collect()
        })
        .collect()
}

fn strings(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn an_open_transaction_is_listed_described_and_shown_in_its_partition() {
    let broker = TestBroker::start(TXN_SETTINGS);
    let b = broker.bootstrap();
    tokio_block_on(crate::support::create_topic(&b, "ledger", 2));
    let writer = transactional_producer(&b, "ledger-writer");
    // A committed transaction (offsets 0-2, its marker at 3), then one left open from 4.
    writer.begin_transaction().unwrap();
    send(&writer, "ledger", 0, &["a", "b", "c"]);
    writer.commit_transaction(Duration::from_secs(10)).unwrap();
    let opened_ms = now_ms();
    writer.begin_transaction().unwrap();
    send(&writer, "ledger", 0, &["d", "e"]);
    // And an id with no transaction begun.
    let _idle = transactional_producer(&b, "ledger-idle");

    let (listed, ongoing, by_pid, described, producers) = with_admin(&b, async |admin| {
        let listed = admin.list_transactions(&TransactionFilter::default()).await.unwrap();
        let ongoing = admin.list_transactions(&TransactionFilter { states: vec!["Ongoing".into()], ..Default::default() }).await.unwrap();
        let writer_pid = listed.iter().find(|t| t.transactional_id == "ledger-writer").map_or(-1, |t| t.producer_id);
        let by_pid = admin.list_transactions(&TransactionFilter { producer_ids: vec![writer_pid], ..Default::default() }).await.unwrap();
        let ids = strings(&["ledger-writer", "no-such-id", "ledger-idle"]);
        let described = admin.describe_transactions(&ids).await.unwrap();
        let partitions =
            [TopicPartition::new("ledger", 0), TopicPartition::new("ledger", 1), TopicPartition::new("ledger", 7), TopicPartition::new("nosuch", 0)];
        let producers = admin.describe_producers(&partitions, None).await.unwrap();
        (listed, ongoing, by_pid, described, producers)
    });

    // ListTransactions: both ids, each with its state, coordinated by broker 0.
    let summary: Vec<(&str, &str, i32)> = listed.iter().map(|t| (t.transactional_id.as_str(), t.state.as_str(), t.coordinator_id)).collect();
    assert_eq!(summary, vec![("ledger-idle", "Empty", 0), ("ledger-writer", "Ongoing", 0)]);
    let pid = listed[1].producer_id;
    assert!(pid >= 0 && listed[0].producer_id != pid);
    assert_eq!(ongoing.iter().map(|t| t.transactional_id.as_str()).collect::<Vec<_>>(), vec!["ledger-writer"]);
    assert_eq!(by_pid.iter().map(|t| t.transactional_id.as_str()).collect::<Vec<_>>(), vec!["ledger-writer"]);

    // DescribeTransactions: per id, in request order.
    assert_eq!(described.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), vec!["ledger-writer", "no-such-id", "ledger-idle"]);
    let d = described[0].1.as_ref().unwrap();
    assert_eq!((d.coordinator_id, d.state.as_str(), d.producer_id, d.producer_epoch, d.timeout_ms), (0, "Ongoing", pid, 0, LIBRDKAFKA_TXN_TIMEOUT_MS));
    let start = d.start_time_ms.expect("an open transaction has a start time");
    assert!((opened_ms - 1_000..=now_ms()).contains(&start), "started at {start}, opened at {opened_ms}");
    assert_eq!(d.partitions, vec![TopicPartition::new("ledger", 0)]);
    assert!(matches!(&described[1].1, Err(Error::Broker(ErrorCode::TRANSACTIONAL_ID_NOT_FOUND, _))), "{:?}", described[1]);
    let idle = described[2].1.as_ref().unwrap();
    assert_eq!((idle.state.as_str(), idle.start_time_ms, idle.partitions.len()), ("Empty", None, 0));

    // DescribeProducers: the writer in partition 0, its transaction open from offset 4.
    let (tp, p0) = &producers[0];
    assert_eq!(tp, &TopicPartition::new("ledger", 0));
    let p0 = p0.as_ref().unwrap();
    assert_eq!(p0.len(), 1, "{p0:?}");
    let p = &p0[0];
    // Five records, sequences 0-4; the commit marker was written by coordinator epoch 0.
    assert_eq!((p.producer_id, p.producer_epoch, p.last_sequence, p.coordinator_epoch, p.current_txn_start_offset), (pid, 0, 4, 0, 4));
    assert!(p.last_timestamp >= opened_ms - 1_000, "{p:?}");
    assert_eq!(producers[1].1.as_ref().unwrap().len(), 0, "nobody wrote to partition 1");
    for (tp, result) in &producers[2..] {
        assert!(matches!(result, Err(Error::Broker(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, _))), "{tp}: {result:?}");
    }

    // The broker's own answers to what the admin client does not send: unknown and invalid
    // topics and partitions, unknown state filters.
    let (raw_producers, raw_listed) = compio::runtime::Runtime::new().unwrap().block_on(async {
        use spate::protocol::messages::describe_producers::{DescribeProducersRequest, DescribeProducersTopic};
        use spate::protocol::messages::list_transactions::ListTransactionsRequest;
        let conn = spate::client::conn::Connection::open(&b, "raw", Duration::from_secs(5), Duration::from_secs(10)).await.unwrap();
        let topic = |name: &str, partition_indexes: Vec<i32>| DescribeProducersTopic { name: name.to_string(), partition_indexes };
        let request = DescribeProducersRequest { topics: vec![topic("ledger", vec![0, 9, -1]), topic("nosuch", vec![0]), topic("bad/name", vec![0])] };
        let producers = conn.send(&request).await.unwrap();
        let listed = conn.send(&ListTransactionsRequest { state_filters: strings(&["Bogus", "Ongoing"]), ..Default::default() }).await.unwrap();
        (producers, listed)
    });
    let errors: Vec<(&str, i32, ErrorCode, bool)> = raw_producers
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.as_str(), p.partition_index, p.error, p.error_message.is_some())))
        .collect();
    assert_eq!(
        errors,
        vec![
            ("ledger", 0, ErrorCode::NONE, false),
            ("ledger", 9, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, false),
            ("ledger", -1, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, false),
            ("nosuch", 0, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, false),
            ("bad/name", 0, ErrorCode::INVALID_TOPIC_EXCEPTION, true),
        ]
    );
    assert_eq!(raw_listed.error, ErrorCode::NONE);
    assert_eq!(raw_listed.unknown_state_filters, strings(&["Bogus"]));
    assert_eq!(raw_listed.transaction_states.iter().map(|t| t.transactional_id.as_str()).collect::<Vec<_>>(), vec!["ledger-writer"]);

    // The same through `spate transactions`, in kafka-transactions.sh's tables.
    let pid_s = pid.to_string();
    let listed = table(&b, &["list"]);
    assert_eq!(listed[0], strings(&["TransactionalId", "Coordinator", "ProducerId", "TransactionState"]));
    assert_eq!(listed[2], strings(&["ledger-writer", "0", &pid_s, "Ongoing"]));
    assert_eq!(listed.len(), 3);
    assert_eq!(table(&b, &["list", "--transactional-id-pattern", "ledger-w.*"])[1..], [strings(&["ledger-writer", "0", &pid_s, "Ongoing"])]);
    assert_eq!(table(&b, &["list", "--transactional-id-pattern", "ledger"]).len(), 1, "the pattern must match the whole id");
    assert_eq!(table(&b, &["list", "--duration-filter", "3600000"])[1..], [strings(&["ledger-idle", "0", &listed[1][2], "Empty"])]);
    let (code, _, stderr) = tool(&b, &["list", "--transactional-id-pattern", "ledger-("]);
    assert!(code == 1 && stderr.contains("INVALID_REGULAR_EXPRESSION"), "{code}: {stderr}");

    let described = table(&b, &["describe", "--transactional-id", "ledger-writer"]);
    assert_eq!(
        described[0],
        strings(&[
            "CoordinatorId",
            "TransactionalId",
            "ProducerId",
            "ProducerEpoch",
            "TransactionState",
            "TransactionTimeoutMs",
            "CurrentTransactionStartTimeMs",
            "TransactionDurationMs",
            "TopicPartitions"
        ])
    );
    let row = &described[1];
    assert_eq!(row[..7], strings(&["0", "ledger-writer", &pid_s, "0", "Ongoing", "60000", &start.to_string()]));
    assert!(row[7].parse::<i64>().is_ok_and(|d| d >= 0), "a duration: {row:?}");
    assert_eq!(row[8], "ledger-0");
    let (code, _, stderr) = tool(&b, &["describe", "--transactional-id", "no-such-id"]);
    assert!(code == 1 && stderr.contains("TRANSACTIONAL_ID_NOT_FOUND"), "{code}: {stderr}");

    let producers = table(&b, &["describe-producers", "--topic", "ledger", "--partition", "0"]);
    assert_eq!(
        producers[0],
        strings(&["ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch", "LastSequence", "LastTimestamp", "CurrentTransactionStartOffset"])
    );
    assert_eq!(producers[1], strings(&[&pid_s, "0", "0", "4", &p.last_timestamp.to_string(), "4"]));
    assert_eq!(table(&b, &["describe-producers", "--broker-id", "0", "--topic", "ledger", "--partition", "0"]), producers);

    // Its coordinator will end it: not hanging, however short the timeout searched for.
    let hanging = table(&b, &["find-hanging", "--broker-id", "0", "--max-transaction-timeout", "0"]);
    assert_eq!(
        hanging,
        vec![strings(&["Topic", "Partition", "ProducerId", "ProducerEpoch", "CoordinatorEpoch", "StartOffset", "LastTimestamp", "Duration(min)"])]
    );
    let (code, _, stderr) = tool(&b, &["find-hanging"]);
    assert!(code == 1 && stderr.contains("requires either --topic or --broker-id"), "{code}: {stderr}");

    // Committed: complete, with no partitions, and nothing open in the partition.
    writer.commit_transaction(Duration::from_secs(10)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let row = table(&b, &["describe", "--transactional-id", "ledger-writer"]).remove(1);
        if row[4] == "CompleteCommit" {
            assert_eq!(row[8], "", "a complete transaction has no partitions");
            break;
        }
        assert!(Instant::now() < deadline, "the commit did not complete: {row:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let producers = table(&b, &["describe-producers", "--topic", "ledger", "--partition", "0"]);
    assert_eq!(producers[1][5], "None");
}

#[test]
fn a_transaction_its_coordinator_lost_is_found_hanging_and_aborted() {
    let mut broker = TestBroker::start(TXN_SETTINGS);
    let b = broker.bootstrap();
    tokio_block_on(crate::support::create_topic(&b, "stuck", 1));
    let stuck = transactional_producer(&b, "stuck-writer");
    stuck.begin_transaction().unwrap();
    send(&stuck, "stuck", 0, &["lost-1", "lost-2", "lost-3"]);
    let other = transactional_producer(&b, "stuck-other");
    other.begin_transaction().unwrap();
    send(&other, "stuck", 0, &["after"]);
    other.commit_transaction(Duration::from_secs(10)).unwrap();
    assert_eq!(end_offset(&b, "stuck", "read_committed"), 0, "the open transaction holds the last stable offset");

    // The coordinator's state is lost (its `__transaction_state` partitions come back empty):
    // the transaction stays open in the partition, and nothing will ever end it.
    broker.stop();
    drop((stuck, other));
    for entry in std::fs::read_dir(broker.log_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("__transaction_state-") {
            std::fs::remove_dir_all(&path).unwrap();
        }
    }
    broker.start_again();
    assert_eq!(end_offset(&b, "stuck", "read_committed"), 0, "still open after the restart");
    let listed = with_admin(&b, async |admin| admin.list_transactions(&TransactionFilter::default()).await.unwrap());
    assert!(listed.is_empty(), "the coordinator knows no transactional id: {listed:?}");

    let hanging = table(&b, &["find-hanging", "--broker-id", "0", "--max-transaction-timeout", "0"]);
    assert_eq!(hanging.len(), 2, "one hanging transaction: {hanging:?}");
    let row = &hanging[1];
    assert_eq!(row[..6], strings(&["stuck", "0", &row[2], "0", "-1", "0"]), "{row:?}");
    assert_eq!(table(&b, &["find-hanging", "--topic", "stuck", "--partition", "0", "--max-transaction-timeout", "0"]), hanging);
    assert_eq!(table(&b, &["find-hanging", "--topic", "stuck"]).len(), 1, "not open longer than the default 15 minutes");

    let (code, _, stderr) = tool(&b, &["abort", "--topic", "stuck", "--partition", "0", "--start-offset", "1"]);
    assert!(code == 1 && stderr.contains("Could not find any open transactions starting at offset 1 on partition stuck-0"), "{code}: {stderr}");
    let (code, _, stderr) = tool(&b, &["abort", "--topic", "stuck", "--partition", "0"]);
    assert!(code == 1 && stderr.contains("--start-offset"), "{code}: {stderr}");
    let (code, stdout, stderr) = tool(&b, &["abort", "--topic", "stuck", "--partition", "0", "--start-offset", "0"]);
    assert_eq!((code, stdout.as_str()), (0, ""), "{stderr}");

    // The abort marker went in at 5: the last stable offset is the log's end, and a
    // read_committed consumer reads the committed record only.
    assert_eq!(end_offset(&b, "stuck", "read_committed"), 6);
    assert_eq!(end_offset(&b, "stuck", "read_uncommitted"), 6);
    assert_eq!(read_committed(&b, "stuck"), strings(&["after"]));
    let producers = table(&b, &["describe-producers", "--topic", "stuck", "--partition", "0"]);
    let stuck_row = producers.iter().find(|r| r[0] == row[2]).expect("the aborted producer is still known");
    assert_eq!(stuck_row[5], "None", "its transaction is over: {producers:?}");
    assert_eq!(table(&b, &["find-hanging", "--broker-id", "0", "--max-transaction-timeout", "0"]).len(), 1, "nothing hangs any more");
    // Aborting it again finds nothing to abort.
    let (code, _, stderr) = tool(&b, &["abort", "--topic", "stuck", "--partition", "0", "--start-offset", "0"]);
    assert!(code == 1 && stderr.contains("Could not find any open transactions"), "{code}: {stderr}");
}
