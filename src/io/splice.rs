//! Zero-copy sends: file ranges go from the page cache to a socket, never through user space,
//! by one of two paths:
//!
//! - A range of the active segment (what the broker wrote lately) whose pages are all in the
//!   page cache, asked with `cachestat(2)` (Linux 6.5) before each 1 MiB chunk, is sent with
//!   `sendfile(2)` on the shard thread itself. The socket is non-blocking, so a full socket
//!   returns EAGAIN (and the sender waits for writability); the pages are there, so there is no
//!   disk read to wait for. This is the usual case, a consumer reading what was just written,
//!   and it costs no thread hand-off: measured here, a seventh to a third of the context
//!   switches of the splice path and about a fifth less broker CPU per GiB fetched. Segment
//!   files are opened with O_NOATIME, so a read never updates an inode on the shard thread.
//!   What can still block it: a page evicted between the check and its chunk's send (one
//!   chunk's disk read), or a cached page of the active segment still being read in.
//! - Anything else (older segments, pages not cached, or a kernel without cachestat) goes
//!   through a pipe with io_uring SPLICE (file -> pipe, pipe -> socket). IORING_OP_SPLICE
//!   always runs in an io-wq worker, so a page-cache miss never blocks the shard.
//!
//! Each shard keeps a small pool of pipes (at most `SPLICE_PIPE_COUNT`, each sized to
//! `SPLICE_PIPE_SIZE_BYTES`): the machine caps pipe sizes and their number per user, so a pipe
//! per connection would not scale. A connection holds a pipe only while it sends one response.
//! The socket is non-blocking, so a slow reader makes the splice return EAGAIN (and the sender
//! wait for writability) instead of holding a worker.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use compio::driver::op::{Interest, PollOnce, Splice, SpliceFlags};
use compio::driver::ToSharedFd;

use super::file::LogFile;
use super::net::TcpStream;
use crate::config::limits;

struct Pipe {
    read: Arc<OwnedFd>,
    write: Arc<OwnedFd>,
    capacity: usize,
}

/// The shard's pipes. Bounded: when every pipe is in use, a sender waits for one.
pub struct PipePool {
    free: RefCell<Vec<Pipe>>,
    created: RefCell<usize>,
    released: flume::Sender<()>,
    wait: flume::Receiver<()>,
}

impl PipePool {
    pub fn new() -> Rc<PipePool> {
        let (released, wait) = flume::bounded(limits::SPLICE_PIPE_COUNT);
        Rc::new(PipePool { free: RefCell::new(Vec::new()), created: RefCell::new(0), released, wait })
    }

    async fn acquire(&self) -> io::Result<Pipe> {
        loop {
            if let Some(pipe) = self.free.borrow_mut().pop() {
                return Ok(pipe);
            }
            if *self.created.borrow() < limits::SPLICE_PIPE_COUNT {
                let pipe = new_pipe()?;
                *self.created.borrow_mut() += 1;
                return Ok(pipe);
            }
            // Every pipe is out; a release sends a token.
            let _ = self.wait.recv_async().await;
        }
    }

    fn release(&self, pipe: Option<Pipe>) {
        match pipe {
            Some(p) => self.free.borrow_mut().push(p),
            // A pipe that may still hold bytes (a failed send) is closed, not reused.
            None => *self.created.borrow_mut() -= 1,
        }
        let _ = self.released.try_send(());
    }

    /// Takes a pipe out of the pool's count while it stays with one connection (whose client
    /// stopped reading mid-chunk): the pool may open another, so other connections never wait
    /// on a stalled one. The detached pipe is closed when that send ends.
    fn detach(&self) {
        *self.created.borrow_mut() -= 1;
        let _ = self.released.try_send(());
    }

    /// Sends `len` bytes of `file` from `position` to `socket`, and says how many went by each
    /// path. The caller has already written everything that precedes these bytes on the socket.
    /// `sendfile_allowed` is false for ranges the broker did not write lately (outside the
    /// active segment): pages found cached there may still be on their way in from disk (a
    /// read-ahead), and sendfile would wait for them on the shard thread.
    pub async fn send_file(&self, socket: &TcpStream, file: &LogFile, position: u64, len: u64, sendfile_allowed: bool) -> io::Result<Sent> {
        let mut sent = Sent::default();
        if sendfile_allowed {
            sent.sendfile = sendfile_cached(socket, file, position, len).await?;
        }
        sent.spliced = len - sent.sendfile;
        self.splice_file(socket, file, position + sent.sendfile, sent.spliced).await?;
        Ok(sent)
    }

    /// The splice path. A pipe is held only while a chunk moves: the sender first waits
    /// (holding nothing) until the socket has room, then splices no more than that room, so a
    /// client that stops reading cannot pin the shard's pipes. If the socket still fills up
    /// mid-chunk, the wait that holds the pipe is bounded by `SPLICE_STALL_TIMEOUT`, after
    /// which the connection is given up.
    async fn splice_file(&self, socket: &TcpStream, file: &LogFile, mut position: u64, len: u64) -> io::Result<()> {
        let mut remaining = len;
        while remaining > 0 {
            let mut room = super::net::send_room(socket)?;
            if room == 0 {
                wait_writable(socket).await?;
                // Writable by the kernel's measure; if our estimate still says no room, send a
                // small chunk rather than poll again in a loop.
                room = super::net::send_room(socket)?.max(4096);
            }
            let pipe = self.acquire().await?;
            let chunk = remaining.min(pipe.capacity as u64).min(room as u64) as usize;
            let mut detached = false;
            let result = splice_chunk(&pipe, socket, file, position, chunk, || {
                self.detach();
                detached = true;
            })
            .await;
            if !detached {
                self.release(if result.is_ok() { Some(pipe) } else { None });
            }
            let sent = result?;
            position += sent as u64;
            remaining -= sent as u64;
        }
        Ok(())
    }
}

/// How many bytes of a range `PipePool::send_file` sent by each path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    /// With `sendfile(2)` on the shard thread (pages all cached).
    pub sendfile: u64,
    /// With io_uring SPLICE through a pipe, in io-wq workers.
    pub spliced: u64,
}

/// How long a send may wait at a time for a socket that does not drain (holding a pipe, on the
/// splice path).
const SPLICE_STALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Set once `cachestat(2)` turned out unusable (ENOSYS: a kernel before 6.5; EPERM: a seccomp
/// filter): every range then takes the splice path without asking again.
static CACHESTAT_UNUSABLE: AtomicBool = AtomicBool::new(false);

/// The whole pages that `len` bytes from `position` touch, for a page of `page` bytes: (first
/// byte, length in bytes, number of pages).
fn page_span(position: u64, len: u64, page: u64) -> (u64, u64, u64) {
    let (first, end) = (position / page, (position + len).div_ceil(page));
    (first * page, (end - first) * page, end - first)
}

/// Whether every page of `len` (> 0) bytes of `file` from `position` is in the page cache now.
fn page_cached(file: &std::fs::File, position: u64, len: u64) -> bool {
    use std::os::fd::AsRawFd;
    // The kernel's `struct cachestat_range` and `struct cachestat` (include/uapi/linux/mman.h);
    // the libc crate has neither, nor a wrapper.
    #[repr(C)]
    struct CachestatRange {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Cachestat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    // cachestat's number in the unified syscall table (x86_64, aarch64, riscv64 and most
    // others; not alpha or mips, where the call fails and the splice path is taken).
    const SYS_CACHESTAT: nix::libc::c_long = 451;
    if len == 0 || CACHESTAT_UNUSABLE.load(Ordering::Relaxed) {
        return false;
    }
    let (off, span, pages) = page_span(position, len, page_size());
    let range = CachestatRange { off, len: span };
    let mut stat = Cachestat::default();
    // SAFETY: cachestat reads `range` and writes `stat`, both live for the call, and `file`
    // keeps the descriptor open.
    let rc = unsafe { nix::libc::syscall(SYS_CACHESTAT, file.as_raw_fd(), &range as *const CachestatRange, &mut stat as *mut Cachestat, 0u32) };
    if rc != 0 {
        if matches!(io::Error::last_os_error().raw_os_error(), Some(nix::libc::ENOSYS | nix::libc::EPERM | nix::libc::EOPNOTSUPP)) {
            CACHESTAT_UNUSABLE.store(true, Ordering::Relaxed);
        }
        return false;
    }
    stat.nr_cache >= pages
}

fn page_size() -> u64 {
    static PAGE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    // SAFETY: sysconf only reads a constant of the system.
    *PAGE.get_or_init(|| match unsafe { nix::libc::sysconf(nix::libc::_SC_PAGESIZE) } {
        n if n > 0 => n as u64,
        _ => 4096,
    })
}

/// The most one sendfile call sends; the shard's other tasks run between calls, so that a large
/// response to a fast reader does not hold the shard for the whole of it.
const SENDFILE_CHUNK_BYTES: u64 = 1024 * 1024;

/// Sends as much of `len` bytes of `file` from `position` as is in the page cache, with
/// sendfile(2) on the calling (shard) thread, a chunk at a time, asking `cachestat` again before
/// each chunk: it stops at the first chunk not wholly cached and returns how many bytes it sent
/// (the rest takes the splice path). The socket is non-blocking: when it is full, the call
/// returns EAGAIN and this waits for writability, for at most `SPLICE_STALL_TIMEOUT` at a time.
async fn sendfile_cached(socket: &TcpStream, file: &LogFile, position: u64, len: u64) -> io::Result<u64> {
    use std::os::fd::AsFd;
    let fd = file.shared();
    let mut sent = 0u64;
    while sent < len {
        let chunk = (len - sent).min(SENDFILE_CHUNK_BYTES);
        if !page_cached(&fd, position + sent, chunk) {
            break;
        }
        let mut offset = (position + sent) as nix::libc::off_t;
        match nix::sys::sendfile::sendfile(socket.as_fd(), fd.as_fd(), Some(&mut offset), chunk as usize) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "log file ended before the fetched range")),
            Ok(n) => {
                sent += n as u64;
                if sent < len {
                    yield_now().await;
                }
            }
            Err(nix::errno::Errno::EAGAIN) => match compio::time::timeout(SPLICE_STALL_TIMEOUT, wait_writable(socket)).await {
                Ok(ready) => ready?,
                Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading a fetch response")),
            },
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(sent)
}

async fn wait_writable(socket: &TcpStream) -> io::Result<()> {
    let compio::BufResult(ready, _) = compio::runtime::submit(PollOnce::new(socket.to_shared_fd(), Interest::Writable)).await;
    ready.map(|_| ())
}

fn new_pipe() -> io::Result<Pipe> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    // The size is a request: without CAP_SYS_RESOURCE the kernel may refuse 1 MiB once the
    // user's pipe budget is spent, and the pipe then keeps its default size.
    let capacity =
        nix::fcntl::fcntl(write.as_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(limits::SPLICE_PIPE_SIZE_BYTES as i32)).map(|n| n as usize).unwrap_or(64 * 1024);
    Ok(Pipe { read: Arc::new(read), write: Arc::new(write), capacity })
}

async fn splice_op<I: AsFd + 'static, O: AsFd + 'static>(fd_in: I, offset_in: i64, fd_out: O, len: usize) -> io::Result<usize> {
    let op = Splice::new(fd_in, offset_in, fd_out, -1, len, SpliceFlags::MOVE);
    let compio::BufResult(result, _) = compio::runtime::submit(op).await;
    result
}

/// Moves up to `chunk` bytes from the file into the pipe and all of them on into the socket.
/// Returns how many bytes were sent (the file may hold fewer than asked at its end).
/// `on_stall` runs once, when the socket fills up while the pipe still holds bytes.
async fn splice_chunk(pipe: &Pipe, socket: &TcpStream, file: &LogFile, position: u64, chunk: usize, on_stall: impl FnOnce()) -> io::Result<usize> {
    let mut on_stall = Some(on_stall);
    let filled = splice_op(file.shared(), position as i64, pipe.write.clone(), chunk).await?;
    if filled == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "log file ended before the fetched range"));
    }
    // A short splice out of the pipe leaves bytes in it: keep draining until it is empty.
    let mut in_pipe = filled;
    while in_pipe > 0 {
        let sent = match splice_op(pipe.read.clone(), -1, socket.to_shared_fd(), in_pipe).await {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "socket closed during a fetch response")),
            Ok(n) => n,
            // The socket is non-blocking (so that io_uring polls it instead of parking an
            // io-wq worker on it): when its buffer is full, wait until it drains.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Some(stall) = on_stall.take() {
                    stall();
                }
                match compio::time::timeout(SPLICE_STALL_TIMEOUT, wait_writable(socket)).await {
                    Ok(ready) => ready?,
                    Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading a fetch response")),
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        in_pipe -= sent;
    }
    Ok(filled)
}

/// Lets the shard's other ready tasks run before the caller goes on.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return std::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_spans_the_whole_pages_it_touches() {
        assert_eq!(page_span(0, 1, 4096), (0, 4096, 1));
        assert_eq!(page_span(0, 4096, 4096), (0, 4096, 1));
        assert_eq!(page_span(0, 4097, 4096), (0, 8192, 2));
        assert_eq!(page_span(4095, 2, 4096), (0, 8192, 2), "one byte each side of a page boundary");
        assert_eq!(page_span(5000, 10_000, 4096), (4096, 12_288, 3));
        assert_eq!(page_span(8192, 4096, 4096), (8192, 4096, 1));
    }
}
