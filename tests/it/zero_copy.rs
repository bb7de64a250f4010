//! Fetched record bytes go from segment files to sockets by splice: the broker's counters of
//! bytes written from memory and bytes spliced show which path each byte took.

use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::Message;

use crate::support::{assign_all, assigning_consumer, client_config, create_topic, TestBroker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetched_records_are_spliced_not_copied() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "spliced", 3).await;
    const RECORDS: usize = 40_000;
    let value = vec![b'z'; 1000];
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let producer: BaseProducer = client_config(&b).set("linger.ms", "5").create().unwrap();
        for i in 0..RECORDS {
            let key = format!("{i}");
            while producer.send(BaseRecord::to("spliced").key(&key).payload(&value)).is_err() {
                producer.poll(Duration::from_millis(5));
            }
        }
        producer.flush(Duration::from_secs(30)).unwrap();
    })
    .await
    .unwrap();

    let before = broker.metrics();
    let b = bootstrap.clone();
    let payload_bytes = tokio::task::spawn_blocking(move || {
        let consumer = assigning_consumer(&b);
        assign_all(&consumer, "spliced", 3);
        let (mut n, mut bytes) = (0, 0u64);
        let deadline = Instant::now() + Duration::from_secs(60);
        while n < RECORDS && Instant::now() < deadline {
            if let Some(m) = consumer.poll(Duration::from_millis(100)) {
                bytes += m.unwrap().payload().unwrap().len() as u64;
                n += 1;
            }
        }
        assert_eq!(n, RECORDS);
        bytes
    })
    .await
    .unwrap();
    let after = broker.metrics();
    let spliced = after.socket_bytes_spliced - before.socket_bytes_spliced;
    let from_memory = after.socket_bytes_from_memory - before.socket_bytes_from_memory;
    assert!(spliced >= payload_bytes, "every fetched record byte was spliced ({spliced} spliced, {payload_bytes} payload)");
    // Headers, metadata and empty fetches are written from memory; they are a small fraction.
    assert!(from_memory * 20 < spliced, "{from_memory} bytes from memory against {spliced} spliced");
}
