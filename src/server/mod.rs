//! Starting and stopping the broker: one thread per shard, each pinned to a core and running
//! its own io_uring runtime, its own listener (SO_REUSEPORT), its mailbox pump and its
//! periodic log tasks.
//!
//! Startup: the catalog is loaded and orphan folders removed, every shard opens (and if need
//! be recovers) the partitions it owns, and only when all are ready do the listeners open.
//! Shutdown (SIGINT or SIGTERM): every shard stops accepting, flushes and closes its logs; when
//! all closed cleanly, `.kafka_cleanshutdown` lets the next start skip recovery.

use std::io;
use std::rc::Rc;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use crate::broker::{apply_catalog, remove_orphans};
use crate::config::BrokerConfig;
use crate::io::runtime::{now_ms, spawn_detached};
use crate::shard::{self, Catalog, Shard, ShardId, Shared};
use crate::storage::{checkpoint, LogCheckpoint, CLEAN_SHUTDOWN_FILE, RECOVERY_POINT_FILE};
use std::collections::HashMap;

pub mod cluster;

/// A running broker: its shard threads, the checkpointer, and the handles that stop them.
pub struct Broker {
    threads: Vec<std::thread::JoinHandle<io::Result<Vec<LogCheckpoint>>>>,
    stops: Vec<flume::Sender<()>>,
    checkpointer: Option<std::thread::JoinHandle<()>>,
    log_dir: std::path::PathBuf,
    shared: Arc<Shared>,
    /// In a cluster: the metadata thread, and the controller thread on a voter.
    member: Option<cluster::MetadataThread>,
    controller: Option<cluster::ControllerThread>,
}

impl Broker {
    /// Starts every shard and returns once all listeners accept connections.
    pub fn start(mut config: BrokerConfig) -> io::Result<Broker> {
        let log_dir = config.log_dirs.clone();
        crate::io::fs::create_dir_all(&log_dir)?;
        let cluster_id = crate::storage::meta::prepare_log_dir(&log_dir, config.broker_id, config.cluster.is_some())?;
        config.cluster_id = cluster_id;
        let marker = log_dir.join(CLEAN_SHUTDOWN_FILE);
        let clean_shutdown = crate::io::fs::exists(&marker);
        // From here until a clean stop, a crash must lead to recovery.
        crate::io::fs::remove_file_if_exists(&marker)?;
        crate::io::fs::sync_dir(&log_dir)?;
        // A cluster's catalog comes from its metadata log (through the controller thread on a
        // voter, and the metadata thread on every broker); a single node keeps its own.
        let (controller, member, catalog) = if config.cluster.is_some() {
            let controller = match config.cluster.as_ref().is_some_and(|c| c.roles.controller) {
                true => Some(cluster::start_controller(&config)?),
                false => None,
            };
            let (member, image) = cluster::start_member(&config)?;
            (controller, Some(member), cluster::catalog_of(&image))
        } else {
            let mut catalog = Catalog::load(&log_dir)?;
            ensure_offsets_topic(&mut catalog, &config);
            catalog.save(&log_dir)?;
            (None, None, catalog)
        };
        remove_orphans(&catalog, &log_dir, config.broker_id)?;
        let catalog = Arc::new(catalog);

        let shard_count = config.shards;
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..shard_count).map(|_| shard::mailbox()).unzip();
        let (checkpoint_requests, checkpoint_asked) = flume::bounded(1);
        let by_partition = |file: &str| -> HashMap<(String, i32), i64> {
            checkpoint::read(&log_dir.join(file)).into_iter().map(|(topic, partition, offset)| ((topic, partition), offset)).collect()
        };
        let recovery_points = by_partition(RECOVERY_POINT_FILE);
        let mut shared = Shared::new(config, senders, clean_shutdown, recovery_points, checkpoint_requests);
        let unshared = Arc::get_mut(&mut shared).expect("not shared yet");
        unshared.high_watermarks = by_partition(crate::storage::REPLICATION_OFFSET_FILE);
        unshared.log_starts = by_partition(crate::storage::LOG_START_OFFSET_FILE);
        let ready = Arc::new(Barrier::new(shard_count + 1));
        let mut threads = Vec::new();
        let mut stops = Vec::new();
        for (i, mailbox) in receivers.into_iter().enumerate() {
            let (stop_tx, stop_rx) = flume::bounded(1);
            stops.push(stop_tx);
            let (shared, catalog, ready) = (shared.clone(), catalog.clone(), ready.clone());
            let thread = std::thread::Builder::new()
                .name(format!("spate-shard-{i}"))
                .spawn(move || run_shard(ShardId(i as u16), shared, catalog, mailbox, stop_rx, ready))?;
            threads.push(thread);
        }
        ready.wait();
        // A shard that failed to start has passed the barrier too; it is finished already.
        if let Some(i) = threads.iter().position(|t| t.is_finished()) {
            let broker = Broker { threads, stops, checkpointer: None, log_dir, shared, member, controller };
            let error = io::Error::other(format!("shard {i} failed to start"));
            broker.stop_without_marker();
            return Err(error);
        }
        let checkpointer = {
            let shared = shared.clone();
            std::thread::Builder::new().name("spate-checkpoint".into()).spawn(move || run_checkpointer(&shared, &checkpoint_asked))?
        };
        if let Some(member) = &member {
            member.shards_started(shared.clone());
        }
        Ok(Broker { threads, stops, checkpointer: Some(checkpointer), log_dir, shared, member, controller })
    }

    pub fn metrics(&self) -> crate::metrics::MetricsSnapshot {
        self.shared.metrics.snapshot()
    }

    /// Every shard's request times since the last call, merged per API: each shard hands over
    /// its own histograms through its mailbox (a shard that does not answer within 5 s is left
    /// out of this report).
    pub fn take_request_times(&self) -> Vec<crate::metrics::RequestTimes> {
        let (tx, rx) = flume::unbounded();
        for mailbox in &self.shared.mailboxes {
            let tx = tx.clone();
            let job: crate::shard::Job = Box::new(move |shard: &std::rc::Rc<crate::shard::Shard>| {
                let _ = tx.send(shard.request_times.take());
                Box::pin(std::future::ready(()))
            });
            let _ = mailbox.send(job);
        }
        drop(tx);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let taken = (0..self.shared.mailboxes.len()).map_while(|_| rx.recv_deadline(deadline).ok()).collect();
        crate::metrics::merge_request_times(taken)
    }

    fn stop_without_marker(mut self) {
        self.stop_checkpointer();
        for s in &self.stops {
            let _ = s.try_send(());
        }
        for t in self.threads {
            let _ = t.join();
        }
        if let Some(c) = self.controller.take() {
            c.stop();
        }
    }

    /// The periodic checkpoint stops before the shards do: the last one is written from
    /// what the closed logs report.
    fn stop_checkpointer(&mut self) {
        if let Some(thread) = self.checkpointer.take() {
            let _ = self.shared.checkpoint_requests.send(true);
            let _ = thread.join();
        }
    }

    /// Stops every shard, closes every log, writes the log dir's checkpoints, and records a
    /// clean shutdown if all went well.
    pub fn stop(mut self) -> io::Result<()> {
        // In a cluster, leadership moves away first (controlled.shutdown.enable), so that
        // producers find the new leaders before this broker stops answering.
        if let Some(member) = &self.member {
            if self.shared.config.cluster.as_ref().is_some_and(|c| c.controlled_shutdown_enable) {
                let moved = member.controlled_shutdown();
                tracing::info!(moved, "controlled shutdown");
            }
        }
        self.stop_checkpointer();
        for s in &self.stops {
            let _ = s.try_send(());
        }
        let mut clean = true;
        let mut logs = Vec::new();
        for t in self.threads {
            match t.join() {
                Ok(Ok(closed)) => logs.extend(closed),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "a shard stopped with an error");
                    clean = false;
                }
                Err(_) => clean = false,
            }
        }
        if clean {
            crate::storage::write_checkpoints(&self.log_dir, &logs)?;
            crate::io::fs::write_atomic(&self.log_dir.join(CLEAN_SHUTDOWN_FILE), b"", None)?;
            tracing::info!("clean shutdown recorded");
        }
        if let Some(c) = self.controller.take() {
            c.stop();
        }
        Ok(())
    }
}

/// Writes the log dir's checkpoint files every `log.flush.offset.checkpoint.interval.ms`, and
/// when a shard asks (after a topic deletion), until told to stop. Each write asks every shard
/// for its logs' figures through its mailbox; a write that some shard does not answer within
/// 10 s is skipped (the old files stay, and recovery from them is always safe: it scans more).
fn run_checkpointer(shared: &Arc<Shared>, asked: &flume::Receiver<bool>) {
    let every = Duration::from_millis(shared.config.log_flush_offset_checkpoint_interval_ms.max(10));
    let mut next = std::time::Instant::now() + every;
    loop {
        match asked.recv_deadline(next) {
            // `true` is the broker stopping; `false` a shard asking.
            Ok(true) | Err(flume::RecvTimeoutError::Disconnected) => return,
            Ok(false) => {}
            Err(flume::RecvTimeoutError::Timeout) => next += every,
        }
        let Some(logs) = gather_checkpoints(shared) else {
            tracing::warn!("a shard did not report its logs in time; the log dir's checkpoints were not written");
            continue;
        };
        if let Err(e) = crate::storage::write_checkpoints(&shared.config.log_dirs, &logs) {
            tracing::error!(error = %e, "could not write the log dir's checkpoints");
        }
    }
}

fn gather_checkpoints(shared: &Shared) -> Option<Vec<LogCheckpoint>> {
    let (tx, rx) = flume::unbounded();
    for mailbox in &shared.mailboxes {
        let tx = tx.clone();
        let job: shard::Job = Box::new(move |shard: &Rc<Shard>| {
            let logs: Vec<LogCheckpoint> = shard.partitions.borrow().logs().filter(|l| !l.is_deleted()).map(|l| l.checkpoint()).collect();
            let _ = tx.send(logs);
            Box::pin(std::future::ready(()))
        });
        mailbox.send_timeout(job, Duration::from_secs(10)).ok()?;
    }
    drop(tx);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut all = Vec::new();
    for _ in 0..shared.mailboxes.len() {
        all.extend(rx.recv_deadline(deadline).ok()?);
    }
    Some(all)
}

fn run_shard(
    id: ShardId,
    shared: Arc<Shared>,
    catalog: Arc<Catalog>,
    mailbox: flume::Receiver<shard::Job>,
    stop: flume::Receiver<()>,
    ready: Arc<Barrier>,
) -> io::Result<Vec<LogCheckpoint>> {
    let runtime = match crate::io::runtime::build(id.0 as usize) {
        Ok(r) => r,
        Err(e) => {
            ready.wait();
            return Err(e);
        }
    };
    runtime.block_on(async move {
        let shard = Shard::new(id, shared.clone(), Arc::new(Catalog::default()));
        apply_catalog(&shard, catalog, true).await;
        load_groups(&shard);
        let listener = crate::io::net::bind_listener(shared.config.listener);
        ready.wait();
        let listener = listener?;
        spawn_detached(shard::run_mailbox(shard.clone(), mailbox));
        spawn_periodic_tasks(&shard);
        if id.0 == 0 {
            tracing::info!(address = %shared.config.listener, shards = shared.shard_count(), log_dir = %shared.config.log_dirs.display(), "spate broker started");
        }
        loop {
            let accept = std::pin::pin!(listener.accept());
            let stopped = std::pin::pin!(stop.recv_async());
            match futures_util::future::select(accept, stopped).await {
                futures_util::future::Either::Left((Ok((stream, peer)), _)) => {
                    spawn_detached(crate::net::connection::serve::<crate::broker::Broker>(shard.clone(), stream, peer));
                }
                futures_util::future::Either::Left((Err(e), _)) => {
                    tracing::warn!(error = %e, "accept failed");
                    crate::io::runtime::sleep(Duration::from_millis(10)).await;
                }
                futures_util::future::Either::Right(_) => break,
            }
        }
        crate::io::net::stop_listening(&listener);
        close_logs(&shard)
    })
}

/// `__consumer_offsets` exists from the first start on, compacted, as Kafka creates it.
fn ensure_offsets_topic(catalog: &mut Catalog, config: &BrokerConfig) {
    use crate::coordinator::OFFSETS_TOPIC;
    if catalog.topic(OFFSETS_TOPIC).is_none() {
        let configs = [("cleanup.policy", "compact".to_string()), ("segment.bytes", config.offsets_topic_segment_bytes.to_string())]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        catalog.topics.insert(
            OFFSETS_TOPIC.to_string(),
            crate::shard::TopicMeta {
                name: OFFSETS_TOPIC.to_string(),
                id: crate::shard::catalog::new_topic_id(),
                partitions: config.offsets_topic_num_partitions,
                configs,
                replication: Vec::new(),
            },
        );
    }
}

/// Rebuilds this shard's groups and committed offsets from the `__consumer_offsets` partitions
/// it owns, and its transactional ids from its `__transaction_state` partitions (in a cluster,
/// those it leads; a partition it comes to lead later is loaded then).
fn load_groups(shard: &Rc<Shard>) {
    let me = shard.config().broker_id;
    let catalog = shard.catalog();
    let logs: Vec<_> = shard
        .partitions
        .borrow()
        .logs()
        .filter(|l| l.topic == crate::coordinator::OFFSETS_TOPIC && catalog.topic(&l.topic).is_some_and(|t| t.is_led_by(l.partition, me)))
        .cloned()
        .collect();
    for log in logs {
        crate::broker::load_group_partition(shard, &log);
    }
    let txn_logs: Vec<_> = shard
        .partitions
        .borrow()
        .logs()
        .filter(|l| l.topic == crate::coordinator::txn::TRANSACTION_STATE_TOPIC && catalog.topic(&l.topic).is_some_and(|t| t.is_led_by(l.partition, me)))
        .cloned()
        .collect();
    for log in txn_logs {
        crate::broker::load_txn_partition(shard, &log);
    }
}

/// Writes tombstones for committed offsets that `offsets.retention.minutes` no longer keeps.
async fn expire_offsets(shard: &Rc<Shard>) {
    use crate::coordinator::{records, records_batch, OFFSETS_TOPIC};
    let config = shard.config();
    let partitions = crate::broker::offsets_partitions(shard);
    let expired = shard.coordinator.borrow_mut().expire_offsets(now_ms(), config.offsets_retention_ms, partitions);
    let mut by_partition: std::collections::BTreeMap<i32, Vec<crate::coordinator::RawRecord>> = std::collections::BTreeMap::new();
    for (partition, key) in expired {
        by_partition.entry(partition).or_default().push((records::encode_key(&key), None));
    }
    for (partition, tombstones) in by_partition {
        if let Some(log) = shard.log(OFFSETS_TOPIC, partition) {
            if log.append(vec![records_batch(&tombstones)]).await.is_err() {
                tracing::warn!(partition, "could not write expired-offset tombstones");
            }
        }
    }
}

/// Closes every log of the shard and returns what the log dir's checkpoints must record.
fn close_logs(shard: &Rc<Shard>) -> io::Result<Vec<LogCheckpoint>> {
    let mut result = Ok(Vec::new());
    for log in shard.partitions.borrow().logs() {
        match log.close() {
            Ok(()) if !log.is_deleted() => {
                if let Ok(logs) = &mut result {
                    logs.push(log.checkpoint());
                }
            }
            Ok(()) => {}
            Err(e) => {
                tracing::error!(topic = %log.topic, partition = log.partition, error = %e, "could not close a log");
                result = Err(e);
            }
        }
    }
    result
}

/// The shard's timers, each its own task so that a long one (compaction, an fsync) never
/// delays another: the group coordinator's 100 ms tick (rebalance and session timeouts), the
/// log maintenance loop (time-based flush, retention, offset expiry), the transaction
/// coordinator's (timeouts, id expiry) and the cleaner.
fn spawn_periodic_tasks(shard: &Rc<Shard>) {
    const TICK: Duration = Duration::from_millis(100);
    let s = shard.clone();
    spawn_detached(async move {
        loop {
            crate::io::runtime::sleep(TICK).await;
            s.coordinator.borrow_mut().tick(std::time::Instant::now());
        }
    });
    let s = shard.clone();
    spawn_detached(async move {
        let retention_every = Duration::from_millis(s.config().log_retention_check_interval_ms.max(100));
        let mut since_retention = Duration::ZERO;
        loop {
            crate::io::runtime::sleep(TICK).await;
            since_retention += TICK;
            let logs: Vec<_> = s.partitions.borrow().logs().cloned().collect();
            let now = now_ms();
            for log in &logs {
                log.flush_if_due(now).await;
            }
            if since_retention >= retention_every {
                since_retention = Duration::ZERO;
                expire_offsets(&s).await;
                for log in &logs {
                    log.apply_retention(now);
                }
            }
        }
    });
    let s = shard.clone();
    spawn_detached(async move {
        let every = Duration::from_millis(s.config().transactions.abort_check_interval_ms.max(100));
        loop {
            crate::io::runtime::sleep(every).await;
            crate::broker::expire_transactions(&s).await;
        }
    });
    if shard.config().cluster.is_some() {
        spawn_detached(crate::broker::replication::run_isr_expiry(shard.clone()));
    }
    let scrub_rate = shard.config().log_scrub_bytes_per_second;
    if scrub_rate > 0 {
        spawn_detached(scrub_logs(shard.clone(), scrub_rate));
    }
    let s = shard.clone();
    spawn_detached(async move {
        let cleaner_every = Duration::from_millis(s.config().log_cleaner_backoff_ms.max(100));
        loop {
            crate::io::runtime::sleep(cleaner_every).await;
            let logs: Vec<_> = s.partitions.borrow().logs().filter(|l| l.compaction_due()).cloned().collect();
            for log in logs {
                if let Err(e) = log.compact().await {
                    tracing::error!(topic = %log.topic, partition = log.partition, error = %e, "compaction failed");
                }
            }
        }
    });
}

/// The scrubber (`storage::scrub`): every sealed segment of this shard's logs, a chunk at a
/// time on the blocking pool, at `log.scrub.bytes.per.second`, over and over.
async fn scrub_logs(shard: Rc<Shard>, bytes_per_second: u64) {
    use crate::metrics::Metrics;
    use crate::storage::scrub;
    loop {
        let logs: Vec<_> = shard.partitions.borrow().logs().cloned().collect();
        for log in logs {
            for (base, file, size) in log.sealed_segments() {
                let mut position = 0;
                while position < size && !log.is_deleted() {
                    let started = std::time::Instant::now();
                    let f = file.clone();
                    let scan = match compio::runtime::spawn_blocking(move || scrub::scan_chunk(&f, position, size)).await {
                        Ok(Ok(scan)) => scan,
                        // The segment went (retention, compaction) or cannot be read now.
                        Ok(Err(e)) => {
                            tracing::debug!(topic = %log.topic, partition = log.partition, segment = base, error = %e, "scrubber could not read a segment");
                            break;
                        }
                        Err(_) => break,
                    };
                    Metrics::add(&shard.shared.metrics.scrub_bytes, scan.checked_bytes as u64);
                    let read = scan.checked_bytes.max(1);
                    position += scan.checked_bytes;
                    // No whole batch where one must start: the rest of the segment is damaged.
                    let damaged = scan.damaged.or((scan.checked_bytes == 0).then_some((position, size)));
                    if let Some((from, to)) = damaged {
                        if log.mark_damaged(base, from, to) {
                            Metrics::add(&shard.shared.metrics.scrub_damaged_batches, 1);
                            tracing::error!(
                                topic = %log.topic,
                                partition = log.partition,
                                segment = base,
                                from,
                                to,
                                "CORRUPT LOG: the scrubber found a batch whose CRC does not match in a sealed segment; it is no longer served"
                            );
                        }
                        position = to;
                    }
                    let due = Duration::from_secs_f64(read as f64 / bytes_per_second as f64);
                    crate::io::runtime::sleep(due.saturating_sub(started.elapsed())).await;
                }
            }
        }
        crate::io::runtime::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs a broker until SIGINT or SIGTERM. SIGUSR1 logs the request times since the last
/// SIGUSR1 (or the start), one line per API, and starts counting anew.
pub fn run_until_signal(config: BrokerConfig) -> io::Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGUSR1);
    // Blocked before the shard threads start, so they inherit the mask and only this thread
    // takes the signals.
    signals.thread_block().map_err(io::Error::from)?;
    let broker = Broker::start(config)?;
    loop {
        let signal = signals.wait().map_err(io::Error::from)?;
        if signal != Signal::SIGUSR1 {
            tracing::info!(?signal, "stopping");
            return broker.stop();
        }
        let times = broker.take_request_times();
        if times.is_empty() {
            tracing::info!("request times: no request since the last report");
        }
        for t in times {
            let api = crate::protocol::ApiKey::from_i16(t.api_key).map_or_else(|| format!("key {}", t.api_key), |k| format!("{k:?}"));
            tracing::info!(api, count = t.count, p50_us = t.p50_us, p99_us = t.p99_us, p999_us = t.p999_us, max_us = t.max_us, "request times");
        }
    }
}
