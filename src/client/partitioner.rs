//! Choosing a record's partition exactly as Kafka's Java producer does, so that a key lands
//! on the same partition whichever client wrote it: an explicit partition wins; a key goes to
//! `toPositive(murmur2(key)) % partitions`; a record without a key goes to the topic's sticky
//! partition, which moves on when a batch for it is complete (KIP-480, KIP-794).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`): MurmurHash2, 32-bit,
/// seed 0x9747b28c, little-endian words.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        let mut k = u32::from_le_bytes(w.try_into().expect("4 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = words.remainder();
    if tail.len() >= 3 {
        h ^= (tail[2] as u32) << 16;
    }
    if tail.len() >= 2 {
        h ^= (tail[1] as u32) << 8;
    }
    if !tail.is_empty() {
        h ^= tail[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`, which overflows on MIN).
pub fn to_positive(v: i32) -> i32 {
    v & 0x7fff_ffff
}

/// The partition Kafka's default partitioner gives a key.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    to_positive(murmur2(key)) % partitions
}

/// Chooses partitions for records that name none. `None` leaves the choice to the producer's
/// sticky partitioning.
pub trait Partitioner {
    fn partition(&self, topic: &str, key: Option<&[u8]>, value: Option<&[u8]>, partitions: i32) -> Option<i32>;
}

/// Kafka's built-in behaviour: murmur2 of the key, sticky for keyless records.
#[derive(Default)]
pub struct DefaultPartitioner;

impl Partitioner for DefaultPartitioner {
    fn partition(&self, _: &str, key: Option<&[u8]>, _: Option<&[u8]>, partitions: i32) -> Option<i32> {
        key.map(|k| partition_for_key(k, partitions))
    }
}

/// Kafka's `RoundRobinPartitioner`: every record (keyed or not) to the next partition in turn.
#[derive(Default)]
pub struct RoundRobinPartitioner {
    next: RefCell<HashMap<String, Cell<u32>>>,
}

impl Partitioner for RoundRobinPartitioner {
    fn partition(&self, topic: &str, _: Option<&[u8]>, _: Option<&[u8]>, partitions: i32) -> Option<i32> {
        let mut next = self.next.borrow_mut();
        let counter = next.entry(topic.to_string()).or_default();
        let n = counter.get();
        counter.set(n.wrapping_add(1));
        Some((n % partitions.max(1) as u32) as i32)
    }
}

/// `partitioner.class` by name: Kafka's class names and short names are both accepted.
pub fn by_name(name: &str) -> Option<Box<dyn Partitioner>> {
    match name {
        "default" | "murmur2" | "org.apache.kafka.clients.producer.internals.DefaultPartitioner" => Some(Box::new(DefaultPartitioner)),
        "round_robin" | "roundrobin" | "org.apache.kafka.clients.producer.RoundRobinPartitioner" => Some(Box::new(RoundRobinPartitioner::default())),
        _ => None,
    }
}

/// The sticky partition of each topic for keyless records.
#[derive(Default)]
pub struct Sticky {
    current: HashMap<String, i32>,
    seed: u64,
}

impl Sticky {
    pub fn partition(&mut self, topic: &str, partitions: i32) -> i32 {
        if let Some(&p) = self.current.get(topic) {
            if p < partitions {
                return p;
            }
        }
        self.next(topic, partitions, -1)
    }

    /// Moves the topic's sticky partition on, away from `previous` when there is a choice
    /// (called when the batch for `previous` is complete).
    pub fn next(&mut self, topic: &str, partitions: i32, previous: i32) -> i32 {
        // xorshift: the choice needs to spread, not to be unpredictable.
        if self.seed == 0 {
            self.seed = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)) | 1;
        }
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let mut p = (self.seed % partitions.max(1) as u64) as i32;
        if p == previous && partitions > 1 {
            p = (p + 1) % partitions;
        }
        self.current.insert(topic.to_string(), p);
        p
    }

    /// Whether `partition` is the topic's sticky partition now.
    pub fn is_current(&self, topic: &str, partition: i32) -> bool {
        self.current.get(topic) == Some(&partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values of Kafka's own `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_kafkas_published_results() {
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            (b"abc", 479470107),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key), *expected, "{}", String::from_utf8_lossy(key));
        }
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(partition_for_key(b"foobar", 12), to_positive(-790332482) % 12);
    }

    #[test]
    fn round_robin_cycles_and_sticky_moves_on() {
        let rr = RoundRobinPartitioner::default();
        let got: Vec<i32> = (0..6).map(|_| rr.partition("t", Some(b"k"), None, 3).unwrap()).collect();
        assert_eq!(got, [0, 1, 2, 0, 1, 2]);
        let mut sticky = Sticky::default();
        let first = sticky.partition("t", 4);
        assert_eq!(sticky.partition("t", 4), first);
        let second = sticky.next("t", 4, first);
        assert_ne!(second, first);
        assert!(sticky.is_current("t", second));
    }
}
