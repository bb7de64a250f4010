//! Consumer groups with librdkafka: assignment strategies, members leaving and dying, commits
//! (sync, async, auto) surviving consumer and broker restarts, publish-subscribe and queue use.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::Producer;
use rdkafka::Message;

use crate::support::{client_config, create_topic, TestBroker};

/// A broker whose groups rebalance without the initial delay and accept short sessions, so the
/// tests do not wait on Kafka's production defaults.
fn group_broker() -> TestBroker {
    TestBroker::start(&[("group.initial.rebalance.delay.ms", "0"), ("group.min.session.timeout.ms", "1000")])
}

fn group_consumer(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut c = client_config(bootstrap);
    c.set("group.id", group)
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().unwrap()
}

/// Produces records `from..from+count` (key and value the number) and checks that every one
/// was acknowledged.
fn produce(bootstrap: &str, topic: &str, from: u32, count: u32) {
    let producer: rdkafka::producer::FutureProducer = client_config(bootstrap).set("linger.ms", "5").create().unwrap();
    let mut deliveries = Vec::new();
    for i in from..from + count {
        let v = format!("{i}");
        loop {
            match producer.send_result(rdkafka::producer::FutureRecord::to(topic).key(&v).payload(&v)) {
                Ok(d) => {
                    deliveries.push((i, d));
                    break;
                }
                Err(_) => producer.poll(Duration::from_millis(5)),
            }
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    for (i, d) in deliveries {
        let result = futures_executor_block_on(d);
        assert!(matches!(result, Ok(Ok(_))), "record {i} was not acknowledged: {result:?}");
    }
}

/// Waits for a delivery future from a blocking thread.
fn futures_executor_block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
}

/// Prints librdkafka's own log lines (captured by the test harness, shown on failure).
struct Logging;

impl rdkafka::ClientContext for Logging {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        eprintln!("{:?} {} {fac} {log_message}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis(), level as i32);
    }
}

impl rdkafka::consumer::ConsumerContext for Logging {}

/// Polls every consumer until each has an assignment and the union covers `partitions`.
/// Records that arrive meanwhile are discarded: for tests that only look at assignments.
fn wait_for_assignments<C: rdkafka::consumer::ConsumerContext>(consumers: &[BaseConsumer<C>], partitions: i32, timeout: Duration) -> Vec<BTreeSet<i32>> {
    wait_for_assignments_counting(consumers, partitions, timeout, &mut HashMap::new())
}

/// Like `wait_for_assignments`, but a record that arrives while waiting is counted in `seen`
/// and committed, exactly as `consume_group` does: a record polled and dropped would look
/// skipped once a later commit in its partition covers it.
fn wait_for_assignments_counting<C: rdkafka::consumer::ConsumerContext>(
    consumers: &[BaseConsumer<C>],
    partitions: i32,
    timeout: Duration,
    seen: &mut HashMap<String, u32>,
) -> Vec<BTreeSet<i32>> {
    let deadline = Instant::now() + timeout;
    loop {
        for c in consumers {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
                process(c, &m, seen);
            }
        }
        let sets: Vec<BTreeSet<i32>> = consumers.iter().map(|c| c.assignment().unwrap().elements().iter().map(|e| e.partition()).collect()).collect();
        let total: usize = sets.iter().map(|s| s.len()).sum();
        let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
        if total == partitions as usize && union.len() == partitions as usize && sets.iter().all(|s| !s.is_empty()) {
            return sets;
        }
        assert!(Instant::now() < deadline, "assignments did not settle: {sets:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_split_twelve_partitions_with_every_strategy() {
    let broker = group_broker();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "split", 12).await;
    tokio::task::spawn_blocking(move || {
        for strategy in ["range", "roundrobin", "cooperative-sticky"] {
            let group = format!("split-{strategy}");
            let consumers: Vec<BaseConsumer> = (0..3).map(|_| group_consumer(&bootstrap, &group, &[("partition.assignment.strategy", strategy)])).collect();
            let started = Instant::now();
            for c in &consumers {
                c.subscribe(&["split"]).unwrap();
            }
            let sets = wait_for_assignments(&consumers, 12, Duration::from_secs(60));
            eprintln!("{strategy}: three new members got their assignments {:?} after subscribing", started.elapsed());
            for (i, a) in sets.iter().enumerate() {
                for b in &sets[i + 1..] {
                    assert!(a.is_disjoint(b), "{strategy}: overlapping assignments {sets:?}");
                }
            }
            assert!(sets.iter().all(|s| s.len() == 4), "{strategy}: 12 partitions over 3 members: {sets:?}");
        }
    })
    .await
    .unwrap();
}

/// What every group member in these tests does with a record: count it, then commit it
/// (commit after processing, for at-least-once).
fn process<C: rdkafka::consumer::ConsumerContext>(c: &BaseConsumer<C>, m: &rdkafka::message::BorrowedMessage<'_>, seen: &mut HashMap<String, u32>) {
    *seen.entry(String::from_utf8(m.payload().unwrap().to_vec()).unwrap()).or_default() += 1;
    c.commit_message(m, CommitMode::Sync).unwrap();
}

/// Consumes with commit-after-processing until `expected` distinct records were seen by the
/// group, returning how many times each record was seen.
fn consume_group<C: rdkafka::consumer::ConsumerContext>(consumers: &[BaseConsumer<C>], expected: usize, seen: &mut HashMap<String, u32>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while seen.len() < expected {
        if Instant::now() >= deadline {
            let missing: Vec<usize> = (0..expected).filter(|i| !seen.contains_key(&i.to_string())).collect();
            let assignments: Vec<_> = consumers.iter().map(|c| (c.assignment().unwrap(), c.position().unwrap())).collect();
            panic!("only {} of {expected} records consumed; missing {missing:?}; assignments and positions {assignments:?}", seen.len());
        }
        for c in consumers {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(20)) {
                process(c, &m, seen);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_move_when_a_member_leaves_or_dies_and_every_record_is_read_once() {
    let broker = group_broker();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "moving", 6).await;
    tokio::task::spawn_blocking(move || {
        produce(&bootstrap, "moving", 0, 3000);
        let mut consumers: Vec<BaseConsumer<Logging>> = (0..3)
            .map(|_| {
                let mut c = client_config(&bootstrap);
                c.set("group.id", "movers")
                    .set("session.timeout.ms", "6000")
                    .set("heartbeat.interval.ms", "500")
                    .set("auto.offset.reset", "earliest")
                    .set("enable.auto.commit", "false")
                    .set_log_level(rdkafka::config::RDKafkaLogLevel::Warning);
                c.create_with_context(Logging).unwrap()
            })
            .collect();
        for c in &consumers {
            c.subscribe(&["moving"]).unwrap();
        }
        let mut seen = HashMap::new();
        wait_for_assignments_counting(&consumers, 6, Duration::from_secs(60), &mut seen);
        consume_group(&consumers, 1000, &mut seen, Duration::from_secs(60));

        // One member leaves cleanly: the other two take its partitions.
        let leaving = consumers.pop().unwrap();
        let left = Instant::now();
        drop(leaving);
        wait_for_assignments_counting(&consumers, 6, Duration::from_secs(60), &mut seen);
        eprintln!("after a member left, the group covered every partition again {:?} later", left.elapsed());
        consume_group(&consumers, 2000, &mut seen, Duration::from_secs(60));

        // A member that joins and then dies without leaving: a raw-protocol member that stops
        // heartbeating (librdkafka's own consumers heartbeat from a background thread even when
        // not polled). After its 2 s session runs out, the group rebalances without it.
        let b = bootstrap.clone();
        let ghost = std::thread::spawn(move || raw_member_joins_then_dies(&b, "movers", "moving"));
        let joined = Instant::now();
        while !ghost.is_finished() {
            for c in &consumers {
                if let Some(Ok(m)) = c.poll(Duration::from_millis(20)) {
                    process(c, &m, &mut seen);
                }
            }
            assert!(joined.elapsed() < Duration::from_secs(60), "the ghost member never got through its join");
        }
        let died = ghost.join().unwrap();
        let sets = wait_for_assignments_counting(&consumers, 6, Duration::from_secs(60), &mut seen);
        eprintln!("after a member died, the group covered every partition again {:?} later", died.elapsed());
        assert_eq!(sets.iter().map(|s| s.len()).sum::<usize>(), 6);
        consume_group(&consumers, 3000, &mut seen, Duration::from_secs(60));
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "records read more than once: {twice:?}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_consumer_and_broker_restarts() {
    let mut broker = group_broker();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "resume", 3).await;
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || produce(&b, "resume", 0, 300)).await.unwrap();

    // Read 100 records and commit: sync for some, async for the rest.
    let b = bootstrap.clone();
    let first: HashSet<String> = tokio::task::spawn_blocking(move || {
        let c = group_consumer(&b, "resumers", &[]);
        c.subscribe(&["resume"]).unwrap();
        let mut got = HashSet::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while got.len() < 100 {
            assert!(Instant::now() < deadline);
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                got.insert(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
                let mode = if got.len() % 2 == 0 { CommitMode::Sync } else { CommitMode::Async };
                c.commit_message(&m, mode).unwrap();
            }
        }
        // The 100th commit was synchronous, so every commit has been answered.
        got
    })
    .await
    .unwrap();

    broker.restart();

    // A new consumer of the group, after a broker restart, starts at the committed offsets:
    // together the two runs read every record exactly once.
    let b = bootstrap.clone();
    let second: Vec<String> = tokio::task::spawn_blocking(move || {
        let c = group_consumer(&b, "resumers", &[]);
        c.subscribe(&["resume"]).unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut quiet = Instant::now();
        while Instant::now() < deadline && (got.len() < 200 || quiet.elapsed() < Duration::from_secs(2)) {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                got.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
                quiet = Instant::now();
            }
        }
        got
    })
    .await
    .unwrap();
    assert_eq!(second.len(), 200, "the second run reads only what the first did not commit");
    for v in &second {
        assert!(!first.contains(v), "record {v} was read again after its commit");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_commit_and_offset_reset() {
    let broker = group_broker();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "auto", 1).await;
    tokio::task::spawn_blocking(move || {
        produce(&bootstrap, "auto", 0, 50);
        // auto.offset.reset=latest: a new group starts at the end and sees only new records.
        let latest = group_consumer(&bootstrap, "latecomers", &[("auto.offset.reset", "latest")]);
        latest.subscribe(&["auto"]).unwrap();
        wait_for_assignments(std::slice::from_ref(&latest), 1, Duration::from_secs(30));
        // Let it resolve its start offset before the new records arrive.
        let settle = Instant::now();
        while settle.elapsed() < Duration::from_secs(1) {
            assert!(latest.poll(Duration::from_millis(50)).is_none(), "nothing before the new records");
        }
        produce(&bootstrap, "auto", 50, 10);
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while got.len() < 10 && Instant::now() < deadline {
            if let Some(Ok(m)) = latest.poll(Duration::from_millis(100)) {
                got.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
            }
        }
        assert_eq!(got, (50..60).map(|i| i.to_string()).collect::<Vec<_>>());

        // enable.auto.commit: offsets are committed every auto.commit.interval.ms.
        let auto = group_consumer(&bootstrap, "autos", &[("enable.auto.commit", "true"), ("auto.commit.interval.ms", "200")]);
        auto.subscribe(&["auto"]).unwrap();
        let mut n = 0;
        let deadline = Instant::now() + Duration::from_secs(30);
        while n < 60 && Instant::now() < deadline {
            if let Some(Ok(_)) = auto.poll(Duration::from_millis(100)) {
                n += 1;
            }
        }
        assert_eq!(n, 60);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let _ = auto.poll(Duration::from_millis(100));
            let committed = auto.committed(Duration::from_secs(5)).unwrap();
            if committed.elements().first().map(|e| e.offset()) == Some(rdkafka::Offset::Offset(60)) {
                break;
            }
            assert!(Instant::now() < deadline, "auto commit never reached offset 60: {committed:?}");
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_groups_each_read_everything_and_one_group_shares_the_work() {
    let broker = group_broker();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "fanout", 4).await;
    tokio::task::spawn_blocking(move || {
        produce(&bootstrap, "fanout", 0, 400);
        let stop = Arc::new(AtomicBool::new(false));
        let results = Arc::new(Mutex::new(HashMap::<String, Vec<String>>::new()));
        let mut threads = Vec::new();
        // Publish-subscribe: groups "a" and "b" each get every record. Queue: the two members
        // of group "b" share them.
        for (group, member) in [("a", 0), ("b", 0), ("b", 1)] {
            let (bootstrap, stop, results) = (bootstrap.clone(), stop.clone(), results.clone());
            threads.push(std::thread::spawn(move || {
                let c = group_consumer(&bootstrap, group, &[]);
                c.subscribe(&["fanout"]).unwrap();
                let deadline = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
                        let v = String::from_utf8(m.payload().unwrap().to_vec()).unwrap();
                        results.lock().unwrap().entry(format!("{group}{member}")).or_default().push(v);
                        c.commit_message(&m, CommitMode::Async).unwrap();
                    }
                }
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            {
                let r = results.lock().unwrap();
                let a = r.get("a0").map_or(0, |v| v.len());
                let b = r.get("b0").map_or(0, |v| v.len()) + r.get("b1").map_or(0, |v| v.len());
                if a >= 400 && b >= 400 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "the groups did not finish");
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        let r = results.lock().unwrap();
        let a: HashSet<&String> = r["a0"].iter().collect();
        let b: Vec<&String> = r.get("b0").into_iter().chain(r.get("b1")).flatten().collect();
        assert_eq!(a.len(), 400, "group a read everything");
        assert_eq!(b.iter().collect::<HashSet<_>>().len(), 400, "group b read everything");
        assert_eq!(b.len(), 400, "group b read each record once");
    })
    .await
    .unwrap();
}

/// Joins `group` over the raw protocol (JoinGroup v0 and SyncGroup v0, with a 2 s session and
/// a "range" consumer subscription to `topic`), takes whatever assignment it is given, then
/// goes silent. Returns when it stopped talking.
fn raw_member_joins_then_dies(bootstrap: &str, group: &str, topic: &str) -> Instant {
    use spate::protocol::codec::{Reader, Writer};
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(bootstrap).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut call = |api: i16, body: &dyn Fn(&mut Writer)| -> Reader {
        let mut w = Writer::new();
        w.i16(api);
        w.i16(0);
        w.i32(1);
        w.nullable_string(false, Some("ghost"));
        body(&mut w);
        let frame = w.finish();
        s.write_all(&(frame.len() as i32).to_be_bytes()).unwrap();
        s.write_all(&frame).unwrap();
        let mut size = [0u8; 4];
        s.read_exact(&mut size).unwrap();
        let mut resp = vec![0u8; i32::from_be_bytes(size) as usize];
        s.read_exact(&mut resp).unwrap();
        let mut r = Reader::new(bytes::Bytes::from(resp));
        r.i32().unwrap(); // correlation id
        r
    };
    // ConsumerProtocolSubscription v0: version, topics, user data.
    let mut sub = Writer::new();
    sub.i16(0);
    sub.i32(1);
    sub.string(false, topic);
    sub.nullable_bytes(false, None);
    let subscription = sub.finish().to_vec();
    let mut join = call(11, &|w| {
        w.string(false, group);
        w.i32(2000); // session timeout
        w.string(false, ""); // member id
        w.string(false, "consumer");
        w.i32(1);
        w.string(false, "range");
        w.nullable_bytes(false, Some(&subscription));
    });
    assert_eq!(join.i16().unwrap(), 0, "the ghost joins");
    let generation = join.i32().unwrap();
    join.string(false).unwrap(); // protocol
    let leader = join.string(false).unwrap();
    let member_id = join.string(false).unwrap();
    assert_ne!(leader, member_id, "a librdkafka member leads");
    let mut sync = call(14, &|w| {
        w.string(false, group);
        w.i32(generation);
        w.string(false, &member_id);
        w.i32(0); // no assignments: not the leader
    });
    let error = sync.i16().unwrap();
    assert!(error == 0 || error == 27, "the ghost syncs (or is told to rejoin): {error}");
    Instant::now()
}

struct CountingRebalances(Arc<std::sync::atomic::AtomicUsize>);

impl rdkafka::ClientContext for CountingRebalances {}

impl rdkafka::consumer::ConsumerContext for CountingRebalances {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &rdkafka::consumer::Rebalance<'_>) {
        if matches!(rebalance, rdkafka::consumer::Rebalance::Revoke(_)) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_that_restarts_keeps_its_partitions_without_a_rebalance() {
    let broker = group_broker();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "static", 4).await;
    tokio::task::spawn_blocking(move || {
        let statics = |instance: &str, ctx: CountingRebalances| -> BaseConsumer<CountingRebalances> {
            let mut c = client_config(&bootstrap);
            c.set("group.id", "statics")
                .set("group.instance.id", instance)
                .set("session.timeout.ms", "10000")
                .set("heartbeat.interval.ms", "500")
                .set("auto.offset.reset", "earliest");
            c.create_with_context(ctx).unwrap()
        };
        let revokes_b = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let a = statics("instance-a", CountingRebalances(Arc::default()));
        let b = statics("instance-b", CountingRebalances(revokes_b.clone()));
        a.subscribe(&["static"]).unwrap();
        b.subscribe(&["static"]).unwrap();
        let assigned = |c: &BaseConsumer<CountingRebalances>| -> BTreeSet<i32> { c.assignment().unwrap().elements().iter().map(|e| e.partition()).collect() };
        let deadline = Instant::now() + Duration::from_secs(60);
        while assigned(&a).len() + assigned(&b).len() != 4 || assigned(&a).is_empty() || assigned(&b).is_empty() {
            assert!(Instant::now() < deadline, "the two static members never split the partitions");
            let _ = a.poll(Duration::from_millis(50));
            let _ = b.poll(Duration::from_millis(50));
        }
        // Settle: let any follow-up rebalance of the initial joins finish.
        let settle = Instant::now();
        while settle.elapsed() < Duration::from_secs(2) {
            let _ = a.poll(Duration::from_millis(50));
            let _ = b.poll(Duration::from_millis(50));
        }
        let before_a = assigned(&a);
        let revokes_before = revokes_b.load(Ordering::Relaxed);
        // A static member closes without leaving the group and comes back within its session.
        drop(a);
        let a = statics("instance-a", CountingRebalances(Arc::default()));
        a.subscribe(&["static"]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while assigned(&a).is_empty() {
            assert!(Instant::now() < deadline, "the returning static member got nothing");
            let _ = a.poll(Duration::from_millis(50));
            let _ = b.poll(Duration::from_millis(50));
        }
        let settle = Instant::now();
        while settle.elapsed() < Duration::from_secs(2) {
            let _ = a.poll(Duration::from_millis(50));
            let _ = b.poll(Duration::from_millis(50));
        }
        assert_eq!(assigned(&a), before_a, "the returning member has its old partitions");
        assert_eq!(revokes_b.load(Ordering::Relaxed), revokes_before, "the other member saw no rebalance");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_keeps_its_metadata_string() {
    let broker = group_broker();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "annotated", 2).await;
    tokio::task::spawn_blocking(move || {
        let c = group_consumer(&bootstrap, "annotators", &[]);
        let mut tpl = rdkafka::TopicPartitionList::new();
        tpl.add_partition_offset("annotated", 1, rdkafka::Offset::Offset(7)).unwrap();
        tpl.find_partition("annotated", 1).unwrap().set_metadata("checkpoint=alpha");
        // A commit outside any generation (the consumer assigns itself, as kcat -o does).
        c.commit(&tpl, CommitMode::Sync).unwrap();
        let mut query = rdkafka::TopicPartitionList::new();
        query.add_partition("annotated", 0);
        query.add_partition("annotated", 1);
        let committed = c.committed_offsets(query, Duration::from_secs(10)).unwrap();
        let p1 = committed.find_partition("annotated", 1).unwrap();
        assert_eq!(p1.offset(), rdkafka::Offset::Offset(7));
        assert_eq!(p1.metadata(), "checkpoint=alpha");
        assert_eq!(committed.find_partition("annotated", 0).unwrap().offset(), rdkafka::Offset::Invalid, "nothing committed there");
    })
    .await
    .unwrap();
}
