//! The thread-per-core layer below the handlers: a shard's own state, the table of who owns
//! which partition, and the bounded mailboxes shards use to hand each other work.
//!
//! Architecture Invariant: a partition's log is only touched by the shard that owns it. Work
//! for another shard's partition travels as a `Job` through that shard's mailbox, and the
//! answer comes back over a one-shot channel; there is no Mutex or RwLock on the data path.

pub mod budget;
pub mod catalog;
pub mod replica;

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::config::{limits, BrokerConfig};
use crate::io::splice::PipePool;
use crate::storage::PartitionLog;
pub use catalog::{Catalog, TopicMeta};

/// A shard's index, from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub u16);

/// The shard that runs the controller: topic creation and deletion go through it, one at a
/// time, and it broadcasts each new catalog to every shard.
pub const CONTROLLER_SHARD: ShardId = ShardId(0);

pub type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T> + 'static>>;

/// Work sent to a shard. It runs on the target's thread: its synchronous part (up to the
/// returned future) runs in mailbox order, so two jobs for the same partition append in the
/// order they were sent; the returned future then runs as a task of its own.
pub type Job = Box<dyn FnOnce(&Rc<Shard>) -> LocalBoxFuture<()> + Send>;

/// The partition-to-shard map. Every shard computes it the same way, so each has its own copy
/// for free: the topic's hash spreads topics, the partition number spreads a topic's
/// partitions over consecutive shards.
pub fn owner_of(topic: &str, partition: i32, shard_count: usize) -> ShardId {
    let h = crc32c::crc32c(topic.as_bytes()) as u64;
    ShardId(((h + partition as u64) % shard_count as u64) as u16)
}

/// What every shard shares: the configuration, each shard's mailbox, and the producer id
/// counter (an atomic, touched only by InitProducerId).
/// The distance between the producer ids one broker hands out: the others' fit in between.
const PRODUCER_ID_STRIDE: i64 = 1024;

pub struct Shared {
    pub config: BrokerConfig,
    pub mailboxes: Vec<flume::Sender<Job>>,
    pub next_producer_id: AtomicI64,
    pub clean_shutdown: bool,
    /// The recovery points of the log dir's checkpoint at startup (used only then).
    pub recovery_points: HashMap<(String, i32), i64>,
    /// The high watermarks of the log dir's `replication-offset-checkpoint` at startup: where a
    /// replicated partition's starts (used only then).
    pub high_watermarks: HashMap<(String, i32), i64>,
    /// The log dir's `log-start-offset-checkpoint` at start: log starts that DeleteRecords (or
    /// a leader's log start) moved past a partition's first segment.
    pub log_starts: HashMap<(String, i32), i64>,
    /// Asks the broker's checkpointer to write the log dir's checkpoints now (`false`), or to
    /// stop (`true`, from the broker only).
    pub checkpoint_requests: flume::Sender<bool>,
    pub metrics: crate::metrics::Metrics,
    /// Open client connections, against `max.connections`.
    pub connections: std::sync::atomic::AtomicUsize,
    /// In a cluster, this broker's epoch (its registration's offset in the metadata log), which
    /// its AlterPartition requests carry; set by the metadata thread.
    pub broker_epoch: std::sync::atomic::AtomicU64,
}

impl Shared {
    pub fn new(
        config: BrokerConfig,
        mailboxes: Vec<flume::Sender<Job>>,
        clean_shutdown: bool,
        recovery_points: HashMap<(String, i32), i64>,
        checkpoint_requests: flume::Sender<bool>,
    ) -> Arc<Shared> {
        // Producer ids must not repeat across restarts, nor between the brokers of a
        // cluster: broker n hands out `start + k * 1024 + n mod 1024` (see
        // `allocate_producer_id`), from the clock in milliseconds times 2^20, which leaves
        // room for 1,024 ids per millisecond of uptime before a restarted broker could reach
        // an id handed out before it.
        let start = crate::io::runtime::now_ms().max(1) * (1 << 20) + (config.broker_id.rem_euclid(PRODUCER_ID_STRIDE as i32)) as i64;
        Arc::new(Shared {
            config,
            mailboxes,
            next_producer_id: AtomicI64::new(start),
            clean_shutdown,
            recovery_points,
            high_watermarks: Default::default(),
            log_starts: Default::default(),
            checkpoint_requests,
            metrics: Default::default(),
            connections: Default::default(),
            broker_epoch: Default::default(),
        })
    }

    pub fn shard_count(&self) -> usize {
        self.mailboxes.len()
    }

    /// Asks for the log dir's checkpoints to be written soon (one request is enough for any
    /// number of asks in between).
    pub fn request_checkpoint(&self) {
        let _ = self.checkpoint_requests.try_send(false);
    }

    pub fn allocate_producer_id(&self) -> i64 {
        self.next_producer_id.fetch_add(PRODUCER_ID_STRIDE, Ordering::Relaxed)
    }
}

/// One shard's state. Lives on its thread only (`Rc`), never shared.
pub struct Shard {
    pub id: ShardId,
    pub shared: Arc<Shared>,
    /// This shard's copy of the catalog; replaced whole when the controller broadcasts.
    pub catalog: RefCell<Arc<Catalog>>,
    /// The partitions this shard owns.
    pub partitions: RefCell<PartitionMap>,
    /// Each topic's `max.message.bytes`, worked out once per catalog change (produce needs it
    /// for every request).
    pub max_message_bytes: RefCell<HashMap<String, u32>>,
    /// The topics whose cleanup policy includes compaction (their records need keys).
    pub compacted_topics: RefCell<std::collections::HashSet<String>>,
    pub pipes: Rc<PipePool>,
    /// The consumer groups this shard coordinates.
    pub coordinator: RefCell<crate::coordinator::Coordinator>,
    /// The transactional ids this shard coordinates.
    pub txn_coordinator: RefCell<crate::coordinator::txn::TxnCoordinator>,
    /// On the controller shard, the single token a catalog change holds while it runs.
    pub controller_token: (flume::Sender<()>, flume::Receiver<()>),
    /// This shard's request times (its connections record them; SIGUSR1 takes them).
    pub request_times: crate::metrics::RequestHistograms,
    /// This shard's share of `queued.max.request.bytes`.
    pub request_budget: Rc<budget::RequestBudget>,
    /// The roles of the replicated partitions this shard owns (a cluster's partitions of more
    /// than one replica), and the leaders it runs a replica fetcher for.
    pub roles: RefCell<replica::Roles>,
    pub fetchers: RefCell<std::collections::HashSet<i32>>,
}

impl Shard {
    pub fn new(id: ShardId, shared: Arc<Shared>, catalog: Arc<Catalog>) -> Rc<Shard> {
        let controller_token = flume::bounded(1);
        controller_token.0.try_send(()).expect("an empty channel has room");
        let coordinator = RefCell::new(crate::coordinator::Coordinator::new(shared.config.group.clone()));
        let request_budget = budget::RequestBudget::new(shared.config.queued_max_request_bytes / shared.shard_count().max(1) as u64);
        let txn_coordinator = RefCell::new(crate::coordinator::txn::TxnCoordinator::new(shared.config.transactions));
        Rc::new(Shard {
            id,
            shared,
            coordinator,
            txn_coordinator,
            catalog: RefCell::new(catalog),
            partitions: RefCell::new(PartitionMap::default()),
            max_message_bytes: RefCell::new(HashMap::new()),
            compacted_topics: RefCell::new(Default::default()),
            pipes: PipePool::new(),
            controller_token,
            request_times: Default::default(),
            request_budget,
            roles: RefCell::new(Default::default()),
            fetchers: RefCell::new(Default::default()),
        })
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.shared.config
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }

    pub fn owner_of(&self, topic: &str, partition: i32) -> ShardId {
        owner_of(topic, partition, self.shared.shard_count())
    }

    /// The log of a partition this shard owns.
    pub fn log(&self, topic: &str, partition: i32) -> Option<Rc<PartitionLog>> {
        self.partitions.borrow().get(topic, partition).cloned()
    }

    /// Runs `work` on shard `target` and returns a receiver for its answer. The send happens
    /// now (waiting for room when the target's mailbox is full, which is the backpressure);
    /// the answer is awaited by whoever holds the receiver.
    pub async fn call<R, F>(self: &Rc<Self>, target: ShardId, work: F) -> flume::Receiver<R>
    where
        R: Send + 'static,
        F: FnOnce(&Rc<Shard>) -> LocalBoxFuture<R> + Send + 'static,
    {
        let (tx, rx) = flume::bounded(1);
        let job: Job = Box::new(move |shard: &Rc<Shard>| {
            let future = work(shard);
            Box::pin(async move {
                let _ = tx.send(future.await);
            })
        });
        if target == self.id {
            crate::io::runtime::spawn_detached(job(self));
        } else if self.shared.mailboxes[target.0 as usize].send_async(job).await.is_err() {
            // The target shard has stopped (shutdown); the receiver reports it as closed.
        }
        rx
    }

    /// Runs `work` on every shard and waits for all the answers, in shard order.
    pub async fn call_all<R, F>(self: &Rc<Self>, work: F) -> Vec<R>
    where
        R: Send + 'static,
        F: Fn(&Rc<Shard>) -> LocalBoxFuture<R> + Send + Sync + Clone + 'static,
    {
        let mut receivers = Vec::new();
        for i in 0..self.shared.shard_count() {
            let w = work.clone();
            receivers.push(self.call(ShardId(i as u16), move |s| w(s)).await);
        }
        let mut out = Vec::new();
        for rx in receivers {
            if let Ok(r) = rx.recv_async().await {
                out.push(r);
            }
        }
        out
    }
}

/// The logs a shard owns, by topic then partition: looked up by `&str` without allocating.
#[derive(Default)]
pub struct PartitionMap {
    topics: HashMap<String, HashMap<i32, Rc<PartitionLog>>>,
}

impl PartitionMap {
    pub fn get(&self, topic: &str, partition: i32) -> Option<&Rc<PartitionLog>> {
        self.topics.get(topic)?.get(&partition)
    }

    pub fn insert(&mut self, log: Rc<PartitionLog>) {
        self.topics.entry(log.topic.clone()).or_default().insert(log.partition, log);
    }

    pub fn remove(&mut self, topic: &str, partition: i32) -> Option<Rc<PartitionLog>> {
        let partitions = self.topics.get_mut(topic)?;
        let log = partitions.remove(&partition);
        if partitions.is_empty() {
            self.topics.remove(topic);
        }
        log
    }

    pub fn logs(&self) -> impl Iterator<Item = &Rc<PartitionLog>> {
        self.topics.values().flat_map(|p| p.values())
    }
}

/// The mailbox pump of a shard: runs each job's synchronous part in order and its future as a
/// task. Ends when every sender is gone.
pub async fn run_mailbox(shard: Rc<Shard>, mailbox: flume::Receiver<Job>) {
    while let Ok(job) = mailbox.recv_async().await {
        crate::io::runtime::spawn_detached(job(&shard));
    }
}

/// A bounded mailbox for one shard.
pub fn mailbox() -> (flume::Sender<Job>, flume::Receiver<Job>) {
    flume::bounded(limits::SHARD_MAILBOX_CAPACITY)
}
