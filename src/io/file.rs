//! Log files: positional io_uring reads and writes, and fsync.
//!
//! A `LogFile` is a shared handle (`Arc<std::fs::File>`): the owning shard writes through it,
//! and any shard may hold a clone while it splices a fetched range to a socket, so a segment
//! that retention deletes stays readable until the last fetch of it has been sent.

use std::io;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use compio::driver::op::{ReadAt, Sync, WriteVectoredAt};

use super::fault::power;

/// The kernel refuses a writev of more than 1,024 buffers (UIO_MAXIOV) with EINVAL.
const IOV_MAX_COUNT: usize = 1024;

/// Drops the first `written` bytes of `buffers` after a short write.
fn skip_written(buffers: &mut Vec<Bytes>, mut skip: usize) {
    buffers.retain_mut(|b| {
        if skip >= b.len() {
            skip -= b.len();
            false
        } else {
            let _ = b.split_to(skip);
            skip = 0;
            true
        }
    });
}

#[derive(Clone, Debug)]
pub struct LogFile(Arc<std::fs::File>);

impl LogFile {
    /// Opens (creating if asked) a file for reading and writing.
    ///
    /// With O_NOATIME where allowed (the broker owns its files): otherwise every read of a
    /// segment written since its last access would update its inode, and a fetch sent on the
    /// shard thread would do that there, waiting on the filesystem's journal.
    pub fn open(path: &Path, create: bool) -> io::Result<LogFile> {
        use std::os::unix::fs::OpenOptionsExt;
        let options = |flags| std::fs::OpenOptions::new().read(true).write(true).create(create).truncate(false).custom_flags(flags).open(path);
        let file = match options(nix::libc::O_NOATIME) {
            // O_NOATIME needs the file's owner (or CAP_FOWNER): a file someone else owns is
            // opened without it.
            Err(e) if e.raw_os_error() == Some(nix::libc::EPERM) => options(0)?,
            other => other?,
        };
        Ok(LogFile(Arc::new(file)))
    }

    pub fn size_bytes(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    /// Cuts the file to `len` bytes (recovery and truncation only).
    pub fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)?;
        if power::armed() {
            power::record(power::Event::Truncate { path: power::path_of(&self.0), len });
        }
        Ok(())
    }

    pub(crate) fn shared(&self) -> Arc<std::fs::File> {
        self.0.clone()
    }

    /// Writes all of `buffers`, in order, at `position`: with `pwritev(2)` on the calling
    /// thread when they total at most `inline_max_bytes`, otherwise one io_uring writev per
    /// `IOV_MAX_COUNT` buffers, repeated only for the rest if the kernel wrote short.
    ///
    /// Why an inline path: on ext4 io_uring cannot attempt a buffered write without blocking
    /// (the filesystem does not support non-blocking buffered writes), so it hands every one to
    /// an io-wq worker thread, and a small append pays for waking that worker and then the
    /// shard. `pwritev` does the same page-cache copy on the shard itself (bench/RESULTS.md
    /// measures both); the price is that the shard stalls while the kernel throttles dirty pages.
    pub async fn write_all_at(&self, buffers: Vec<Bytes>, position: u64, inline_max_bytes: usize) -> io::Result<()> {
        let total: usize = buffers.iter().map(Bytes::len).sum();
        if total <= inline_max_bytes {
            return self.write_all_at_blocking(buffers, position);
        }
        self.write_all_at_uring(buffers, position).await
    }

    fn write_all_at_blocking(&self, mut buffers: Vec<Bytes>, mut position: u64) -> io::Result<()> {
        while !buffers.is_empty() {
            let slices: Vec<std::io::IoSlice<'_>> = buffers.iter().take(IOV_MAX_COUNT).map(|b| std::io::IoSlice::new(b)).collect();
            let written = nix::sys::uio::pwritev(&*self.0, &slices, position as i64).map_err(io::Error::from)?;
            drop(slices);
            if written == 0 {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "log write wrote nothing"));
            }
            position += written as u64;
            skip_written(&mut buffers, written);
        }
        Ok(())
    }

    async fn write_all_at_uring(&self, mut buffers: Vec<Bytes>, mut position: u64) -> io::Result<()> {
        loop {
            let total: usize = buffers.iter().map(Bytes::len).sum();
            if total == 0 {
                return Ok(());
            }
            let rest = if buffers.len() > IOV_MAX_COUNT { buffers.split_off(IOV_MAX_COUNT) } else { Vec::new() };
            let op = WriteVectoredAt::new(self.0.clone(), position, buffers);
            let compio::BufResult(result, op) = compio::runtime::submit(op).await;
            let written = result?;
            if written == 0 {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "log write wrote nothing"));
            }
            position += written as u64;
            buffers = compio::buf::IntoInner::into_inner(op);
            buffers.extend(rest);
            skip_written(&mut buffers, written);
        }
    }

    /// Reads up to `len` bytes at `position`; fewer at the end of the file.
    pub async fn read_at(&self, position: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut out: Vec<u8> = Vec::with_capacity(len);
        while out.len() < len {
            let want = len - out.len();
            let op = ReadAt::new(self.0.clone(), position + out.len() as u64, Vec::with_capacity(want));
            let compio::BufResult(result, op) = compio::runtime::submit(op).await;
            let n = result?;
            if n == 0 {
                break;
            }
            let mut chunk = compio::buf::IntoInner::into_inner(op);
            // SAFETY: the kernel wrote `n` bytes into the buffer's spare capacity (n <= want,
            // the capacity it was given); a raw submit does not set the length itself.
            unsafe { chunk.set_len(n) };
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// fdatasync through the ring.
    pub async fn sync_data(&self) -> io::Result<()> {
        super::fault::fsync_fault(&self.0)?;
        let len = self.size_if_journaled()?;
        let op = Sync::new(self.0.clone(), true);
        let compio::BufResult(result, _) = compio::runtime::submit(op).await;
        result?;
        self.journal_sync(len);
        Ok(())
    }

    /// The file's length before an fsync, when the power-cut emulation records fsyncs.
    fn size_if_journaled(&self) -> io::Result<u64> {
        if power::armed() {
            self.size_bytes()
        } else {
            Ok(0)
        }
    }

    fn journal_sync(&self, len: u64) {
        if power::armed() {
            power::record(power::Event::Sync { path: power::path_of(&self.0), len });
        }
    }

    /// A blocking positional read, for startup recovery.
    pub fn read_at_blocking(&self, position: u64, buf: &mut [u8]) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&*self.0, buf, position)
    }

    pub fn sync_data_blocking(&self) -> io::Result<()> {
        super::fault::fsync_fault(&self.0)?;
        let len = self.size_if_journaled()?;
        self.0.sync_data()?;
        self.journal_sync(len);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both write paths write every byte in order, with more buffers than one writev takes.
    #[test]
    fn both_write_paths_write_every_buffer_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let buffers: Vec<Bytes> = (0..3000u32).map(|i| Bytes::from(vec![(i % 251) as u8; 1 + (i % 7) as usize])).collect();
        let expected: Vec<u8> = buffers.iter().flat_map(|b| b.iter().copied()).collect();
        for (name, inline_max_bytes) in [("uring", 0), ("inline", usize::MAX)] {
            let path = dir.path().join(name);
            let file = LogFile::open(&path, true).unwrap();
            let buffers = buffers.clone();
            compio::runtime::Runtime::new().unwrap().block_on(async {
                file.write_all_at(buffers.clone(), 0, inline_max_bytes).await.unwrap();
                // And again after the end, as a second append would.
                file.write_all_at(buffers, expected.len() as u64, inline_max_bytes).await.unwrap();
            });
            let written = std::fs::read(&path).unwrap();
            assert_eq!(written.len(), 2 * expected.len(), "{name}");
            assert!(written[..expected.len()] == expected[..] && written[expected.len()..] == expected[..], "{name}: bytes out of order");
        }
    }
}
