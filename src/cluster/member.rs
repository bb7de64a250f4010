//! A broker's side of the cluster: finding the active controller, registering, heartbeating,
//! and following the metadata (what KRaft's `BrokerLifecycleManager` and metadata publisher
//! do). Runs on the broker's metadata thread; each new image goes to the callback, which hands
//! it to the shards.

use std::cell::{Cell, RefCell};
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::image::MetadataImage;
use super::raft::{call, Rpc, RpcReply};
use super::rpc::{ControllerRequest, ControllerResponse};
use crate::config::BrokerConfig;

/// Asks the active controller, whichever voter that is: the last one that answered first, then
/// the one a `NotController` names, then every address in turn, for at most `deadline`.
pub struct ControllerClient {
    addresses: Vec<String>,
    /// The address that answered last.
    current: RefCell<Option<String>>,
    timeout: Duration,
}

impl ControllerClient {
    pub fn new(addresses: Vec<String>, timeout: Duration) -> ControllerClient {
        ControllerClient { addresses, current: RefCell::new(None), timeout }
    }

    fn resolve(address: &str) -> Option<SocketAddr> {
        address.to_socket_addrs().ok()?.next()
    }

    /// The active controller, following redirects, retrying for up to `deadline`.
    pub async fn ask(&self, request: &ControllerRequest, deadline: Duration) -> std::io::Result<ControllerResponse> {
        let until = std::time::Instant::now() + deadline;
        let mut last = std::io::Error::new(std::io::ErrorKind::TimedOut, "no active controller");
        let mut next: Option<String> = self.current.borrow().clone();
        let mut round = 0usize;
        while std::time::Instant::now() < until {
            let address = match next.take() {
                Some(a) => a,
                None => {
                    round += 1;
                    if round > 1 && round % self.addresses.len().max(1) == 1 {
                        // Every voter answered "not me" or nothing: an election is under way.
                        compio::time::sleep(Duration::from_millis(100)).await;
                    }
                    self.addresses[round % self.addresses.len().max(1)].clone()
                }
            };
            let Some(addr) = Self::resolve(&address) else { continue };
            match call(addr, &Rpc::Controller(request.clone()), self.timeout).await {
                Ok(RpcReply::Controller(ControllerResponse::NotController { address: Some(leader), .. })) if leader != address => next = Some(leader),
                Ok(RpcReply::Controller(ControllerResponse::NotController { .. })) => {}
                Ok(RpcReply::Controller(response)) => {
                    *self.current.borrow_mut() = Some(address);
                    return Ok(response);
                }
                Ok(_) => last = std::io::Error::other("unexpected reply"),
                Err(e) => last = e,
            }
        }
        *self.current.borrow_mut() = None;
        Err(last)
    }
}

/// What the broker's lifecycle shares with the rest of the process.
pub struct Member {
    pub client: ControllerClient,
    config: BrokerConfig,
    incarnation_id: String,
    /// The broker epoch from the last registration (0: not registered).
    pub epoch: Cell<u64>,
    /// The offset of the metadata the shards have applied.
    pub applied: Cell<u64>,
    pub fenced: Cell<bool>,
    /// Set to ask for a controlled shutdown; the heartbeat loop carries it.
    pub want_shutdown: Cell<bool>,
    /// The controller allowed the shutdown (this broker leads nothing now).
    pub may_shut_down: Cell<bool>,
    /// When a controller last answered a heartbeat.
    pub last_answer: Cell<std::time::Instant>,
}

impl Member {
    pub fn new(config: BrokerConfig) -> Rc<Member> {
        let cluster = config.cluster.clone().expect("a member of a cluster");
        let client = ControllerClient::new(cluster.quorum_addresses.clone(), Duration::from_millis(cluster.quorum_request_timeout_ms));
        Rc::new(Member {
            client,
            incarnation_id: crate::storage::uuid_to_kafka_string(&crate::storage::meta::random_uuid()),
            config,
            epoch: Cell::new(0),
            applied: Cell::new(0),
            fenced: Cell::new(true),
            want_shutdown: Cell::new(false),
            may_shut_down: Cell::new(false),
            last_answer: Cell::new(std::time::Instant::now()),
        })
    }

    fn cluster(&self) -> &crate::config::ClusterConfig {
        self.config.cluster.as_ref().expect("a member of a cluster")
    }

    /// Registers with the active controller, retrying until it answers (or refuses for good).
    pub async fn register(&self) -> std::io::Result<u64> {
        let request = ControllerRequest::RegisterBroker {
            cluster_id: self.config.cluster_id.clone(),
            broker_id: self.config.broker_id,
            incarnation_id: self.incarnation_id.clone(),
            host: self.config.advertised_host.clone(),
            port: self.config.advertised_port,
            rack: self.cluster().rack.clone(),
        };
        loop {
            match self.client.ask(&request, Duration::from_secs(5)).await {
                Ok(ControllerResponse::Registered { broker_epoch }) => {
                    tracing::info!(broker = self.config.broker_id, epoch = broker_epoch, "registered with the controller");
                    self.epoch.set(broker_epoch);
                    return Ok(broker_epoch);
                }
                Ok(ControllerResponse::Error { code, message }) if code == crate::protocol::ErrorCode::INCONSISTENT_CLUSTER_ID.0 => {
                    return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, message));
                }
                Ok(other) => tracing::warn!(?other, "registration refused; retrying"),
                Err(e) => tracing::warn!(error = %e, "no controller answered the registration yet; retrying"),
            }
            compio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Heartbeats every `broker.heartbeat.interval.ms` until the process ends; registers
    /// again if the controller no longer knows this epoch.
    pub async fn run_heartbeats(self: Rc<Self>) {
        let every = Duration::from_millis(self.cluster().broker_heartbeat_interval_ms);
        let session = Duration::from_millis(self.cluster().broker_session_timeout_ms);
        loop {
            let shutting_down = self.want_shutdown.get();
            let request = ControllerRequest::Heartbeat {
                broker_id: self.config.broker_id,
                broker_epoch: self.epoch.get(),
                metadata_offset: self.applied.get(),
                want_fence: self.applied.get() < self.epoch.get(),
                want_shutdown: shutting_down,
            };
            match self.client.ask(&request, every).await {
                Ok(ControllerResponse::Heartbeat { is_fenced, should_shut_down, .. }) => {
                    self.last_answer.set(std::time::Instant::now());
                    if self.fenced.get() != is_fenced {
                        tracing::info!(broker = self.config.broker_id, fenced = is_fenced, "the controller changed this broker's state");
                    }
                    self.fenced.set(is_fenced);
                    self.may_shut_down.set(should_shut_down);
                }
                Ok(ControllerResponse::Error { code, message })
                    if code == crate::protocol::ErrorCode::STALE_BROKER_EPOCH.0 || code == crate::protocol::ErrorCode::BROKER_ID_NOT_REGISTERED.0 =>
                {
                    tracing::warn!(%message, "the controller does not know this broker's epoch; registering again");
                    let _ = self.register().await;
                    continue;
                }
                Ok(other) => tracing::warn!(?other, "heartbeat refused"),
                // A controller lost is found again among the voters within a few tries; only a
                // silence as long as the session is worth a warning.
                Err(e) if self.last_answer.get().elapsed() < session || shutting_down => tracing::debug!(error = %e, "heartbeat failed"),
                Err(e) => {
                    tracing::warn!(error = %e, silent_ms = self.last_answer.get().elapsed().as_millis() as u64, "no controller answered this broker's heartbeats for a session")
                }
            }
            // While shutting down, ask again soon: the answer says when leadership has moved.
            compio::time::sleep(if shutting_down { Duration::from_millis(100) } else { every }).await;
        }
    }

    /// Follows the metadata: long-polls any voter for an image newer than the last one and
    /// hands each to `publish`, which returns once the shards have applied it.
    pub async fn follow_metadata<F, Fut>(self: Rc<Self>, publish: F)
    where
        F: Fn(Arc<MetadataImage>) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        loop {
            let request = ControllerRequest::FetchMetadata { since: self.applied.get(), max_wait_ms: 1000 };
            match self.client.ask(&request, Duration::from_millis(3000)).await {
                // Never an image older than this broker's own registration: the shards would
                // remove partitions it does not list yet.
                Ok(ControllerResponse::Metadata { image: Some(image) }) if image.offset > self.applied.get() && image.offset >= self.epoch.get() => {
                    let offset = image.offset;
                    publish(Arc::new(*image)).await;
                    self.applied.set(offset);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "metadata fetch failed");
                    compio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}
