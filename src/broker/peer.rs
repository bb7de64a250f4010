//! Requests from this broker to another one of its cluster, over the other's client listener,
//! as Kafka's brokers send them: the transaction coordinator's WriteTxnMarkers to partition
//! leaders, and a partition leader's AddPartitionsToTxn verification (KIP-890) to the
//! transaction coordinator.
//!
//! One connection per request, closed after it: these are a few requests per transaction, not
//! a data path (the replica fetchers keep their own connections, `replication.rs`).

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
    use compio::io::{AsyncReadExt, AsyncWriteExt};
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let exchange = async {
        let mut stream = compio::net::TcpStream::connect(address).await?;
        crate::io::net::configure_stream(&stream)?;
        let v = Version::new(version, version >= R::FLEXIBLE_FROM);
        let mut w = Writer::with_capacity(256);
        w.i32(0);
        write_request_header(&mut w, R::KEY, v, 1, "spate-broker");
        request.encode(&mut w, v);
        let mut frame: BytesMut = w.finish();
        let size = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        let compio::BufResult(written, _) = stream.write_all(frame.to_vec()).await;
        written?;
        let compio::BufResult(read, prefix) = stream.read_exact(Vec::with_capacity(4)).await;
        read?;
        let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        if !(4..=RESPONSE_BYTES_MAX).contains(&size) {
            return Err(invalid(format!("response of {size} bytes")));
        }
        let compio::BufResult(read, body) = stream.read_exact(Vec::with_capacity(size as usize)).await;
        read?;
        let mut r = Reader::unbudgeted(Bytes::from(body));
        let correlation = r.i32().map_err(|e| invalid(e.to_string()))?;
        if correlation != 1 {
            return Err(invalid(format!("correlation id {correlation}, not 1")));
        }
        r.tagged_fields(v.flexible).and_then(|()| R::Response::decode(&mut r, v)).map_err(|e| invalid(e.to_string()))
    };
    match compio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{:?} to {address} timed out", R::KEY))),
    }
}
