//! A replicated partition's state on its owning shard, and the rules Kafka's `Partition`
//! applies to it, as plain functions (no IO): the leader's view of each follower, the high
//! watermark (the smallest log end offset in the ISR), and which followers should leave or join
//! the ISR. `broker::replication` drives it from fetches, produces and the metadata.

use std::collections::HashMap;

/// What the leader knows of one follower (Kafka's `Replica` state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The follower's log end offset: the offset of its last fetch (-1 before its first).
    pub log_end_offset: i64,
    /// When it last was caught up (milliseconds since the Unix epoch).
    pub last_caught_up_ms: i64,
    /// When it last fetched, and the leader's log end offset then.
    pub last_fetch_ms: i64,
    pub last_fetch_leader_end: i64,
}

/// What this broker is for a partition of several replicas.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    Leader(LeaderState),
    /// Fetching from `leader` (-1: the partition has no leader now, nothing to fetch).
    Follower {
        leader: i32,
        leader_epoch: i32,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct LeaderState {
    pub topic_id: String,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub followers: HashMap<i32, Progress>,
    /// An ISR change sent to the controller and not answered yet (one at a time, as Kafka's
    /// `PendingPartitionChange`): the ISR proposed.
    pub pending_isr: Option<Vec<i32>>,
}

impl LeaderState {
    /// A new leadership: every follower's session starts now, so none leaves the ISR before
    /// it had `replica.lag.time.max.ms` to fetch from this leader.
    pub fn new(topic_id: String, leader_epoch: i32, partition_epoch: i32, me: i32, replicas: Vec<i32>, isr: Vec<i32>, now_ms: i64) -> LeaderState {
        let followers = replicas
            .iter()
            .filter(|r| **r != me)
            .map(|r| (*r, Progress { log_end_offset: -1, last_caught_up_ms: now_ms, last_fetch_ms: now_ms, last_fetch_leader_end: -1 }))
            .collect();
        LeaderState { topic_id, leader_epoch, partition_epoch, replicas, isr, followers, pending_isr: None }
    }

    /// A follower's fetch at `fetch_offset` when the leader's log ends at `leader_end`. As
    /// Kafka's `Replica.updateFetchStateOrThrow`: caught up if it fetched from the leader's end,
    /// or from where the leader's log ended at its previous fetch.
    pub fn record_fetch(&mut self, follower: i32, fetch_offset: i64, leader_end: i64, now_ms: i64) {
        let Some(p) = self.followers.get_mut(&follower) else { return };
        if fetch_offset >= leader_end {
            p.last_caught_up_ms = now_ms;
        } else if fetch_offset >= p.last_fetch_leader_end && p.last_fetch_leader_end >= 0 {
            p.last_caught_up_ms = p.last_caught_up_ms.max(p.last_fetch_ms);
        }
        p.log_end_offset = fetch_offset;
        p.last_fetch_ms = now_ms;
        p.last_fetch_leader_end = leader_end;
    }

    /// The ISR as far as the high watermark is concerned: the current one and, while a change
    /// is pending, every member it adds (Kafka's "maximal ISR"): a follower proposed in may be
    /// elected once the change commits, so it must have everything acknowledged meanwhile.
    pub fn maximal_isr(&self) -> Vec<i32> {
        let mut isr = self.isr.clone();
        for r in self.pending_isr.iter().flatten() {
            if !isr.contains(r) {
                isr.push(*r);
            }
        }
        isr
    }

    /// The high watermark: the smallest log end offset among the maximal ISR (the leader's own
    /// is `leader_end`). A member that has not fetched yet holds it where it is (`None`).
    pub fn high_watermark(&self, me: i32, leader_end: i64) -> Option<i64> {
        let mut hw = leader_end;
        for r in self.maximal_isr().iter().filter(|r| **r != me) {
            let leo = self.followers.get(r).map_or(-1, |p| p.log_end_offset);
            if leo < 0 {
                return None;
            }
            hw = hw.min(leo);
        }
        Some(hw)
    }

    /// ISR members that have not caught up for `lag_ms` (Kafka's `getOutOfSyncReplicas`).
    pub fn out_of_sync(&self, me: i32, now_ms: i64, lag_ms: i64) -> Vec<i32> {
        self.isr.iter().copied().filter(|r| *r != me && self.followers.get(r).is_none_or(|p| now_ms - p.last_caught_up_ms > lag_ms)).collect()
    }

    /// Followers outside the ISR that have reached the high watermark and this leader's epoch
    /// (`epoch_start`: where the leader's epoch began), so may join it.
    pub fn caught_up_outside(&self, hw: i64, epoch_start: i64) -> Vec<i32> {
        let mut out: Vec<i32> = self
            .followers
            .iter()
            .filter(|(r, p)| !self.isr.contains(r) && self.replicas.contains(r) && p.log_end_offset >= hw.max(epoch_start))
            .map(|(r, _)| *r)
            .collect();
        out.sort();
        out
    }
}

/// The roles of the replicated partitions a shard owns, by (topic, partition).
pub type Roles = HashMap<(String, i32), Role>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_high_watermark_is_the_smallest_end_in_the_isr_and_laggards_leave() {
        let mut s = LeaderState::new("t".into(), 3, 0, 1, vec![1, 2, 3], vec![1, 2, 3], 1_000);
        assert_eq!(s.high_watermark(1, 100), None, "no follower fetched yet");
        s.record_fetch(2, 100, 100, 1_100);
        s.record_fetch(3, 60, 100, 1_100);
        assert_eq!(s.high_watermark(1, 100), Some(60));
        // Follower 3 keeps fetching from where the leader's log ended at its previous fetch:
        // it counts as caught up as of that previous fetch.
        s.record_fetch(3, 100, 150, 20_000);
        assert_eq!(s.followers[&3].last_caught_up_ms, 1_100);
        s.record_fetch(2, 150, 150, 20_000);
        assert_eq!(s.out_of_sync(1, 35_000, 30_000), vec![3], "3 last caught up at 1.1 s, 2 at 20 s");
        assert!(s.out_of_sync(1, 31_000, 30_000).is_empty(), "both within 30 s");
        s.isr = vec![1, 2];
        assert_eq!(s.high_watermark(1, 150), Some(150), "3, out of the ISR, no longer holds it back");
        s.record_fetch(3, 150, 150, 40_000);
        assert_eq!(s.caught_up_outside(150, 120), vec![3]);
        assert!(s.caught_up_outside(151, 0).is_empty());
        // While 3's return is pending, the high watermark waits for it too.
        s.pending_isr = Some(vec![1, 2, 3]);
        s.record_fetch(2, 200, 200, 41_000);
        assert_eq!(s.high_watermark(1, 200), Some(150), "3, proposed back in, holds it at 150");
    }
}
