//! A broker's counters, readable by tests and (later) a metrics endpoint, and each shard's
//! request times, reported in the log on SIGUSR1.
//!
//! The counters are one set per broker, shared by its shards as relaxed atomics that are bumped
//! once per response or per write, never per record, so the shards do not contend on them in
//! any way that shows. Request times are histograms each shard keeps for itself
//! (`RequestHistograms`, no lock); a report asks every shard, through its mailbox, for its
//! histograms and merges them (`merge_request_times`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;

#[derive(Debug, Default)]
pub struct Metrics {
    /// Bytes written to sockets from memory (headers, control-plane responses).
    pub socket_bytes_from_memory: AtomicU64,
    /// Bytes sent to sockets by splicing from segment files (fetched records not all in the
    /// page cache).
    pub socket_bytes_spliced: AtomicU64,
    /// Bytes sent to sockets with sendfile from segment files whose pages were all cached.
    pub socket_bytes_sendfile: AtomicU64,
    /// Bytes of sealed segments the scrubber has read and checked.
    pub scrub_bytes: AtomicU64,
    /// Batches the scrubber found damaged (each is no longer served).
    pub scrub_damaged_batches: AtomicU64,
}

/// One shard's request times: microseconds from a request's frame being read to its response
/// written (as Kafka's TotalTimeMs), by API key. Only its shard touches it.
#[derive(Debug, Default)]
pub struct RequestHistograms(RefCell<BTreeMap<i16, Histogram<u64>>>);

impl RequestHistograms {
    pub fn record(&self, api_key: i16, micros: u64) {
        let mut by_api = self.0.borrow_mut();
        // Two significant figures (1%), from 1 µs to an hour; values beyond are clamped.
        let histogram = by_api.entry(api_key).or_insert_with(|| Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("valid bounds"));
        histogram.saturating_record(micros.max(1));
    }

    /// The histograms since the last take; the shard starts anew.
    pub fn take(&self) -> BTreeMap<i16, Histogram<u64>> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}

/// One API's request times over a report's period, in microseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestTimes {
    pub api_key: i16,
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

/// Every shard's taken histograms merged per API, in key order.
pub fn merge_request_times(shards: Vec<BTreeMap<i16, Histogram<u64>>>) -> Vec<RequestTimes> {
    let mut merged: BTreeMap<i16, Histogram<u64>> = BTreeMap::new();
    for (api_key, histogram) in shards.into_iter().flatten() {
        match merged.get_mut(&api_key) {
            Some(m) => m.add(&histogram).expect("same bounds"),
            None => {
                merged.insert(api_key, histogram);
            }
        }
    }
    merged
        .into_iter()
        .map(|(api_key, h)| RequestTimes {
            api_key,
            count: h.len(),
            p50_us: h.value_at_quantile(0.5),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        })
        .collect()
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub socket_bytes_from_memory: u64,
    pub socket_bytes_spliced: u64,
    pub socket_bytes_sendfile: u64,
    pub scrub_bytes: u64,
    pub scrub_damaged_batches: u64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            socket_bytes_from_memory: self.socket_bytes_from_memory.load(Ordering::Relaxed),
            socket_bytes_spliced: self.socket_bytes_spliced.load(Ordering::Relaxed),
            socket_bytes_sendfile: self.socket_bytes_sendfile.load(Ordering::Relaxed),
            scrub_bytes: self.scrub_bytes.load(Ordering::Relaxed),
            scrub_damaged_batches: self.scrub_damaged_batches.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_times_merge_the_shards_per_api_and_start_anew_after_a_report() {
        let shards = [RequestHistograms::default(), RequestHistograms::default()];
        for us in 1..=1000 {
            shards[(us % 2) as usize].record(0, us);
        }
        shards[1].record(1, 250_000);
        let report = merge_request_times(shards.iter().map(RequestHistograms::take).collect());
        assert_eq!(report.len(), 2);
        let produce = &report[0];
        assert_eq!((produce.api_key, produce.count), (0, 1000));
        assert!((495..=505).contains(&produce.p50_us), "{produce:?}");
        assert!((985..=995).contains(&produce.p99_us), "{produce:?}");
        assert!((995..=1005).contains(&produce.max_us), "{produce:?}");
        assert_eq!((report[1].api_key, report[1].count), (1, 1));
        assert!(report[1].max_us >= 247_500, "{:?}", report[1]);
        assert!(merge_request_times(shards.iter().map(RequestHistograms::take).collect()).is_empty(), "a report starts the next period empty");
    }
}
