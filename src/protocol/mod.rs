//! The Kafka wire protocol: pure functions from bytes to typed requests and from typed
//! responses to bytes.
//!
//! Architecture Invariant: `protocol/` does no IO and knows nothing of shards or logs. Record
//! bytes are never copied here: requests borrow them from the frame (`bytes::Bytes`), and
//! fetch responses leave holes that the network layer fills from segment files.

pub mod api;
pub mod codec;
pub mod compression;
pub mod error;
pub mod frame;
pub mod header;
pub mod messages;
pub mod record_batch;
pub mod records;
pub mod wire;

pub use api::ApiKey;
pub use error::ErrorCode;
