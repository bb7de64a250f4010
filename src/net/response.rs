//! A response as the connection writes it: chunks of memory and ranges of segment files, with
//! the 4-byte size prefix and the response header at the front.

use bytes::{Bytes, BytesMut};

use crate::protocol::codec::Writer;
use crate::protocol::header::write_response_header;
use crate::protocol::ApiKey;
use crate::storage::FileSlice;

pub enum Chunk {
    Bytes(Bytes),
    File(FileSlice),
}

pub struct Response {
    pub chunks: Vec<Chunk>,
}

/// Starts a response: a writer holding a size placeholder and the response header, into which
/// the handler encodes the body; `finish` fills in the size.
pub struct ResponseWriter {
    pub body: Writer,
}

impl ResponseWriter {
    pub fn new(api_key: ApiKey, flexible: bool, correlation_id: i32) -> ResponseWriter {
        let mut body = Writer::with_capacity(256);
        body.i32(0); // size, filled in by `finish`
        write_response_header(&mut body, api_key, flexible, correlation_id);
        ResponseWriter { body }
    }

    pub fn finish(self) -> Response {
        let mut buf: BytesMut = self.body.finish();
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        Response { chunks: vec![Chunk::Bytes(buf.freeze())] }
    }

    /// Finishes a response whose body continues with `rest` pieces of `rest_len` bytes.
    pub fn finish_with(self, rest: Vec<Chunk>, rest_len: usize) -> Response {
        let mut buf: BytesMut = self.body.finish();
        let size = (buf.len() - 4 + rest_len) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        let mut chunks = Vec::with_capacity(rest.len() + 1);
        chunks.push(Chunk::Bytes(buf.freeze()));
        chunks.extend(rest);
        Response { chunks }
    }
}
