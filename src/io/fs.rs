//! Control-plane file operations: folders, renames, and atomically replaced small files
//! (checkpoints and metadata). These block the calling shard briefly and never run per record.

use std::io::{self, Write};
use std::path::Path;

use super::fault::power;

/// Replaces `path` with `contents` so that a crash leaves either the old or the new file:
/// write a temporary file, fsync it, rename it over the old one, fsync the folder.
pub fn write_atomic(path: &Path, contents: &[u8], points: Option<&super::crash::AtomicWritePoints>) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        if let Some(p) = points {
            super::crash::point(p.after_tmp_write);
        }
        sync_file(&f)?;
    }
    if let Some(p) = points {
        super::crash::point(p.after_tmp_fsync);
    }
    rename(&tmp, path)?;
    if let Some(p) = points {
        super::crash::point(p.after_rename);
    }
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Replaces `name` inside the open folder `dir` atomically (temporary file, fsync, rename,
/// fsync the folder), addressing the folder by its handle rather than its path: if the folder
/// was renamed (a deleted topic's), the write follows it instead of landing at the old path.
///
/// Each call writes its own temporary file (a process-wide counter in its name): two writers of
/// one checkpoint at once (a closing log and its rolled-segment flusher) would otherwise
/// truncate and rename each other's file. Recovery removes `*.tmp` leftovers.
pub fn write_atomic_at(dir: &std::fs::File, name: &str, contents: &[u8], points: Option<&super::crash::AtomicWritePoints>) -> io::Result<()> {
    use nix::fcntl::{openat, renameat, OFlag};
    use nix::sys::stat::Mode;
    static NEXT_TMP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = format!("{name}.{}.tmp", NEXT_TMP.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let fd = openat(dir, tmp.as_str(), OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_CLOEXEC, Mode::from_bits_truncate(0o644))
        .map_err(io::Error::from)?;
    let mut f = std::fs::File::from(fd);
    f.write_all(contents)?;
    if let Some(p) = points {
        super::crash::point(p.after_tmp_write);
    }
    sync_file(&f)?;
    if let Some(p) = points {
        super::crash::point(p.after_tmp_fsync);
    }
    renameat(dir, tmp.as_str(), dir, name).map_err(io::Error::from)?;
    if power::armed() {
        let dir_path = power::path_of(dir);
        power::record(power::Event::Rename { from: dir_path.join(&tmp), to: dir_path.join(name) });
    }
    if let Some(p) = points {
        super::crash::point(p.after_rename);
    }
    sync_dir_handle(dir)
}

/// Writes `name` inside the open folder `dir` and fsyncs it (no rename: for files that get
/// their final name later).
pub fn write_durable_at(dir: &std::fs::File, name: &str, contents: &[u8]) -> io::Result<()> {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::Mode;
    let fd =
        openat(dir, name, OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_CLOEXEC, Mode::from_bits_truncate(0o644)).map_err(io::Error::from)?;
    let mut f = std::fs::File::from(fd);
    f.write_all(contents)?;
    sync_file(&f)
}

/// Writes a whole file into the page cache (no fsync): for derived data.
pub fn write_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    std::fs::write(path, contents)
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    sync_dir_handle(&std::fs::File::open(dir)?)
}

/// fsyncs a file (`io::fault` may fail it, and records it for the power-cut emulation).
pub fn sync_file(f: &std::fs::File) -> io::Result<()> {
    super::fault::fsync_fault(f)?;
    let len = if power::armed() { f.metadata()?.len() } else { 0 };
    f.sync_all()?;
    if power::armed() {
        power::record(power::Event::Sync { path: power::path_of(f), len });
    }
    Ok(())
}

/// fsyncs an open folder, making the names it holds durable.
pub fn sync_dir_handle(dir: &std::fs::File) -> io::Result<()> {
    super::fault::fsync_fault(dir)?;
    let listing = if power::armed() {
        let path = power::path_of(dir);
        Some((list_dir(&path)?, path))
    } else {
        None
    };
    dir.sync_all()?;
    if let Some((names, path)) = listing {
        power::record(power::Event::Dir { path, names });
    }
    Ok(())
}

fn record_removal(path: &Path) {
    if power::armed() {
        let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        power::record(power::Event::Remove { path });
    }
}

pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
}

pub fn remove_file_if_exists(path: &Path) -> io::Result<()> {
    record_removal(path);
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

pub fn remove_dir_all(dir: &Path) -> io::Result<()> {
    record_removal(dir);
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    let from_path = if power::armed() { from.canonicalize().ok() } else { None };
    std::fs::rename(from, to)?;
    if let Some(from) = from_path {
        power::record(power::Event::Rename { from, to: to.canonicalize()? });
    }
    Ok(())
}

pub fn read_if_exists(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}

/// The names of the entries of a folder.
pub fn list_dir(dir: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        out.push(entry?.file_name().to_string_lossy().into_owned());
    }
    out.sort();
    Ok(out)
}

/// Asks the kernel to start writing `len` bytes of `file` from `from` back to disk, without
/// waiting for it (`sync_file_range(SYNC_FILE_RANGE_WRITE)`): it spreads writeback out so that
/// a later fsync or the flusher has less to do at once. This is not durability: a failure
/// only means the kernel writes those pages back later on its own, so it is ignored.
pub fn start_writeback(file: &std::fs::File, from: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on a file descriptor the caller keeps open.
    unsafe { nix::libc::sync_file_range(file.as_raw_fd(), from as i64, len as i64, nix::libc::SYNC_FILE_RANGE_WRITE) };
}

/// The size of the file system holding `path` and the bytes an unprivileged writer may still
/// use there (statvfs), as DescribeLogDirs reports them.
pub fn volume_space(path: &Path) -> io::Result<(u64, u64)> {
    let s = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    let block = s.fragment_size() as u64;
    Ok((s.blocks() as u64 * block, s.blocks_available() as u64 * block))
}
