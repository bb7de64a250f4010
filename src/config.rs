//! The broker's configuration, read with Kafka's own property names (`server.properties` plus
//! `--override key=value`), and every limit the broker enforces, in one place.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Limits that are not Kafka properties but still bound every queue and buffer.
pub mod limits {
    /// Requests a connection may have in flight before its reader stops reading.
    pub const CONNECTION_REQUESTS_IN_FLIGHT_MAX: usize = 128;
    /// Bytes of one connection's requests read but not yet answered: past it the connection
    /// stops reading until responses are written (one request is always let in).
    pub const CONNECTION_REQUEST_BYTES_IN_FLIGHT_MAX: u64 = 32 << 20;
    /// Messages a shard's mailbox holds before senders wait.
    pub const SHARD_MAILBOX_CAPACITY: usize = 4096;
    /// How much a connection's reader asks the kernel for at a time, at most and at least.
    pub const CONNECTION_READ_CHUNK_BYTES: usize = 64 * 1024;
    pub const CONNECTION_READ_MIN_BYTES: usize = 4 * 1024;
    /// Pipes in each shard's splice pool, and each pipe's size (the machine caps pipes at 1 MiB).
    pub const SPLICE_PIPE_COUNT: usize = 4;
    pub const SPLICE_PIPE_SIZE_BYTES: usize = 1024 * 1024;
    /// Batches one write of a partition's writer gathers at most (an iovec each, plus a header).
    pub const APPEND_BATCHES_PER_WRITE_MAX: usize = 256;
    /// io_uring entries per shard ring.
    pub const RING_ENTRIES: u32 = 1024;
    /// Threads in each shard's blocking pool (compio's `thread_pool_limit`): fsyncs of rolled
    /// segments and of folders, and writeback requests. When all are busy, handing the pool
    /// more work makes the shard thread wait, so the callers bound what they hand it.
    pub const IO_WORKERS_MAX: u32 = 4;
    /// Offsets topics may hold in one name (Kafka's limit).
    pub const TOPIC_NAME_LENGTH_MAX: usize = 249;
    /// Partitions one topic may have.
    pub const TOPIC_PARTITIONS_MAX: i32 = 10_000;
}

/// Per-topic settings, with the broker's defaults filled in (Kafka's topic-level names).
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub segment_bytes: u32,
    pub segment_ms: i64,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub index_interval_bytes: u32,
    pub segment_index_bytes: u32,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub max_message_bytes: u32,
    pub message_timestamp_type_log_append: bool,
    pub cleanup_policy: String,
    /// How long compaction keeps tombstones (`delete.retention.ms`).
    pub delete_retention_ms: i64,
    /// Appends of at most this many bytes are written with `pwritev` on the shard thread,
    /// larger ones through io_uring (`log.write.inline.max.bytes`, broker-wide; Spate's own).
    pub write_inline_max_bytes: u32,
    /// Every this many bytes appended to the active segment, the kernel is asked to start
    /// writing them to disk without waiting (`sync_file_range(SYNC_FILE_RANGE_WRITE)`); 0 never
    /// asks (`log.writeback.interval.bytes`, broker-wide; Spate's own).
    pub writeback_interval_bytes: u32,
    /// With acks=all, the fewest in-sync replicas a write needs (`min.insync.replicas`).
    pub min_insync_replicas: i32,
    /// How long an idempotent producer's state outlives its last batch
    /// (`producer.id.expiration.ms`, broker-wide).
    pub producer_id_expiration_ms: i64,
}

/// The topic-level configuration names Spate understands, each with the broker property that
/// provides its default.
pub const TOPIC_CONFIG_NAMES: &[(&str, &str)] = &[
    ("segment.bytes", "log.segment.bytes"),
    ("segment.ms", "log.roll.ms"),
    ("retention.ms", "log.retention.ms"),
    ("retention.bytes", "log.retention.bytes"),
    ("index.interval.bytes", "log.index.interval.bytes"),
    ("segment.index.bytes", "log.index.size.max.bytes"),
    ("flush.messages", "log.flush.interval.messages"),
    ("flush.ms", "log.flush.interval.ms"),
    ("max.message.bytes", "message.max.bytes"),
    ("message.timestamp.type", "log.message.timestamp.type"),
    ("cleanup.policy", "log.cleanup.policy"),
    ("delete.retention.ms", "log.cleaner.delete.retention.ms"),
    ("min.insync.replicas", "min.insync.replicas"),
];

/// The group coordinator's settings (Kafka's `group.*` broker properties).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub initial_rebalance_delay: std::time::Duration,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
}

/// The transaction coordinator's settings (Kafka's `transaction.*` broker properties).
#[derive(Debug, Clone, Copy)]
pub struct TransactionConfig {
    /// `transaction.state.log.num.partitions`.
    pub state_log_num_partitions: i32,
    /// `transaction.state.log.replication.factor` (capped by the brokers there are).
    pub state_log_replication_factor: i16,
    /// `transaction.state.log.segment.bytes`.
    pub state_log_segment_bytes: u32,
    /// `transaction.max.timeout.ms`: the longest `transaction.timeout.ms` a producer may ask.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`: how long an idle transactional id is kept.
    pub id_expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_check_interval_ms: u64,
}

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub broker_id: i32,
    pub listener: SocketAddr,
    pub advertised_host: String,
    pub advertised_port: u16,
    pub log_dirs: PathBuf,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub delete_topic_enable: bool,
    pub log: LogConfig,
    pub log_retention_check_interval_ms: u64,
    /// How often the log dir's checkpoint files are written
    /// (`log.flush.offset.checkpoint.interval.ms`).
    pub log_flush_offset_checkpoint_interval_ms: u64,
    /// The scrubber's read rate over sealed segments, per shard (0: off).
    pub log_scrub_bytes_per_second: u64,
    /// How often compacted topics are cleaned (`log.cleaner.backoff.ms`).
    pub log_cleaner_backoff_ms: u64,
    pub socket_request_max_bytes: u32,
    /// Bytes of requests read but not yet answered, broker-wide (`queued.max.request.bytes`;
    /// -1 means no bound, as in Kafka).
    pub queued_max_request_bytes: u64,
    pub connections_max_idle_ms: u64,
    pub max_connections: usize,
    pub shards: usize,
    /// The cluster id from the log dir's `meta.properties` (set when the broker starts).
    pub cluster_id: String,
    pub offsets_topic_num_partitions: i32,
    pub offsets_topic_segment_bytes: u32,
    pub offsets_retention_ms: i64,
    pub group: GroupConfig,
    pub transactions: TransactionConfig,
    /// The cluster's settings; `None` for a single node without a quorum.
    pub cluster: Option<ClusterConfig>,
    /// `min.insync.replicas`, the topics' default.
    pub min_insync_replicas: i32,
    /// `offsets.topic.replication.factor` (capped by the brokers there are).
    pub offsets_topic_replication_factor: i16,
    /// Every property as given, for DescribeConfigs.
    pub properties: BTreeMap<String, String>,
}

/// What a node does (`process.roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub broker: bool,
    pub controller: bool,
}

/// A voter of the metadata quorum: `id@host:port` in `controller.quorum.voters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

impl Voter {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A node of a cluster: its roles, the quorum it belongs to or reaches, and the replication
/// settings (Kafka's names and defaults).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub roles: Roles,
    /// `controller.quorum.voters`; empty when only `controller.quorum.bootstrap.servers` is set
    /// (a broker that only needs somewhere to start asking).
    pub voters: Vec<Voter>,
    /// Where to reach the quorum: the voters' addresses, or the bootstrap servers.
    pub quorum_addresses: Vec<String>,
    /// The CONTROLLER listener this node binds, when it is a controller.
    pub controller_listener: Option<SocketAddr>,
    /// The metadata log's folder (`metadata.log.dir`, else the log dir).
    pub metadata_log_dir: PathBuf,
    pub rack: Option<String>,
    pub replica_lag_time_max_ms: u64,
    pub unclean_leader_election_enable: bool,
    pub auto_leader_rebalance_enable: bool,
    pub leader_imbalance_check_interval_ms: u64,
    pub leader_imbalance_per_broker_percentage: u32,
    pub broker_session_timeout_ms: u64,
    pub broker_heartbeat_interval_ms: u64,
    pub controlled_shutdown_enable: bool,
    pub replica_fetch_max_bytes: i32,
    pub replica_fetch_response_max_bytes: i32,
    pub replica_fetch_min_bytes: i32,
    pub replica_fetch_wait_max_ms: i32,
    pub replica_fetch_backoff_ms: u64,
    pub replica_socket_timeout_ms: u64,
    pub quorum_request_timeout_ms: u64,
}

/// `controller.quorum.voters`: `id@host:port,...`, ids unique.
fn parse_voters(raw: &str) -> Result<Vec<Voter>, ConfigError> {
    let key = "controller.quorum.voters";
    let mut out: Vec<Voter> = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || ConfigError(format!("{key}: expected id@host:port, got {entry:?}"));
        let (id, address) = entry.split_once('@').ok_or_else(bad)?;
        let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
        let voter = Voter { id: id.trim().parse().map_err(|_| bad())?, host: host.trim_matches(['[', ']']).to_owned(), port: port.parse().map_err(|_| bad())? };
        if voter.id < 0 || out.iter().any(|v| v.id == voter.id) {
            return Err(ConfigError(format!("{key}: voter id {} is negative or appears twice", voter.id)));
        }
        out.push(voter);
    }
    Ok(out)
}

/// The cluster part of the configuration, or `None` without `process.roles`.
fn parse_cluster(
    props: &BTreeMap<String, String>,
    node_id: i32,
    listeners: &[ListenerSpec],
    controller_names: &[String],
    log_dirs: &std::path::Path,
) -> Result<Option<ClusterConfig>, ConfigError> {
    if !present(props, "process.roles") {
        if present(props, "controller.quorum.voters") || present(props, "controller.quorum.bootstrap.servers") {
            return Err(ConfigError("process.roles: must be set (broker, controller or broker,controller) when a quorum is configured".into()));
        }
        return Ok(None);
    }
    let mut roles = Roles { broker: false, controller: false };
    for role in props["process.roles"].split(',').map(str::trim).filter(|r| !r.is_empty()) {
        match role {
            "broker" => roles.broker = true,
            "controller" => roles.controller = true,
            other => return Err(ConfigError(format!("process.roles: unknown role {other:?} (broker, controller)"))),
        }
    }
    if !roles.broker {
        // A controller-only node serves no clients; Spate's nodes always serve them for now.
        return Err(ConfigError("process.roles: Spate runs controllers inside brokers for now (use broker,controller, or broker)".into()));
    }
    let voters = parse_voters(&props["controller.quorum.voters"])?;
    let bootstrap: Vec<String> = props["controller.quorum.bootstrap.servers"].split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if voters.is_empty() && bootstrap.is_empty() {
        return Err(ConfigError("controller.quorum.voters: must list the quorum (id@host:port,...), or set controller.quorum.bootstrap.servers".into()));
    }
    if roles.controller && voters.is_empty() {
        return Err(ConfigError("controller.quorum.voters: a controller must know the quorum's voters".into()));
    }
    let controller_listener = if roles.controller {
        if !voters.iter().any(|v| v.id == node_id) {
            return Err(ConfigError(format!("controller.quorum.voters: this node ({node_id}) is a controller but not a voter")));
        }
        let name = controller_names.first().ok_or_else(|| ConfigError("controller.listener.names: a controller must name its listener".into()))?;
        let spec = listeners
            .iter()
            .find(|l| &l.name == name)
            .ok_or_else(|| ConfigError(format!("listeners: no listener named {name} (controller.listener.names)")))?;
        Some(resolve("listeners", &spec.host, spec.port)?)
    } else {
        None
    };
    if present(props, "inter.broker.listener.name") {
        let name = props["inter.broker.listener.name"].to_ascii_uppercase();
        if !listeners.iter().any(|l| l.name == name) || controller_names.contains(&name) {
            return Err(ConfigError(format!("inter.broker.listener.name: {name} is not one of this broker's client listeners")));
        }
    }
    let quorum_addresses = if voters.is_empty() { bootstrap } else { voters.iter().map(Voter::address).collect() };
    let metadata_log_dir = if present(props, "metadata.log.dir") { PathBuf::from(&props["metadata.log.dir"]) } else { log_dirs.to_owned() };
    let session: u64 = parse_num(props, "broker.session.timeout.ms")?;
    let heartbeat: u64 = parse_num(props, "broker.heartbeat.interval.ms")?;
    if heartbeat == 0 || heartbeat >= session {
        return Err(ConfigError("broker.heartbeat.interval.ms: must be positive and below broker.session.timeout.ms".into()));
    }
    Ok(Some(ClusterConfig {
        roles,
        voters,
        quorum_addresses,
        controller_listener,
        metadata_log_dir,
        rack: present(props, "broker.rack").then(|| props["broker.rack"].clone()),
        replica_lag_time_max_ms: parse_num(props, "replica.lag.time.max.ms")?,
        unclean_leader_election_enable: parse_bool(props, "unclean.leader.election.enable")?,
        auto_leader_rebalance_enable: parse_bool(props, "auto.leader.rebalance.enable")?,
        leader_imbalance_check_interval_ms: parse_num::<u64>(props, "leader.imbalance.check.interval.seconds")? * 1000,
        leader_imbalance_per_broker_percentage: parse_num(props, "leader.imbalance.per.broker.percentage")?,
        broker_session_timeout_ms: session,
        broker_heartbeat_interval_ms: heartbeat,
        controlled_shutdown_enable: parse_bool(props, "controlled.shutdown.enable")?,
        replica_fetch_max_bytes: parse_num(props, "replica.fetch.max.bytes")?,
        replica_fetch_response_max_bytes: parse_num(props, "replica.fetch.response.max.bytes")?,
        replica_fetch_min_bytes: parse_num(props, "replica.fetch.min.bytes")?,
        replica_fetch_wait_max_ms: parse_num(props, "replica.fetch.wait.max.ms")?,
        replica_fetch_backoff_ms: parse_num(props, "replica.fetch.backoff.ms")?,
        replica_socket_timeout_ms: parse_num(props, "replica.socket.timeout.ms")?,
        quorum_request_timeout_ms: parse_num(props, "controller.quorum.request.timeout.ms")?,
    }))
}

fn resolve(key: &str, host: &str, port: u16) -> Result<SocketAddr, ConfigError> {
    format!("{host}:{port}")
        .parse()
        .or_else(|_| std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).map_err(|_| ()).and_then(|mut a| a.next().ok_or(())))
        .map_err(|_| ConfigError(format!("{key}: cannot resolve {host:?}")))
}

/// A configuration error names the key it is about.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Every broker property Spate knows, with its default. Anything else is a startup error.
pub const BROKER_DEFAULTS: &[(&str, &str)] = &[
    ("broker.id", "0"),
    ("node.id", ""),
    ("listeners", "PLAINTEXT://127.0.0.1:9092"),
    ("advertised.listeners", ""),
    ("log.dirs", "./spate-data"),
    ("log.dir", ""),
    ("num.partitions", "1"),
    ("default.replication.factor", "1"),
    ("auto.create.topics.enable", "true"),
    ("delete.topic.enable", "true"),
    ("log.segment.bytes", "1073741824"),
    ("log.roll.ms", ""),
    ("log.roll.hours", "168"),
    ("log.retention.ms", ""),
    ("log.retention.minutes", ""),
    ("log.retention.hours", "168"),
    ("log.retention.bytes", "-1"),
    ("log.retention.check.interval.ms", "300000"),
    ("log.index.interval.bytes", "4096"),
    ("log.index.size.max.bytes", "10485760"),
    ("log.flush.interval.messages", "9223372036854775807"),
    ("log.flush.interval.ms", ""),
    ("log.message.timestamp.type", "CreateTime"),
    ("log.cleanup.policy", "delete"),
    ("log.cleaner.delete.retention.ms", "86400000"),
    ("log.cleaner.backoff.ms", "15000"),
    ("message.max.bytes", "1048588"),
    ("socket.request.max.bytes", "104857600"),
    // Kafka's default is -1 (no bound); Spate bounds it: 512 MiB across all shards.
    ("queued.max.request.bytes", "536870912"),
    ("log.flush.offset.checkpoint.interval.ms", "60000"),
    // Not a Kafka property: the scrubber's read rate over sealed segments (0 turns it off).
    ("log.scrub.bytes.per.second", "4194304"),
    ("connections.max.idle.ms", "600000"),
    ("max.connections", "2147483647"),
    ("shards", ""),
    ("log.write.inline.max.bytes", "0"),
    ("log.writeback.interval.bytes", "16777216"),
    // Accepted for compatibility with stock server.properties files; single-node Spate has
    // nothing to tune with them.
    ("num.network.threads", "3"),
    ("num.io.threads", "8"),
    ("socket.send.buffer.bytes", "102400"),
    ("socket.receive.buffer.bytes", "102400"),
    ("num.recovery.threads.per.data.dir", "1"),
    // Kafka's default; capped by the brokers there are when the topic is created.
    ("offsets.topic.replication.factor", "3"),
    // Kafka's default, 3, capped by the brokers there are when the topic is created.
    ("transaction.state.log.replication.factor", "3"),
    ("transaction.state.log.min.isr", "1"),
    ("transaction.state.log.num.partitions", "50"),
    ("transaction.state.log.segment.bytes", "104857600"),
    ("transaction.max.timeout.ms", "900000"),
    ("transactional.id.expiration.ms", "604800000"),
    ("transaction.abort.timed.out.transaction.cleanup.interval.ms", "10000"),
    ("group.initial.rebalance.delay.ms", "3000"),
    ("group.min.session.timeout.ms", "6000"),
    ("group.max.session.timeout.ms", "1800000"),
    ("offsets.topic.num.partitions", "50"),
    ("offsets.topic.segment.bytes", "104857600"),
    ("offsets.retention.minutes", "10080"),
    ("zookeeper.connect", ""),
    ("zookeeper.connection.timeout.ms", ""),
    ("listener.security.protocol.map", ""),
    // The cluster (KRaft's names). With no `process.roles` the broker is a single node that
    // keeps its catalog itself, as before there was a cluster.
    ("process.roles", ""),
    ("controller.quorum.voters", ""),
    ("controller.quorum.bootstrap.servers", ""),
    ("controller.listener.names", ""),
    ("inter.broker.listener.name", ""),
    ("metadata.log.dir", ""),
    ("broker.rack", ""),
    ("min.insync.replicas", "1"),
    ("producer.id.expiration.ms", "86400000"),
    ("replica.lag.time.max.ms", "30000"),
    ("unclean.leader.election.enable", "false"),
    ("auto.leader.rebalance.enable", "true"),
    ("leader.imbalance.check.interval.seconds", "300"),
    ("leader.imbalance.per.broker.percentage", "10"),
    ("broker.session.timeout.ms", "9000"),
    ("broker.heartbeat.interval.ms", "2000"),
    ("controlled.shutdown.enable", "true"),
    ("replica.fetch.max.bytes", "1048576"),
    ("replica.fetch.response.max.bytes", "10485760"),
    ("replica.fetch.min.bytes", "1"),
    ("replica.fetch.wait.max.ms", "500"),
    ("replica.fetch.backoff.ms", "1000"),
    ("replica.socket.timeout.ms", "30000"),
    ("controller.quorum.request.timeout.ms", "2000"),
];

/// Reads a `.properties` text: `key=value` or `key: value` lines, `#` and `!` comments.
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let split = line.find(['=', ':']).ok_or_else(|| ConfigError(format!("line {}: expected key=value, got {line:?}", n + 1)))?;
        out.push((line[..split].trim().to_owned(), line[split + 1..].trim().to_owned()));
    }
    Ok(out)
}

fn parse_num<T: std::str::FromStr>(props: &BTreeMap<String, String>, key: &str) -> Result<T, ConfigError> {
    let raw = props.get(key).map(String::as_str).unwrap_or("");
    raw.parse::<T>().map_err(|_| ConfigError(format!("{key}: invalid value {raw:?}")))
}

fn parse_bool(props: &BTreeMap<String, String>, key: &str) -> Result<bool, ConfigError> {
    match props.get(key).map(String::as_str) {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        other => Err(ConfigError(format!("{key}: expected true or false, got {other:?}"))),
    }
}

fn present(props: &BTreeMap<String, String>, key: &str) -> bool {
    props.get(key).is_some_and(|v| !v.is_empty())
}

/// One entry of `listeners` or `advertised.listeners`: `NAME://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// Parses a comma-separated list of `NAME://host:port`, as Kafka does: every entry needs its
/// name, names are unique, an empty host means every address.
fn parse_listeners(key: &str, raw: &str) -> Result<Vec<ListenerSpec>, ConfigError> {
    let mut out: Vec<ListenerSpec> = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, rest) = entry.split_once("://").ok_or_else(|| ConfigError(format!("{key}: expected NAME://host:port, got {entry:?}")))?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| ConfigError(format!("{key}: expected NAME://host:port, got {entry:?}")))?;
        let port: u16 = port.parse().map_err(|_| ConfigError(format!("{key}: invalid port in {entry:?}")))?;
        let host = if host.is_empty() { "0.0.0.0".to_owned() } else { host.trim_matches(['[', ']']).to_owned() };
        let name = name.to_ascii_uppercase();
        if out.iter().any(|l| l.name == name) {
            return Err(ConfigError(format!("{key}: listener name {name} appears twice")));
        }
        out.push(ListenerSpec { name, host, port });
    }
    if out.is_empty() {
        return Err(ConfigError(format!("{key}: expected NAME://host:port, got {raw:?}")));
    }
    Ok(out)
}

/// The security protocols Kafka knows; a listener named like one of them uses it unless the
/// map says otherwise.
const SECURITY_PROTOCOLS: [&str; 4] = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

/// The security protocol of each listener, from `listener.security.protocol.map`
/// (`NAME:PROTOCOL,...`). Until Spate has TLS and SASL, every listener must be PLAINTEXT:
/// serving an `SASL_SSL://` listener in plaintext, without authentication, would be worse than
/// refusing to start.
fn check_security_protocols(listeners: &[ListenerSpec], map_raw: &str, controller_names: &[String]) -> Result<(), ConfigError> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for entry in map_raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, protocol) =
            entry.split_once(':').ok_or_else(|| ConfigError(format!("listener.security.protocol.map: expected NAME:PROTOCOL, got {entry:?}")))?;
        let protocol = protocol.trim().to_ascii_uppercase();
        if !SECURITY_PROTOCOLS.contains(&protocol.as_str()) {
            return Err(ConfigError(format!("listener.security.protocol.map: unknown security protocol {protocol:?} for listener {name}")));
        }
        map.insert(name.trim().to_ascii_uppercase(), protocol);
    }
    for l in listeners {
        let protocol = match map.get(&l.name) {
            Some(p) => p.as_str(),
            None if SECURITY_PROTOCOLS.contains(&l.name.as_str()) => l.name.as_str(),
            // As Kafka's `effectiveListenerSecurityProtocolMap`: with no map given, the
            // controller's listeners are PLAINTEXT.
            None if map.is_empty() && controller_names.contains(&l.name) => "PLAINTEXT",
            None => {
                return Err(ConfigError(format!("listener.security.protocol.map: no security protocol for listener {} (add {}:PLAINTEXT)", l.name, l.name)))
            }
        };
        if protocol != "PLAINTEXT" {
            let key = if map.contains_key(&l.name) { "listener.security.protocol.map" } else { "listeners" };
            return Err(ConfigError(format!(
                "{key}: listener {} uses security protocol {protocol}, which Spate does not support yet (only PLAINTEXT)",
                l.name
            )));
        }
    }
    Ok(())
}

impl BrokerConfig {
    /// Builds the configuration from properties, later entries winning.
    pub fn from_properties(entries: &[(String, String)]) -> Result<BrokerConfig, ConfigError> {
        let mut props: BTreeMap<String, String> = BROKER_DEFAULTS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        for (k, v) in entries {
            if !props.contains_key(k) {
                return Err(ConfigError(format!("{k}: unknown configuration key")));
            }
            props.insert(k.clone(), v.clone());
        }
        let broker_id: i32 = if present(&props, "node.id") { parse_num(&props, "node.id")? } else { parse_num(&props, "broker.id")? };
        let listeners = parse_listeners("listeners", &props["listeners"])?;
        // Clients are served on the listeners that are not the controller's; Spate serves one.
        let controller_names: Vec<String> =
            props["controller.listener.names"].split(',').map(|n| n.trim().to_ascii_uppercase()).filter(|n| !n.is_empty()).collect();
        check_security_protocols(&listeners, &props["listener.security.protocol.map"], &controller_names)?;
        let client_listeners: Vec<&ListenerSpec> = listeners.iter().filter(|l| !controller_names.contains(&l.name)).collect();
        let client = match client_listeners.as_slice() {
            [one] => (*one).clone(),
            [] => return Err(ConfigError("listeners: no listener for clients (every one is in controller.listener.names)".into())),
            _ => return Err(ConfigError(format!("listeners: Spate serves one client listener for now, not {}", client_listeners.len()))),
        };
        let (host, port) = (client.host.clone(), client.port);
        let listener = resolve("listeners", &host, port)?;
        let advertised = if present(&props, "advertised.listeners") {
            let advertised = parse_listeners("advertised.listeners", &props["advertised.listeners"])?;
            Some(
                advertised
                    .into_iter()
                    .find(|a| a.name == client.name)
                    .ok_or_else(|| ConfigError(format!("advertised.listeners: no entry for listener {}", client.name)))?,
            )
        } else {
            None
        };
        let (advertised_host, advertised_port) = match advertised {
            Some(a) => (a.host, a.port),
            None if host == "0.0.0.0" => ("127.0.0.1".to_owned(), port),
            None => (host.clone(), port),
        };
        let log_dirs = if present(&props, "log.dir") && props["log.dirs"] == "./spate-data" { &props["log.dir"] } else { &props["log.dirs"] };
        let log_dirs = PathBuf::from(log_dirs.split(',').next().unwrap_or("").trim());
        if log_dirs.as_os_str().is_empty() {
            return Err(ConfigError("log.dirs: must name a folder".into()));
        }

        let roll_ms: i64 =
            if present(&props, "log.roll.ms") { parse_num(&props, "log.roll.ms")? } else { parse_num::<i64>(&props, "log.roll.hours")? * 3_600_000 };
        let retention_ms: i64 = if present(&props, "log.retention.ms") {
            parse_num(&props, "log.retention.ms")?
        } else if present(&props, "log.retention.minutes") {
            parse_num::<i64>(&props, "log.retention.minutes")? * 60_000
        } else {
            parse_num::<i64>(&props, "log.retention.hours")? * 3_600_000
        };
        let flush_ms: i64 = if present(&props, "log.flush.interval.ms") { parse_num(&props, "log.flush.interval.ms")? } else { i64::MAX };
        let log = LogConfig {
            segment_bytes: parse_num(&props, "log.segment.bytes")?,
            segment_ms: roll_ms,
            retention_ms,
            retention_bytes: parse_num(&props, "log.retention.bytes")?,
            index_interval_bytes: parse_num(&props, "log.index.interval.bytes")?,
            segment_index_bytes: parse_num(&props, "log.index.size.max.bytes")?,
            flush_messages: parse_num(&props, "log.flush.interval.messages")?,
            flush_ms,
            max_message_bytes: parse_num(&props, "message.max.bytes")?,
            message_timestamp_type_log_append: parse_timestamp_type("log.message.timestamp.type", &props["log.message.timestamp.type"])?,
            cleanup_policy: props["log.cleanup.policy"].clone(),
            delete_retention_ms: parse_num(&props, "log.cleaner.delete.retention.ms")?,
            write_inline_max_bytes: parse_num(&props, "log.write.inline.max.bytes")?,
            writeback_interval_bytes: parse_num(&props, "log.writeback.interval.bytes")?,
            min_insync_replicas: parse_num(&props, "min.insync.replicas")?,
            producer_id_expiration_ms: parse_num(&props, "producer.id.expiration.ms")?,
        };
        validate_log_config(&log).map_err(ConfigError)?;
        let shards = if present(&props, "shards") {
            let n: usize = parse_num(&props, "shards")?;
            if n == 0 || n > 1024 {
                return Err(ConfigError("shards: must be between 1 and 1024".into()));
            }
            n
        } else {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        };
        let cluster = parse_cluster(&props, broker_id, &listeners, &controller_names, &log_dirs)?;
        let min_insync_replicas: i32 = parse_num(&props, "min.insync.replicas")?;
        if min_insync_replicas < 1 {
            return Err(ConfigError("min.insync.replicas: must be at least 1".into()));
        }
        let offsets_topic_replication_factor: i16 = parse_num(&props, "offsets.topic.replication.factor")?;
        if offsets_topic_replication_factor < 1 {
            return Err(ConfigError("offsets.topic.replication.factor: must be at least 1".into()));
        }
        let num_partitions: i32 = parse_num(&props, "num.partitions")?;
        if !(1..=limits::TOPIC_PARTITIONS_MAX).contains(&num_partitions) {
            return Err(ConfigError("num.partitions: must be between 1 and 10000".into()));
        }
        let socket_request_max_bytes: u32 = parse_num(&props, "socket.request.max.bytes")?;
        if socket_request_max_bytes < 1024 || socket_request_max_bytes > i32::MAX as u32 {
            return Err(ConfigError("socket.request.max.bytes: must be between 1024 and 2147483647".into()));
        }
        Ok(BrokerConfig {
            broker_id,
            listener,
            advertised_host,
            advertised_port,
            log_dirs,
            num_partitions,
            default_replication_factor: parse_num(&props, "default.replication.factor")?,
            auto_create_topics_enable: parse_bool(&props, "auto.create.topics.enable")?,
            delete_topic_enable: parse_bool(&props, "delete.topic.enable")?,
            log,
            log_retention_check_interval_ms: parse_num(&props, "log.retention.check.interval.ms")?,
            log_flush_offset_checkpoint_interval_ms: parse_num(&props, "log.flush.offset.checkpoint.interval.ms")?,
            log_scrub_bytes_per_second: parse_num(&props, "log.scrub.bytes.per.second")?,
            log_cleaner_backoff_ms: parse_num(&props, "log.cleaner.backoff.ms")?,
            socket_request_max_bytes,
            queued_max_request_bytes: match parse_num::<i64>(&props, "queued.max.request.bytes")? {
                -1 => u64::MAX,
                n if n > 0 => n as u64,
                _ => return Err(ConfigError("queued.max.request.bytes: must be -1 or positive".into())),
            },
            connections_max_idle_ms: parse_num(&props, "connections.max.idle.ms")?,
            max_connections: parse_num(&props, "max.connections")?,
            shards,
            // The log dir's `meta.properties` holds it; the broker fills it in at start.
            cluster_id: String::new(),
            offsets_topic_num_partitions: {
                let n: i32 = parse_num(&props, "offsets.topic.num.partitions")?;
                if !(1..=limits::TOPIC_PARTITIONS_MAX).contains(&n) {
                    return Err(ConfigError("offsets.topic.num.partitions: must be between 1 and 10000".into()));
                }
                n
            },
            offsets_topic_segment_bytes: parse_num(&props, "offsets.topic.segment.bytes")?,
            offsets_retention_ms: parse_num::<i64>(&props, "offsets.retention.minutes")? * 60_000,
            group: GroupConfig {
                initial_rebalance_delay: std::time::Duration::from_millis(parse_num(&props, "group.initial.rebalance.delay.ms")?),
                min_session_timeout_ms: parse_num(&props, "group.min.session.timeout.ms")?,
                max_session_timeout_ms: parse_num(&props, "group.max.session.timeout.ms")?,
            },
            transactions: TransactionConfig {
                state_log_num_partitions: {
                    let n: i32 = parse_num(&props, "transaction.state.log.num.partitions")?;
                    if !(1..=limits::TOPIC_PARTITIONS_MAX).contains(&n) {
                        return Err(ConfigError("transaction.state.log.num.partitions: must be between 1 and 10000".into()));
                    }
                    n
                },
                state_log_replication_factor: {
                    let n: i16 = parse_num(&props, "transaction.state.log.replication.factor")?;
                    if n < 1 {
                        return Err(ConfigError("transaction.state.log.replication.factor: must be at least 1".into()));
                    }
                    n
                },
                state_log_segment_bytes: parse_num(&props, "transaction.state.log.segment.bytes")?,
                max_timeout_ms: {
                    let n: i32 = parse_num(&props, "transaction.max.timeout.ms")?;
                    if n < 1 {
                        return Err(ConfigError("transaction.max.timeout.ms: must be at least 1".into()));
                    }
                    n
                },
                id_expiration_ms: parse_num(&props, "transactional.id.expiration.ms")?,
                abort_check_interval_ms: parse_num::<u64>(&props, "transaction.abort.timed.out.transaction.cleanup.interval.ms")?.max(1),
            },
            cluster,
            min_insync_replicas,
            offsets_topic_replication_factor,
            properties: props,
        })
    }

    /// The topic-level configuration for a topic with these overrides.
    pub fn topic_config(&self, overrides: &BTreeMap<String, String>) -> Result<LogConfig, String> {
        let mut log = self.log.clone();
        for (key, value) in overrides {
            let bad = || format!("{key}: invalid value {value:?}");
            match key.as_str() {
                "segment.bytes" => log.segment_bytes = value.parse().map_err(|_| bad())?,
                "segment.ms" => log.segment_ms = value.parse().map_err(|_| bad())?,
                "retention.ms" => log.retention_ms = value.parse().map_err(|_| bad())?,
                "retention.bytes" => log.retention_bytes = value.parse().map_err(|_| bad())?,
                "index.interval.bytes" => log.index_interval_bytes = value.parse().map_err(|_| bad())?,
                "segment.index.bytes" => log.segment_index_bytes = value.parse().map_err(|_| bad())?,
                "flush.messages" => log.flush_messages = value.parse().map_err(|_| bad())?,
                "flush.ms" => log.flush_ms = value.parse().map_err(|_| bad())?,
                "max.message.bytes" => log.max_message_bytes = value.parse().map_err(|_| bad())?,
                "message.timestamp.type" => log.message_timestamp_type_log_append = parse_timestamp_type(key, value).map_err(|e| e.0)?,
                "delete.retention.ms" => log.delete_retention_ms = value.parse().map_err(|_| bad())?,
                "min.insync.replicas" => log.min_insync_replicas = value.parse().map_err(|_| bad())?,
                "cleanup.policy" => {
                    if !value.split(',').all(|p| matches!(p.trim(), "delete" | "compact")) {
                        return Err(bad());
                    }
                    log.cleanup_policy = value.clone();
                }
                _ => return Err(format!("{key}: unknown topic configuration")),
            }
        }
        validate_log_config(&log)?;
        Ok(log)
    }

    /// The value of a topic-level configuration for DescribeConfigs, and whether it is a
    /// topic override (true) or the broker's default (false).
    pub fn topic_config_value(log: &LogConfig, name: &str) -> Option<String> {
        Some(match name {
            "segment.bytes" => log.segment_bytes.to_string(),
            "segment.ms" => log.segment_ms.to_string(),
            "retention.ms" => log.retention_ms.to_string(),
            "retention.bytes" => log.retention_bytes.to_string(),
            "index.interval.bytes" => log.index_interval_bytes.to_string(),
            "segment.index.bytes" => log.segment_index_bytes.to_string(),
            "flush.messages" => log.flush_messages.to_string(),
            "flush.ms" => log.flush_ms.to_string(),
            "max.message.bytes" => log.max_message_bytes.to_string(),
            "message.timestamp.type" => if log.message_timestamp_type_log_append { "LogAppendTime" } else { "CreateTime" }.to_string(),
            "cleanup.policy" => log.cleanup_policy.clone(),
            "delete.retention.ms" => log.delete_retention_ms.to_string(),
            "min.insync.replicas" => log.min_insync_replicas.to_string(),
            _ => return None,
        })
    }
}

fn parse_timestamp_type(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "CreateTime" => Ok(false),
        "LogAppendTime" => Ok(true),
        _ => Err(ConfigError(format!("{key}: expected CreateTime or LogAppendTime, got {value:?}"))),
    }
}

fn validate_log_config(log: &LogConfig) -> Result<(), String> {
    // A segment must hold at least one batch header and its positions must fit the index's
    // 4-byte file positions.
    if log.segment_bytes < 1024 || log.segment_bytes > i32::MAX as u32 {
        return Err(format!("segment.bytes: must be between 1024 and {}", i32::MAX));
    }
    if log.segment_ms < 1 {
        return Err("segment.ms: must be positive".into());
    }
    if log.index_interval_bytes == 0 {
        return Err("index.interval.bytes: must be positive".into());
    }
    if log.segment_index_bytes < 8 {
        return Err("segment.index.bytes: must be at least 8".into());
    }
    if log.flush_messages < 1 || log.flush_ms < 0 {
        return Err("flush.messages/flush.ms: must be positive".into());
    }
    if log.max_message_bytes < 64 {
        return Err("max.message.bytes: must be at least 64".into());
    }
    if log.min_insync_replicas < 1 {
        return Err("min.insync.replicas: must be at least 1".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_work_and_overrides_win() {
        let c = BrokerConfig::from_properties(&kv(&[("log.retention.hours", "1"), ("log.retention.ms", "500")])).unwrap();
        assert_eq!(c.listener.port(), 9092);
        assert_eq!(c.log.retention_ms, 500);
        assert_eq!(c.log.segment_bytes, 1 << 30);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = BrokerConfig::from_properties(&kv(&[("no.such.key", "1")])).unwrap_err();
        assert!(e.0.contains("no.such.key"), "{e}");
        let e = BrokerConfig::from_properties(&kv(&[("num.partitions", "many")])).unwrap_err();
        assert!(e.0.contains("num.partitions"), "{e}");
    }

    #[test]
    fn listeners_need_a_security_protocol_spate_speaks() {
        let err = |pairs: &[(&str, &str)]| BrokerConfig::from_properties(&kv(pairs)).unwrap_err().0;
        let e = err(&[("listeners", "SASL_SSL://127.0.0.1:9093")]);
        assert!(e.starts_with("listeners:") && e.contains("SASL_SSL"), "{e}");
        let e = err(&[("listeners", "CLIENT://127.0.0.1:9093"), ("listener.security.protocol.map", "CLIENT:SSL")]);
        assert!(e.starts_with("listener.security.protocol.map:") && e.contains("SSL"), "{e}");
        let e = err(&[("listeners", "CLIENT://127.0.0.1:9093")]);
        assert!(e.contains("no security protocol for listener CLIENT"), "{e}");
        let e = err(&[("listeners", "PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093"), ("controller.listener.names", "SSL")]);
        assert!(e.contains("SSL"), "a controller listener is checked too: {e}");
        let e = err(&[("listeners", "127.0.0.1:9092")]);
        assert!(e.starts_with("listeners:"), "{e}");

        let c = BrokerConfig::from_properties(&kv(&[
            ("listeners", "CLIENT://127.0.0.1:9094,CONTROLLER://127.0.0.1:19091"),
            ("listener.security.protocol.map", "CLIENT:PLAINTEXT,CONTROLLER:PLAINTEXT"),
            ("controller.listener.names", "CONTROLLER"),
            ("advertised.listeners", "CLIENT://broker.example:29094"),
        ]))
        .unwrap();
        assert_eq!(c.listener.port(), 9094, "clients are served on the listener that is not the controller's");
        assert_eq!((c.advertised_host.as_str(), c.advertised_port), ("broker.example", 29094));
    }

    #[test]
    fn properties_files_parse() {
        let p = parse_properties("# comment\nbroker.id=3\nlisteners = PLAINTEXT://127.0.0.1:9999\n").unwrap();
        let c = BrokerConfig::from_properties(&p).unwrap();
        assert_eq!(c.broker_id, 3);
        assert_eq!(c.listener.port(), 9999);
    }
}
