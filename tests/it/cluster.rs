//! The cluster with real processes: three `spate broker` nodes (each broker and controller, as
//! the seeds' quickstart runs three brokers on one machine), formatted with one cluster id by
//! `spate storage format`, on loopback ports. Checked: the metadata quorum forms and every
//! broker sees the others; topics are placed over all three and librdkafka produces through
//! one broker and reads back through another, every partition from its leader; killing the
//! active controller with kill -9 elects another and topics can still be created; a broker
//! killed is fenced after its session and, restarted, leads its partitions again with its
//! records intact.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::Message;

use crate::support::{client_config, free_port, wait_for_port};

const SESSION_TIMEOUT_MS: u64 = 3000;

struct Node {
    id: i32,
    client_port: u16,
    config: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    fn spawn(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_spate"))
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
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

struct TestCluster {
    _dir: tempfile::TempDir,
    nodes: Vec<Node>,
}

impl TestCluster {
    /// `n` nodes, formatted and started; returns once every client listener accepts.
    fn start(n: i32) -> TestCluster {
        let dir = tempfile::tempdir().unwrap();
        let controller_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let voters: Vec<String> = (0..n).map(|i| format!("{}@127.0.0.1:{}", i + 1, controller_ports[i as usize])).collect();
        let spate = env!("CARGO_BIN_EXE_spate");
        let cluster_id = String::from_utf8(Command::new(spate).args(["storage", "random-uuid"]).output().unwrap().stdout).unwrap().trim().to_string();
        assert_eq!(cluster_id.len(), 22, "a Kafka UUID: {cluster_id}");
        let mut nodes = Vec::new();
        for i in 0..n {
            let id = i + 1;
            let client_port = free_port();
            let config = dir.path().join(format!("node-{id}.properties"));
            let text = format!(
                "process.roles=broker,controller\nnode.id={id}\ncontroller.quorum.voters={}\n\
                 listeners=PLAINTEXT://127.0.0.1:{client_port},CONTROLLER://127.0.0.1:{}\ncontroller.listener.names=CONTROLLER\n\
                 log.dirs={}\nshards=2\nbroker.session.timeout.ms={SESSION_TIMEOUT_MS}\nbroker.heartbeat.interval.ms=500\n\
                 num.partitions=3\noffsets.topic.num.partitions=6\ngroup.initial.rebalance.delay.ms=0\n",
                voters.join(","),
                controller_ports[i as usize],
                dir.path().join(format!("node-{id}")).display()
            );
            std::fs::write(&config, text).unwrap();
            let out = Command::new(spate).args(["storage", "format", "--cluster-id", &cluster_id, "--config"]).arg(&config).output().unwrap();
            assert!(out.status.success(), "format: {}", String::from_utf8_lossy(&out.stderr));
            let again = Command::new(spate).args(["storage", "format", "--cluster-id", &cluster_id, "--config"]).arg(&config).output().unwrap();
            assert!(!again.status.success(), "a formatted log dir is not formatted twice");
            nodes.push(Node { id, client_port, config, child: None });
        }
        for node in &mut nodes {
            node.spawn();
        }
        for node in &nodes {
            wait_for_port(node.client_port, Duration::from_secs(60));
        }
        TestCluster { _dir: dir, nodes }
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
    // Replication between brokers is the next step: more than one replica is refused for now.
    let (ok, _, err) = spate(&["topics", "--bootstrap-server", &b1, "--create", "--topic", "rf3", "--partitions", "1", "--replication-factor", "3"]);
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
    let survivor = cluster.nodes.iter().find(|n| n.id != leader).unwrap().bootstrap();
    let elected = wait_until("a new controller", Duration::from_secs(15), || {
        quorum_status(&survivor).is_some_and(|s| s["LeaderId"].parse::<i32>().is_ok_and(|l| l != leader && l > 0))
    });
    eprintln!("a new controller was elected {elected:?} after the kill");
    let (ok, _, err) = spate(&["topics", "--bootstrap-server", &survivor, "--create", "--topic", "after", "--partitions", "2", "--replication-factor", "1"]);
    assert!(ok, "create after the controller's loss: {err}");

    // The killed broker is fenced after its session: its partitions have no leader.
    let lost: Vec<usize> = placed.iter().enumerate().filter(|(_, l)| **l == leader).map(|(p, _)| p).collect();
    let fenced = wait_until("the dead broker fenced", Duration::from_millis(SESSION_TIMEOUT_MS + 10_000), || {
        let now = leaders(&survivor, "spread");
        lost.iter().all(|p| now[*p] == -1)
    });
    eprintln!("the dead broker's partitions were leaderless {fenced:?} after the new controller");

    // Restarted, it leads them again, with its records.
    cluster.node(leader).spawn();
    wait_until("the broker back as leader", Duration::from_secs(30), || leaders(&survivor, "spread") == placed);
    assert_eq!(consume_all(&survivor, "spread", 6, 600), expected, "nothing lost across the restart");
    produce(&survivor, "spread", 600, 60);
    assert_eq!(consume_all(&cluster.node(leader).bootstrap(), "spread", 6, 660).len(), 660);
}
