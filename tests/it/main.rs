//! Spate's integration tests: real clients (librdkafka through the `rdkafka` crate, and raw
//! Kafka protocol bytes) over real sockets against a broker with 4 shards, so that connections
//! and partitions land on different shards and cross-shard forwarding is exercised.
//!
//! One binary (`tests/it/`) so that everything links once.

mod admin;
mod bad_input;
mod client;
mod cluster;
mod crash_points;
mod groups;
mod offsets;
mod produce_consume;
mod recovery;
mod support;
mod transactions;
mod txn_admin;
mod zero_copy;
