//! The producer, on Kafka's model: `send` appends the record to the open batch of its
//! partition (the RecordAccumulator); a sender task takes batches that are full
//! (`batch.size`) or have waited `linger.ms`, groups them by leader into Produce requests, and
//! completes each record with its offset or its error.
//!
//! Ordering and retries follow the Java client: a partition's batches leave in order; a
//! retried batch goes back to the head of its partition's queue (in sequence order when
//! idempotent) and waits `retry.backoff.ms`; without idempotence, `max.in.flight.requests.
//! per.connection=1` is what keeps retries from reordering. With `enable.idempotence` (the
//! default, as in Kafka 3+) every batch carries the producer id, epoch and base sequence, so
//! the broker writes a retried batch once.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::cluster::Cluster;
use super::config::ClientConfig;
use super::notify::Notify;
use super::partitioner::{self, Partitioner, Sticky};
use super::records::{BatchBuilder, Header};
use super::{Error, Result};
use crate::protocol::compression::Compression;
use crate::protocol::error::ErrorCode;
use crate::protocol::messages::init_producer_id::InitProducerIdRequest;
use crate::protocol::messages::produce::{ProducePartition, ProduceRequest, ProduceTopic, ProduceTopicResponse};

/// A record to send.
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    pub topic: String,
    /// An explicit partition; otherwise the partitioner chooses.
    pub partition: Option<i32>,
    /// CreateTime in milliseconds; the send time when `None`.
    pub timestamp: Option<i64>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

impl ProducerRecord {
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> ProducerRecord {
        ProducerRecord { topic: topic.into(), value: Some(value.into()), ..Default::default() }
    }

    pub fn key(mut self, key: impl Into<Bytes>) -> ProducerRecord {
        self.key = Some(key.into());
        self
    }

    pub fn partition(mut self, partition: i32) -> ProducerRecord {
        self.partition = Some(partition);
        self
    }

    pub fn timestamp(mut self, ms: i64) -> ProducerRecord {
        self.timestamp = Some(ms);
        self
    }

    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> ProducerRecord {
        self.headers.push(Header::new(key, value));
        self
    }

    /// A record whose key and value are turned into bytes by serializers.
    pub fn serialized<K: ?Sized, V: ?Sized>(topic: &str, key: Option<&K>, value: &V, ks: &dyn Serializer<K>, vs: &dyn Serializer<V>) -> ProducerRecord {
        ProducerRecord { topic: topic.to_string(), key: key.map(|k| ks.serialize(topic, k)), value: Some(vs.serialize(topic, value)), ..Default::default() }
    }
}

/// Turns a key or value into bytes (Kafka's `Serializer`).
pub trait Serializer<T: ?Sized> {
    fn serialize(&self, topic: &str, data: &T) -> Bytes;
}

/// UTF-8 strings (Kafka's `StringSerializer`).
pub struct StringSerializer;
impl Serializer<str> for StringSerializer {
    fn serialize(&self, _: &str, data: &str) -> Bytes {
        Bytes::copy_from_slice(data.as_bytes())
    }
}

/// Big-endian 64-bit integers (Kafka's `LongSerializer`).
pub struct LongSerializer;
impl Serializer<i64> for LongSerializer {
    fn serialize(&self, _: &str, data: &i64) -> Bytes {
        Bytes::copy_from_slice(&data.to_be_bytes())
    }
}

/// Sees every record before it is partitioned and every acknowledgement (Kafka's
/// `ProducerInterceptor`).
pub trait ProducerInterceptor {
    fn on_send(&self, record: ProducerRecord) -> ProducerRecord {
        record
    }
    fn on_acknowledgement(&self, _result: &Result<RecordMetadata>) {}
}

/// Where a record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Shared with the record's batch: no allocation per record.
    pub topic: Rc<str>,
    pub partition: i32,
    /// -1 with acks=0, where the broker does not answer.
    pub offset: i64,
    /// The record's timestamp (the broker's for LogAppendTime topics).
    pub timestamp: i64,
}

/// The producer's settings, by Kafka's names.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub acks: i16,
    pub batch_size: usize,
    pub linger: Duration,
    pub buffer_memory: usize,
    pub max_block: Duration,
    pub retries: u32,
    pub retry_backoff: Duration,
    pub delivery_timeout: Duration,
    pub request_timeout: Duration,
    pub max_in_flight: usize,
    pub max_request_size: usize,
    pub idempotence: bool,
    pub compression: Compression,
    /// `transactional.id`: a transactional producer (`init_transactions` first).
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`: how long the coordinator lets a transaction stay open.
    pub transaction_timeout: Duration,
}

const KNOWN: &[&str] = &[
    "acks",
    "batch.size",
    "linger.ms",
    "buffer.memory",
    "max.block.ms",
    "retries",
    "delivery.timeout.ms",
    "max.in.flight.requests.per.connection",
    "max.request.size",
    "enable.idempotence",
    "compression.type",
    "partitioner.class",
    "key.serializer",
    "value.serializer",
    "transactional.id",
    "transaction.timeout.ms",
];

impl ProducerConfig {
    pub fn from(c: &ClientConfig) -> Result<ProducerConfig> {
        c.warn_unknown(KNOWN);
        let acks = match c.get("acks").unwrap_or("all") {
            "all" | "-1" => -1,
            "0" => 0,
            "1" => 1,
            other => return Err(Error::Config(format!("acks={other:?}: expected 0, 1 or all"))),
        };
        let compression = c
            .get("compression.type")
            .map_or(Some(Compression::None), Compression::parse)
            .ok_or_else(|| Error::Config("compression.type: expected none, gzip, snappy, lz4 or zstd".into()))?;
        let max_in_flight: usize = c.parse("max.in.flight.requests.per.connection", 5)?;
        // Kafka enables idempotence by default unless the settings conflict with it.
        let explicit = c.get("enable.idempotence").is_some();
        let mut idempotence = c.bool("enable.idempotence", true)?;
        let conflicts = acks != -1 || max_in_flight > 5;
        let transactional_id = c.get("transactional.id").filter(|id| !id.is_empty()).map(str::to_string);
        if transactional_id.is_some() && (!idempotence || conflicts) {
            return Err(Error::Config("transactional.id requires idempotence (acks=all, max.in.flight.requests.per.connection <= 5)".into()));
        }
        if idempotence && conflicts {
            if explicit {
                return Err(Error::Config("enable.idempotence=true requires acks=all and max.in.flight.requests.per.connection <= 5".into()));
            }
            idempotence = false;
        }
        let config = ProducerConfig {
            acks,
            batch_size: c.parse("batch.size", 16_384)?,
            linger: c.millis("linger.ms", 5)?,
            buffer_memory: c.parse("buffer.memory", 32 << 20)?,
            max_block: c.millis("max.block.ms", 60_000)?,
            retries: c.parse("retries", i32::MAX as u32)?,
            retry_backoff: c.millis("retry.backoff.ms", 100)?,
            delivery_timeout: c.millis("delivery.timeout.ms", 120_000)?,
            request_timeout: c.millis("request.timeout.ms", 30_000)?,
            max_in_flight: max_in_flight.max(1),
            max_request_size: c.parse("max.request.size", 1 << 20)?,
            idempotence,
            compression,
            transactional_id,
            transaction_timeout: c.millis("transaction.timeout.ms", 60_000)?,
        };
        if config.delivery_timeout < config.linger + config.request_timeout {
            return Err(Error::Config("delivery.timeout.ms must be at least linger.ms + request.timeout.ms".into()));
        }
        Ok(config)
    }
}

/// Counters of what the producer sent, for tests and benchmarks.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProducerMetrics {
    pub requests: u64,
    pub batches: u64,
    pub records: u64,
    pub bytes: u64,
    pub retries: u64,
    pub errors: u64,
}

type Callback = Box<dyn FnOnce(Result<RecordMetadata>)>;

/// The outcome of a batch, shared by the futures of its records.
#[derive(Default)]
struct Completion {
    result: RefCell<Option<Result<(i64, i64)>>>,
    wakers: RefCell<Vec<Waker>>,
}

impl Completion {
    fn complete(&self, result: Result<(i64, i64)>) {
        *self.result.borrow_mut() = Some(result);
        for w in self.wakers.borrow_mut().drain(..) {
            w.wake();
        }
    }
}

/// The future of one record's acknowledgement (Kafka's `Future<RecordMetadata>`).
pub struct DeliveryFuture {
    completion: Rc<Completion>,
    topic: Rc<str>,
    partition: i32,
    delta: i32,
    timestamp: i64,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &*self.completion.result.borrow() {
            Some(result) => Poll::Ready(metadata(result, &self.topic, self.partition, self.delta, self.timestamp)),
            None => {
                self.completion.wakers.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

fn metadata(result: &Result<(i64, i64)>, topic: &Rc<str>, partition: i32, delta: i32, timestamp: i64) -> Result<RecordMetadata> {
    let &(base, append_time) = result.as_ref().map_err(Clone::clone)?;
    let offset = if base < 0 { -1 } else { base + delta as i64 };
    let timestamp = if append_time >= 0 { append_time } else { timestamp };
    Ok(RecordMetadata { topic: topic.clone(), partition, offset, timestamp })
}

struct Batch {
    topic: Rc<str>,
    partition: i32,
    builder: BatchBuilder,
    created: Instant,
    completion: Rc<Completion>,
    /// Callbacks with the record's offset delta and timestamp.
    callbacks: Vec<(i32, i64, Callback)>,
    /// Buffer memory charged for this batch.
    charged: usize,
    attempts: u32,
    base_sequence: Option<i32>,
    /// The producer id and base sequence the encoded bytes carry (a new producer id makes
    /// them stale: the bytes are restamped, not rebuilt).
    producer_id: i64,
    encoded_sequence: i32,
    /// The encoded batch, kept for retries (a retry must send the same bytes).
    encoded: Option<Bytes>,
    retry_at: Option<Instant>,
    full: bool,
}

#[derive(Default)]
struct PartitionQueue {
    batches: VecDeque<Batch>,
    next_sequence: i32,
    /// A batch of this partition is in flight (with max.in.flight=1 the partition waits).
    in_flight: usize,
}

struct State {
    /// Each topic's name, once: the queues and batches share it.
    topics: std::collections::HashSet<Rc<str>>,
    queues: HashMap<(Rc<str>, i32), PartitionQueue>,
    sticky: Sticky,
    buffered: usize,
    /// Batches queued or in flight.
    outstanding: usize,
    producer_id: i64,
    producer_epoch: i16,
    need_producer_id: bool,
    in_flight: HashMap<i32, usize>,
    flushing: usize,
    /// Buffers of completed batches, reused for new ones (Kafka's BufferPool): without it every
    /// batch takes fresh memory, and the allocator's returning and re-faulting pages (zeroed
    /// 2 MiB at a time with transparent huge pages) cost the client more than encoding did.
    pool: Vec<Vec<u8>>,
    /// Topics whose metadata is being fetched because a leader is missing.
    metadata_pending: std::collections::HashSet<String>,
    metrics: ProducerMetrics,
}

/// A transactional producer's side of its transaction (Kafka's `TransactionManager`).
#[derive(Default)]
struct Txn {
    /// `init_transactions` succeeded.
    ready: bool,
    /// Between `begin_transaction` and its commit or abort.
    open: bool,
    /// The partitions added to the open transaction (AddPartitionsToTxn).
    partitions: std::collections::HashSet<(Rc<str>, i32)>,
    /// Why the open transaction can only be aborted (a batch of it failed).
    failed: Option<Error>,
}

struct Inner {
    cluster: Rc<Cluster>,
    txn: RefCell<Txn>,
    config: ProducerConfig,
    partitioner: Box<dyn Partitioner>,
    interceptors: Vec<Box<dyn ProducerInterceptor>>,
    state: RefCell<State>,
    /// Wakes the sender: a batch is ready, a request finished, a flush or close began.
    wake: Notify,
    /// Wakes senders waiting for buffer memory, and flushes waiting for batches to finish.
    progress: Notify,
    closed: Cell<bool>,
    sender_done: Notify,
    sender_running: Cell<bool>,
}

/// Kafka's producer. Cheap to clone; every clone is the same producer.
#[derive(Clone)]
pub struct Producer {
    inner: Rc<Inner>,
}

impl Producer {
    /// A producer with the default partitioner (or the one `partitioner.class` names).
    pub fn new(config: &ClientConfig) -> Result<Producer> {
        let partitioner = match config.get("partitioner.class") {
            None => Box::new(partitioner::DefaultPartitioner) as Box<dyn Partitioner>,
            Some(name) => partitioner::by_name(name).ok_or_else(|| Error::Config(format!("partitioner.class={name:?} is not known")))?,
        };
        Producer::with_parts(config, partitioner, Vec::new())
    }

    /// A producer with a custom partitioner and interceptors.
    pub fn with_parts(config: &ClientConfig, partitioner: Box<dyn Partitioner>, interceptors: Vec<Box<dyn ProducerInterceptor>>) -> Result<Producer> {
        let producer_config = ProducerConfig::from(config)?;
        let cluster = Cluster::new(config, "spate-producer")?;
        let inner = Rc::new(Inner {
            cluster,
            txn: RefCell::new(Txn::default()),
            partitioner,
            interceptors,
            state: RefCell::new(State {
                topics: Default::default(),
                queues: HashMap::new(),
                sticky: Sticky::default(),
                buffered: 0,
                outstanding: 0,
                producer_id: -1,
                producer_epoch: -1,
                // A transactional producer gets its id from init_transactions.
                need_producer_id: producer_config.idempotence && producer_config.transactional_id.is_none(),
                in_flight: HashMap::new(),
                flushing: 0,
                metadata_pending: Default::default(),
                pool: Vec::new(),
                metrics: ProducerMetrics::default(),
            }),
            config: producer_config,
            wake: Notify::default(),
            progress: Notify::default(),
            closed: Cell::new(false),
            sender_done: Notify::default(),
            sender_running: Cell::new(true),
        });
        compio::runtime::spawn(sender(inner.clone())).detach();
        Ok(Producer { inner })
    }

    pub fn config(&self) -> &ProducerConfig {
        &self.inner.config
    }

    pub fn metrics(&self) -> ProducerMetrics {
        self.inner.state.borrow().metrics
    }

    /// Sends a record and waits for its acknowledgement: the synchronous send.
    pub async fn send(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        self.enqueue(record).await?.await
    }

    /// Queues a record; `callback` gets its outcome once the broker answers: the
    /// asynchronous send. Waits only for buffer space and metadata (up to `max.block.ms`).
    pub async fn send_with_callback(&self, record: ProducerRecord, callback: impl FnOnce(Result<RecordMetadata>) + 'static) -> Result<()> {
        self.append(record, Some(Box::new(callback))).await.map(|_| ())
    }

    /// Queues a record and returns the future of its acknowledgement (Kafka's `send`
    /// returning a `Future`).
    pub async fn enqueue(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        self.append(record, None).await
    }

    async fn append(&self, mut record: ProducerRecord, callback: Option<Callback>) -> Result<DeliveryFuture> {
        let inner = &self.inner;
        if inner.closed.get() {
            return Err(Error::Closed);
        }
        for i in &inner.interceptors {
            record = i.on_send(record);
        }
        let deadline = Instant::now() + inner.config.max_block;
        let partitions = match inner.cluster.fresh_partition_count(&record.topic) {
            Some(n) => n,
            None => {
                let info =
                    super::cluster::retry(deadline, inner.cluster.retry_backoff, || inner.cluster.topic(&record.topic, true)).await.map_err(|e| match e {
                        Error::Timeout(_) => Error::Timeout(format!("metadata for {} not available after max.block.ms", record.topic)),
                        other => other,
                    })?;
                info.leaders.len() as i32
            }
        };
        if partitions == 0 {
            return Err(Error::Broker(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, Some(record.topic.clone())));
        }
        let timestamp = record.timestamp.unwrap_or_else(crate::io::runtime::now_ms);
        // Sized at offset and timestamp delta 0; the 16 bytes cover those two varints at their
        // longest within a batch.
        let size = BatchBuilder::record_size(0, 0, record.key.as_deref(), record.value.as_deref(), &record.headers) + 16;
        if size + crate::protocol::record_batch::HEADER_BYTES > inner.config.max_request_size || size > inner.config.buffer_memory {
            return Err(Error::Broker(ErrorCode::MESSAGE_TOO_LARGE, Some(format!("the record is {size} bytes, above max.request.size or buffer.memory"))));
        }
        // buffer.memory: wait for batches to complete, up to max.block.ms.
        while inner.state.borrow().buffered + size > inner.config.buffer_memory {
            if Instant::now() >= deadline {
                return Err(Error::Timeout("buffer.memory exhausted for max.block.ms".into()));
            }
            inner.progress.wait_until(Some(deadline)).await;
        }
        let partition = match record.partition {
            Some(p) if p < 0 || p >= partitions => {
                return Err(Error::Broker(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, Some(format!("{}-{p} does not exist", record.topic))));
            }
            Some(p) => p,
            None => match inner.partitioner.partition(&record.topic, record.key.as_deref(), record.value.as_deref(), partitions) {
                Some(p) => p.rem_euclid(partitions),
                None => inner.state.borrow_mut().sticky.partition(&record.topic, partitions),
            },
        };
        if inner.config.transactional_id.is_some() {
            // The partition joins the open transaction before its first record is queued.
            self.add_to_transaction(&record.topic, partition).await?;
        }
        let (future, ready) = inner.state.borrow_mut().add(&inner.config, record, partition, partitions, timestamp, size, callback);
        // The sender sends a ready batch, or learns of a new batch's linger deadline.
        if ready || future.delta == 0 {
            inner.wake.notify();
        }
        Ok(future)
    }

    /// Sends everything queued now and waits until it is acknowledged (or failed).
    pub async fn flush(&self) {
        let inner = &self.inner;
        inner.state.borrow_mut().flushing += 1;
        inner.wake.notify();
        while inner.state.borrow().outstanding > 0 && inner.sender_running.get() {
            inner.progress.notified().await;
        }
        inner.state.borrow_mut().flushing -= 1;
    }

    /// Flushes, then stops the sender. Sends after `close` fail with `Error::Closed`.
    pub async fn close(&self) {
        self.flush().await;
        self.inner.closed.set(true);
        self.inner.wake.notify();
        while self.inner.sender_running.get() {
            self.inner.sender_done.notified().await;
        }
    }
}

/// Transactions (KIP-98), on the Java client's model: `init_transactions` once, then per
/// transaction `begin_transaction`, sends (each partition is added to the transaction with
/// AddPartitionsToTxn before its first record is queued), optionally
/// `send_offsets_to_transaction`, and `commit_transaction` or `abort_transaction`. Requests
/// to the transaction coordinator are retried while their error is retriable (the coordinator
/// moving, CONCURRENT_TRANSACTIONS while a previous transaction's markers are written), up to
/// `max.block.ms`. A fencing error (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH) is final: the
/// producer must be closed.
impl Producer {
    fn transactional_id(&self) -> Result<&str> {
        self.inner.config.transactional_id.as_deref().ok_or_else(|| Error::Invalid("not a transactional producer (no transactional.id)".into()))
    }

    /// Sends a request built by `request` to the transaction coordinator, found again on each
    /// attempt, until it succeeds or fails for good; `error` picks the answer's error code.
    async fn to_coordinator<R: crate::protocol::wire::Request>(
        &self,
        key: &str,
        key_type: i8,
        request: impl Fn() -> R,
        error: impl Fn(&R::Response) -> ErrorCode,
    ) -> Result<R::Response>
    where
        R::Response: crate::protocol::wire::Wire,
    {
        let inner = &self.inner;
        let deadline = Instant::now() + inner.config.max_block;
        super::cluster::retry(deadline, inner.cluster.retry_backoff, || async {
            let conn = inner.cluster.coordinator_of(key, key_type).await?;
            let answer = conn.send(&request()).await?;
            super::check(error(&answer))?;
            Ok(answer)
        })
        .await
    }

    fn ids(&self) -> (i64, i16) {
        let s = self.inner.state.borrow();
        (s.producer_id, s.producer_epoch)
    }

    /// Gets the producer id and epoch for `transactional.id` (fencing any older producer with
    /// it, whose open transaction the coordinator aborts).
    pub async fn init_transactions(&self) -> Result<()> {
        use crate::protocol::messages::init_producer_id::InitProducerIdResponse;
        let id = self.transactional_id()?.to_string();
        let timeout_ms = self.inner.config.transaction_timeout.as_millis().min(i32::MAX as u128) as i32;
        let answer = self
            .to_coordinator(
                &id,
                1,
                || InitProducerIdRequest { transactional_id: Some(id.clone()), transaction_timeout_ms: timeout_ms, ..Default::default() },
                |r: &InitProducerIdResponse| r.error,
            )
            .await?;
        let mut state = self.inner.state.borrow_mut();
        state.producer_id = answer.producer_id;
        state.producer_epoch = answer.producer_epoch;
        state.need_producer_id = false;
        for q in state.queues.values_mut() {
            q.next_sequence = 0;
        }
        *self.inner.txn.borrow_mut() = Txn { ready: true, ..Txn::default() };
        Ok(())
    }

    pub fn begin_transaction(&self) -> Result<()> {
        self.transactional_id()?;
        let mut txn = self.inner.txn.borrow_mut();
        if !txn.ready {
            return Err(Error::Invalid("init_transactions must come first".into()));
        }
        if txn.open {
            return Err(Error::Invalid("a transaction is open already".into()));
        }
        txn.open = true;
        Ok(())
    }

    async fn add_to_transaction(&self, topic: &str, partition: i32) -> Result<()> {
        use crate::protocol::messages::add_partitions_to_txn::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, AddPartitionsToTxnTopic};
        {
            let txn = self.inner.txn.borrow();
            if !txn.open {
                return Err(Error::Invalid("a transactional producer sends inside a transaction (begin_transaction)".into()));
            }
            if let Some(e) = &txn.failed {
                return Err(e.clone());
            }
            if txn.partitions.contains(&(Rc::from(topic), partition)) {
                return Ok(());
            }
        }
        let id = self.transactional_id()?.to_string();
        let (producer_id, epoch) = self.ids();
        self.to_coordinator(
            &id,
            1,
            || AddPartitionsToTxnRequest {
                v3_and_below_transactional_id: id.clone(),
                v3_and_below_producer_id: producer_id,
                v3_and_below_producer_epoch: epoch,
                v3_and_below_topics: vec![AddPartitionsToTxnTopic { name: topic.to_string(), partitions: vec![partition] }],
                ..Default::default()
            },
            |r: &AddPartitionsToTxnResponse| {
                r.results_by_topic_v3_and_below.iter().flat_map(|t| &t.results_by_partition).map(|p| p.error).find(|e| !e.is_ok()).unwrap_or(ErrorCode::NONE)
            },
        )
        .await?;
        self.inner.txn.borrow_mut().partitions.insert((Rc::from(topic), partition));
        Ok(())
    }

    /// Commits consumer offsets in the open transaction (`offsets`: topic, partition, next
    /// offset to read) for `group_id`, as the member `member_id` of `generation` (a consumer's
    /// `group_metadata()`; -1 and "" outside a group): they count only if the transaction
    /// commits.
    pub async fn send_offsets_to_transaction(&self, offsets: &[(String, i32, i64)], group_id: &str, generation: i32, member_id: &str) -> Result<()> {
        use crate::protocol::messages::add_offsets_to_txn::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
        use crate::protocol::messages::txn_offset_commit::{
            TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic, TxnOffsetCommitResponse,
        };
        if !self.inner.txn.borrow().open {
            return Err(Error::Invalid("send_offsets_to_transaction outside a transaction".into()));
        }
        let id = self.transactional_id()?.to_string();
        let (producer_id, epoch) = self.ids();
        self.to_coordinator(
            &id,
            1,
            || AddOffsetsToTxnRequest { transactional_id: id.clone(), producer_id, producer_epoch: epoch, group_id: group_id.to_string() },
            |r: &AddOffsetsToTxnResponse| r.error,
        )
        .await?;
        let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
        for (topic, partition, offset) in offsets {
            let p = TxnOffsetCommitRequestPartition {
                partition_index: *partition,
                committed_offset: *offset,
                committed_leader_epoch: -1,
                committed_metadata: Some(String::new()),
            };
            match topics.iter_mut().find(|t| t.name == *topic) {
                Some(t) => t.partitions.push(p),
                None => topics.push(TxnOffsetCommitRequestTopic { name: topic.clone(), partitions: vec![p] }),
            }
        }
        self.to_coordinator(
            group_id,
            0,
            || TxnOffsetCommitRequest {
                transactional_id: id.clone(),
                group_id: group_id.to_string(),
                producer_id,
                producer_epoch: epoch,
                generation_id: generation,
                member_id: member_id.to_string(),
                group_instance_id: None,
                topics: topics.clone(),
            },
            |r: &TxnOffsetCommitResponse| r.topics.iter().flat_map(|t| &t.partitions).map(|p| p.error).find(|e| !e.is_ok()).unwrap_or(ErrorCode::NONE),
        )
        .await?;
        Ok(())
    }

    /// Sends what is queued, then commits the transaction. Fails (and the transaction must be
    /// aborted) if any of its records failed.
    pub async fn commit_transaction(&self) -> Result<()> {
        self.flush().await;
        if let Some(e) = self.inner.txn.borrow().failed.clone() {
            return Err(e);
        }
        self.end_transaction(true).await
    }

    /// Aborts the transaction: its records (sent ones included) are never read by
    /// read_committed consumers.
    pub async fn abort_transaction(&self) -> Result<()> {
        self.flush().await;
        let failed = self.inner.txn.borrow().failed.is_some();
        self.end_transaction(false).await?;
        if failed {
            // A lost batch left a gap in a partition's sequence: a new epoch starts every
            // sequence over (KIP-360), as the Java client bumps it.
            self.init_transactions().await?;
        }
        Ok(())
    }

    async fn end_transaction(&self, commit: bool) -> Result<()> {
        use crate::protocol::messages::end_txn::{EndTxnRequest, EndTxnResponse};
        let id = self.transactional_id()?.to_string();
        if !self.inner.txn.borrow().open {
            return Err(Error::Invalid("no transaction is open".into()));
        }
        let (producer_id, epoch) = self.ids();
        // A transaction that added no partition has nothing to end at the coordinator.
        if !self.inner.txn.borrow().partitions.is_empty() {
            self.to_coordinator(
                &id,
                1,
                || EndTxnRequest { transactional_id: id.clone(), producer_id, producer_epoch: epoch, committed: commit },
                |r: &EndTxnResponse| r.error,
            )
            .await?;
        }
        let mut txn = self.inner.txn.borrow_mut();
        txn.open = false;
        txn.partitions.clear();
        txn.failed = None;
        Ok(())
    }
}

/// A buffer for a new batch whose first record takes `size` bytes.
fn pooled_buffer(pool: &mut Vec<Vec<u8>>, config: &ProducerConfig, size: usize) -> Vec<u8> {
    let needed = crate::protocol::record_batch::HEADER_BYTES + size;
    if needed <= config.batch_size {
        if let Some(buf) = pool.pop() {
            return buf;
        }
        return Vec::with_capacity(config.batch_size);
    }
    Vec::with_capacity(needed)
}

impl State {
    /// Keeps a completed batch's buffer for reuse, if it has the pool's size and the pool
    /// holds less than `buffer.memory`.
    fn recycle(&mut self, config: &ProducerConfig, buf: Vec<u8>) {
        let cap = buf.capacity();
        if cap >= config.batch_size && cap <= 2 * config.batch_size && (self.pool.len() + 1) * cap <= config.buffer_memory {
            self.pool.push(buf);
        }
    }

    /// Appends a record to its partition's open batch (opening one if needed). Returns the
    /// record's future and whether a batch became ready.
    fn add(
        &mut self,
        config: &ProducerConfig,
        record: ProducerRecord,
        partition: i32,
        partitions: i32,
        timestamp: i64,
        size: usize,
        callback: Option<Callback>,
    ) -> (DeliveryFuture, bool) {
        let topic = match self.topics.get(record.topic.as_str()) {
            Some(t) => t.clone(),
            None => {
                let t: Rc<str> = Rc::from(record.topic.as_str());
                self.topics.insert(t.clone());
                t
            }
        };
        let queue = self.queues.entry((topic.clone(), partition)).or_default();
        let fits =
            queue.batches.back().is_some_and(|b| !b.full && b.encoded.is_none() && b.builder.size() + size <= config.batch_size.min(config.max_request_size));
        let mut ready = false;
        if !fits {
            if let Some(last) = queue.batches.back_mut() {
                last.full = true;
                ready = true;
            }
            queue.batches.push_back(Batch {
                topic: topic.clone(),
                partition,
                builder: BatchBuilder::with_buffer(pooled_buffer(&mut self.pool, config, size), timestamp),
                created: Instant::now(),
                completion: Rc::new(Completion::default()),
                callbacks: Vec::new(),
                charged: 0,
                attempts: 0,
                base_sequence: None,
                producer_id: -1,
                encoded_sequence: -1,
                encoded: None,
                retry_at: None,
                full: false,
            });
            self.outstanding += 1;
        }
        let batch = queue.batches.back_mut().expect("just ensured");
        let delta = batch.builder.append(timestamp, record.key.as_deref(), record.value.as_deref(), &record.headers);
        batch.charged += size;
        self.buffered += size;
        if batch.builder.size() >= config.batch_size {
            batch.full = true;
            ready = true;
        }
        if let Some(cb) = callback {
            batch.callbacks.push((delta, timestamp, cb));
        }
        let future = DeliveryFuture { completion: batch.completion.clone(), topic: topic.clone(), partition, delta, timestamp };
        // Keyless records stick to one partition until a batch of it is complete (KIP-480):
        // `ready` covers both the batch this record filled and the one it did not fit in.
        if ready && self.sticky.is_current(&record.topic, partition) {
            self.sticky.next(&record.topic, partitions, partition);
        }
        self.metrics.records += 1;
        (future, ready)
    }
}

/// The sender task: drains ready batches into Produce requests until the producer closes.
async fn sender(inner: Rc<Inner>) {
    loop {
        if inner.state.borrow().need_producer_id {
            if let Err(e) = init_producer_id(&inner).await {
                tracing::warn!(error = %e, "InitProducerId failed; retrying");
                // Batches still expire while there is no producer id to send them with.
                let expired = expire(&inner, Instant::now()).0;
                finish_expired(&inner, expired);
                compio::time::sleep(inner.config.retry_backoff).await;
                if inner.closed.get() && inner.state.borrow().outstanding == 0 {
                    break;
                }
                continue;
            }
        }
        let (requests, next_wake, need_metadata) = drain(&inner);
        for topic in need_metadata {
            if !inner.state.borrow_mut().metadata_pending.insert(topic.clone()) {
                continue;
            }
            let inner = inner.clone();
            compio::runtime::spawn(async move {
                let found = inner.cluster.topic(&topic, true).await.is_ok_and(|t| t.leaders.iter().all(|l| *l >= 0));
                if !found {
                    compio::time::sleep(inner.cluster.retry_backoff).await;
                }
                inner.state.borrow_mut().metadata_pending.remove(&topic);
                inner.wake.notify();
            })
            .detach();
        }
        for (node, batches) in requests {
            *inner.state.borrow_mut().in_flight.entry(node).or_default() += 1;
            compio::runtime::spawn(send_request(inner.clone(), node, batches)).detach();
        }
        if inner.closed.get() && inner.state.borrow().outstanding == 0 {
            break;
        }
        inner.wake.wait_until(next_wake).await;
    }
    inner.sender_running.set(false);
    inner.sender_done.notify();
    inner.progress.notify();
}

async fn init_producer_id(inner: &Inner) -> Result<()> {
    let conn = inner.cluster.any().await?;
    let answer = conn.send(&InitProducerIdRequest { transaction_timeout_ms: 60_000, ..Default::default() }).await?;
    super::check(answer.error)?;
    let mut state = inner.state.borrow_mut();
    state.producer_id = answer.producer_id;
    state.producer_epoch = answer.producer_epoch;
    state.need_producer_id = false;
    // A new producer id starts every partition's sequence again; queued batches that were
    // sent under the old id get new sequences (their bytes are restamped when sent).
    for q in state.queues.values_mut() {
        q.next_sequence = 0;
        for b in q.batches.iter_mut() {
            b.base_sequence = None;
        }
    }
    Ok(())
}

type Requests = Vec<(i32, Vec<Batch>)>;

/// Takes the batches that can be sent now, grouped by leader; returns them, when the sender
/// should look again, and the topics whose leaders are unknown.
fn drain(inner: &Inner) -> (Requests, Option<Instant>, Vec<String>) {
    let config = &inner.config;
    let now = Instant::now();
    let (expired, expiry_wake) = expire(inner, now);
    finish_expired(inner, expired);
    let mut state = inner.state.borrow_mut();
    let state = &mut *state;
    let flushing = state.flushing > 0 || inner.closed.get();
    let mut next_wake: Option<Instant> = expiry_wake;
    let mut wake_at = |t: Instant| next_wake = Some(next_wake.map_or(t, |w: Instant| w.min(t)));
    let mut by_node: HashMap<i32, (Vec<Batch>, usize)> = HashMap::new();
    let mut need_metadata = Vec::new();
    for ((topic, partition), queue) in state.queues.iter_mut() {
        let Some(front) = queue.batches.front() else { continue };
        if let Some(at) = front.retry_at {
            if at > now {
                wake_at(at);
                continue;
            }
        }
        let ready = front.full || queue.batches.len() > 1 || flushing || front.created + config.linger <= now || front.retry_at.is_some();
        if !ready {
            wake_at(front.created + config.linger);
            continue;
        }
        // Without idempotence, max.in.flight=1 keeps a partition's batches in order on retry.
        if queue.in_flight > 0 && (config.max_in_flight == 1 || front.retry_at.is_some()) {
            continue;
        }
        let leader = inner.cluster.cached_topic(topic).and_then(|t| t.leaders.get(*partition as usize).copied()).unwrap_or(-1);
        if leader < 0 {
            if !need_metadata.iter().any(|t: &String| **t == **topic) {
                need_metadata.push(topic.to_string());
            }
            wake_at(now + config.retry_backoff);
            continue;
        }
        if state.in_flight.get(&leader).copied().unwrap_or(0) >= config.max_in_flight {
            continue;
        }
        let entry = by_node.entry(leader).or_default();
        let size = front.builder.size();
        if !entry.0.is_empty() && entry.1 + size > config.max_request_size {
            wake_at(now);
            continue;
        }
        let mut batch = queue.batches.pop_front().expect("front exists");
        if config.idempotence && batch.base_sequence.is_none() {
            batch.base_sequence = Some(queue.next_sequence);
            queue.next_sequence = queue.next_sequence.wrapping_add(batch.builder.count()) & i32::MAX;
        }
        queue.in_flight += 1;
        entry.1 += size;
        entry.0.push(batch);
    }
    (by_node.into_iter().map(|(node, (batches, _))| (node, batches)).collect(), next_wake, need_metadata)
}

/// Takes out the batches that waited past `delivery.timeout.ms` (from the head of each
/// partition's queue, so a partition's order holds); returns them and when the next one
/// expires.
fn expire(inner: &Inner, now: Instant) -> (Vec<Batch>, Option<Instant>) {
    let timeout = inner.config.delivery_timeout;
    let mut state = inner.state.borrow_mut();
    let state = &mut *state;
    let mut expired = Vec::new();
    let mut next: Option<Instant> = None;
    for queue in state.queues.values_mut() {
        while queue.batches.front().is_some_and(|b| b.created + timeout <= now) {
            let batch = queue.batches.pop_front().expect("front exists");
            if inner.config.transactional_id.is_some() {
                inner.txn.borrow_mut().failed.get_or_insert_with(|| Error::Timeout("a batch of the transaction expired".into()));
            } else if batch.base_sequence.is_some() && inner.config.idempotence {
                // A sequenced batch given up leaves a gap: start over with a new producer id.
                state.need_producer_id = true;
            }
            expired.push(batch);
        }
        if let Some(front) = queue.batches.front() {
            let at = front.created + timeout;
            next = Some(next.map_or(at, |n| n.min(at)));
        }
    }
    for batch in &expired {
        state.outstanding -= 1;
        state.buffered -= batch.charged;
        state.metrics.errors += 1;
    }
    (expired, next)
}

/// Fails expired batches; called with no borrow of the state held, since callbacks may call
/// back into the producer.
fn finish_expired(inner: &Inner, expired: Vec<Batch>) {
    for batch in expired {
        finish(inner, batch, Err(Error::Timeout("delivery.timeout.ms expired before the batch was acknowledged".into())));
    }
}

/// Completes a batch: its future, then its callbacks, then the interceptors.
fn finish(inner: &Inner, mut batch: Batch, result: Result<(i64, i64)>) {
    // The sent bytes are this batch's own once the socket is done with them.
    let buf = match batch.encoded.take().map(Bytes::try_into_mut) {
        Some(Ok(bytes)) => Some(Vec::from(bytes)),
        _ => batch.builder.take_buffer(),
    };
    if let Some(buf) = buf {
        inner.state.borrow_mut().recycle(&inner.config, buf);
    }
    for (delta, timestamp, cb) in batch.callbacks {
        let md = metadata(&result, &batch.topic, batch.partition, delta, timestamp);
        for i in &inner.interceptors {
            i.on_acknowledgement(&md);
        }
        cb(md);
    }
    batch.completion.complete(result);
    inner.progress.notify();
}

async fn send_request(inner: Rc<Inner>, node: i32, mut batches: Vec<Batch>) {
    let config = &inner.config;
    let (pid, epoch) = {
        let s = inner.state.borrow();
        (s.producer_id, s.producer_epoch)
    };
    let mut topics: Vec<ProduceTopic> = Vec::new();
    let mut encode_error = None;
    for b in batches.iter_mut() {
        let (id, ep, seq) = match b.base_sequence {
            Some(seq) => (pid, epoch, seq),
            None => (-1, -1, -1),
        };
        match &b.encoded {
            None => match b.builder.build_with(config.compression, id, ep, seq, config.transactional_id.is_some()) {
                Ok(bytes) => b.encoded = Some(bytes),
                Err(e) => encode_error = Some(e),
            },
            // Sent before under another producer id or sequence: the same records, restamped.
            Some(bytes) if b.producer_id != id || b.encoded_sequence != seq => b.encoded = Some(super::records::restamp_producer(bytes, id, ep, seq)),
            Some(_) => {}
        }
        b.producer_id = id;
        b.encoded_sequence = seq;
        let Some(bytes) = b.encoded.clone() else { continue };
        let partition = ProducePartition { index: b.partition, records: Some(bytes) };
        match topics.iter_mut().find(|t| *t.name == *b.topic) {
            Some(t) => t.partitions.push(partition),
            None => topics.push(ProduceTopic { name: b.topic.to_string(), partitions: vec![partition] }),
        }
    }
    let bytes: usize = batches.iter().filter_map(|b| b.encoded.as_ref()).map(Bytes::len).sum();
    let request = ProduceRequest {
        acks: config.acks,
        timeout_ms: config.request_timeout.as_millis().min(i32::MAX as u128) as i32,
        topics,
        transactional_id: config.transactional_id.clone(),
    };
    let outcome: Result<Vec<ProduceTopicResponse>> = match encode_error {
        Some(e) => Err(e),
        None => match inner.cluster.node(node).await {
            Err(e) => Err(e),
            Ok(conn) if config.acks == 0 => conn.send_only(&request).map(|_| Vec::new()),
            Ok(conn) => conn.send(&request).await.map(|r| r.topics),
        },
    };
    {
        let mut s = inner.state.borrow_mut();
        s.metrics.requests += 1;
        s.metrics.batches += batches.len() as u64;
        s.metrics.bytes += bytes as u64;
        if let Some(n) = s.in_flight.get_mut(&node) {
            *n -= 1;
        }
    }
    for batch in batches {
        let result = match &outcome {
            Err(e) => Err(e.clone()),
            Ok(_) if config.acks == 0 => Ok((-1, -1)),
            Ok(topics) => {
                let found = topics.iter().find(|t| *t.name == *batch.topic).and_then(|t| t.partitions.iter().find(|p| p.index == batch.partition));
                match found {
                    None => Err(Error::Protocol(format!("no answer for {}-{}", batch.topic, batch.partition))),
                    Some(p) if p.error.is_ok() || p.error == ErrorCode::DUPLICATE_SEQUENCE_NUMBER => Ok((p.base_offset, p.log_append_time_ms)),
                    Some(p) => Err(Error::Broker(p.error, None)),
                }
            }
        };
        complete_or_retry(&inner, batch, result);
    }
    inner.wake.notify();
}

fn complete_or_retry(inner: &Inner, mut batch: Batch, result: Result<(i64, i64)>) {
    let config = &inner.config;
    let mut state = inner.state.borrow_mut();
    let key = (batch.topic.clone(), batch.partition);
    if let Some(q) = state.queues.get_mut(&key) {
        q.in_flight -= 1;
    }
    if let Err(e) = &result {
        let in_time = batch.created + config.delivery_timeout > Instant::now() + config.retry_backoff;
        if e.is_retriable() && batch.attempts < config.retries && in_time {
            if matches!(e.code(), Some(ErrorCode::NOT_LEADER_OR_FOLLOWER | ErrorCode::UNKNOWN_TOPIC_OR_PARTITION | ErrorCode::LEADER_NOT_AVAILABLE))
                || matches!(e, Error::Network(_))
            {
                inner.cluster.invalidate(&batch.topic);
            }
            batch.attempts += 1;
            batch.retry_at = Some(Instant::now() + config.retry_backoff);
            state.metrics.retries += 1;
            if batch.base_sequence.is_some() && batch.producer_id != state.producer_id {
                // Sequenced under a producer id that has since been replaced: sequence again.
                batch.base_sequence = None;
            }
            let queue = state.queues.get_mut(&key).expect("the queue of an in-flight batch");
            // Back towards the head of the queue: after the batches retried before it (in
            // sequence order when idempotent), before those never sent.
            let at = queue.batches.iter().position(|b| match (b.base_sequence, batch.base_sequence) {
                (Some(other), Some(mine)) => other > mine,
                _ => b.attempts == 0,
            });
            queue.batches.insert(at.unwrap_or(queue.batches.len()), batch);
            return;
        }
        if config.transactional_id.is_some() {
            // The transaction lost a batch: it can only be aborted now.
            inner.txn.borrow_mut().failed.get_or_insert_with(|| e.clone());
        } else if config.idempotence && batch.base_sequence.is_some() {
            // The partition's sequence has a gap now: start over with a new producer id.
            state.need_producer_id = true;
        }
        state.metrics.errors += 1;
    }
    state.outstanding -= 1;
    state.buffered -= batch.charged;
    drop(state);
    finish(inner, batch, result);
}
