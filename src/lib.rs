//! Spate: a Kafka-compatible message broker, thread-per-core on io_uring.
//!
//! The modules, in the order a request flows through them (see ARCHITECTURE.md):
//! `server` starts the shards; `net` accepts connections and splits frames; `protocol` decodes
//! requests; `broker` handles each API and routes partition work to the owning shard through
//! `shard` (consumer-group work to the shard whose `coordinator` owns the group); `storage`
//! appends and reads partition logs; `net` writes the response, splicing
//! record bytes from segment files through `io`, the only module that calls the kernel.

pub mod broker;
pub mod client;
pub mod cluster;
pub mod config;
pub mod coordinator;
#[doc(hidden)]
pub mod fuzz;
pub mod io;
pub mod metrics;
pub mod net;
pub mod protocol;
pub mod server;
pub mod shard;
pub mod storage;
#[cfg(test)]
mod tidy;
