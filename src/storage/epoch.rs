//! The leader epoch cache of a partition: at which offset each leader epoch began, kept in the
//! partition folder's `leader-epoch-checkpoint` in Kafka's format (`LeaderEpochFileCache`):
//!
//! ```text
//! 0                 the format version
//! 2                 how many entries
//! 0 0               epoch 0 began at offset 0
//! 3 1200            epoch 3 began at offset 1200
//! ```
//!
//! A leader adds its epoch when it becomes leader, a follower each new epoch it sees in the
//! batches it fetches. A follower's fetch says the epoch of its last batch; the leader answers
//! where that epoch ended in its own log (`end_offset_for`), and a follower whose log goes
//! past it truncates there (KIP-101, KIP-279, and the diverging epoch of Fetch v12).

use std::io;
use std::path::{Path, PathBuf};

pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

#[derive(Debug)]
pub struct LeaderEpochCache {
    /// (epoch, start offset), both increasing.
    entries: Vec<(i32, i64)>,
    path: PathBuf,
}

impl LeaderEpochCache {
    /// Reads the checkpoint in `dir` (none, or one that does not parse, is an empty cache: the
    /// follower protocol then falls back to the high watermark, as Kafka's does).
    pub fn load(dir: &Path) -> LeaderEpochCache {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let entries = std::fs::read_to_string(&path).ok().and_then(|text| parse(&text)).unwrap_or_default();
        LeaderEpochCache { entries, path }
    }

    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    /// The latest epoch and where it began.
    pub fn latest(&self) -> Option<(i32, i64)> {
        self.entries.last().copied()
    }

    /// Records that `epoch` begins at `start` (a newer epoch than any known; an older or equal
    /// one changes nothing). Written to the checkpoint before it returns.
    pub fn assign(&mut self, epoch: i32, start: i64) -> io::Result<()> {
        if epoch < 0 || self.latest().is_some_and(|(e, s)| e >= epoch || s > start) {
            return Ok(());
        }
        self.entries.push((epoch, start));
        self.persist()
    }

    /// Forgets the epochs that begin at or after `end` (the log was cut there).
    pub fn truncate_from_end(&mut self, end: i64) -> io::Result<()> {
        let before = self.entries.len();
        self.entries.retain(|(_, start)| *start < end);
        if self.entries.len() != before {
            self.persist()?;
        }
        Ok(())
    }

    /// Where `epoch` ends in this log, as Kafka's `LeaderEpochFileCache.endOffsetFor`: the
    /// latest epoch ends at the log end offset; an older one at the start of the first epoch
    /// after it, reported with the largest epoch at or below it (or the asked epoch itself when
    /// it is older than every known one); `(-1, -1)` for an epoch newer than every known one,
    /// or for an empty cache.
    pub fn end_offset_for(&self, epoch: i32, log_end_offset: i64) -> (i32, i64) {
        if epoch < 0 {
            return (-1, -1);
        }
        match self.latest() {
            None => return (-1, -1),
            Some((latest, _)) if latest == epoch => return (epoch, log_end_offset),
            Some((latest, _)) if epoch > latest => return (-1, -1),
            _ => {}
        }
        let i = self.entries.partition_point(|(e, _)| *e <= epoch);
        let next_start = self.entries[i].1;
        match i.checked_sub(1) {
            Some(floor) => (self.entries[floor].0, next_start),
            None => (epoch, next_start),
        }
    }

    fn persist(&self) -> io::Result<()> {
        let mut text = format!("0\n{}\n", self.entries.len());
        for (epoch, start) in &self.entries {
            text.push_str(&format!("{epoch} {start}\n"));
        }
        crate::io::fs::write_atomic(&self.path, text.as_bytes(), None)
    }
}

fn parse(text: &str) -> Option<Vec<(i32, i64)>> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut entries = Vec::with_capacity(count.min(1024));
    for line in lines.take(count) {
        let (epoch, start) = line.trim().split_once(' ')?;
        entries.push((epoch.parse().ok()?, start.parse().ok()?));
    }
    (entries.len() == count).then_some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_persist_and_answer_where_each_ends() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = LeaderEpochCache::load(dir.path());
        assert_eq!(cache.end_offset_for(0, 10), (-1, -1), "nothing known");
        cache.assign(0, 0).unwrap();
        cache.assign(2, 100).unwrap();
        cache.assign(1, 150).unwrap();
        cache.assign(5, 300).unwrap();
        assert_eq!(cache.entries(), &[(0, 0), (2, 100), (5, 300)], "an older epoch is ignored");
        assert_eq!(cache.end_offset_for(0, 400), (0, 100));
        assert_eq!(cache.end_offset_for(1, 400), (0, 100), "epoch 1 never led: epoch 0 ended at 100");
        assert_eq!(cache.end_offset_for(4, 400), (2, 300));
        assert_eq!(cache.end_offset_for(5, 400), (5, 400), "the latest ends at the log end");
        assert_eq!(cache.end_offset_for(9, 400), (-1, -1), "newer than every known epoch");
        let other = tempfile::tempdir().unwrap();
        let mut later = LeaderEpochCache::load(other.path());
        later.assign(4, 50).unwrap();
        later.assign(6, 90).unwrap();
        assert_eq!(later.end_offset_for(2, 100), (2, 50), "older than every known epoch: it ended where the first began");
        assert_eq!(std::fs::read_to_string(dir.path().join(LEADER_EPOCH_CHECKPOINT)).unwrap(), "0\n3\n0 0\n2 100\n5 300\n", "Kafka's format");
        cache.truncate_from_end(300).unwrap();
        let reloaded = LeaderEpochCache::load(dir.path());
        assert_eq!(reloaded.entries(), &[(0, 0), (2, 100)]);
    }
}
