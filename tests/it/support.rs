//! Starting brokers for tests: in-process (`TestBroker`) or as a child process of the
//! `spate` binary (`BrokerProcess`, for kill -9), each on a free port with its own folder.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

pub const SHARDS: &str = "4";

/// Broker logs at warn level and above show in test output (RUST_LOG overrides).
fn init_logging() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    });
}

/// A loopback port free now and never handed out before in this process. Brokers bind with
/// SO_REUSEPORT, so two tests given the same port would both bind it and share its
/// connections: a client of one would talk to the other's broker.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// Waits (up to `timeout`) until nothing accepts connections on `host:port`: a killed broker's
/// listening sockets outlive its process by a few milliseconds (io_uring tears its rings down
/// after the process exits), and a connection they accept then is reset. A restart that did
/// not wait would find the old process's port open and talk to nobody.
pub fn wait_for_port_closed(host: &str, port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let addr = std::net::SocketAddr::new(host.parse().expect("an IP address"), port);
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
        assert!(Instant::now() < deadline, "{host}:{port} still accepts connections {timeout:?} after its broker was killed");
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn properties(dir: &Path, port: u16, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p = vec![
        ("log.dirs".to_string(), dir.display().to_string()),
        ("listeners".to_string(), format!("PLAINTEXT://127.0.0.1:{port}")),
        ("shards".to_string(), SHARDS.to_string()),
    ];
    p.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    p
}

/// A broker running inside the test process.
pub struct TestBroker {
    broker: Option<spate::server::Broker>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    extra: Vec<(String, String)>,
}

impl TestBroker {
    pub fn start(extra: &[(&str, &str)]) -> TestBroker {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut b = TestBroker { broker: None, dir, port, extra: extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() };
        b.boot();
        b
    }

    fn boot(&mut self) {
        init_logging();
        let extra: Vec<(&str, &str)> = self.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let config = spate::config::BrokerConfig::from_properties(&properties(self.dir.path(), self.port, &extra)).unwrap();
        self.broker = Some(spate::server::Broker::start(config).expect("broker starts"));
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn metrics(&self) -> spate::metrics::MetricsSnapshot {
        self.broker.as_ref().expect("running").metrics()
    }

    pub fn log_dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// A clean stop (flush, indexes, clean-shutdown marker).
    pub fn stop(&mut self) {
        if let Some(b) = self.broker.take() {
            b.stop().unwrap();
            wait_for_port_closed("127.0.0.1", self.port, Duration::from_secs(10));
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.boot();
    }

    pub fn start_again(&mut self) {
        assert!(self.broker.is_none());
        self.boot();
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `spate` binary as a child process: for tests that kill it.
pub struct BrokerProcess {
    child: Option<Child>,
    pub dir: PathBuf,
    pub port: u16,
    extra: Vec<(String, String)>,
    /// Environment variables for the next spawns (`SPATE_CRASH_AT`, say).
    pub env: Vec<(String, String)>,
}

impl BrokerProcess {
    pub fn start(dir: &Path, port: u16, extra: &[(&str, &str)]) -> BrokerProcess {
        Self::start_with_env(dir, port, extra, &[])
    }

    pub fn start_with_env(dir: &Path, port: u16, extra: &[(&str, &str)], env: &[(&str, &str)]) -> BrokerProcess {
        let mut p = BrokerProcess {
            child: None,
            dir: dir.to_owned(),
            port,
            extra: extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        p.spawn();
        p
    }

    /// Waits up to `timeout` for the broker to exit by itself; its status, if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("poll the broker process") {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    fn spawn(&mut self) {
        let extra: Vec<(&str, &str)> = self.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_spate"));
        cmd.arg("broker");
        for (k, v) in properties(&self.dir, self.port, &extra) {
            cmd.arg("--override").arg(format!("{k}={v}"));
        }
        cmd.env("RUST_LOG", "warn").envs(self.env.iter().map(|(k, v)| (k, v))).stdout(Stdio::null()).stderr(Stdio::inherit());
        self.child = Some(cmd.spawn().expect("spawn spate"));
        wait_for_port(self.port, Duration::from_secs(30));
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The running broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the broker is running").id()
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
            wait_for_port_closed("127.0.0.1", self.port, Duration::from_secs(10));
        }
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// A clean stop: SIGTERM, then waits (up to 30 s) for the broker to exit.
    pub fn terminate(&mut self) {
        if let Some(c) = self.child.as_ref() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGTERM);
        }
        let status = self.wait_exit(Duration::from_secs(30));
        assert!(status.is_some_and(|s| s.success()), "the broker stops cleanly on SIGTERM: {status:?}");
        wait_for_port_closed("127.0.0.1", self.port, Duration::from_secs(10));
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn wait_for_port(port: u16, timeout: Duration) {
    wait_for_addr("127.0.0.1", port, timeout);
}

/// Waits until `host:port` accepts a connection (an IPv4 address: each attempt is bounded).
pub fn wait_for_addr(host: &str, port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let addr = std::net::SocketAddr::new(host.parse().expect("an IP address"), port);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("broker did not listen on {host}:{port} within {timeout:?}");
}

pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap).set("broker.address.family", "v4");
    c
}

/// A consumer that reads partitions by assignment (no group membership).
pub fn assigning_consumer(bootstrap: &str) -> BaseConsumer {
    client_config(bootstrap)
        .set("group.id", "spate-tests")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .create()
        .unwrap()
}

/// Assigns every partition of `topic` from the beginning.
pub fn assign_all(consumer: &BaseConsumer, topic: &str, partitions: i32) {
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
}

/// Creates a topic through the admin API and waits for the result.
pub async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = client_config(bootstrap).create().unwrap();
    let results = admin.create_topics(&[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &AdminOptions::new()).await.unwrap();
    for r in results {
        r.unwrap();
    }
}
