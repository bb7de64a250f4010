//! Spate's native Kafka client: a producer, a consumer and an admin client that speak the
//! Kafka protocol to Spate or to any Kafka broker, modelled on Kafka's Java client.
//!
//! The client runs on compio (io_uring), like the broker: every object lives on the thread
//! that made it, and its background work (the producer's sender, the consumer's heartbeat and
//! prefetch) runs as tasks on that thread's runtime. Nothing here is `Send`; a program with
//! several threads makes a client per thread, the way the broker makes a shard per core.
//!
//! - `wire`: the requests and responses, one version per API.
//! - `conn`: one connection to one broker, pipelined, responses matched in order.
//! - `cluster`: bootstrap, metadata and the connections to each broker.
//! - `records`: building and reading RecordBatch v2, with `compression`.
//! - `producer`, `consumer` (with `assignor`), `admin`.

pub mod admin;
pub mod assignor;
pub mod cluster;
pub use crate::protocol::compression;
pub mod config;
pub mod conn;
pub mod consumer;
pub mod notify;
pub mod partitioner;
pub mod producer;
pub mod records;

pub use admin::Admin;
pub use assignor::TopicPartition;
pub use compression::Compression;
pub use config::ClientConfig;
pub use consumer::{Consumer, ConsumerRecord};
pub use producer::{Producer, ProducerRecord, RecordMetadata};
pub use records::Header;

use crate::protocol::error::ErrorCode;

/// Everything that can go wrong in the client. Cloneable, because one failed batch fails
/// every record in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The broker answered with an error code.
    Broker(ErrorCode, Option<String>),
    /// A connection could not be made or broke.
    Network(String),
    /// The broker sent something the client cannot decode.
    Protocol(String),
    /// An operation ran past its deadline (`request.timeout.ms`, `max.block.ms`,
    /// `delivery.timeout.ms`, `default.api.timeout.ms`).
    Timeout(String),
    /// A configuration value is missing or invalid.
    Config(String),
    /// The broker does not serve the version of an API the client needs.
    Unsupported(String),
    /// A record above `max.request.size`, or an argument the call cannot use.
    Invalid(String),
    /// The producer or consumer was closed.
    Closed,
}

impl Error {
    /// Whether sending again may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Broker(code, _) => code.is_retriable(),
            Error::Network(_) | Error::Timeout(_) => true,
            _ => false,
        }
    }

    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Broker(code, _) => Some(*code),
            _ => None,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Broker(code, Some(message)) => write!(f, "{code}: {message}"),
            Error::Broker(code, None) => write!(f, "{code}"),
            Error::Network(m) => write!(f, "network error: {m}"),
            Error::Protocol(m) => write!(f, "protocol error: {m}"),
            Error::Timeout(m) => write!(f, "timed out: {m}"),
            Error::Config(m) => write!(f, "invalid configuration: {m}"),
            Error::Unsupported(m) => write!(f, "unsupported: {m}"),
            Error::Invalid(m) => write!(f, "{m}"),
            Error::Closed => write!(f, "closed"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// An error code as a `Result`.
pub(crate) fn check(code: ErrorCode) -> Result<()> {
    if code.is_ok() {
        Ok(())
    } else {
        Err(Error::Broker(code, None))
    }
}
