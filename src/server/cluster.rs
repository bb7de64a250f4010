//! A node of a cluster, around its shards: the controller thread (on voters: the Raft node,
//! its CONTROLLER listener and the controller service) and the metadata thread (on every
//! broker: registration, heartbeats, and each new metadata image handed to every shard
//! through its mailbox). Each thread runs its own compio runtime; neither touches a partition.

use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::image::MetadataImage;
use crate::cluster::member::Member;
use crate::config::BrokerConfig;
use crate::shard::{Catalog, Job, Shard};

/// The controller thread of a voter.
pub struct ControllerThread {
    stop: flume::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

/// Starts the quorum node: its log in `metadata.log.dir`/`__cluster_metadata-0`, its
/// CONTROLLER listener, the controller service. Returns once the listener is bound.
pub fn start_controller(config: &BrokerConfig) -> io::Result<ControllerThread> {
    let cluster = config.cluster.clone().expect("a cluster node");
    let address = cluster.controller_listener.expect("a controller has its listener");
    let voters = cluster.voters.iter().map(|v| (v.id as u64, v.address())).collect();
    let dir = cluster.metadata_log_dir.join(crate::cluster::raft::METADATA_LOG_DIR);
    let node_id = config.broker_id as u64;
    let config = config.clone();
    let (ready_tx, ready_rx) = flume::bounded::<io::Result<()>>(1);
    let (stop, stopped) = flume::bounded::<()>(1);
    let thread = std::thread::Builder::new().name("spate-controller".into()).spawn(move || {
        let runtime = match compio::runtime::Runtime::new() {
            Ok(r) => r,
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        runtime.block_on(async move {
            let listener = match crate::io::net::bind_listener(address) {
                Ok(l) => l,
                Err(e) => {
                    let _ = ready_tx.send(Err(io::Error::new(e.kind(), format!("controller listener {address}: {e}"))));
                    return;
                }
            };
            let quorum = match crate::cluster::raft::Quorum::open(node_id, voters, dir).await {
                Ok(q) => q,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let service = crate::cluster::service::ControllerService::new(quorum.clone(), config);
            let handler = {
                let service = service.clone();
                Rc::new(move |request| {
                    let service = service.clone();
                    Box::pin(async move { service.handle(request).await }) as crate::shard::LocalBoxFuture<_>
                })
            };
            crate::io::runtime::spawn_detached(crate::cluster::raft::serve(listener, quorum.raft().clone(), handler));
            crate::io::runtime::spawn_detached(service.run_timers());
            tracing::info!(%address, node = node_id, "controller started");
            let _ = ready_tx.send(Ok(()));
            let _ = stopped.recv_async().await;
            quorum.shutdown().await;
        });
    })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(ControllerThread { stop, thread }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::other("the controller thread stopped")),
    }
}

impl ControllerThread {
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// The metadata thread of a broker.
pub struct MetadataThread {
    /// Hands the thread what the shards share once they run.
    shards: flume::Sender<Arc<crate::shard::Shared>>,
    /// Asks for a controlled shutdown; answered when the controller allows it or the wait ends.
    shutdown: flume::Sender<flume::Sender<bool>>,
}

/// Registers the broker and waits for its first metadata image, which the shards start from.
pub fn start_member(config: &BrokerConfig) -> io::Result<(MetadataThread, Arc<MetadataImage>)> {
    let config = config.clone();
    let (first_tx, first_rx) = flume::bounded::<io::Result<Arc<MetadataImage>>>(1);
    let (shards_tx, shards_rx) = flume::bounded::<Arc<crate::shard::Shared>>(1);
    let (shutdown_tx, shutdown_rx) = flume::bounded::<flume::Sender<bool>>(1);
    std::thread::Builder::new().name("spate-metadata".into()).spawn(move || {
        let runtime = match compio::runtime::Runtime::new() {
            Ok(r) => r,
            Err(e) => {
                let _ = first_tx.send(Err(e));
                return;
            }
        };
        runtime.block_on(async move {
            let member = Member::new(config.clone());
            if let Err(e) = member.register().await {
                let _ = first_tx.send(Err(e));
                return;
            }
            crate::io::runtime::spawn_detached(member.clone().run_heartbeats());
            let m = member.clone();
            crate::io::runtime::spawn_detached(async move {
                while let Ok(reply) = shutdown_rx.recv_async().await {
                    m.want_shutdown.set(true);
                    // Until the controller says this broker leads nothing, for at most 30 s, and
                    // not while no controller answers (the whole cluster stopping at once).
                    let asked = std::time::Instant::now();
                    let deadline = asked + Duration::from_secs(30);
                    let silence =
                        Duration::from_millis(2 * config.cluster.as_ref().map_or(2000, |c| c.broker_heartbeat_interval_ms)).max(Duration::from_secs(1));
                    while !m.may_shut_down.get() && std::time::Instant::now() < deadline {
                        if asked.elapsed() > silence && m.last_answer.get().elapsed() > silence {
                            break;
                        }
                        compio::time::sleep(Duration::from_millis(50)).await;
                    }
                    let _ = reply.send(m.may_shut_down.get());
                }
            });
            let shared: Rc<std::cell::RefCell<Option<Arc<crate::shard::Shared>>>> = Rc::default();
            let broker_id = config.broker_id;
            let m = member.clone();
            member
                .follow_metadata(move |image: Arc<MetadataImage>| {
                    let first_tx = first_tx.clone();
                    let shards_rx = shards_rx.clone();
                    let shared = shared.clone();
                    let member = m.clone();
                    async move {
                        if shared.borrow().is_none() {
                            // The first image: the shards start from it.
                            let _ = first_tx.send(Ok(image));
                            match shards_rx.recv_async().await {
                                Ok(s) => {
                                    s.broker_epoch.store(member.epoch.get(), std::sync::atomic::Ordering::Relaxed);
                                    *shared.borrow_mut() = Some(s);
                                }
                                Err(_) => std::future::pending::<()>().await,
                            }
                            return;
                        }
                        let shared = shared.borrow().clone().expect("set above");
                        // The epoch AlterPartition requests carry (it changes when the broker
                        // registers again).
                        shared.broker_epoch.store(member.epoch.get(), std::sync::atomic::Ordering::Relaxed);
                        publish(&shared.mailboxes, &image, broker_id).await;
                    }
                })
                .await;
        });
    })?;
    let first = match first_rx.recv_timeout(Duration::from_secs(120)) {
        Ok(Ok(image)) => image,
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "no metadata from the quorum within 120 s (are the controllers up?)")),
    };
    Ok((MetadataThread { shards: shards_tx, shutdown: shutdown_tx }, first))
}

/// The catalog the shards keep, from an image: the active controller is the Raft leader when
/// it is also a broker.
pub fn catalog_of(image: &MetadataImage) -> Catalog {
    Catalog::from_image(image, -1)
}

/// Hands a new image to every shard and waits until each has applied it (opened the
/// partitions newly assigned here, removed those moved away).
async fn publish(mailboxes: &[flume::Sender<Job>], image: &MetadataImage, _broker_id: i32) {
    let catalog = Arc::new(catalog_of(image));
    let (done_tx, done_rx) = flume::bounded(mailboxes.len());
    for mailbox in mailboxes {
        let catalog = catalog.clone();
        let done = done_tx.clone();
        let job: Job = Box::new(move |shard: &Rc<Shard>| {
            let shard = shard.clone();
            Box::pin(async move {
                crate::broker::apply_catalog(&shard, catalog, false).await;
                let _ = done.send(());
            })
        });
        if mailbox.send_async(job).await.is_err() {
            return;
        }
    }
    drop(done_tx);
    for _ in mailboxes {
        if done_rx.recv_async().await.is_err() {
            return;
        }
    }
}

impl MetadataThread {
    /// The shards run: later images go to them.
    pub fn shards_started(&self, shared: Arc<crate::shard::Shared>) {
        let _ = self.shards.send(shared);
    }

    /// A controlled shutdown: asks the controller to move this broker's leaderships away and
    /// waits (at most 30 s) until it says the broker leads nothing. Returns whether it did.
    pub fn controlled_shutdown(&self) -> bool {
        let (tx, rx) = flume::bounded(1);
        if self.shutdown.send(tx).is_err() {
            return false;
        }
        rx.recv_timeout(Duration::from_secs(31)).unwrap_or(false)
    }
}
