//! A broker's counters, readable by tests and (later) a metrics endpoint, and its request
//! times, reported in the log on SIGUSR1.
//!
//! One set per broker, shared by its shards as relaxed atomics that are bumped once per
//! response or per write, never per record, so the shards do not contend on them in any way
//! that shows. Request times are histograms, one set per shard behind that shard's own mutex:
//! only the shard records into it, and only a report (rare) takes it, so it is never
//! contended.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use hdrhistogram::Histogram;

#[derive(Debug)]
pub struct Metrics {
    /// Bytes written to sockets from memory (headers, control-plane responses).
    pub socket_bytes_from_memory: AtomicU64,
    /// Bytes sent to sockets by splicing from segment files (fetched records not all in the
    /// page cache).
    pub socket_bytes_spliced: AtomicU64,
    /// Bytes sent to sockets with sendfile from segment files whose pages were all cached.
    pub socket_bytes_sendfile: AtomicU64,
    /// Per shard: microseconds from a request's frame being read to its response written (as
    /// Kafka's TotalTimeMs), by API key.
    request_times: Vec<Mutex<BTreeMap<i16, Histogram<u64>>>>,
}

/// One API's request times since the last report, in microseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestTimes {
    pub api_key: i16,
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub socket_bytes_from_memory: u64,
    pub socket_bytes_spliced: u64,
    pub socket_bytes_sendfile: u64,
}

impl Metrics {
    pub fn new(shards: usize) -> Metrics {
        Metrics {
            socket_bytes_from_memory: AtomicU64::new(0),
            socket_bytes_spliced: AtomicU64::new(0),
            socket_bytes_sendfile: AtomicU64::new(0),
            request_times: (0..shards).map(|_| Mutex::new(BTreeMap::new())).collect(),
        }
    }

    /// Records one request's time on its shard.
    pub fn record_request(&self, shard: usize, api_key: i16, micros: u64) {
        let Some(times) = self.request_times.get(shard) else { return };
        let mut times = times.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Two significant figures (1%), from 1 µs to an hour; values beyond are clamped.
        let histogram = times.entry(api_key).or_insert_with(|| Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("valid bounds"));
        histogram.saturating_record(micros.max(1));
    }

    /// Every shard's request times since the last report, merged per API, and starts anew.
    pub fn take_request_times(&self) -> Vec<RequestTimes> {
        let mut merged: BTreeMap<i16, Histogram<u64>> = BTreeMap::new();
        for times in &self.request_times {
            let taken = std::mem::take(&mut *times.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
            for (api_key, histogram) in taken {
                match merged.get_mut(&api_key) {
                    Some(m) => m.add(&histogram).expect("same bounds"),
                    None => {
                        merged.insert(api_key, histogram);
                    }
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

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            socket_bytes_from_memory: self.socket_bytes_from_memory.load(Ordering::Relaxed),
            socket_bytes_spliced: self.socket_bytes_spliced.load(Ordering::Relaxed),
            socket_bytes_sendfile: self.socket_bytes_sendfile.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_times_merge_the_shards_per_api_and_start_anew_after_a_report() {
        let m = Metrics::new(2);
        for us in 1..=1000 {
            m.record_request((us % 2) as usize, 0, us);
        }
        m.record_request(1, 1, 250_000);
        m.record_request(7, 0, 5); // no such shard: ignored
        let report = m.take_request_times();
        assert_eq!(report.len(), 2);
        let produce = &report[0];
        assert_eq!((produce.api_key, produce.count), (0, 1000));
        assert!((495..=505).contains(&produce.p50_us), "{produce:?}");
        assert!((985..=995).contains(&produce.p99_us), "{produce:?}");
        assert!((995..=1005).contains(&produce.max_us), "{produce:?}");
        assert_eq!((report[1].api_key, report[1].count), (1, 1));
        assert!(report[1].max_us >= 247_500, "{:?}", report[1]);
        assert!(m.take_request_times().is_empty(), "a report starts the next period empty");
    }
}
