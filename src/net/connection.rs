//! One client connection, served by the shard that accepted it.
//!
//! The reader splits frames and hands each to the broker's dispatcher, whose first phase runs
//! before the next frame is read (so work for one partition is queued in request order); what
//! it returns is a future of the response, queued here. The writer awaits those futures in
//! queue order, so responses leave in request order while later requests are already being
//! worked on. The queue is bounded: a client that pipelines more than
//! `CONNECTION_REQUESTS_IN_FLIGHT_MAX` requests waits.

use std::io;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use compio::io::{AsyncRead, AsyncWriteExt};

use super::response::{Chunk, Response};
use crate::config::limits;
use crate::io::net::TcpStream;
use crate::metrics::Metrics;
use crate::protocol::frame::{next_frame, FrameError};
use crate::shard::budget::{ConnectionBudget, Permit};
use crate::shard::{LocalBoxFuture, Shard};

/// What a connection does with one request: the handler's first phase has run, and this is
/// the rest.
pub enum Dispatched {
    /// The response, or `None` for requests that get none (acks=0 produces).
    Respond(LocalBoxFuture<Option<Response>>),
    /// The request cannot be answered in its own version: close the connection, as Kafka does.
    Close(String),
}

/// What serves the requests a connection reads (the broker's handlers, `broker::Broker`). A
/// trait rather than an import so that `net/` stays below the handlers that use its
/// `Response`.
pub trait Handler: 'static {
    /// Runs the request's first phase (decode, hand partitions to their shards) and returns
    /// the rest. `peer` is the client's address.
    fn dispatch(shard: &Rc<Shard>, frame: Bytes, peer: &str) -> impl std::future::Future<Output = Dispatched>;
}

pub async fn serve<H: Handler>(shard: Rc<Shard>, stream: TcpStream, peer: std::net::SocketAddr) {
    // `max.connections`, broker-wide: a connection past the limit is closed at once.
    let Some(_slot) = ConnectionSlot::take(&shard) else {
        tracing::warn!(%peer, limit = shard.config().max_connections, "max.connections reached; closing a new connection");
        return;
    };
    if let Err(e) = crate::io::net::configure_stream(&stream) {
        tracing::debug!(error = %e, "could not configure a connection");
        return;
    }
    let stream = Rc::new(stream);
    let (queue, pending) = flume::bounded::<Queued>(limits::CONNECTION_REQUESTS_IN_FLIGHT_MAX);
    let writer = {
        let shard = shard.clone();
        let stream = stream.clone();
        compio::runtime::spawn(async move { write_responses(&shard, &stream, pending).await })
    };
    let result = read_requests::<H>(&shard, &stream, queue, &peer.ip().to_string()).await;
    match &result {
        Err(e) if e.kind() == io::ErrorKind::InvalidData => tracing::warn!(shard = shard.id.0, error = %e, "closing a connection"),
        Err(e) => tracing::debug!(shard = shard.id.0, error = %e, "connection reader ended"),
        Ok(()) => {}
    }
    // The writer sends what was queued before the reader stopped, then ends.
    let _ = writer.await;
}

/// A response on its way: the request's API key and when its frame was read (for the request
/// times), and the future of the response.
struct Queued {
    api_key: i16,
    read_at: std::time::Instant,
    response: LocalBoxFuture<Option<Response>>,
    /// The request's bytes in the budget, given back once the response is written.
    _permit: Permit,
}

async fn read_requests<H: Handler>(shard: &Rc<Shard>, stream: &TcpStream, queue: flume::Sender<Queued>, peer: &str) -> io::Result<()> {
    let max_bytes = shard.config().socket_request_max_bytes;
    let idle = std::time::Duration::from_millis(shard.config().connections_max_idle_ms);
    let mut buf = BytesMut::new();
    // `queued.max.request.bytes`: every byte read is held in the budget until its request is
    // answered (see `shard::budget`).
    let budget = ConnectionBudget::new(limits::CONNECTION_REQUEST_BYTES_IN_FLIGHT_MAX);
    let mut reading = shard.request_budget.permit(&budget);
    loop {
        loop {
            let frame = match next_frame(&mut buf, max_bytes) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(FrameError::TooLarge(size)) => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, format!("request size {size} is above socket.request.max.bytes")));
                }
            };
            let permit = reading.split(4 + frame.len() as u64);
            let read_at = std::time::Instant::now();
            let api_key = frame.get(..2).map_or(-1, |k| i16::from_be_bytes([k[0], k[1]]));
            match H::dispatch(shard, frame, peer).await {
                Dispatched::Respond(response) => {
                    if queue.send_async(Queued { api_key, read_at, response, _permit: permit }).await.is_err() {
                        return Ok(()); // the writer stopped: the socket is gone
                    }
                }
                Dispatched::Close(reason) => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, reason));
                }
            }
        }
        // An idle connection keeps no large buffer: what a big request grew is given back.
        if buf.is_empty() && buf.capacity() > limits::CONNECTION_READ_CHUNK_BYTES {
            buf = BytesMut::new();
        }
        // Read what the frame in progress still needs, between 4 KiB and the read chunk, or
        // more when the kernel already holds more of it: the buffer grows by what has really
        // arrived (to at most twice that), never by what a size prefix claims, so a connection
        // that stalls after its prefix holds a few KiB. Growing once by what the kernel holds,
        // rather than doubling a chunk at a time, spares copying a large frame's start over
        // and over (each growth copies what is in the buffer).
        let pending = frame_bytes_missing(&buf).unwrap_or(0);
        let mut want = pending.clamp(limits::CONNECTION_READ_MIN_BYTES, limits::CONNECTION_READ_CHUNK_BYTES);
        if pending > want && buf.capacity() - buf.len() < pending {
            want = pending.min(crate::io::net::received_unread(stream)?.max(want));
        }
        if buf.capacity() - buf.len() < want {
            buf.reserve(want.max(buf.len().min(pending)));
        }
        // The buffer's memory, what it holds and what the read may fill, is in the budget
        // before the read is made: past the budget a connection about to start a request
        // waits here, reading nothing.
        let held = buf.capacity() as u64;
        reading.shrink_to(held);
        if buf.is_empty() {
            reading.grow_to(held).await;
        } else {
            // The rest of a request already begun: it never waits (see `shard::budget`).
            reading.grow_now(held);
        }
        let read_into = buf.split_off(buf.len());
        // `connections.max.idle.ms`: a client that sends nothing for that long is disconnected.
        let mut reader = stream;
        let read = AsyncRead::read(&mut reader, read_into);
        let compio::BufResult(result, filled) = match compio::time::timeout(idle, read).await {
            Ok(done) => done,
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "idle for connections.max.idle.ms")),
        };
        let n = result?;
        buf.unsplit(filled);
        if n == 0 {
            return Ok(());
        }
    }
}

/// One of the broker's `max.connections`, held for a connection's life.
struct ConnectionSlot(std::sync::Arc<crate::shard::Shared>);

impl ConnectionSlot {
    fn take(shard: &Shard) -> Option<ConnectionSlot> {
        use std::sync::atomic::Ordering;
        let shared = shard.shared.clone();
        if shared.connections.fetch_add(1, Ordering::Relaxed) >= shared.config.max_connections {
            shared.connections.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(ConnectionSlot(shared))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How many bytes the frame at the front of `buf` still lacks, when its size prefix is there.
fn frame_bytes_missing(buf: &BytesMut) -> Option<usize> {
    let prefix: [u8; 4] = buf.get(..4)?.try_into().ok()?;
    let total = 4 + i32::from_be_bytes(prefix).max(0) as usize;
    Some(total.saturating_sub(buf.len()))
}

async fn write_responses(shard: &Rc<Shard>, stream: &TcpStream, pending: flume::Receiver<Queued>) {
    while let Ok(Queued { api_key, read_at, response, _permit }) = pending.recv_async().await {
        // A request without a response (acks=0) is timed to the end of its work.
        if let Some(response) = response.await {
            if let Err(e) = write_response(shard, stream, response).await {
                tracing::debug!(error = %e, "connection writer ended");
                crate::io::net::shutdown(stream);
                return;
            }
        }
        shard.request_times.record(api_key, read_at.elapsed().as_micros() as u64);
    }
}

async fn write_response(shard: &Rc<Shard>, stream: &TcpStream, response: Response) -> io::Result<()> {
    let mut memory: Vec<Bytes> = Vec::new();
    for chunk in response.chunks {
        match chunk {
            Chunk::Bytes(b) => memory.push(b),
            Chunk::File(slice) => {
                if !memory.is_empty() {
                    write_all(shard, stream, std::mem::take(&mut memory)).await?;
                }
                let sent = shard.pipes.send_file(stream, &slice.file, slice.position, slice.len as u64, slice.active_segment).await?;
                Metrics::add(&shard.shared.metrics.socket_bytes_sendfile, sent.sendfile);
                Metrics::add(&shard.shared.metrics.socket_bytes_spliced, sent.spliced);
            }
        }
    }
    if !memory.is_empty() {
        write_all(shard, stream, memory).await?;
    }
    Ok(())
}

async fn write_all(shard: &Shard, stream: &TcpStream, buffers: Vec<Bytes>) -> io::Result<()> {
    let len: usize = buffers.iter().map(Bytes::len).sum();
    let compio::BufResult(result, _) = (&mut &*stream).write_vectored_all(buffers).await;
    result?;
    Metrics::add(&shard.shared.metrics.socket_bytes_from_memory, len as u64);
    Ok(())
}
