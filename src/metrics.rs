//! A broker's counters, readable by tests and (later) a metrics endpoint.
//!
//! One set per broker, shared by its shards as relaxed atomics that are bumped once per
//! response or per write, never per record, so the shards do not contend on them in any way
//! that shows.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default, Debug)]
pub struct Metrics {
    /// Bytes written to sockets from memory (headers, control-plane responses).
    pub socket_bytes_from_memory: AtomicU64,
    /// Bytes sent to sockets by splicing from segment files (fetched records).
    pub socket_bytes_spliced: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub socket_bytes_from_memory: u64,
    pub socket_bytes_spliced: u64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            socket_bytes_from_memory: self.socket_bytes_from_memory.load(Ordering::Relaxed),
            socket_bytes_spliced: self.socket_bytes_spliced.load(Ordering::Relaxed),
        }
    }
}
