//! One module per API: its request as decoded from the wire and its response as encoded, both
//! version-gated field by field the way Kafka's JSON schemas describe them.

pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_topics;
pub mod describe_configs;
pub mod fetch;
pub mod init_producer_id;
pub mod list_offsets;
pub mod metadata;
pub mod produce;
