//! One connection to one broker. Requests are pipelined: a writer task sends frames in the
//! order they were queued, a reader task matches each response to the oldest request still
//! waiting (Kafka answers a connection's requests in order) and checks its correlation id.
//! A request that waits longer than `request.timeout.ms` closes the connection, as in the
//! Java client: the responses behind it could no longer be matched safely.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use compio::io::{AsyncRead, AsyncWriteExt};
use compio::net::TcpStream;

use super::{Error, Result};
use crate::protocol::api::ApiKey;
use crate::protocol::codec::{Fill, Reader, Writer};
use crate::protocol::frame::next_frame;
use crate::protocol::header::write_request_header;
use crate::protocol::messages::api_versions::ApiVersionsRequest;
use crate::protocol::wire::{Request, Version, Wire};

/// The version the client speaks for each API: the newest non-flexible one (Kafka 4 still
/// serves all of them, KIP-896). `Connection::open` checks each against the broker's
/// ApiVersions answer before it is used. The messages themselves are the broker's own
/// definitions (`protocol::messages`).
pub const fn version_of(key: ApiKey) -> i16 {
    match key {
        ApiKey::Produce => 7,
        ApiKey::Fetch => 11,
        ApiKey::ListOffsets => 5,
        ApiKey::Metadata => 8,
        ApiKey::ApiVersions => 0,
        ApiKey::CreateTopics => 4,
        ApiKey::DeleteTopics => 3,
        ApiKey::InitProducerId => 1,
        ApiKey::DescribeConfigs => 1,
        ApiKey::CreatePartitions => 1,
        ApiKey::OffsetCommit => 7,
        ApiKey::OffsetFetch => 5,
        ApiKey::FindCoordinator => 2,
        ApiKey::JoinGroup => 5,
        ApiKey::Heartbeat => 3,
        ApiKey::LeaveGroup => 3,
        ApiKey::SyncGroup => 3,
        ApiKey::DescribeGroups => 4,
        ApiKey::ListGroups => 2,
        ApiKey::DeleteGroups => 1,
        ApiKey::OffsetDelete => 0,
        ApiKey::OffsetForLeaderEpoch => 3,
        ApiKey::DescribeLogDirs => 1,
        ApiKey::ElectLeaders => 1,
        // Flexible from their first version: the client encodes them flexibly.
        ApiKey::DescribeQuorum => 2,
        ApiKey::DescribeCluster => 1,
        ApiKey::AlterPartitionReassignments => 0,
        ApiKey::ListPartitionReassignments => 0,
        ApiKey::AddPartitionsToTxn => 3,
        ApiKey::AddOffsetsToTxn => 3,
        ApiKey::EndTxn => 3,
        ApiKey::WriteTxnMarkers => 1,
        ApiKey::TxnOffsetCommit => 3,
        ApiKey::DescribeProducers => 0,
        ApiKey::DescribeTransactions => 0,
        // Version 1 (DurationFilter) reaches Kafka 3.8 and later; version 2 only adds the id
        // pattern, which `spate transactions list` applies itself.
        ApiKey::ListTransactions => 1,
        ApiKey::DeleteRecords => 2,
        ApiKey::AlterConfigs => 2,
        ApiKey::IncrementalAlterConfigs => 1,
    }
}

/// The version the client encodes `R` in.
pub fn version<R: Request>() -> Version {
    let v = version_of(R::KEY);
    Version::new(v, v >= R::FLEXIBLE_FROM)
}

/// Byte fields at least this long (a Produce's record batches) are sent by reference, not
/// copied into the request's buffer.
const SEND_BY_REFERENCE_BYTES: usize = 512;

/// The largest response the client accepts (a fetch is bounded by `fetch.max.bytes`; this is
/// the backstop against a corrupt size prefix).
const MAX_RESPONSE_BYTES: u32 = 256 << 20;
const READ_CHUNK_BYTES: usize = 256 << 10;

type Waiter = flume::Sender<Result<Bytes>>;

struct Shared {
    stream: TcpStream,
    /// Correlation ids and waiters of the requests sent, oldest first.
    pending: RefCell<VecDeque<(i32, Waiter)>>,
    failure: RefCell<Option<Error>>,
}

impl Shared {
    fn fail(&self, error: Error) {
        self.failure.borrow_mut().get_or_insert(error.clone());
        crate::io::net::shutdown(&self.stream);
        for (_, waiter) in self.pending.borrow_mut().drain(..) {
            let _ = waiter.send(Err(error.clone()));
        }
    }
}

/// A cheap handle to a connection; the connection closes when the last handle is dropped.
#[derive(Clone)]
pub struct Connection {
    inner: Rc<Handle>,
}

struct Handle {
    shared: Rc<Shared>,
    frames: flume::Sender<Vec<Bytes>>,
    next_correlation: Cell<i32>,
    client_id: String,
    request_timeout: Duration,
    /// The broker's version range for each API key.
    versions: HashMap<i16, (i16, i16)>,
    pub addr: String,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.fail(Error::Closed);
    }
}

impl Connection {
    /// Connects and asks the broker which API versions it serves.
    pub async fn open(addr: &str, client_id: &str, connect_timeout: Duration, request_timeout: Duration) -> Result<Connection> {
        let stream = match compio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(Error::Network(format!("cannot connect to {addr}: {e}"))),
            Err(_) => return Err(Error::Timeout(format!("connecting to {addr}"))),
        };
        stream.set_nodelay(true).map_err(|e| Error::Network(e.to_string()))?;
        let shared = Rc::new(Shared { stream, pending: RefCell::new(VecDeque::new()), failure: RefCell::new(None) });
        let (frames, queued) = flume::unbounded::<Vec<Bytes>>();
        compio::runtime::spawn(write_frames(shared.clone(), queued)).detach();
        compio::runtime::spawn(read_responses(shared.clone())).detach();
        let mut handle = Handle {
            shared,
            frames,
            next_correlation: Cell::new(1),
            client_id: client_id.to_string(),
            request_timeout,
            versions: HashMap::new(),
            addr: addr.to_string(),
        };
        let answer = Connection::call(&handle, &ApiVersionsRequest::default(), request_timeout).await?;
        super::check(answer.error)?;
        handle.versions = answer.api_keys.iter().map(|a| (a.api_key, (a.min_version, a.max_version))).collect();
        Ok(Connection { inner: Rc::new(handle) })
    }

    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// Whether the connection has failed (a new one must be opened).
    pub fn is_broken(&self) -> bool {
        self.inner.shared.failure.borrow().is_some()
    }

    /// Whether the broker serves the version of `key` the client speaks.
    pub fn supports(&self, key: ApiKey) -> bool {
        let v = version_of(key);
        self.inner.versions.get(&(key as i16)).is_some_and(|&(min, max)| min <= v && v <= max)
    }

    /// Sends a request and waits for its response.
    pub async fn send<R: Request>(&self, request: &R) -> Result<R::Response> {
        if !self.supports(R::KEY) {
            return Err(Error::Unsupported(format!("{:?} version {} is not served by {}", R::KEY, version_of(R::KEY), self.inner.addr)));
        }
        Connection::call(&self.inner, request, self.inner.request_timeout).await
    }

    /// `send` with its own deadline (a JoinGroup waits for the whole rebalance).
    pub async fn send_with_timeout<R: Request>(&self, request: &R, timeout: Duration) -> Result<R::Response> {
        if !self.supports(R::KEY) {
            return Err(Error::Unsupported(format!("{:?} version {} is not served by {}", R::KEY, version_of(R::KEY), self.inner.addr)));
        }
        Connection::call(&self.inner, request, timeout).await
    }

    /// Sends a request that gets no response (a Produce with acks=0).
    pub fn send_only<R: Request>(&self, request: &R) -> Result<()> {
        let (frame, _) = self.inner.frame(request);
        self.inner.check()?;
        self.inner.frames.send(frame).map_err(|_| Error::Closed)
    }

    async fn call<R: Request>(handle: &Handle, request: &R, timeout: Duration) -> Result<R::Response> {
        let (frame, correlation_id) = handle.frame(request);
        handle.check()?;
        let (waiter, answer) = flume::bounded(1);
        handle.shared.pending.borrow_mut().push_back((correlation_id, waiter));
        handle.frames.send(frame).map_err(|_| Error::Closed)?;
        let body = match compio::time::timeout(timeout, answer.recv_async()).await {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => return Err(Error::Closed),
            Err(_) => {
                let error = Error::Timeout(format!("{:?} request to {} after {timeout:?}", R::KEY, handle.addr));
                handle.shared.fail(error.clone());
                return Err(error);
            }
        };
        let mut r = Reader::unbudgeted(body);
        let v = version::<R>();
        let decoded = if v.flexible && R::KEY != ApiKey::ApiVersions { r.tagged_fields(true) } else { Ok(()) };
        decoded.and_then(|()| R::Response::decode(&mut r, v)).map_err(|e| Error::Protocol(format!("{:?} response: {e}", R::KEY)))
    }
}

impl Handle {
    fn check(&self) -> Result<()> {
        match &*self.shared.failure.borrow() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Encodes a request as the pieces of one frame: the encoded fields, with the record
    /// batches a Produce carries spliced in by reference rather than copied.
    fn frame<R: Request>(&self, request: &R) -> (Vec<Bytes>, i32) {
        let correlation_id = self.next_correlation.get();
        self.next_correlation.set(correlation_id.wrapping_add(1) & i32::MAX);
        let v = version::<R>();
        let mut w = Writer::with_capacity(256).leaving_holes_over(SEND_BY_REFERENCE_BYTES);
        w.i32(0); // size, filled in below
        write_request_header(&mut w, R::KEY, v, correlation_id, &self.client_id);
        request.encode(&mut w, v);
        let size = w.encoded_len() - 4;
        let (mut encoded, holes): (BytesMut, _) = w.finish_with_holes();
        encoded[..4].copy_from_slice(&(size as i32).to_be_bytes());
        let mut encoded = encoded.freeze();
        let mut parts = Vec::with_capacity(1 + 2 * holes.len());
        let mut taken = 0;
        for hole in holes {
            parts.push(encoded.split_to(hole.at - taken));
            taken = hole.at;
            match hole.fill {
                Fill::Bytes(bytes) => parts.push(bytes),
                Fill::Spliced { .. } => unreachable!("a request has no file ranges"),
            }
        }
        parts.push(encoded);
        parts.retain(|p| !p.is_empty());
        (parts, correlation_id)
    }
}

async fn write_frames(shared: Rc<Shared>, queued: flume::Receiver<Vec<Bytes>>) {
    while let Ok(first) = queued.recv_async().await {
        // Whatever else is queued goes out in the same system call (up to IOV_MAX pieces).
        let mut frames = first;
        while frames.len() < 512 {
            match queued.try_recv() {
                Ok(f) => frames.extend(f),
                Err(_) => break,
            }
        }
        let compio::BufResult(result, _) = (&mut &shared.stream).write_vectored_all(frames).await;
        if let Err(e) = result {
            shared.fail(Error::Network(format!("write: {e}")));
            return;
        }
    }
}

async fn read_responses(shared: Rc<Shared>) {
    let mut buf = BytesMut::new();
    loop {
        loop {
            let frame = match next_frame(&mut buf, MAX_RESPONSE_BYTES) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(_) => return shared.fail(Error::Protocol("response size out of range".into())),
            };
            if frame.len() < 4 {
                return shared.fail(Error::Protocol("response shorter than its header".into()));
            }
            let correlation_id = i32::from_be_bytes(frame[..4].try_into().expect("4 bytes"));
            let Some((expected, waiter)) = shared.pending.borrow_mut().pop_front() else {
                return shared.fail(Error::Protocol(format!("unsolicited response {correlation_id}")));
            };
            if expected != correlation_id {
                return shared.fail(Error::Protocol(format!("response {correlation_id} where {expected} was expected")));
            }
            let _ = waiter.send(Ok(frame.slice(4..)));
        }
        if buf.capacity() - buf.len() < READ_CHUNK_BYTES / 4 {
            buf.reserve(READ_CHUNK_BYTES);
        }
        let read_into = buf.split_off(buf.len());
        let compio::BufResult(result, filled) = AsyncRead::read(&mut &shared.stream, read_into).await;
        buf.unsplit(filled);
        match result {
            Ok(0) => return shared.fail(Error::Network("connection closed by the broker".into())),
            Ok(_) => {}
            Err(e) => return shared.fail(Error::Network(format!("read: {e}"))),
        }
    }
}
