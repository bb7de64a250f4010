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

/// Power-cut emulation, for the crash tests: with `SPATE_POWER_JOURNAL=<file>` in its
/// environment, the broker appends to that file, as it happens, what it has made durable:
/// every file fsync (with the file's length before it), every folder fsync (with the names the
/// folder held before it), and every rename, removal and truncation. After the broker is
/// killed, `apply_power_cut` makes its data folder what a power cut at that moment could leave
/// at worst: a name that no folder fsync made durable is gone, and every file is cut to the
/// length its last fsync made durable (to nothing, if it was never fsynced), as Jepsen's
/// LazyFS forgets unsynced data. What it cannot emulate: an unlink or rename undone by the cut
/// (the file's bytes are gone), and partial writeback of unsynced pages (all are dropped).
///
/// Each event is one `write(2)` of one JSON line, made before the operation's caller goes on,
/// so an acknowledgement that waited for an fsync is always preceded by its event.
pub mod power {
    use std::collections::{BTreeSet, HashMap};
    use std::io::{self, Write};
    use std::os::fd::AsRawFd;
    use std::path::{Path, PathBuf};
    use std::sync::{Mutex, OnceLock};

    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    pub enum Event {
        Sync { path: PathBuf, len: u64 },
        Dir { path: PathBuf, names: Vec<String> },
        Rename { from: PathBuf, to: PathBuf },
        Remove { path: PathBuf },
        Truncate { path: PathBuf, len: u64 },
    }

    static JOURNAL: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();

    fn journal() -> Option<&'static Mutex<std::fs::File>> {
        JOURNAL
            .get_or_init(|| {
                let path = std::env::var_os("SPATE_POWER_JOURNAL")?;
                let file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("SPATE_POWER_JOURNAL: open the journal");
                Some(Mutex::new(file))
            })
            .as_ref()
    }

    /// Whether events are being recorded (one initialized `OnceLock` load).
    #[inline]
    pub fn armed() -> bool {
        journal().is_some()
    }

    pub fn record(event: Event) {
        if let Some(journal) = journal() {
            let mut line = serde_json::to_vec(&event).expect("events serialize");
            line.push(b'\n');
            journal.lock().expect("power journal").write_all(&line).expect("SPATE_POWER_JOURNAL: write the journal");
        }
    }

    /// The path of an open file or folder.
    pub fn path_of(file: &std::fs::File) -> PathBuf {
        std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap_or_default()
    }

    /// What a power cut could leave, applied: how many names went and how many files were cut.
    #[derive(Debug, Default, PartialEq, Eq)]
    pub struct Cut {
        pub names_removed: usize,
        pub files_cut: usize,
        pub bytes_dropped: u64,
    }

    fn moved(path: &Path, from: &Path, to: &Path) -> Option<PathBuf> {
        path.strip_prefix(from).ok().map(|rest| if rest.as_os_str().is_empty() { to.to_owned() } else { to.join(rest) })
    }

    /// Applies the journal to the files under `root` (the broker must be dead). The journal is
    /// kept, for the runs that follow: a file they do not fsync again keeps what earlier runs
    /// made durable.
    pub fn apply_power_cut(journal: &Path, root: &Path) -> io::Result<Cut> {
        let text = std::fs::read_to_string(journal).unwrap_or_default();
        let mut durable: HashMap<PathBuf, u64> = HashMap::new();
        let mut listings: HashMap<PathBuf, BTreeSet<String>> = HashMap::new();
        // A line cut short by the kill is the last one: nothing after it happened.
        for event in text.lines().map_while(|l| serde_json::from_str::<Event>(l).ok()) {
            match event {
                Event::Sync { path, len } => {
                    durable.insert(path, len);
                }
                Event::Truncate { path, len } => {
                    if let Some(d) = durable.get_mut(&path) {
                        *d = (*d).min(len);
                    }
                }
                Event::Dir { path, names } => {
                    listings.insert(path, names.into_iter().collect());
                }
                Event::Rename { from, to } => {
                    // What the new name held before is replaced.
                    durable.retain(|p, _| !p.starts_with(&to));
                    listings.retain(|p, _| !p.starts_with(&to));
                    durable = durable.into_iter().map(|(p, l)| (moved(&p, &from, &to).unwrap_or(p), l)).collect();
                    listings = listings.into_iter().map(|(p, l)| (moved(&p, &from, &to).unwrap_or(p), l)).collect();
                }
                Event::Remove { path } => {
                    durable.retain(|p, _| !p.starts_with(&path));
                    listings.retain(|p, _| !p.starts_with(&path));
                }
            }
        }
        let mut cut = Cut::default();
        let root = root.canonicalize()?;
        cut_dir(&root, &durable, &listings, &mut cut)?;
        // The journal stays: what it made durable stays durable for the next cut.
        Ok(cut)
    }

    fn cut_dir(dir: &Path, durable: &HashMap<PathBuf, u64>, listings: &HashMap<PathBuf, BTreeSet<String>>, cut: &mut Cut) -> io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if listings.get(dir).is_some_and(|names| !names.contains(&name)) {
                if entry.file_type()?.is_dir() {
                    std::fs::remove_dir_all(&path)?;
                } else {
                    std::fs::remove_file(&path)?;
                }
                cut.names_removed += 1;
                continue;
            }
            if entry.file_type()?.is_dir() {
                cut_dir(&path, durable, listings, cut)?;
                continue;
            }
            let len = entry.metadata()?.len();
            let keep = durable.get(&path).copied().unwrap_or(0);
            if len > keep {
                std::fs::OpenOptions::new().write(true).open(&path)?.set_len(keep)?;
                cut.files_cut += 1;
                cut.bytes_dropped += len - keep;
            }
        }
        Ok(())
    }
}
