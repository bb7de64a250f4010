//! Connections: accepting bytes, splitting size-prefixed frames, keeping the queue of requests
//! in flight, and writing responses in request order (memory bytes with writev, record bytes
//! spliced from segment files). It knows nothing of Kafka beyond the 4-byte size prefix and
//! the response header: what a request means is the `connection::Handler`'s business.

pub mod connection;
pub mod response;

pub use response::{Chunk, Response};
