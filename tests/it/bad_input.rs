//! Malformed and hostile requests over raw sockets: each gets the Kafka error code the
//! protocol defines or a closed connection, and never affects other clients.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use spate::protocol::codec::{Reader, Writer};
use spate::protocol::record_batch::{build_batch, RecordSpec};

use crate::support::{create_topic, TestBroker};

fn connect(broker: &TestBroker) -> TcpStream {
    connect_to(broker.port)
}

fn connect_to(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Sends one frame (size prefix added) and reads one response frame (without its prefix).
fn round_trip(s: &mut TcpStream, body: &[u8]) -> Option<Vec<u8>> {
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    s.write_all(&frame).ok()?;
    read_frame(s)
}

fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

/// True when the broker closed the connection (EOF, or reset).
fn is_closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}

/// Request header v1 (api key, version, correlation id, client id); a flexible request's
/// header goes on with its tagged fields, which the caller writes.
fn header(w: &mut Writer, api_key: i16, version: i16, correlation_id: i32) {
    w.i16(api_key);
    w.i16(version);
    w.i32(correlation_id);
    w.nullable_string(false, Some("bad-input-test"));
}

/// ApiVersions v0 works on this connection (the broker is alive and answering).
fn api_versions_ok(s: &mut TcpStream) -> bool {
    let mut w = Writer::new();
    header(&mut w, 18, 0, 7);
    match round_trip(s, &w.finish()) {
        Some(resp) => {
            let mut r = Reader::new(Bytes::from(resp));
            r.i32().unwrap() == 7 && r.i16().unwrap() == 0
        }
        None => false,
    }
}

/// A Produce v7 request for one partition carrying `records`.
fn produce_request(topic: &str, records: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    header(&mut w, 0, 7, 42);
    w.nullable_string(false, None); // transactional_id
    w.i16(1); // acks
    w.i32(5000);
    w.i32(1);
    w.string(false, topic);
    w.i32(1);
    w.i32(0); // partition
    w.nullable_bytes(false, Some(records));
    w.finish().to_vec()
}

/// The error code of the single partition in a Produce v7 response.
fn produce_error(resp: Vec<u8>) -> i16 {
    let mut r = Reader::new(Bytes::from(resp));
    assert_eq!(r.i32().unwrap(), 42, "correlation id");
    assert_eq!(r.i32().unwrap(), 1, "one topic");
    r.string(false).unwrap();
    assert_eq!(r.i32().unwrap(), 1, "one partition");
    assert_eq!(r.i32().unwrap(), 0);
    r.i16().unwrap()
}

fn valid_batch(value_bytes: usize) -> Vec<u8> {
    let value = vec![b'x'; value_bytes];
    build_batch(0, 1_700_000_000_000, &[RecordSpec { key: Some(b"k"), value: Some(&value), headers: &[], timestamp_delta: 0 }])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_batches_get_kafka_error_codes() {
    let broker = TestBroker::start(&[("message.max.bytes", "10000")]);
    create_topic(&broker.bootstrap(), "strict", 1).await;
    let mut s = connect(&broker);

    let good = valid_batch(10);
    assert_eq!(produce_error(round_trip(&mut s, &produce_request("strict", &good)).unwrap()), 0, "a valid batch is accepted");

    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    assert_eq!(produce_error(round_trip(&mut s, &produce_request("strict", &flipped)).unwrap()), 2, "bad CRC: CORRUPT_MESSAGE");

    let truncated = &good[..good.len() - 3];
    assert_eq!(produce_error(round_trip(&mut s, &produce_request("strict", truncated)).unwrap()), 2, "truncated batch: CORRUPT_MESSAGE");

    let mut lying = good.clone();
    lying[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    assert_eq!(produce_error(round_trip(&mut s, &produce_request("strict", &lying)).unwrap()), 2, "length past the end: CORRUPT_MESSAGE");

    let big = valid_batch(20_000);
    assert_eq!(produce_error(round_trip(&mut s, &produce_request("strict", &big)).unwrap()), 10, "above max.message.bytes: MESSAGE_TOO_LARGE");

    assert_eq!(produce_error(round_trip(&mut s, &produce_request("nope", &good)).unwrap()), 3, "unknown topic: UNKNOWN_TOPIC_OR_PARTITION");

    // Produce v3+ carries exactly one batch per partition; 600 of them would otherwise be one
    // writev of 1,200 buffers, which the kernel refuses.
    let many: Vec<u8> = std::iter::repeat_n(good.clone(), 600).flatten().collect();
    assert_eq!(produce_error(round_trip(&mut s, &produce_request("strict", &many)).unwrap()), 87, "several batches: INVALID_RECORD");
    assert_eq!(produce_error(round_trip(&mut s, &produce_request("strict", &good)).unwrap()), 0, "the partition still takes records");
    assert!(api_versions_ok(&mut s), "the connection is still usable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_frames_close_only_their_own_connection() {
    let broker = TestBroker::start(&[("socket.request.max.bytes", "1048576")]);
    let mut bystander = connect(&broker);
    assert!(api_versions_ok(&mut bystander));

    // A size prefix above socket.request.max.bytes: closed before anything is allocated.
    let mut s = connect(&broker);
    s.write_all(&0x7fff_ffffi32.to_be_bytes()).unwrap();
    assert!(is_closed(&mut s), "a 2 GiB size prefix closes the connection");

    // A negative size.
    let mut s = connect(&broker);
    s.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(is_closed(&mut s));

    // An unknown API key.
    let mut s = connect(&broker);
    let mut w = Writer::new();
    header(&mut w, 9999, 0, 1);
    assert!(round_trip(&mut s, &w.finish()).is_none(), "unknown api key: closed");

    // A Metadata request whose topic array claims two billion entries.
    let mut s = connect(&broker);
    let mut w = Writer::new();
    header(&mut w, 3, 4, 1);
    w.i32(2_000_000_000);
    assert!(round_trip(&mut s, &w.finish()).is_none(), "lying array length: closed");

    // A header shorter than its fixed fields.
    let mut s = connect(&broker);
    assert!(round_trip(&mut s, &[0, 3]).is_none());

    // A flexible request with duplicate tagged fields in its header.
    let mut s = connect(&broker);
    let mut w = Writer::new();
    header(&mut w, 3, 12, 1);
    w.raw(&[2, 0, 0, 0, 0]); // two tagged fields, both tag 0
    assert!(round_trip(&mut s, &w.finish()).is_none(), "duplicate tags: closed");

    // A version we do not serve, for an API other than ApiVersions.
    let mut s = connect(&broker);
    let mut w = Writer::new();
    header(&mut w, 3, 99, 1);
    assert!(round_trip(&mut s, &w.finish()).is_none(), "unsupported Metadata version: closed");

    // Tagged fields out of order (tag 1, then tag 0) in a flexible header, before a valid
    // Metadata v12 body (null topics, two false flags, no tags); the same request with its
    // tags in order is answered.
    let metadata_v12 = |tags: &[u8]| {
        let mut w = Writer::new();
        header(&mut w, 3, 12, 1);
        w.raw(tags);
        w.raw(&[0, 0, 0, 0]);
        w.finish().to_vec()
    };
    let mut s = connect(&broker);
    assert!(round_trip(&mut s, &metadata_v12(&[2, 0, 0, 1, 0])).is_some(), "tags in order: answered");
    let mut s = connect(&broker);
    assert!(round_trip(&mut s, &metadata_v12(&[2, 1, 0, 0, 0])).is_none(), "tags out of order: closed");

    // A tagged field whose size runs past the frame.
    let mut s = connect(&broker);
    let mut w = Writer::new();
    header(&mut w, 3, 12, 1);
    w.raw(&[1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(round_trip(&mut s, &w.finish()).is_none(), "tagged field larger than the frame: closed");

    // Negative lengths other than null: a nullable transactional id of length -5 (where -1
    // would be null, and the same request with -1 is answered), a record set of -7 bytes.
    // `records` is the record set's length field and whatever bytes follow it.
    let produce = |transactional_id_length: i16, records: &[u8]| {
        let mut w = Writer::new();
        header(&mut w, 0, 7, 1);
        w.i16(transactional_id_length);
        w.i16(1);
        w.i32(5000);
        w.i32(1);
        w.string(false, "steady");
        w.i32(1);
        w.i32(0);
        w.raw(records);
        w.finish().to_vec()
    };
    let batch = valid_batch(10);
    let good_records = [&(batch.len() as i32).to_be_bytes()[..], &batch].concat();
    let mut s = connect(&broker);
    assert!(round_trip(&mut s, &produce(-1, &good_records)).is_some(), "null transactional id: answered");
    let mut s = connect(&broker);
    assert!(round_trip(&mut s, &produce(-5, &good_records)).is_none(), "string length -5: closed");
    let mut s = connect(&broker);
    assert!(round_trip(&mut s, &produce(-1, &(-7i32).to_be_bytes())).is_none(), "record set of -7 bytes: closed");

    // Huge lengths: a string that claims 32,767 bytes, a record set that claims 2 GiB, a
    // compact array that claims four billion entries; none of them is there.
    for (version, body) in [(4i16, vec![0, 0, 0, 1, 0x7f, 0xff]), (12, vec![0xff, 0xff, 0xff, 0xff, 0x0f])] {
        let mut s = connect(&broker);
        let mut w = Writer::new();
        header(&mut w, 3, version, 1);
        if version >= 9 {
            w.raw(&[0]); // the flexible header's tagged fields
        }
        w.raw(&body);
        assert!(round_trip(&mut s, &w.finish()).is_none(), "Metadata v{version} with a huge length: closed");
    }
    let mut s = connect(&broker);
    let huge = [&i32::MAX.to_be_bytes()[..], &[0u8; 64]].concat();
    assert!(round_trip(&mut s, &produce(-1, &huge)).is_none(), "a 2 GiB record set in a small frame: closed");

    // A frame that ends in the middle of a field (the size prefix is honest, the body short).
    let mut s = connect(&broker);
    let mut w = Writer::new();
    header(&mut w, 3, 4, 1);
    w.i32(1);
    w.i16(10);
    w.raw(b"abc");
    assert!(round_trip(&mut s, &w.finish()).is_none(), "truncated body: closed");

    // A header that lies about its version: Metadata v4 with a v12 (flexible) body. Read as
    // v4, its compact array length is a count of 33 million topics; the connection is closed,
    // never answered with garbage.
    let mut s = connect(&broker);
    let mut w = Writer::new();
    header(&mut w, 3, 4, 1);
    w.raw(&[2]); // one topic, compact
    w.uuid(&[0; 16]);
    w.string(true, "steady");
    w.raw(&[0, 0, 0, 0]); // topic tags, allow_auto_topic_creation, include_topic_authorized_operations, tags
    assert!(round_trip(&mut s, &w.finish()).is_none(), "a v12 body under a v4 header: closed");

    assert!(api_versions_ok(&mut bystander), "the other client is unaffected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_versions_request_newer_than_the_broker_gets_v0_with_the_ranges() {
    let broker = TestBroker::start(&[]);
    let mut s = connect(&broker);
    let mut w = Writer::new();
    header(&mut w, 18, 99, 5);
    w.raw(&[0]); // empty tagged fields, as a flexible header would carry
    let resp = round_trip(&mut s, &w.finish()).unwrap();
    let mut r = Reader::new(Bytes::from(resp));
    assert_eq!(r.i32().unwrap(), 5);
    assert_eq!(r.i16().unwrap(), 35, "UNSUPPORTED_VERSION");
    let apis = r.array(false, 6, |r| Ok((r.i16()?, r.i16()?, r.i16()?))).unwrap();
    let api_versions = apis.iter().find(|(k, _, _)| *k == 18).unwrap();
    assert_eq!((api_versions.1, api_versions.2), (0, 3));
    assert!(apis.iter().any(|(k, min, _)| *k == 0 && *min == 0), "Produce is advertised from version 0");
}

/// A Fetch v4 request for partition 0 of `topic` from `offset`.
fn fetch_v4(topic: &str, offset: i64, max_wait_ms: i32, min_bytes: i32, max_bytes: i32, correlation_id: i32) -> Vec<u8> {
    let mut w = Writer::new();
    header(&mut w, 1, 4, correlation_id);
    w.i32(-1); // replica_id
    w.i32(max_wait_ms);
    w.i32(min_bytes);
    w.i32(max_bytes);
    w.i8(0); // isolation_level
    w.i32(1);
    w.string(false, topic);
    w.i32(1);
    w.i32(0); // partition
    w.i64(offset);
    w.i32(max_bytes);
    w.finish().to_vec()
}

/// A Fetch v4 request for partition 0 of `topic` from offset 0, asking for up to `max_bytes`.
fn fetch_request(topic: &str, max_bytes: i32) -> Vec<u8> {
    fetch_v4(topic, 0, 0, 1, max_bytes, 9)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_stop_reading_do_not_stall_other_fetches() {
    // One shard, so every connection shares its pool of splice pipes.
    let broker = TestBroker::start(&[("shards", "1")]);
    create_topic(&broker.bootstrap(), "hoarded", 1).await;
    let mut s = connect(&broker);
    let value = vec![b'h'; 900_000];
    for _ in 0..30 {
        let batch = build_batch(0, 1_700_000_000_000, &[RecordSpec { key: None, value: Some(&value), headers: &[], timestamp_delta: 0 }]);
        assert_eq!(produce_error(round_trip(&mut s, &produce_request("hoarded", &batch)).unwrap()), 0);
    }
    // Eight clients ask for all 27 MB and never read a byte of the answer.
    let mut stalled = Vec::new();
    for _ in 0..8 {
        let mut c = connect(&broker);
        let body = fetch_request("hoarded", 64 << 20);
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        c.write_all(&frame).unwrap();
        stalled.push(c);
    }
    std::thread::sleep(Duration::from_millis(500));
    // A well-behaved client still gets its records.
    let mut reader = connect(&broker);
    reader.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let response = round_trip(&mut reader, &fetch_request("hoarded", 4 << 20)).expect("a fetch answered while others stall");
    assert!(response.len() > 900_000, "records came back ({} bytes)", response.len());
    drop(stalled);
}

/// The resident memory of this process, in bytes.
/// The resident memory of process `pid`.
fn resident_bytes(pid: u32) -> u64 {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap();
    statm.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 4096
}

/// `n` produce round trips on `s`: their (median, 99th percentile).
fn produce_latencies(s: &mut TcpStream, request: &[u8], n: usize) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let started = Instant::now();
            assert_eq!(produce_error(round_trip(s, request).unwrap()), 0);
            started.elapsed()
        })
        .collect();
    times.sort();
    (times[n / 2], times[n * 99 / 100])
}

/// The other client's latency under a hostile load stays within twice its baseline (with 1 ms
/// and 5 ms of allowance for this 2-core machine's noise at the median and the 99th).
fn assert_fair(what: &str, baseline: (Duration, Duration), loaded: (Duration, Duration)) {
    eprintln!("{what}: produce latency p50 {:?} -> {:?}, p99 {:?} -> {:?}", baseline.0, loaded.0, baseline.1, loaded.1);
    assert!(loaded.0 <= baseline.0 * 2 + Duration::from_millis(1), "{what}: median latency {:?}, baseline {:?}", loaded.0, baseline.0);
    assert!(loaded.1 <= baseline.1 * 2 + Duration::from_millis(5), "{what}: p99 latency {:?}, baseline {:?}", loaded.1, baseline.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_stalled_size_prefixes_cost_little_and_harm_no_one() {
    let broker = TestBroker::start(&[]);
    create_topic(&broker.bootstrap(), "steady", 1).await;
    let mut producer = connect(&broker);
    let good = valid_batch(100);
    let request = produce_request("steady", &good);
    assert_eq!(produce_error(round_trip(&mut producer, &request).unwrap()), 0);
    let baseline = produce_latencies(&mut producer, &request, 400);
    let before = resident_bytes(std::process::id());
    // Each claims a request just under socket.request.max.bytes (100 MiB), sends 10 bytes of
    // it, and stalls.
    let mut stalled = Vec::new();
    for _ in 0..2000 {
        let mut s = connect(&broker);
        let mut bytes = (100_000_000i32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0u8; 10]);
        s.write_all(&bytes).unwrap();
        stalled.push(s);
    }
    // Let every connection be accepted and read.
    std::thread::sleep(Duration::from_secs(2));
    let grown = resident_bytes(std::process::id()).saturating_sub(before);
    let per_connection = grown / 2000;
    eprintln!("resident memory grew {grown} bytes for 2000 stalled connections: {per_connection} bytes each");
    assert!(per_connection < 64 * 1024, "{per_connection} bytes per stalled connection");
    // Another client keeps producing, as fast as before.
    assert_fair("2000 stalled size prefixes", baseline, produce_latencies(&mut producer, &request, 400));
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_writers_are_served_in_the_end_and_harm_no_one() {
    // A broker of its own process: its resident memory is not the test process's, which the
    // other tests running beside it grow too.
    let dir = tempfile::tempdir().unwrap();
    let broker = crate::support::BrokerProcess::start(dir.path(), crate::support::free_port(), &[]);
    create_topic(&broker.bootstrap(), "steady", 1).await;
    let request = produce_request("steady", &valid_batch(100));
    let mut frame = (request.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&request);
    let mut producer = connect_to(broker.port);
    assert_eq!(produce_error(round_trip(&mut producer, &request).unwrap()), 0);
    let baseline = produce_latencies(&mut producer, &request, 400);
    let before = resident_bytes(broker.pid());

    // 500 clients send a Produce request's size prefix, then dribble its body, one byte a
    // second each, for four seconds; one more sends its whole request a byte every 2 ms and
    // must get its answer.
    let mut slow: Vec<TcpStream> = (0..500).map(|_| connect_to(broker.port)).collect();
    for s in &mut slow {
        s.write_all(&frame[..5]).unwrap();
    }
    let dribbling = {
        let frame = frame.clone();
        std::thread::spawn(move || {
            let mut slow = slow;
            for second in 0..4 {
                std::thread::sleep(Duration::from_secs(1));
                for s in &mut slow {
                    s.write_all(&frame[5 + second..6 + second]).unwrap();
                }
            }
            slow
        })
    };
    let fast_dribbler = {
        let (frame, port) = (frame.clone(), broker.port);
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.set_nodelay(true).unwrap();
            for b in &frame {
                s.write_all(&[*b]).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
            read_frame(&mut s).map(produce_error)
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let loaded = produce_latencies(&mut producer, &request, 400);
    let grown = resident_bytes(broker.pid()).saturating_sub(before);
    assert_eq!(fast_dribbler.join().unwrap(), Some(0), "a request sent a byte at a time is answered");
    let mut slow = dribbling.join().unwrap();
    eprintln!("resident memory grew {grown} bytes for 500 slow writers: {} bytes each", grown / 500);
    assert!(grown / 500 < 64 * 1024, "{} bytes per slow writer", grown / 500);
    assert_fair("500 slow writers", baseline, loaded);

    // The slow writers finish their requests at once: every one is answered, and correctly.
    for s in &mut slow {
        s.write_all(&frame[9..]).unwrap();
    }
    for s in &mut slow {
        assert_eq!(read_frame(s).map(produce_error), Some(0), "a slow writer's request, completed, is answered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_and_max_connections_holds() {
    let broker = TestBroker::start(&[("connections.max.idle.ms", "1000"), ("max.connections", "5")]);
    let mut first = connect(&broker);
    assert!(api_versions_ok(&mut first));
    let mut others: Vec<TcpStream> = (0..4).map(|_| connect(&broker)).collect();
    for s in &mut others {
        assert!(api_versions_ok(s), "connections up to max.connections are served");
    }
    let mut sixth = connect(&broker);
    assert!(!api_versions_ok(&mut sixth), "the sixth connection is closed");
    drop(sixth);
    // A client that says nothing for longer than connections.max.idle.ms is disconnected...
    std::thread::sleep(Duration::from_millis(1600));
    assert!(is_closed(&mut first), "an idle connection is closed");
    // ...and its slot is free again.
    let mut again = connect(&broker);
    assert!(api_versions_ok(&mut again));
}

/// A valid one-record batch from an idempotent producer.
fn idempotent_batch(producer_id: i64, epoch: i16, sequence: i32) -> Vec<u8> {
    use spate::protocol::record_batch::{CRC_START, OFFSET_BASE_SEQUENCE, OFFSET_CRC, OFFSET_PRODUCER_EPOCH, OFFSET_PRODUCER_ID};
    let mut b = valid_batch(10);
    b[OFFSET_PRODUCER_ID..OFFSET_PRODUCER_ID + 8].copy_from_slice(&producer_id.to_be_bytes());
    b[OFFSET_PRODUCER_EPOCH..OFFSET_PRODUCER_EPOCH + 2].copy_from_slice(&epoch.to_be_bytes());
    b[OFFSET_BASE_SEQUENCE..OFFSET_BASE_SEQUENCE + 4].copy_from_slice(&sequence.to_be_bytes());
    let crc = crc32c::crc32c(&b[CRC_START..]);
    b[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Idempotence across restarts: the producers' state is rebuilt at start from the newest
/// snapshot (`<offset>.snapshot`, written at each roll and at a clean stop) and the batches
/// after it, so a batch retried after the broker restarted is answered with its first offset
/// and written once, after a kill -9 (the state of the last roll plus the replayed tail) and
/// after a clean stop (the snapshot at the log end); a gap is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_retry_after_a_restart_is_written_once() {
    use spate::protocol::record_batch::{CRC_START, OFFSET_BASE_TIMESTAMP, OFFSET_CRC, OFFSET_MAX_TIMESTAMP};
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    let mut broker = crate::support::BrokerProcess::start(dir.path(), port, &[("log.segment.bytes", "2048")]);
    create_topic(&broker.bootstrap(), "again", 1).await;
    // Stamped now: a producer whose last batch is older than producer.id.expiration.ms (a day)
    // is forgotten at start, as in Kafka.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let batch = |sequence: i32| {
        let mut b = idempotent_batch(900, 0, sequence);
        b[OFFSET_BASE_TIMESTAMP..OFFSET_BASE_TIMESTAMP + 8].copy_from_slice(&now.to_be_bytes());
        b[OFFSET_MAX_TIMESTAMP..OFFSET_MAX_TIMESTAMP + 8].copy_from_slice(&now.to_be_bytes());
        let crc = crc32c::crc32c(&b[CRC_START..]);
        b[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        b
    };
    let send = |sequence: i32| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let answer = round_trip(&mut s, &produce_request("again", &batch(sequence)));
        produce_result(answer.unwrap_or_else(|| panic!("no answer to the batch of sequence {sequence}")))
    };
    for sequence in 0..40 {
        assert_eq!(send(sequence), (0, sequence as i64));
    }
    let snapshots = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join("again-0"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".snapshot"))
            .collect();
        names.sort();
        names
    };
    assert!(!snapshots().is_empty(), "rolls wrote producer snapshots");

    broker.restart(); // kill -9
    assert_eq!(send(39), (0, 39), "the last batch, retried after a kill -9: its offset, no copy");
    assert_eq!(send(40), (0, 40));
    assert_eq!(send(45).0, 45, "a gap is still OUT_OF_ORDER_SEQUENCE_NUMBER");

    broker.terminate();
    assert!(snapshots().last().is_some_and(|n| n == &format!("{:020}.snapshot", 41)), "a clean stop writes the snapshot at the log end: {:?}", snapshots());
    broker.restart();
    assert_eq!(send(40), (0, 40), "retried after a clean restart: its offset, no copy");
    assert_eq!(send(41), (0, 41), "the next batch goes right after: nothing was written twice");
}

/// The error code and base offset of the single partition in a Produce v7 response.
fn produce_result(resp: Vec<u8>) -> (i16, i64) {
    let mut r = Reader::new(Bytes::from(resp));
    r.i32().unwrap();
    r.i32().unwrap();
    r.string(false).unwrap();
    r.i32().unwrap();
    r.i32().unwrap();
    (r.i16().unwrap(), r.i64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producers_retries_are_written_once_and_gaps_refused() {
    let broker = TestBroker::start(&[]);
    create_topic(&broker.bootstrap(), "exactly", 1).await;
    let mut s = connect(&broker);
    let send = |s: &mut TcpStream, batch: Vec<u8>| produce_result(round_trip(s, &produce_request("exactly", &batch)).unwrap());
    assert_eq!(send(&mut s, idempotent_batch(4242, 0, 0)), (0, 0));
    assert_eq!(send(&mut s, idempotent_batch(4242, 0, 1)), (0, 1));
    // The same batch again (a retry after a lost acknowledgement): its first offset, not a copy.
    assert_eq!(send(&mut s, idempotent_batch(4242, 0, 1)), (0, 1));
    assert_eq!(send(&mut s, idempotent_batch(4242, 0, 0)), (0, 0));
    // A gap in the sequence: OUT_OF_ORDER_SEQUENCE_NUMBER.
    assert_eq!(send(&mut s, idempotent_batch(4242, 0, 5)).0, 45);
    // A new epoch starts over; the old one is fenced: INVALID_PRODUCER_EPOCH.
    assert_eq!(send(&mut s, idempotent_batch(4242, 1, 0)), (0, 2));
    assert_eq!(send(&mut s, idempotent_batch(4242, 0, 2)).0, 47);
    assert_eq!(send(&mut s, idempotent_batch(4242, 1, 1)), (0, 3));

    // librdkafka with idempotence on produces through all of this without an error.
    let b = broker.bootstrap();
    tokio::task::spawn_blocking(move || {
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let producer: BaseProducer = crate::support::client_config(&b).set("enable.idempotence", "true").create().unwrap();
        for i in 0..1000 {
            let v = format!("{i}");
            while producer.send(BaseRecord::to("exactly").key(&v).payload(&v)).is_err() {
                producer.poll(Duration::from_millis(5));
            }
        }
        producer.flush(Duration::from_secs(30)).unwrap();
        let consumer = crate::support::assigning_consumer(&b);
        crate::support::assign_all(&consumer, "exactly", 1);
        let (low, high) = rdkafka::consumer::Consumer::fetch_watermarks(&consumer, "exactly", 0, Duration::from_secs(10)).unwrap();
        assert_eq!((low, high), (0, 1004), "4 raw batches and 1,000 records, each once");
    })
    .await
    .unwrap();
}

/// A Fetch v4 request for partition 0 of `topic` at `offset` that long-polls: it waits
/// `max_wait_ms` for more bytes than will come.
fn long_poll_request(topic: &str, offset: i64, max_wait_ms: i32) -> Vec<u8> {
    fetch_v4(topic, offset, max_wait_ms, i32::MAX, 1 << 20, 9)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_wait_within_queued_max_request_bytes() {
    // 32 MiB broker-wide over 4 shards: 8 MiB a shard.
    let broker = TestBroker::start(&[("queued.max.request.bytes", "33554432")]);
    create_topic(&broker.bootstrap(), "quiet", 1).await;
    create_topic(&broker.bootstrap(), "piled", 1).await;
    let mut s = connect(&broker);
    // A long poll first: every response behind it waits for it (responses leave in request
    // order), so every request behind it stays unanswered, holding its bytes, for 4 s.
    let mut frames = Vec::new();
    let poll = long_poll_request("quiet", 0, 4_000);
    frames.extend((poll.len() as i32).to_be_bytes());
    frames.extend(&poll);
    let request = produce_request("piled", &valid_batch(900_000));
    const PRODUCES: usize = 120;
    for _ in 0..PRODUCES {
        frames.extend((request.len() as i32).to_be_bytes());
        frames.extend(&request);
    }
    // Write as much as the broker takes in 2 s: its budget, plus what the sockets buffer.
    let mut writer = s.try_clone().unwrap();
    writer.set_write_timeout(Some(Duration::from_millis(250))).unwrap();
    let started = Instant::now();
    let mut written = 0;
    while written < frames.len() && started.elapsed() < Duration::from_secs(2) {
        match writer.write(&frames[written..(written + (1 << 20)).min(frames.len())]) {
            Ok(n) => written += n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => panic!("write failed: {e}"),
        }
    }
    eprintln!("the broker took {} of {} MiB of pipelined requests while none could be answered", written >> 20, frames.len() >> 20);
    // Without the budget the connection reads 128 requests (115 MiB) before it waits.
    assert!(written < 48 << 20, "the broker read {} MiB of requests it could not answer yet", written >> 20);
    // Backpressure, not failure: once the long poll ends, everything is read and answered.
    let rest = frames[written..].to_vec();
    let pusher = std::thread::spawn(move || {
        writer.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
        writer.write_all(&rest).unwrap();
    });
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    read_frame(&mut s).expect("the long poll's answer");
    for i in 0..PRODUCES {
        assert_eq!(produce_error(read_frame(&mut s).unwrap_or_else(|| panic!("produce {i} answered"))), 0, "produce {i}");
    }
    pusher.join().unwrap();
}

/// A Fetch v4 for partition 0 of `topic` at `offset`: (error code, record bytes).
fn fetch_at(s: &mut TcpStream, topic: &str, offset: i64) -> (i16, Vec<u8>) {
    let mut r = Reader::new(Bytes::from(round_trip(s, &fetch_v4(topic, offset, 0, 1, 1 << 20, 11)).expect("a fetch answer")));
    assert_eq!(r.i32().unwrap(), 11, "correlation id");
    r.i32().unwrap(); // throttle_time_ms
    assert_eq!(r.i32().unwrap(), 1, "one topic");
    r.string(false).unwrap();
    assert_eq!(r.i32().unwrap(), 1, "one partition");
    r.i32().unwrap();
    let error = r.i16().unwrap();
    r.i64().unwrap(); // high watermark
    r.i64().unwrap(); // last stable offset
    let aborted = r.i32().unwrap();
    assert!(aborted <= 0, "no aborted transactions");
    let records = r.nullable_bytes(false).unwrap().map(|b| b.to_vec()).unwrap_or_default();
    (error, records)
}

/// Bit rot on disk, below the recovery point: the scrubber finds a flipped bit in a sealed
/// segment of a running broker, and the damaged batch is no longer served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrubber_finds_a_flipped_bit_in_a_sealed_segment_and_stops_serving_it() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let broker = TestBroker::start(&[("log.segment.bytes", "65536"), ("log.scrub.bytes.per.second", "67108864"), ("shards", "1")]);
    create_topic(&broker.bootstrap(), "rot", 1).await;
    let producer: BaseProducer =
        crate::support::client_config(&broker.bootstrap()).set("acks", "all").set("linger.ms", "5").set("batch.num.messages", "20").create().unwrap();
    let value = vec![b'r'; 200];
    for i in 0..3000 {
        let key = format!("{i}");
        while producer.send(BaseRecord::to("rot").key(&key).payload(&value)).is_err() {
            producer.poll(Duration::from_millis(1));
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    // The first segment is sealed: find its fourth batch and flip one bit of its records, on
    // disk, as rot would (the broker sees it through the shared page cache).
    let dir = broker.log_dir().join("rot-0");
    let mut logs: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "log")).collect();
    logs.sort();
    assert!(logs.len() > 2, "several segments: {logs:?}");
    let bytes = std::fs::read(&logs[0]).unwrap();
    let mut at = 0;
    let mut batches = Vec::new();
    while at < bytes.len() {
        let size = spate::protocol::record_batch::batch_size(&bytes[at..]).unwrap();
        let view = spate::protocol::record_batch::BatchView { bytes: &bytes[at..at + size] };
        batches.push((at, view.base_offset(), view.last_offset()));
        at += size;
    }
    let (position, base_offset, last_offset) = batches[3];
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&logs[0]).unwrap();
        let flip = [bytes[position + 70] ^ 0x10];
        f.write_at(&flip, (position + 70) as u64).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while broker.metrics().scrub_damaged_batches == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let metrics = broker.metrics();
    eprintln!("scrubber: {} bytes checked, {} damaged batches", metrics.scrub_bytes, metrics.scrub_damaged_batches);
    assert_eq!(metrics.scrub_damaged_batches, 1, "the scrubber found the flipped bit");
    let mut s = connect(&broker);
    for offset in [base_offset, last_offset] {
        assert_eq!(fetch_at(&mut s, "rot", offset).0, 56, "a fetch in the damaged batch: KAFKA_STORAGE_ERROR");
    }
    // Before it, records stop at the damage; after it, they are served.
    let (error, records) = fetch_at(&mut s, "rot", 0);
    assert_eq!(error, 0);
    assert_eq!(records.len(), position, "the records served from offset 0 end where the damaged batch starts");
    let (error, records) = fetch_at(&mut s, "rot", last_offset + 1);
    assert_eq!((error, records.is_empty()), (0, false), "the batches after the damage are served");
}

/// Transactional bits a client sets without a transaction are refused, not stored: a
/// transactional batch in a request without a transactional id (INVALID_RECORD), or from a
/// producer whose transaction coordinator has no such transaction (INVALID_TXN_STATE, after
/// the KIP-890 verification); a control batch from a client (INVALID_RECORD). Nothing of them
/// is in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_and_control_bits_from_a_client_without_a_transaction_are_refused() {
    use spate::protocol::record_batch::{ATTR_CONTROL, ATTR_TRANSACTIONAL, CRC_START, OFFSET_ATTRIBUTES, OFFSET_CRC};
    let broker = TestBroker::start(&[("transaction.state.log.num.partitions", "2")]);
    create_topic(&broker.bootstrap(), "no-txn", 1).await;
    let mut s = connect(&broker);
    let with_attributes = |bits: i16| {
        let mut b = idempotent_batch(777, 0, 0);
        b[OFFSET_ATTRIBUTES..OFFSET_ATTRIBUTES + 2].copy_from_slice(&bits.to_be_bytes());
        let crc = crc32c::crc32c(&b[CRC_START..]);
        b[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        b
    };
    let with_transactional_id = |records: &[u8]| {
        let mut w = Writer::new();
        header(&mut w, 0, 7, 42);
        w.nullable_string(false, Some("nobody's"));
        w.i16(-1);
        w.i32(5000);
        w.i32(1);
        w.string(false, "no-txn");
        w.i32(1);
        w.i32(0);
        w.nullable_bytes(false, Some(records));
        w.finish().to_vec()
    };
    let transactional = with_attributes(ATTR_TRANSACTIONAL);
    assert_eq!(produce_error(round_trip(&mut s, &produce_request("no-txn", &transactional)).unwrap()), 87, "INVALID_RECORD without a transactional id");
    assert_eq!(produce_error(round_trip(&mut s, &with_transactional_id(&transactional)).unwrap()), 48, "INVALID_TXN_STATE: no such transaction");
    let control = with_attributes(ATTR_TRANSACTIONAL | ATTR_CONTROL);
    assert_eq!(produce_error(round_trip(&mut s, &with_transactional_id(&control)).unwrap()), 87, "INVALID_RECORD: a client's control batch");
    // The same producer's plain idempotent batch still goes in, first in the log.
    assert_eq!(produce_error(round_trip(&mut s, &produce_request("no-txn", &idempotent_batch(777, 0, 0))).unwrap()), 0);
    let consumer = crate::support::assigning_consumer(&broker.bootstrap());
    let (low, high) = rdkafka::consumer::Consumer::fetch_watermarks(&consumer, "no-txn", 0, Duration::from_secs(10)).unwrap();
    assert_eq!((low, high), (0, 1), "only the plain batch was stored");
}
