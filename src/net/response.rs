//! A response as the connection writes it: chunks of memory and ranges of segment files, with
//! the 4-byte size prefix and the response header at the front.

use bytes::{Bytes, BytesMut};

use crate::protocol::codec::{Fill, Writer};
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

    /// Finishes a response whose body has holes (`Writer::hole`): the buffer's pieces go out
    /// with the file range `files[id]` in each `Fill::Spliced { id, .. }` hole, never read
    /// into memory.
    pub fn finish_spliced(self, files: Vec<FileSlice>) -> Response {
        let size = (self.body.encoded_len() - 4) as i32;
        let (mut buf, holes) = self.body.finish_with_holes();
        buf[..4].copy_from_slice(&size.to_be_bytes());
        let mut buf = buf.freeze();
        let mut files: Vec<Option<FileSlice>> = files.into_iter().map(Some).collect();
        let mut chunks = Vec::with_capacity(2 * holes.len() + 1);
        let mut taken = 0;
        for hole in holes {
            chunks.push(Chunk::Bytes(buf.split_to(hole.at - taken)));
            taken = hole.at;
            chunks.push(match hole.fill {
                Fill::Bytes(b) => Chunk::Bytes(b),
                Fill::Spliced { id, .. } => Chunk::File(files[id as usize].take().expect("each file range fills one hole")),
            });
        }
        chunks.push(Chunk::Bytes(buf));
        chunks.retain(|c| !matches!(c, Chunk::Bytes(b) if b.is_empty()));
        Response { chunks }
    }
}
