//! One module per API: its request as decoded from the wire and its response as encoded, both
//! version-gated field by field the way Kafka's JSON schemas describe them.

pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_topics;
pub mod describe_configs;
pub mod describe_groups;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod produce;
pub mod sync_group;

use super::codec::{DecodeResult, Reader};
use super::ApiKey;

/// Decodes a request body of any API, for checks that must cover every API key and version
/// (the fuzz targets and their seeded runs in `cargo test`). The broker's handlers call each
/// module's `decode_request` themselves, with the typed result.
pub fn decode_body(r: &mut Reader, api_key: ApiKey, version: i16, flexible: bool) -> DecodeResult<()> {
    fn done<T>(decoded: DecodeResult<T>) -> DecodeResult<()> {
        decoded.map(drop)
    }
    match api_key {
        ApiKey::Produce => done(produce::decode_request(r, version, flexible)),
        ApiKey::Fetch => done(fetch::decode_request(r, version, flexible)),
        ApiKey::ListOffsets => done(list_offsets::decode_request(r, version, flexible)),
        ApiKey::Metadata => done(metadata::decode_request(r, version, flexible)),
        ApiKey::ApiVersions => done(api_versions::decode_request(r, version)),
        ApiKey::CreateTopics => done(create_topics::decode_request(r, version, flexible)),
        ApiKey::DeleteTopics => done(delete_topics::decode_request(r, version, flexible)),
        ApiKey::InitProducerId => done(init_producer_id::decode_request(r, version, flexible)),
        ApiKey::DescribeConfigs => done(describe_configs::decode_request(r, version, flexible)),
        ApiKey::CreatePartitions => done(create_partitions::decode_request(r, version, flexible)),
        ApiKey::OffsetCommit => done(offset_commit::decode_request(r, version, flexible)),
        ApiKey::OffsetFetch => done(offset_fetch::decode_request(r, version, flexible)),
        ApiKey::FindCoordinator => done(find_coordinator::decode_request(r, version, flexible)),
        ApiKey::JoinGroup => done(join_group::decode_request(r, version, flexible)),
        ApiKey::Heartbeat => done(heartbeat::decode_request(r, version, flexible)),
        ApiKey::LeaveGroup => done(leave_group::decode_request(r, version, flexible)),
        ApiKey::SyncGroup => done(sync_group::decode_request(r, version, flexible)),
        ApiKey::DescribeGroups => done(describe_groups::decode_request(r, version, flexible)),
        ApiKey::ListGroups => done(list_groups::decode_request(r, version, flexible)),
        ApiKey::DeleteGroups => done(delete_groups::decode_request(r, version, flexible)),
        ApiKey::OffsetDelete => done(offset_delete::decode_request(r, version, flexible)),
    }
}
