//! The cluster with real processes: three `spate broker` nodes (each broker and controller, as
//! the seeds' quickstart runs three brokers on one machine), formatted with one cluster id by
//! `spate storage format`, on loopback ports. Checked: the metadata quorum forms and every
//! broker sees the others; topics are placed over all three and librdkafka produces through
//! one broker and reads back through another, every partition from its leader; killing the
//! active controller with kill -9 elects another and topics can still be created; a broker
//! killed is fenced after its session and, restarted, leads its partitions again with its
//! records intact. One test runs each broker in its own network namespace (as root, with
//! `ip`) and cuts the leader off from the others by routes, to check what a real partition
//! does to acks=all writes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::Message;

use crate::support::{client_config, free_port, wait_for_addr};

const SESSION_TIMEOUT_MS: u64 = 3000;

struct Node {
    id: i32,
    host: String,
    client_port: u16,
    config: PathBuf,
    /// The command the broker runs under (`ip netns exec <ns>`, which execs): empty for none.
    prefix: Vec<String>,
    child: Option<Child>,
}

impl Node {
    fn bootstrap(&self) -> String {
        format!("{}:{}", self.host, self.client_port)
    }

    fn spawn(&mut self) {
        let spate = env!("CARGO_BIN_EXE_spate");
        let mut command = match self.prefix.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(spate);
                c
            }
            None => Command::new(spate),
        };
        let child = command
            .args(["broker", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "warn,openraft=error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn spate");
        self.child = Some(child);
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            crate::support::wait_for_port_closed(&self.host, self.client_port, Duration::from_secs(10));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

struct TestCluster {
    // Dropped last: the nodes (killed on drop) first, then the folder, then the lock.
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

/// One cluster at a time: three brokers and a librdkafka load already fill two cores, and two
/// clusters at once would measure the machine's overload rather than the failover.
static CLUSTERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Where one node listens and what it runs under.
struct NodeHost {
    host: String,
    /// None: a free port on loopback, picked once the cluster holds the lock.
    client_port: Option<u16>,
    controller_port: Option<u16>,
    prefix: Vec<String>,
}

impl NodeHost {
    fn loopback() -> NodeHost {
        NodeHost { host: "127.0.0.1".into(), client_port: None, controller_port: None, prefix: Vec::new() }
    }
}

impl TestCluster {
    /// `n` nodes on loopback, formatted and started; returns once every client listener accepts.
    fn start(n: i32) -> TestCluster {
        Self::start_with((0..n).map(|_| NodeHost::loopback()).collect())
    }

    /// One node per entry of `hosts` (node ids from 1), formatted and started.
    fn start_with(hosts: Vec<NodeHost>) -> TestCluster {
        let one_at_a_time = CLUSTERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let n = hosts.len() as i32;
        let dir = tempfile::tempdir().unwrap();
        let controller_ports: Vec<u16> = hosts.iter().map(|h| h.controller_port.unwrap_or_else(free_port)).collect();
        let voters: Vec<String> = (0..n).map(|i| format!("{}@{}:{}", i + 1, hosts[i as usize].host, controller_ports[i as usize])).collect();
        let spate = env!("CARGO_BIN_EXE_spate");
        let cluster_id = String::from_utf8(Command::new(spate).args(["storage", "random-uuid"]).output().unwrap().stdout).unwrap().trim().to_string();
        assert!(cluster_id.len() == 22 && !cluster_id.starts_with('-'), "a Kafka UUID, never taken for a flag: {cluster_id}");
        let mut nodes = Vec::new();
        for i in 0..n {
            let id = i + 1;
            let host = hosts[i as usize].host.clone();
            let client_port = hosts[i as usize].client_port.unwrap_or_else(free_port);
            let config = dir.path().join(format!("node-{id}.properties"));
            let text = format!(
                "process.roles=broker,controller\nnode.id={id}\ncontroller.quorum.voters={}\n\
                 listeners=PLAINTEXT://{host}:{client_port},CONTROLLER://{host}:{}\ncontroller.listener.names=CONTROLLER\n\
                 log.dirs={}\nshards=2\nbroker.session.timeout.ms={SESSION_TIMEOUT_MS}\nbroker.heartbeat.interval.ms=500\n\
                 num.partitions=3\noffsets.topic.num.partitions=6\ngroup.initial.rebalance.delay.ms=0\n\
                 transaction.state.log.num.partitions=6\n",
                voters.join(","),
                controller_ports[i as usize],
                dir.path().join(format!("node-{id}")).display()
            );
            std::fs::write(&config, text).unwrap();
            let out = Command::new(spate).args(["storage", "format", &format!("--cluster-id={cluster_id}"), "--config"]).arg(&config).output().unwrap();
            assert!(out.status.success(), "format: {}", String::from_utf8_lossy(&out.stderr));
            let again = Command::new(spate).args(["storage", "format", &format!("--cluster-id={cluster_id}"), "--config"]).arg(&config).output().unwrap();
            assert!(!again.status.success(), "a formatted log dir is not formatted twice");
            nodes.push(Node { id, host, client_port, config, prefix: hosts[i as usize].prefix.clone(), child: None });
        }
        for node in &mut nodes {
            node.spawn();
        }
        for node in &nodes {
            wait_for_addr(&node.host, node.client_port, Duration::from_secs(60));
        }
        TestCluster { nodes, _dir: dir, _one_at_a_time: one_at_a_time }
    }

    fn node(&mut self, id: i32) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.id == id).unwrap()
    }
}

fn spate(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_spate")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `spate metadata-quorum describe --status` through `bootstrap`, as key -> value.
fn quorum_status(bootstrap: &str) -> Option<BTreeMap<String, String>> {
    let (ok, out, _) = spate(&["metadata-quorum", "--bootstrap-server", bootstrap, "describe", "--status"]);
    ok.then(|| out.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect())
}

/// Each partition's leader, as `bootstrap` reports it (-1: none).
fn leaders(bootstrap: &str, topic: &str) -> Vec<i32> {
    let consumer: BaseConsumer = client_config(bootstrap).create().unwrap();
    let meta = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let t = &meta.topics()[0];
    let mut out: Vec<(i32, i32)> = t.partitions().iter().map(|p| (p.id(), if p.error().is_some() { -1 } else { p.leader() })).collect();
    out.sort();
    out.into_iter().map(|(_, l)| l).collect()
}

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

fn produce(bootstrap: &str, topic: &str, from: usize, count: usize) {
    let producer: BaseProducer = client_config(bootstrap).set("acks", "all").set("enable.idempotence", "true").set("linger.ms", "5").create().unwrap();
    for i in from..from + count {
        let key = format!("k{}", i % 17);
        let value = format!("v{i}");
        producer.send(BaseRecord::to(topic).key(&key).payload(&value)).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Reads every partition from the beginning through `bootstrap` until `count` records came.
fn consume_all(bootstrap: &str, topic: &str, partitions: i32, count: usize) -> Vec<String> {
    let consumer = crate::support::assigning_consumer(bootstrap);
    crate::support::assign_all(&consumer, topic, partitions);
    let mut values = Vec::new();
    let mut next = vec![0i64; partitions as usize];
    let deadline = Instant::now() + Duration::from_secs(60);
    while values.len() < count {
        assert!(Instant::now() < deadline, "only {} of {count} records came back", values.len());
        let Some(m) = consumer.poll(Duration::from_millis(200)) else { continue };
        let m = m.unwrap();
        assert_eq!(m.offset(), next[m.partition() as usize], "offsets dense and in order");
        next[m.partition() as usize] += 1;
        values.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
    }
    values.sort();
    values
}

#[test]
fn three_nodes_form_a_quorum_place_partitions_and_survive_the_loss_of_the_controller() {
    let mut cluster = TestCluster::start(3);
    let b1 = cluster.nodes[0].bootstrap();
    let b2 = cluster.nodes[1].bootstrap();

    // The quorum forms; every broker registers and is unfenced.
    wait_until("three brokers in the metadata", Duration::from_secs(30), || {
        let consumer: BaseConsumer = client_config(&b2).create().unwrap();
        consumer.fetch_metadata(None, Duration::from_secs(5)).is_ok_and(|m| m.brokers().len() == 3)
    });
    let status = quorum_status(&b1).expect("metadata-quorum describe --status");
    assert_eq!(status["CurrentVoters"], "[1,2,3]", "{status:?}");
    let leader: i32 = status["LeaderId"].parse().unwrap();
    assert!((1..=3).contains(&leader), "{status:?}");

    // A topic over the three brokers, through the tools.
    let (ok, _, err) = spate(&["topics", "--bootstrap-server", &b1, "--create", "--topic", "spread", "--partitions", "6", "--replication-factor", "1"]);
    assert!(ok, "create: {err}");
    let placed = leaders(&b2, "spread");
    assert_eq!(placed.len(), 6);
    for id in 1..=3 {
        assert_eq!(placed.iter().filter(|l| **l == id).count(), 2, "two leaders each: {placed:?}");
    }
    let (ok, out, _) = spate(&["topics", "--bootstrap-server", &b2, "--describe", "--topic", "spread"]);
    assert!(ok && out.contains("Leader: ") && out.lines().filter(|l| l.contains("Partition:")).count() == 6, "{out}");
    // More replicas than brokers is refused, as Kafka refuses it.
    let (ok, _, err) = spate(&["topics", "--bootstrap-server", &b1, "--create", "--topic", "rf4", "--partitions", "1", "--replication-factor", "4"]);
    assert!(!ok && err.contains("INVALID_REPLICATION_FACTOR"), "{err}");

    // Produce through one broker, read back through another: every partition from its leader.
    produce(&b1, "spread", 0, 600);
    let expected: Vec<String> = {
        let mut v: Vec<String> = (0..600).map(|i| format!("v{i}")).collect();
        v.sort();
        v
    };
    assert_eq!(consume_all(&b2, "spread", 6, 600), expected);

    // kill -9 the active controller: another voter leads, and topics can still be created.
    cluster.node(leader).kill9();
    let killed = Instant::now();
    let survivor = cluster.nodes.iter().find(|n| n.id != leader).unwrap().bootstrap();
    let elected = wait_until("a new controller", Duration::from_secs(15), || {
        quorum_status(&survivor).is_some_and(|s| s["LeaderId"].parse::<i32>().is_ok_and(|l| l != leader && l > 0))
    });
    eprintln!("a new controller was elected {elected:?} after the kill");
    let (ok, _, err) = spate(&["topics", "--bootstrap-server", &survivor, "--create", "--topic", "after", "--partitions", "2", "--replication-factor", "1"]);
    assert!(ok, "create after the controller's loss: {err}");

    // The killed broker is fenced after its session: its partitions have no leader.
    let lost: Vec<usize> = placed.iter().enumerate().filter(|(_, l)| **l == leader).map(|(p, _)| p).collect();
    wait_until("the dead broker fenced", Duration::from_millis(SESSION_TIMEOUT_MS + 10_000), || {
        let now = leaders(&survivor, "spread");
        lost.iter().all(|p| now[*p] == -1)
    });
    eprintln!("the dead broker's partitions were leaderless {:?} after the kill (session timeout {SESSION_TIMEOUT_MS} ms)", killed.elapsed());

    // Restarted, it leads them again, with its records.
    cluster.node(leader).spawn();
    wait_until("the broker back as leader", Duration::from_secs(30), || leaders(&survivor, "spread") == placed);
    assert_eq!(consume_all(&survivor, "spread", 6, 600), expected, "nothing lost across the restart");
    produce(&survivor, "spread", 600, 60);
    assert_eq!(consume_all(&cluster.node(leader).bootstrap(), "spread", 6, 660).len(), 660);
}

/// What a producer had acknowledged: per partition, the values in offset order.
type Acked = std::sync::Arc<std::sync::Mutex<BTreeMap<i32, Vec<(i64, String)>>>>;

struct AckContext(Acked);

impl rdkafka::ClientContext for AckContext {}

impl rdkafka::producer::ProducerContext for AckContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        if let Ok(m) = result {
            let value = String::from_utf8(m.payload().unwrap().to_vec()).unwrap();
            self.0.lock().unwrap().entry(m.partition()).or_default().push((m.offset(), value));
        }
    }
}

/// The checker, in the spirit of Jepsen's: every acknowledged record is read back exactly once,
/// at the offset it was acknowledged at, and nothing is read twice (the producer is
/// idempotent, so not even an unacknowledged retry may appear twice).
fn check_acknowledged(acked: &BTreeMap<i32, Vec<(i64, String)>>, read: &BTreeMap<i32, Vec<(i64, String)>>) -> usize {
    let mut total = 0;
    for (p, records) in acked {
        let log = read.get(p).cloned().unwrap_or_default();
        let by_offset: BTreeMap<i64, &String> = log.iter().map(|(o, v)| (*o, v)).collect();
        for (offset, value) in records {
            assert_eq!(by_offset.get(offset).copied(), Some(value), "partition {p}: acknowledged record {value} at {offset} is not there");
            total += 1;
        }
    }
    for (p, log) in read {
        let mut seen = std::collections::HashSet::new();
        for (_, value) in log {
            assert!(seen.insert(value.clone()), "partition {p}: {value} appears twice");
        }
    }
    total
}

/// Everything in every partition, read from the beginning through `bootstrap`, up to the end
/// offsets the leaders report now.
fn read_everything(bootstrap: &str, topic: &str, partitions: i32) -> BTreeMap<i32, Vec<(i64, String)>> {
    let consumer = crate::support::assigning_consumer(bootstrap);
    let mut ends = BTreeMap::new();
    for p in 0..partitions {
        let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).unwrap();
        ends.insert(p, high);
    }
    crate::support::assign_all(&consumer, topic, partitions);
    let mut out: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ends.iter().any(|(p, end)| out.get(p).map_or(0, |v| v.len() as i64) < *end) {
        assert!(Instant::now() < deadline, "reading back: {:?} of {ends:?}", out.iter().map(|(p, v)| (*p, v.len())).collect::<Vec<_>>());
        let Some(m) = consumer.poll(Duration::from_millis(200)) else { continue };
        let m = m.unwrap();
        out.entry(m.partition()).or_default().push((m.offset(), String::from_utf8(m.payload().unwrap().to_vec()).unwrap()));
    }
    out
}

/// A partition folder's `.log` files, in offset order.
fn segment_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<_> =
        std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "log")).collect();
    files.sort();
    files
}

/// The batches of a partition's segment files in one node's log dir, as (base offset, CRC).
fn batches_on_disk(dir: &std::path::Path) -> Vec<(i64, u32)> {
    let mut out = Vec::new();
    for f in segment_files(dir) {
        let bytes = std::fs::read(&f).unwrap();
        for range in spate::protocol::record_batch::split_batches(&bytes).unwrap() {
            let view = spate::protocol::record_batch::BatchView { bytes: &bytes[range] };
            out.push((view.base_offset(), view.crc()));
        }
    }
    out
}

#[test]
fn acknowledged_records_survive_killing_the_leader_again_and_again() {
    // scripts/cluster-kill-loop.sh runs 100 and more.
    let cycles: usize = std::env::var("SPATE_CLUSTER_KILL_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    const PER_CYCLE: usize = 2000;
    let mut cluster = replicated_cluster("kept", 3);
    let b1 = cluster.nodes[0].bootstrap();
    let isr_full = |bootstrap: &str| isr_sizes(bootstrap, "kept") == vec![3, 3, 3];
    let acked: Acked = Default::default();
    let bootstrap_all = cluster.nodes.iter().map(|n| n.bootstrap()).collect::<Vec<_>>().join(",");
    let producer = acking_producer(&bootstrap_all, &acked);
    let mut next = 0usize;
    for cycle in 0..cycles {
        // Records flow while the leader of partition 0 is killed, then it comes back.
        let survivor = cluster.nodes.iter().map(|n| n.bootstrap()).nth(cycle % 3).unwrap();
        let leader = leaders(&survivor, "kept")[0];
        let killed_at = Instant::now() + Duration::from_millis(300);
        let mut killed: Option<Instant> = None;
        let end = next + PER_CYCLE;
        while next < end || killed.is_none() {
            if killed.is_none() && Instant::now() >= killed_at {
                cluster.node(leader).kill9();
                killed = Some(Instant::now());
            }
            if next < end {
                let key = format!("k{}", next % 13);
                let value = format!("v{next}");
                match producer.send(BaseRecord::to("kept").key(&key).payload(&value)) {
                    Ok(()) => next += 1,
                    Err((e, _)) => panic!("send: {e}"),
                }
            }
            producer.poll(Duration::from_millis(1));
        }
        let other = cluster.nodes.iter().find(|n| n.id != leader).unwrap().bootstrap();
        wait_until("a new leader of partition 0", Duration::from_millis(SESSION_TIMEOUT_MS + 15_000), || {
            let l = leaders(&other, "kept")[0];
            l != leader && l > 0
        });
        // From the kill itself (the records kept flowing after it, so the wait began later).
        let failover = killed.expect("killed above").elapsed();
        eprintln!("cycle {cycle}: broker {leader} killed; partition 0 had a new leader {failover:?} after the kill (session timeout {SESSION_TIMEOUT_MS} ms)");
        producer.flush(Duration::from_secs(120)).unwrap();
        cluster.node(leader).spawn();
        wait_until("the restarted broker back in every ISR", Duration::from_secs(60), || isr_full(&other));
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    let acked = acked.lock().unwrap().clone();
    let read = read_everything(&b1, "kept", 3);
    let total = check_acknowledged(&acked, &read);
    eprintln!("{cycles} kill -9 cycles: {total} acknowledged records of {next} sent, all read back once, in order");
    assert_eq!(total, next, "with retries, every record is acknowledged in the end");

    // Every replica's log is a prefix of the longest (here: all equal once caught up).
    stop_all(&mut cluster);
    assert_prefixes(&cluster, "kept", 3);
}

fn signal(node: &Node, sig: nix::sys::signal::Signal) {
    let pid = node.child.as_ref().expect("running").id() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
}

/// A three-node cluster with one topic of 3 replicas and min.insync.replicas=2, every replica in
/// the ISR.
fn replicated_cluster(topic: &str, partitions: i32) -> TestCluster {
    replicated_cluster_on((0..3).map(|_| NodeHost::loopback()).collect(), topic, partitions)
}

/// As `replicated_cluster`, on the three nodes of `hosts`.
fn replicated_cluster_on(hosts: Vec<NodeHost>, topic: &str, partitions: i32) -> TestCluster {
    let cluster = TestCluster::start_with(hosts);
    let b1 = cluster.nodes[0].bootstrap();
    wait_until("three brokers", Duration::from_secs(30), || {
        let consumer: BaseConsumer = client_config(&b1).create().unwrap();
        consumer.fetch_metadata(None, Duration::from_secs(5)).is_ok_and(|m| m.brokers().len() == 3)
    });
    let p = partitions.to_string();
    let (ok, _, err) = spate(&[
        "topics",
        "--bootstrap-server",
        &b1,
        "--create",
        "--topic",
        topic,
        "--partitions",
        &p,
        "--replication-factor",
        "3",
        "--config",
        "min.insync.replicas=2",
    ]);
    assert!(ok, "create: {err}");
    wait_until("every replica in the ISR", Duration::from_secs(30), || isr_sizes(&b1, topic).iter().all(|n| *n == 3));
    cluster
}

/// The size of each partition's ISR, as `bootstrap` reports it.
fn isr_sizes(bootstrap: &str, topic: &str) -> Vec<usize> {
    let consumer: BaseConsumer = client_config(bootstrap).create().unwrap();
    let Ok(meta) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) else { return vec![0] };
    let mut out: Vec<(i32, usize)> = meta.topics()[0].partitions().iter().map(|p| (p.id(), p.isr().len())).collect();
    out.sort();
    if out.is_empty() {
        return vec![0];
    }
    out.into_iter().map(|(_, n)| n).collect()
}

fn acking_producer(bootstrap: &str, acked: &Acked) -> BaseProducer<AckContext> {
    client_config(bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "120000")
        .set("request.timeout.ms", "5000")
        // A broker that stopped answering (SIGSTOP) is given up on after 5 s, not librdkafka's 60.
        .set("socket.timeout.ms", "5000")
        .set("retry.backoff.ms", "100")
        .create_with_context(AckContext(acked.clone()))
        .unwrap()
}

/// Sends `count` records from `from`, polling, while `during` runs once after `after`.
fn send_while(producer: &BaseProducer<AckContext>, topic: &str, from: usize, count: usize, after: Duration, mut during: impl FnMut()) -> usize {
    let at = Instant::now() + after;
    let mut done = false;
    let mut next = from;
    while next < from + count || !done {
        if !done && Instant::now() >= at {
            during();
            done = true;
        }
        if next < from + count {
            let (key, value) = (format!("k{}", next % 7), format!("v{next}"));
            producer.send(BaseRecord::to(topic).key(&key).payload(&value)).unwrap_or_else(|(e, _)| panic!("send: {e}"));
            next += 1;
        }
        producer.poll(Duration::from_millis(1));
    }
    next
}

#[test]
fn a_paused_leader_acknowledges_nothing_and_its_log_is_cut_back_when_it_resumes() {
    let mut cluster = replicated_cluster("paused", 1);
    let all = cluster.nodes.iter().map(|n| n.bootstrap()).collect::<Vec<_>>().join(",");
    let acked: Acked = Default::default();
    let producer = acking_producer(&all, &acked);
    let sent = send_while(&producer, "paused", 0, 500, Duration::ZERO, || {});
    producer.flush(Duration::from_secs(30)).unwrap();
    let leader = leaders(&cluster.nodes[0].bootstrap(), "paused")[0];
    let other = cluster.nodes.iter().find(|n| n.id != leader).unwrap().bootstrap();
    // SIGSTOP the leader while records flow: those sent to it are not acknowledged by it.
    signal(cluster.node(leader), nix::sys::signal::Signal::SIGSTOP);
    let stopped_at = Instant::now();
    let sent = send_while(&producer, "paused", sent, 500, Duration::ZERO, || {});
    wait_until("a new leader", Duration::from_millis(SESSION_TIMEOUT_MS + 15_000), || leaders(&other, "paused")[0] != leader);
    eprintln!("paused leader {leader}: a new leader {:?} after SIGSTOP", stopped_at.elapsed());
    producer.flush(Duration::from_secs(60)).unwrap();
    let acked_before_resume = acked.lock().unwrap().get(&0).map_or(0, |v| v.len());
    // Resume it: it learns it no longer leads, and follows, cutting what only it had.
    signal(cluster.node(leader), nix::sys::signal::Signal::SIGCONT);
    let sent = send_while(&producer, "paused", sent, 500, Duration::ZERO, || {});
    producer.flush(Duration::from_secs(60)).unwrap();
    wait_until("the resumed broker back in the ISR", Duration::from_secs(60), || isr_sizes(&other, "paused") == vec![3]);
    eprintln!("paused for {:?}; {acked_before_resume} acknowledged before the resume", stopped_at.elapsed());
    let acked = acked.lock().unwrap().clone();
    let read = read_everything(&other, "paused", 1);
    assert_eq!(check_acknowledged(&acked, &read), sent, "every record acknowledged in the end, each once");
    stop_all(&mut cluster);
    assert_prefixes(&cluster, "paused", 1);
}

#[test]
fn a_rolling_restart_under_load_loses_nothing_and_fails_no_write() {
    let mut cluster = replicated_cluster("rolling", 3);
    let all = cluster.nodes.iter().map(|n| n.bootstrap()).collect::<Vec<_>>().join(",");
    let acked: Acked = Default::default();
    let producer = acking_producer(&all, &acked);
    let mut sent = 0;
    for id in 1..=3 {
        let other = cluster.nodes.iter().find(|n| n.id != id).unwrap().bootstrap();
        // SIGTERM: a controlled shutdown moves leadership away first.
        sent = send_while(&producer, "rolling", sent, 1500, Duration::from_millis(200), || {
            let node = cluster.node(id);
            signal(node, nix::sys::signal::Signal::SIGTERM);
            let _ = node.child.as_mut().unwrap().wait();
            node.child = None;
        });
        wait_until("leadership moved off the stopped broker", Duration::from_secs(5), || leaders(&other, "rolling").iter().all(|l| *l != id && *l > 0));
        cluster.node(id).spawn();
        wait_until("the restarted broker back in every ISR", Duration::from_secs(60), || isr_sizes(&other, "rolling").iter().all(|n| *n == 3));
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    let acked = acked.lock().unwrap().clone();
    let read = read_everything(&cluster.nodes[0].bootstrap(), "rolling", 3);
    assert_eq!(check_acknowledged(&acked, &read), sent, "every write acknowledged: none failed for good");
    stop_all(&mut cluster);
    assert_prefixes(&cluster, "rolling", 3);
}

#[test]
fn a_consumer_group_carries_on_when_its_coordinator_is_killed() {
    use rdkafka::consumer::CommitMode;
    use rdkafka::TopicPartitionList;
    let mut cluster = replicated_cluster("grouped", 3);
    let all = cluster.nodes.iter().map(|n| n.bootstrap()).collect::<Vec<_>>().join(",");
    produce(&all, "grouped", 0, 600);
    let group = "survivors";
    let consumer = |b: &str| -> BaseConsumer {
        client_config(b)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500")
            // Requests to the killed coordinator are given up on after 5 s, not 60.
            .set("socket.timeout.ms", "5000")
            .create()
            .unwrap()
    };
    // Every partition, whichever the member holds at the moment: after the failover the group
    // may rebalance (a member the new coordinator loaded may linger for its session), and
    // what is committed is asked for all three.
    let every_partition = |offsets: &BTreeMap<i32, i64>| {
        let mut tpl = TopicPartitionList::new();
        for p in 0..3 {
            match offsets.get(&p) {
                Some(o) => tpl.add_partition_offset("grouped", p, rdkafka::Offset::Offset(*o)).unwrap(),
                None => {
                    tpl.add_partition("grouped", p);
                }
            }
        }
        tpl
    };
    let committed = |c: &BaseConsumer| -> Option<BTreeMap<i32, i64>> {
        let tpl = c.committed_offsets(every_partition(&BTreeMap::new()), Duration::from_secs(10)).ok()?;
        Some(tpl.elements().iter().map(|e| (e.partition(), if let rdkafka::Offset::Offset(o) = e.offset() { o } else { 0 })).collect())
    };
    let c = consumer(&all);
    c.subscribe(&["grouped"]).unwrap();
    // (partition -> the offset after the last record read), and every value read.
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    let mut read_some = |c: &BaseConsumer, until: usize| {
        let deadline = Instant::now() + Duration::from_secs(90);
        while seen.len() < until {
            assert!(Instant::now() < deadline, "only {} of {until} records came", seen.len());
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                seen.insert(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
                let at = next.entry(m.partition()).or_insert(0);
                *at = (*at).max(m.offset() + 1);
                // Asynchronous, as a consumer commits while it reads; a failed one is covered by
                // the next.
                let _ = c.commit_message(&m, CommitMode::Async);
            }
        }
        next.clone()
    };
    let before = read_some(&c, 300);
    // Acknowledged by the coordinator before it dies: these must survive it.
    c.commit(&every_partition(&before), CommitMode::Sync).expect("a synchronous commit before the failover");
    let p = spate::coordinator::partition_for(group, 6);
    let coordinator = leaders(&cluster.nodes[0].bootstrap(), "__consumer_offsets")[p as usize];
    cluster.node(coordinator).kill9();
    let killed = Instant::now();
    eprintln!("killed broker {coordinator}, the coordinator of {group}");
    let survivor = cluster.nodes.iter().find(|n| n.id != coordinator).unwrap().bootstrap();
    produce(&survivor, "grouped", 600, 300);
    // The new coordinator serves what the old one acknowledged.
    let deadline = Instant::now() + Duration::from_secs(60);
    let after_failover = loop {
        if let Some(offsets) = committed(&c) {
            break offsets;
        }
        assert!(Instant::now() < deadline, "no coordinator answered OffsetFetch after the failover");
        let _ = c.poll(Duration::from_millis(200));
    };
    eprintln!("committed offsets served {:.2} s after the kill: {after_failover:?} (acknowledged before it: {before:?})", killed.elapsed().as_secs_f64());
    for (p, o) in &before {
        assert!(
            after_failover.get(p).is_some_and(|a| a >= o),
            "partition {p}: {o} was committed before the failover, the new coordinator has {after_failover:?}"
        );
    }
    let last = read_some(&c, 900);
    // The last position, committed through whichever broker coordinates the group now.
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = c.commit(&every_partition(&last), CommitMode::Sync) {
        assert!(Instant::now() < deadline, "no commit succeeded after the coordinator's loss: {e}");
        let _ = c.poll(Duration::from_millis(200));
    }
    let total: i64 = committed(&c).expect("committed offsets").values().sum();
    // Not dropped: librdkafka's close of this consumer (rd_kafka_destroy) waited for ever after
    // the failover (a known gap, in the note of issue 14: the consumer's work is all checked
    // above, its LeaveGroup at close is not); its threads end with the test process.
    let _ = c.unsubscribe();
    std::mem::forget(c);
    assert_eq!(total, 900, "the offsets committed through the new coordinator cover every record");
    // A new member of the group starts where the group is, not from the beginning.
    let again = consumer(&survivor);
    again.subscribe(&["grouped"]).unwrap();
    let quiet_until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < quiet_until {
        if let Some(Ok(m)) = again.poll(Duration::from_millis(100)) {
            panic!("a record already consumed and committed came again: offset {} of partition {}", m.offset(), m.partition());
        }
    }
    std::mem::forget(again);
}

/// Each partition's replicas, as `bootstrap` reports them.
fn replicas_of(bootstrap: &str, topic: &str) -> Vec<Vec<i32>> {
    let consumer: BaseConsumer = client_config(bootstrap).create().unwrap();
    let meta = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let mut out: Vec<(i32, Vec<i32>)> = meta.topics()[0].partitions().iter().map(|p| (p.id(), p.replicas().to_vec())).collect();
    out.sort();
    out.into_iter().map(|(_, r)| r).collect()
}

/// `spate reassign-partitions` and `spate leader-election` with Kafka's flags and files: a
/// partition of two replicas moves, under an acks=all load, to the broker that had none (it
/// joins, catches up, and the leader it replaces leaves, its folder removed), every acknowledged
/// record is read back from the new replicas, and a preferred leader that lost its leadership
/// (a controlled restart) gets it back by election.
#[test]
fn a_partition_moves_to_another_broker_and_its_preferred_leader_is_elected_back() {
    let mut cluster = replicated_cluster("warmup", 1);
    let b1 = cluster.nodes[0].bootstrap();
    let (ok, _, err) = spate(&["topics", "--bootstrap-server", &b1, "--create", "--topic", "moving", "--partitions", "1", "--replication-factor", "2"]);
    assert!(ok, "create: {err}");
    wait_until("both replicas in the ISR", Duration::from_secs(30), || isr_sizes(&b1, "moving") == vec![2]);
    let before = replicas_of(&b1, "moving")[0].clone();
    let newcomer = (1..=3).find(|id| !before.contains(id)).unwrap();
    let (leaving, staying) = (before[0], before[1]);
    let acked: Acked = Default::default();
    let producer = acking_producer(&b1, &acked);
    let dir = cluster._dir.path().to_owned();
    let plan = dir.join("plan.json");
    std::fs::write(
        &plan,
        format!(r#"{{"version":1,"partitions":[{{"topic":"moving","partition":0,"replicas":[{newcomer},{staying}],"log_dirs":["any","any"]}}]}}"#),
    )
    .unwrap();
    let plan = plan.to_str().unwrap().to_string();
    let topics = dir.join("topics.json");
    std::fs::write(&topics, r#"{"version":1,"topics":[{"topic":"moving"}]}"#).unwrap();
    let (ok, out, err) = spate(&[
        "reassign-partitions",
        "--bootstrap-server",
        &b1,
        "--generate",
        "--topics-to-move-json-file",
        topics.to_str().unwrap(),
        "--broker-list",
        "1,2,3",
    ]);
    assert!(ok && out.contains("Current partition replica assignment") && out.contains("Proposed partition reassignment configuration"), "{out}{err}");
    let mut executed = None;
    let sent = send_while(&producer, "moving", 0, 6000, Duration::from_secs(2), || {
        if executed.is_none() {
            let (ok, out, err) = spate(&["reassign-partitions", "--bootstrap-server", &b1, "--execute", "--reassignment-json-file", &plan]);
            assert!(ok, "execute: {out}{err}");
            assert!(out.contains(&format!(r#""replicas":[{},{}]"#, before[0], before[1])), "the rollback plan shows the current replicas: {out}");
            assert!(out.contains("Successfully started partition reassignment for moving-0"), "{out}");
            executed = Some(Instant::now());
        }
    });
    let started = executed.expect("executed during the load");
    wait_until("the reassignment completes", Duration::from_secs(60), || {
        let (_, out, _) = spate(&["reassign-partitions", "--bootstrap-server", &b1, "--verify", "--reassignment-json-file", &plan]);
        out.contains("Reassignment of partition moving-0 is completed.")
    });
    eprintln!("{sent} records sent; moved from {before:?} to [{newcomer}, {staying}] {:.2} s after --execute", started.elapsed().as_secs_f64());
    let (_, out, _) = spate(&["reassign-partitions", "--bootstrap-server", &b1, "--list"]);
    assert!(out.contains("No partition reassignments found."), "{out}");
    assert_eq!(replicas_of(&b1, "moving")[0], vec![newcomer, staying]);
    assert_eq!(leaders(&b1, "moving"), vec![newcomer], "the removed leader handed over to the first target replica");
    wait_until("the removed replica's folder is gone", Duration::from_secs(20), || !dir.join(format!("node-{leaving}/moving-0")).exists());
    producer.flush(Duration::from_secs(30)).unwrap();
    let acked = acked.lock().unwrap().clone();
    let read = read_everything(&b1, "moving", 1);
    assert_eq!(check_acknowledged(&acked, &read), acked.values().map(Vec::len).sum::<usize>());
    wait_until("the new replica holds the partition's log, batch for batch", Duration::from_secs(10), || {
        batches_on_disk(&dir.join(format!("node-{newcomer}/moving-0"))) == batches_on_disk(&dir.join(format!("node-{staying}/moving-0")))
    });

    // The preferred leader restarts (a controlled shutdown moves its leadership away) and
    // comes back in sync; an election gives it its leadership back.
    signal(cluster.node(newcomer), nix::sys::signal::Signal::SIGTERM);
    let _ = cluster.node(newcomer).child.as_mut().unwrap().wait();
    cluster.node(newcomer).child = None;
    wait_until("the other replica leads", Duration::from_secs(20), || leaders(&b1, "moving") == vec![staying]);
    cluster.node(newcomer).spawn();
    wait_until("both replicas in the ISR again", Duration::from_secs(60), || isr_sizes(&b1, "moving") == vec![2]);
    let (ok, out, err) = spate(&["leader-election", "--bootstrap-server", &b1, "--election-type", "preferred", "--topic", "moving", "--partition", "0"]);
    assert!(ok && out.contains("Successfully completed leader election (PREFERRED) for partitions moving-0"), "{out}{err}");
    wait_until("the preferred replica leads", Duration::from_secs(10), || leaders(&b1, "moving") == vec![newcomer]);
    let (ok, out, _) = spate(&["leader-election", "--bootstrap-server", &b1, "--election-type", "PREFERRED", "--all-topic-partitions"]);
    assert!(ok && !out.contains("moving-0"), "asked for every partition, one that needs no election is not reported: {out}");
}

/// SIGTERM to every node and waits for each.
fn stop_all(cluster: &mut TestCluster) {
    for node in &mut cluster.nodes {
        if node.child.is_some() {
            signal(node, nix::sys::signal::Signal::SIGTERM);
        }
    }
    for node in &mut cluster.nodes {
        if let Some(c) = node.child.as_mut() {
            let _ = c.wait();
        }
        node.child = None;
    }
}

/// Every replica's log of each partition is a prefix of the longest one.
fn assert_prefixes(cluster: &TestCluster, topic: &str, partitions: i32) {
    for p in 0..partitions {
        let logs: Vec<Vec<(i64, u32)>> = (1..=3).map(|id| batches_on_disk(&cluster._dir.path().join(format!("node-{id}/{topic}-{p}")))).collect();
        let longest = logs.iter().max_by_key(|l| l.len()).unwrap().clone();
        for (i, l) in logs.iter().enumerate() {
            assert_eq!(&longest[..l.len()], &l[..], "{topic}-{p}: node {}'s log is not a prefix of the longest", i + 1);
        }
    }
}

/// `ip` with `args`: its stdout, or what it said on failure.
fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn ip_ok(args: &[&str]) {
    if let Err(e) = ip(args) {
        panic!("{e}");
    }
}

/// One network namespace per node (`spate-<pid>-<id>`, with `lo` up), each joined by a veth
/// pair to a bridge in the root namespace (`spbr<pid>`) on 10.77.<pid % 256>.0/24: node `id` at
/// .id, the bridge at .254, where the test and its clients are. Everything it made is removed
/// on drop, also on a panic; what a run that was killed left (its pid gone) at the next start.
struct Network {
    pid: u32,
    n: i32,
}

impl Network {
    /// None, said on stderr, when the machine has no network namespaces at all; any other
    /// failure (no permission, say) panics: the test does not pass without having run.
    fn create(n: i32) -> Option<Network> {
        if !std::path::Path::new("/proc/self/ns/net").exists() {
            eprintln!("SKIPPED: this kernel has no network namespaces (no /proc/self/ns/net)");
            return None;
        }
        if Command::new("ip").arg("-V").output().is_err() {
            eprintln!("SKIPPED: no `ip` (iproute2) to make network namespaces with");
            return None;
        }
        Self::remove_stale();
        let net = Network { pid: std::process::id(), n };
        let bridge = net.bridge();
        let root_needed = "(network namespaces, veths and bridges need root, or CAP_NET_ADMIN and CAP_SYS_ADMIN)";
        ip(&["link", "add", &bridge, "type", "bridge"]).unwrap_or_else(|e| panic!("{e} {root_needed}"));
        ip_ok(&["addr", "add", &format!("{}/24", net.addr(254)), "dev", &bridge]);
        ip_ok(&["link", "set", &bridge, "up"]);
        for id in 1..=n {
            let (ns, outside, inside) = (net.ns(id), net.veth(id, 'v'), net.veth(id, 'n'));
            ip(&["netns", "add", &ns]).unwrap_or_else(|e| panic!("{e} {root_needed}"));
            ip_ok(&["link", "add", &outside, "type", "veth", "peer", "name", &inside]);
            ip_ok(&["link", "set", &inside, "netns", &ns]);
            ip_ok(&["link", "set", &outside, "master", &bridge]);
            ip_ok(&["link", "set", &outside, "up"]);
            ip_ok(&["-n", &ns, "link", "set", "lo", "up"]);
            ip_ok(&["-n", &ns, "addr", "add", &format!("{}/24", net.addr(id)), "dev", &inside]);
            ip_ok(&["-n", &ns, "link", "set", &inside, "up"]);
        }
        Some(net)
    }

    fn ns(&self, id: i32) -> String {
        format!("spate-{}-{id}", self.pid)
    }

    fn bridge(&self) -> String {
        format!("spbr{}", self.pid)
    }

    /// `sp<pid>v<id>` in the root namespace, `sp<pid>n<id>` in the node's: at most 11 bytes.
    fn veth(&self, id: i32, side: char) -> String {
        format!("sp{}{side}{id}", self.pid)
    }

    fn addr(&self, id: i32) -> String {
        format!("10.77.{}.{id}", self.pid % 256)
    }

    /// Each node in its namespace, on its address, the client listener on 9092 and the
    /// controller's on 19091.
    fn hosts(&self) -> Vec<NodeHost> {
        (1..=self.n)
            .map(|id| NodeHost {
                host: self.addr(id),
                client_port: Some(9092),
                controller_port: Some(19091),
                prefix: vec!["ip".into(), "netns".into(), "exec".into(), self.ns(id)],
            })
            .collect()
    }

    /// Cuts node `island` off from the other nodes, both ways (a blackhole route for each
    /// other's address in each namespace: packets are dropped without a word, established
    /// connections included), leaving it reachable from the bridge, where the clients are.
    fn cut(&self, island: i32) {
        self.routes(island, "add");
    }

    fn heal(&self, island: i32) {
        self.routes(island, "del");
    }

    fn routes(&self, island: i32, verb: &str) {
        for other in (1..=self.n).filter(|o| *o != island) {
            ip_ok(&["-n", &self.ns(island), "route", verb, "blackhole", &format!("{}/32", self.addr(other))]);
            ip_ok(&["-n", &self.ns(other), "route", verb, "blackhole", &format!("{}/32", self.addr(island))]);
        }
    }

    /// Kills what still runs in namespace `name` (by pid, as the namespace lists them: brokers
    /// of a run that was killed), then removes it.
    fn remove_namespace(name: &str) {
        for pid in ip(&["netns", "pids", name]).unwrap_or_default().split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        let _ = ip(&["netns", "del", name]);
    }

    /// What runs of this test left whose process is gone: namespaces `spate-<pid>-<id>`,
    /// bridges `spbr<pid>`, veths `sp<pid>v<id>`.
    fn remove_stale() {
        let gone = |pid: &str| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) && !std::path::Path::new(&format!("/proc/{pid}")).exists();
        for line in ip(&["netns", "list"]).unwrap_or_default().lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            if name.strip_prefix("spate-").and_then(|rest| rest.split_once('-')).is_some_and(|(pid, id)| gone(pid) && id.parse::<i32>().is_ok()) {
                eprintln!("removing namespace {name}, left by an earlier run");
                Self::remove_namespace(name);
            }
        }
        for line in ip(&["-o", "link", "show"]).unwrap_or_default().lines() {
            // "12: sp1234v1@if11: <BROADCAST,...": the name, without what follows '@'.
            let Some(name) = line.split(": ").nth(1).map(|n| n.split('@').next().unwrap_or(n)) else { continue };
            let stale = if let Some(pid) = name.strip_prefix("spbr") {
                gone(pid)
            } else if let Some((pid, id)) = name.strip_prefix("sp").and_then(|rest| rest.split_once('v')) {
                gone(pid) && id.parse::<i32>().is_ok()
            } else {
                false
            };
            if stale {
                eprintln!("removing link {name}, left by an earlier run");
                let _ = ip(&["link", "del", name]);
            }
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for id in 1..=self.n {
            // Deleting one end of a veth pair deletes both, at once (the namespace's own
            // clean-up is asynchronous).
            let _ = ip(&["link", "del", &self.veth(id, 'v')]);
            Self::remove_namespace(&self.ns(id));
        }
        let _ = ip(&["link", "del", &self.bridge()]);
    }
}

/// The batches of a partition's segment files in one node's log dir while the broker runs: up
/// to the first one not completely written.
fn batches_on_disk_so_far(dir: &std::path::Path) -> Vec<(i64, u32)> {
    use spate::protocol::record_batch::{batch_size, validate};
    let mut out = Vec::new();
    for f in segment_files(dir) {
        let bytes = std::fs::read(&f).unwrap();
        let mut at = 0;
        while let Ok(size) = batch_size(&bytes[at..]) {
            let Ok(view) = validate(&bytes[at..at + size]) else { break };
            out.push((view.base_offset(), view.crc()));
            at += size;
        }
    }
    out
}

/// A producer's load: records `<prefix><n>`, keyed (or to one partition), one at a time.
struct Load<'a> {
    producer: &'a BaseProducer<AckContext>,
    prefix: &'static str,
    partition: Option<i32>,
    sent: usize,
}

impl Load<'_> {
    fn step(&mut self, topic: &str) {
        let (key, value) = (format!("k{}", self.sent % 7), format!("{}{}", self.prefix, self.sent));
        let mut record = BaseRecord::to(topic).key(&key).payload(&value);
        if let Some(p) = self.partition {
            record = record.partition(p);
        }
        self.producer.send(record).unwrap_or_else(|(e, _)| panic!("send: {e}"));
        self.sent += 1;
        self.producer.poll(Duration::ZERO);
    }
}

/// A record from each of `loads` about every millisecond until `done` (asked every 200 ms)
/// holds; panics after `timeout`. How long it took.
fn pump(loads: &mut [&mut Load<'_>], topic: &str, what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    let mut asked = start;
    loop {
        for load in loads.iter_mut() {
            load.step(topic);
        }
        std::thread::sleep(Duration::from_millis(1));
        if asked.elapsed() >= Duration::from_millis(200) {
            if done() {
                return start.elapsed();
            }
            assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
            asked = Instant::now();
        }
    }
}

fn count(acked: &Acked) -> usize {
    acked.lock().unwrap().values().map(|v| v.len()).sum()
}

#[test]
fn a_leader_cut_off_by_a_network_partition_acknowledges_nothing_and_truncates_after_the_heal() {
    // Declared first, dropped last: after the brokers in the namespaces are killed.
    let Some(net) = Network::create(3) else { return };
    let mut cluster = replicated_cluster_on(net.hosts(), "cut", 3);
    let topic = "cut";
    let all = cluster.nodes.iter().map(|n| n.bootstrap()).collect::<Vec<_>>().join(",");
    let acked: Acked = Default::default();
    let producer = acking_producer(&all, &acked);
    let mut main = Load { producer: &producer, prefix: "v", partition: None, sent: 0 };

    // Records flow through the whole test; before the cut, all of them acknowledged.
    let warm = Instant::now();
    pump(&mut [&mut main], topic, "", Duration::from_secs(10), || warm.elapsed() >= Duration::from_secs(2));
    producer.flush(Duration::from_secs(30)).unwrap();
    let acked_before_cut = count(&acked);
    let leader = leaders(&cluster.nodes[0].bootstrap(), topic)[0];
    assert!(leader > 0);
    let other = cluster.nodes.iter().find(|n| n.id != leader).unwrap().bootstrap();

    // Cut the leader of partition 0 off from the other two; a second producer knows only it.
    net.cut(leader);
    let cut_at = Instant::now();
    let acked_lone: Acked = Default::default();
    let lone_producer: BaseProducer<AckContext> = client_config(&cluster.node(leader).bootstrap())
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "6000")
        .set("request.timeout.ms", "5000")
        .set("socket.timeout.ms", "5000")
        .set("retry.backoff.ms", "100")
        .create_with_context(AckContext(acked_lone.clone()))
        .unwrap();
    let mut lone = Load { producer: &lone_producer, prefix: "w", partition: Some(0), sent: 0 };
    pump(&mut [&mut main, &mut lone], topic, "a new leader of partition 0 on the majority side", Duration::from_millis(SESSION_TIMEOUT_MS + 20_000), || {
        let l = leaders(&other, topic)[0];
        l > 0 && l != leader
    });
    let new_leader_after = cut_at.elapsed();
    let new_leader = leaders(&other, topic)[0];
    let lone_acked_before_new_leader = count(&acked_lone);
    eprintln!("broker {leader} cut off; partition 0 led by broker {new_leader} {new_leader_after:?} after the cut (session timeout {SESSION_TIMEOUT_MS} ms)");

    // Both keep producing for a while, then the lone producer's records are given time, while
    // the cut lasts, to be acknowledged or to time out (message.timeout.ms; librdkafka keeps
    // an idempotent producer's records that may have been written until it can tell).
    let t = Instant::now();
    pump(&mut [&mut main, &mut lone], topic, "", Duration::from_secs(10), || t.elapsed() >= Duration::from_secs(2));
    let t = Instant::now();
    pump(&mut [&mut main], topic, "", Duration::from_secs(30), || {
        lone_producer.poll(Duration::ZERO);
        lone_producer.in_flight_count() == 0 || t.elapsed() >= Duration::from_secs(15)
    });
    let (lone_sent, lone_acked_in_cut, lone_open_in_cut) = (lone.sent, count(&acked_lone), lone_producer.in_flight_count());
    // What the old leader wrote on its own, on its disk.
    let island_dir = cluster._dir.path().join(format!("node-{leader}/{topic}-0"));
    let island_log = batches_on_disk_so_far(&island_dir);
    let cut_for = cut_at.elapsed();

    // Heal: the old leader learns it no longer leads, cuts what only it had, and catches up.
    net.heal(leader);
    let rejoined_after = pump(&mut [&mut main], topic, "every replica back in the ISR", Duration::from_secs(90), || isr_sizes(&other, topic) == vec![3, 3, 3]);
    eprintln!("cut for {cut_for:?}; healed, every ISR full again {rejoined_after:?} after the heal");
    let t = Instant::now();
    pump(&mut [&mut main], topic, "", Duration::from_secs(10), || t.elapsed() >= Duration::from_secs(1));
    producer.flush(Duration::from_secs(120)).unwrap();
    lone_producer.flush(Duration::from_secs(60)).unwrap();
    let (main_acked, lone_acked) = (count(&acked), count(&acked_lone));

    // Every record acknowledged to either producer is there once, at its offset.
    let mut every_ack = acked.lock().unwrap().clone();
    for (p, records) in acked_lone.lock().unwrap().iter() {
        every_ack.entry(*p).or_default().extend(records.iter().cloned());
    }
    let read = read_everything(&other, topic, 3);
    let total = check_acknowledged(&every_ack, &read);
    eprintln!(
        "main producer: {acked_before_cut} acknowledged before the cut, {main_acked} of {} in the end; producer bootstrapped to the old leader only: {lone_acked} of {lone_sent} acknowledged ({lone_acked_before_new_leader} before the new leader was seen, {lone_acked_in_cut} during the cut, with {lone_open_in_cut} still in its out queue); {total} acknowledged records read back once each",
        main.sent
    );
    assert_eq!(main_acked, main.sent, "with retries, every record of the producer that knows all three is acknowledged in the end");
    drop(lone_producer);
    drop(producer);

    // The old leader's log is a prefix of the new one's: what it wrote alone is gone.
    stop_all(&mut cluster);
    assert_prefixes(&cluster, topic, 3);
    let longest = (1..=3).map(|id| batches_on_disk(&cluster._dir.path().join(format!("node-{id}/{topic}-0")))).max_by_key(|l| l.len()).unwrap();
    let island_final = batches_on_disk(&island_dir);
    let alone: Vec<&(i64, u32)> = island_log.iter().filter(|b| !longest.contains(b)).collect();
    eprintln!(
        "the old leader had {} batches of partition 0 on disk during the cut, {} of them its own; {} after the heal",
        island_log.len(),
        alone.len(),
        island_final.len()
    );
    assert!(!alone.is_empty(), "the old leader wrote the records sent to it during the cut");
    assert!(alone.iter().all(|b| !island_final.contains(b)), "the old leader truncated what only it had");
}

/// What a read_committed (or read_uncommitted) consumer reads of `topic`, up to its end, as
/// partition -> values.
fn read_isolated(bootstrap: &str, topic: &str, partitions: i32, isolation: &str) -> BTreeMap<i32, Vec<String>> {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", "spate-cluster-txn-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out: BTreeMap<i32, Vec<String>> = (0..partitions).map(|p| (p, Vec::new())).collect();
    let mut at_end = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while at_end.len() < partitions as usize {
        assert!(Instant::now() < deadline, "{isolation} reader of {topic} did not reach the end: {at_end:?}");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.get_mut(&m.partition()).unwrap().push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap()),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => eprintln!("{isolation} reader: {e}"),
            None => {}
        }
    }
    out
}

#[test]
fn transactions_stay_atomic_when_the_coordinator_and_a_leader_are_killed() {
    const PARTITIONS: i32 = 3;
    const ID: &str = "cluster-txn";
    let mut cluster = replicated_cluster("txc", PARTITIONS);
    let all = cluster.nodes.iter().map(|n| n.bootstrap()).collect::<Vec<_>>().join(",");
    let new_producer = || -> Option<BaseProducer> {
        let p: BaseProducer = client_config(&all)
            .set("transactional.id", ID)
            .set("linger.ms", "2")
            .set("transaction.timeout.ms", "20000")
            .set("message.timeout.ms", "20000")
            .set("socket.timeout.ms", "5000")
            .create()
            .unwrap();
        match p.init_transactions(Duration::from_secs(30)) {
            Ok(()) => Some(p),
            Err(e) => {
                eprintln!("init_transactions: {e}");
                None
            }
        }
    };
    let mut producer = None;
    // Transaction i writes "t{i}" to every partition. Outcomes as the producer saw them.
    let (mut committed, mut aborted, mut unknown) = (Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    // The kills: the coordinator of ID after 15 transactions, a leader of txc after 40.
    let mut killed: Vec<i32> = Vec::new();
    let mut i = 0usize;
    while i < 70 {
        assert!(started.elapsed() < Duration::from_secs(240), "70 transactions not done: {} committed", committed.len());
        if producer.is_none() {
            producer = new_producer();
            if producer.is_none() {
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
        }
        let survivor = cluster.nodes.iter().find(|n| n.child.is_some()).unwrap().bootstrap();
        if (i == 15 || i == 40) && killed.len() < 2 {
            let victim = if i == 15 {
                let partition = spate::coordinator::partition_for(ID, 6) as usize;
                leaders(&survivor, "__transaction_state")[partition]
            } else {
                leaders(&survivor, "txc")[1]
            };
            // Killed in the middle of the transaction: after its records are sent.
            let p = producer.as_ref().unwrap();
            if p.begin_transaction().is_ok() {
                for partition in 0..PARTITIONS {
                    let _ = p.send(BaseRecord::<str, str>::to("txc").partition(partition).payload(&format!("t{i}")));
                }
                p.poll(Duration::from_millis(20));
            }
            eprintln!("transaction {i}: killing broker {victim}");
            cluster.node(victim).kill9();
            killed.push(victim);
            let outcome = p.commit_transaction(Duration::from_secs(30));
            match outcome {
                Ok(()) => committed.push(i),
                Err(e) => {
                    eprintln!("transaction {i} (during the kill): {e}");
                    unknown.push(i);
                    if p.abort_transaction(Duration::from_secs(30)).is_err() {
                        producer = None;
                    }
                }
            }
            i += 1;
            continue;
        }
        if i == 28 || i == 55 {
            // The killed broker comes back.
            let back = *killed.last().unwrap();
            if cluster.node(back).child.is_none() {
                cluster.node(back).spawn();
            }
        }
        let p = producer.as_ref().unwrap();
        let result = p.begin_transaction().and_then(|()| {
            for partition in 0..PARTITIONS {
                let value = format!("t{i}");
                while let Err((e, _)) = p.send(BaseRecord::<str, str>::to("txc").partition(partition).payload(&value)) {
                    eprintln!("send: {e}");
                    p.poll(Duration::from_millis(10));
                }
            }
            // Every 10th transaction is aborted on purpose.
            if i % 10 == 7 {
                p.flush(Duration::from_secs(30))?;
                p.abort_transaction(Duration::from_secs(30))
            } else {
                p.commit_transaction(Duration::from_secs(30))
            }
        });
        match result {
            Ok(()) if i % 10 == 7 => aborted.push(i),
            Ok(()) => committed.push(i),
            Err(e) => {
                eprintln!("transaction {i}: {e}");
                unknown.push(i);
                if p.abort_transaction(Duration::from_secs(30)).is_err() {
                    producer = None;
                }
            }
        }
        i += 1;
    }
    drop(producer);
    for id in killed {
        if cluster.node(id).child.is_none() {
            cluster.node(id).spawn();
        }
    }
    let b1 = cluster.nodes[0].bootstrap();
    wait_until("every replica back in every ISR", Duration::from_secs(60), || isr_sizes(&b1, "txc").iter().all(|n| *n == 3));
    let read = read_isolated(&all, "txc", PARTITIONS, "read_committed");
    // Per transaction, the partitions it is visible in.
    let mut seen: BTreeMap<usize, Vec<i32>> = BTreeMap::new();
    for (p, values) in &read {
        let mut last = None;
        for v in values {
            let t: usize = v[1..].parse().unwrap();
            assert!(last < Some(t), "partition {p}: t{t} after {last:?}: a transaction twice, or out of order");
            last = Some(t);
            seen.entry(t).or_default().push(*p);
        }
    }
    for t in &committed {
        assert_eq!(seen.get(t).map(Vec::len), Some(PARTITIONS as usize), "committed transaction {t} is visible in every partition");
    }
    for t in &aborted {
        assert!(!seen.contains_key(t), "aborted transaction {t} is not visible");
    }
    for (t, partitions) in &seen {
        assert_eq!(partitions.len(), PARTITIONS as usize, "transaction {t}: all or nothing, not {partitions:?}");
    }
    let uncommitted: usize = read_isolated(&all, "txc", PARTITIONS, "read_uncommitted").values().map(Vec::len).sum();
    eprintln!(
        "{} committed, {} aborted, {} unknown ({:?}) of 70 transactions; {} visible; read_uncommitted sees {uncommitted} records",
        committed.len(),
        aborted.len(),
        unknown.len(),
        unknown,
        seen.len()
    );
    assert!(uncommitted >= 3 * (committed.len() + aborted.len()), "read_uncommitted sees the aborted records too");
    assert!(committed.len() >= 50, "most transactions commit despite the kills");
}
