//! The cluster: the metadata quorum and what brokers do to be part of it.
//!
//! - `image.rs`: the metadata log's records (KRaft's, in spirit) and the image they replay into.
//! - `controller.rs`: the active controller's decisions, pure functions of the image.
//! - `raft.rs`: the quorum itself, on openraft: the log and snapshot on disk, the state
//!   machine that applies records to the image, and the network between voters.
//! - `service.rs`: what a voter does with requests on its CONTROLLER listener, and the active
//!   controller's timers (fencing, preferred leaders).
//! - `rpc.rs`: the broker-to-controller requests; `member.rs`: a broker's registration,
//!   heartbeats and metadata following.
//!
//! Nothing here touches a shard: the server layer hands each new image to the shards, which
//! keep their own copy (`shard::Catalog::from_image`).

pub mod controller;
pub mod image;
pub mod member;
pub mod raft;
pub mod rpc;
pub mod service;
