//! Requests from this broker to another one of its cluster, over the other's client listener,
//! as Kafka's brokers send them: the transaction coordinator's WriteTxnMarkers to partition
//! leaders, and a partition leader's AddPartitionsToTxn verification (KIP-890) to the
//! transaction coordinator.
//!
//! One connection per request, closed after it: these are a few requests per transaction, not
//! a data path (the replica fetchers keep their own connections, `replication.rs`, and send
//! over them with the same `round_trip`).

use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::protocol::codec::{Reader, Writer};
use crate::protocol::header::write_request_header;
use crate::protocol::wire::{Request, Version, Wire};

/// The largest response accepted from a peer (these responses are a few KiB).
const RESPONSE_BYTES_MAX: i32 = 16 << 20;

/// Sends `request` in `version` to the broker at `address` and returns its response, within
/// `timeout`.
pub async fn call<R: Request>(address: &str, request: &R, version: i16, timeout: Duration) -> std::io::Result<R::Response>
where
    R::Response: Wire,
{
    let exchange = async {
        let mut stream = compio::net::TcpStream::connect(address).await?;
        crate::io::net::configure_stream(&stream)?;
        round_trip(&mut stream, request, version, 1, "spate-broker", RESPONSE_BYTES_MAX).await
    };
    match compio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{:?} to {address} timed out", R::KEY))),
    }
}

/// One request and its response over `stream`, as this broker's client (`client_id`): the
/// framing both its peer requests and its replica fetchers (`replication.rs`) use. A response
/// larger than `max_bytes` is refused before anything is allocated for it.
pub(super) async fn round_trip<R: Request>(
    stream: &mut compio::net::TcpStream,
    request: &R,
    version: i16,
    correlation: i32,
    client_id: &str,
    max_bytes: i32,
) -> std::io::Result<R::Response>
where
    R::Response: Wire,
{
    use compio::io::{AsyncReadExt, AsyncWriteExt};
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let v = Version::new(version, version >= R::FLEXIBLE_FROM);
    let mut w = Writer::with_capacity(256);
    w.i32(0);
    write_request_header(&mut w, R::KEY, v, correlation, client_id);
    request.encode(&mut w, v);
    let mut frame: BytesMut = w.finish();
    let size = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    let compio::BufResult(written, _) = stream.write_all(frame.to_vec()).await;
    written?;
    let compio::BufResult(read, prefix) = stream.read_exact(Vec::with_capacity(4)).await;
    read?;
    let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    if !(4..=max_bytes).contains(&size) {
        return Err(invalid(format!("response of {size} bytes")));
    }
    let compio::BufResult(read, body) = stream.read_exact(Vec::with_capacity(size as usize)).await;
    read?;
    let mut r = Reader::unbudgeted(Bytes::from(body));
    let got = r.i32().map_err(|e| invalid(e.to_string()))?;
    if got != correlation {
        return Err(invalid(format!("correlation id {got}, not {correlation}")));
    }
    r.tagged_fields(v.flexible).and_then(|()| R::Response::decode(&mut r, v)).map_err(|e| invalid(e.to_string()))
}
