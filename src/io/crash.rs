//! Crash points, for the crash-consistency tests: with `SPATE_CRASH_AT=<point>[:<n>]` in its
//! environment, the broker kills itself (SIGKILL: no destructor, no flush, as `kill -9`) the
//! `n`-th time (the first, without `:n`) it passes the named point. Without the variable, a point
//! costs one load of an initialized `OnceLock`.
//!
//! The points sit between the steps whose order recovery depends on: an append's write, fsync
//! and acknowledgement; a roll's index write and new segment; the flush of a rolled segment
//! and its checkpoint; each step of the checkpoint's and the catalog's atomic replacement
//! (temporary file, fsync, rename, folder fsync); a retention delete between a segment's
//! files; a topic delete between its catalog write and its folders' removal; each step of
//! compaction's swap of a cleaned segment. `POINTS` lists them all; `tests/it/crash_points.rs`
//! crashes at each.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Every crash point, in the order an append, a roll, a flush, a retention pass and a topic
/// delete pass them.
pub const POINTS: &[&str] = &[
    "append.before_write",
    "append.after_write",
    "append.after_fsync",
    "roll.after_index_write",
    "roll.after_segment_create",
    "flush.after_segment_fsync",
    "checkpoint_write.after_tmp_write",
    "checkpoint_write.after_tmp_fsync",
    "checkpoint_write.after_rename",
    "catalog_write.after_tmp_write",
    "catalog_write.after_tmp_fsync",
    "catalog_write.after_rename",
    "retention.after_segment_rename",
    "retention.between_segment_files",
    "retention.after_segment_delete",
    "topic_delete.after_catalog_write",
    "topic_delete.after_folder_rename",
    "compaction.after_cleaned_write",
    "compaction.after_index_remove",
    "compaction.after_rename",
    "compaction.after_index_write",
];

/// The points of one kind of atomic file replacement (temporary file, fsync, rename, fsync
/// the folder), for `io::fs::write_atomic`.
pub struct AtomicWritePoints {
    pub after_tmp_write: &'static str,
    pub after_tmp_fsync: &'static str,
    pub after_rename: &'static str,
}

/// The replacement of the log dir's checkpoint files (recovery point, log start, high watermark).
pub const CHECKPOINT_WRITE: AtomicWritePoints = AtomicWritePoints {
    after_tmp_write: "checkpoint_write.after_tmp_write",
    after_tmp_fsync: "checkpoint_write.after_tmp_fsync",
    after_rename: "checkpoint_write.after_rename",
};

/// The catalog's replacement (topic creation, deletion, new partitions).
pub const CATALOG_WRITE: AtomicWritePoints = AtomicWritePoints {
    after_tmp_write: "catalog_write.after_tmp_write",
    after_tmp_fsync: "catalog_write.after_tmp_fsync",
    after_rename: "catalog_write.after_rename",
};

static PLAN: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

fn parse(spec: &str) -> Result<(String, u64), String> {
    let (name, n) = match spec.split_once(':') {
        Some((name, n)) => (name, n.parse::<u64>().ok().filter(|&n| n > 0).ok_or_else(|| format!("SPATE_CRASH_AT={spec}: the pass must be a number from 1"))?),
        None => (spec, 1),
    };
    if !POINTS.contains(&name) {
        return Err(format!("SPATE_CRASH_AT={spec}: no crash point is named {name}; they are {}", POINTS.join(", ")));
    }
    Ok((name.to_owned(), n))
}

fn plan() -> Option<(String, u64)> {
    parse(&std::env::var("SPATE_CRASH_AT").ok()?).ok()
}

/// Checks `SPATE_CRASH_AT` at startup, so that a mistyped point stops the broker at once
/// instead of never firing.
pub fn check_env() -> Result<(), String> {
    match std::env::var("SPATE_CRASH_AT") {
        Ok(spec) => parse(&spec).map(|_| ()),
        Err(_) => Ok(()),
    }
}

/// Kills the process if `SPATE_CRASH_AT` names this point and this is its `n`-th pass. With
/// SIGKILL, as `kill -9` would: a test tells it from a panic (SIGABRT in release builds).
#[inline]
pub fn point(name: &'static str) {
    let Some((wanted, n)) = PLAN.get_or_init(plan) else { return };
    if wanted == name && HITS.fetch_add(1, Ordering::Relaxed) + 1 == *n {
        eprintln!("spate: crash point {name} (pass {n}): killing the process");
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        std::process::abort();
    }
}
