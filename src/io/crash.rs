//! Crash points, for the crash-consistency tests: with `SPATE_CRASH_AT=<point>[:<n>]` in its
//! environment, the broker aborts (SIGABRT: no destructor, no flush, as `kill -9`) the `n`-th
//! time (the first, without `:n`) it passes the named point. Without the variable, a point
//! costs one load of an initialized `OnceLock`.
//!
//! The points sit between the steps whose order recovery depends on: an append's write, fsync
//! and acknowledgement; a roll's index write and new segment; the flush of a rolled segment
//! and its checkpoint; each step of an atomic file replacement (temporary file, fsync, rename,
//! folder fsync); a retention delete between a segment's files; a topic delete between its
//! catalog write and its folders' removal. `POINTS` lists them all; `tests/it/crash_points.rs`
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
    "atomic_write.after_tmp_write",
    "atomic_write.after_tmp_fsync",
    "atomic_write.after_rename",
    "retention.between_segment_files",
    "retention.after_segment_delete",
    "topic_delete.after_catalog_write",
    "topic_delete.after_folder_rename",
];

static PLAN: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

fn plan() -> Option<(String, u64)> {
    let spec = std::env::var("SPATE_CRASH_AT").ok()?;
    let (name, n) = match spec.split_once(':') {
        Some((name, n)) => (name.to_owned(), n.parse().unwrap_or(1)),
        None => (spec, 1),
    };
    assert!(POINTS.contains(&name.as_str()), "SPATE_CRASH_AT names no crash point: {name}");
    Some((name, n))
}

/// Aborts the process if `SPATE_CRASH_AT` names this point and this is its `n`-th pass.
#[inline]
pub fn point(name: &'static str) {
    let Some((wanted, n)) = PLAN.get_or_init(plan) else { return };
    if wanted == name && HITS.fetch_add(1, Ordering::Relaxed) + 1 == *n {
        eprintln!("spate: crash point {name} (pass {n}): aborting");
        std::process::abort();
    }
}
