//! Injected I/O faults, for tests: `fail_fsyncs_under(dir)` makes every later fsync of a log
//! file below `dir` fail with EIO, as a disk that lost the writes would report it. Unarmed,
//! a check is one relaxed load of an atomic flag.
//!
//! The registry behind the flag is a `Mutex`, taken only while some test has armed a fault:
//! the broker never arms one itself.

use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

static ARMED: AtomicBool = AtomicBool::new(false);
static FAILING_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Makes every fsync of a log file below `dir` fail from now on.
#[doc(hidden)]
pub fn fail_fsyncs_under(dir: &Path) {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    FAILING_DIRS.lock().expect("fault registry").push(dir);
    ARMED.store(true, Ordering::Release);
}

/// Ends the faults `fail_fsyncs_under(dir)` armed.
#[doc(hidden)]
pub fn heal(dir: &Path) {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let mut dirs = FAILING_DIRS.lock().expect("fault registry");
    dirs.retain(|d| *d != dir);
    ARMED.store(!dirs.is_empty(), Ordering::Release);
}

/// The error an fsync of `file` must return instead of running, if a fault is armed for it.
#[inline]
pub fn fsync_fault(file: &std::fs::File) -> io::Result<()> {
    if !ARMED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let Ok(path) = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) else { return Ok(()) };
    if FAILING_DIRS.lock().expect("fault registry").iter().any(|d| path.starts_with(d)) {
        return Err(io::Error::from_raw_os_error(nix::libc::EIO));
    }
    Ok(())
}
