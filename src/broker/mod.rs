//! One handler per Kafka API. `dispatch` decodes a frame's header, picks the handler, and
//! returns the future of the response.
//!
//! Handlers work in two phases, as Redpanda's do: the dispatch phase (until `dispatch`
//! returns) decodes the request and sends each partition's work to the shard that owns it, in
//! request order; the returned future gathers the answers and encodes the response. The
//! connection reads the next request as soon as the first phase is done.

mod admin;
mod cluster;
mod controller;
mod delete_records;
mod fetch;
mod groups;
mod leader_epoch;
mod list_offsets;
mod log_dirs;
mod metadata;
mod peer;
mod produce;
mod reassign;
pub mod replication;
mod route;
mod txn;
mod txn_admin;

use std::rc::Rc;

use bytes::Bytes;

pub use controller::{apply_catalog, remove_orphans, ControllerCommand};
pub use groups::{load_group_partition, offsets_partitions};
pub use txn::{expire_transactions, load_txn_partition, unload_txn_partition};

use crate::net::response::{Response, ResponseWriter};
use crate::protocol::codec::{DecodeError, Reader};
use crate::protocol::header::{read_header_rest, read_prefix, RequestHeader};
use crate::protocol::messages::api_versions::{ApiVersionsRequest, ApiVersionsResponse};
use crate::protocol::wire::{Version, Wire};
use crate::protocol::{ApiKey, ErrorCode};
use crate::shard::Shard;

pub use crate::net::connection::Dispatched;

/// The broker's handlers, as connections call them.
pub struct Broker;

impl crate::net::connection::Handler for Broker {
    fn dispatch(shard: &Rc<Shard>, frame: Bytes, peer: &str) -> impl std::future::Future<Output = Dispatched> {
        dispatch(shard, frame, peer)
    }
}

fn ready(response: Response) -> Dispatched {
    Dispatched::Respond(Box::pin(std::future::ready(Some(response))))
}

fn malformed(header: &RequestHeader, e: DecodeError) -> Dispatched {
    Dispatched::Close(format!("malformed {:?} v{} request: {e}", header.api_key, header.api_version))
}

/// Decodes the request body of `header`'s API and version.
fn decode<T: Wire>(header: &RequestHeader, r: &mut Reader) -> Result<T, DecodeError> {
    T::decode(r, header.version())
}

/// The response to `header`, encoded in the request's version.
fn respond<T: Wire>(header: &RequestHeader, response: &T) -> Response {
    let mut w = ResponseWriter::new(header.api_key, header.flexible, header.correlation_id);
    response.encode(&mut w.body, header.version());
    w.finish()
}

/// Decodes a frame's header and hands the request to its handler. `peer` is the client's
/// address, as group members report it.
pub async fn dispatch(shard: &Rc<Shard>, frame: Bytes, peer: &str) -> Dispatched {
    let mut r = Reader::new(frame);
    let Ok(prefix) = read_prefix(&mut r) else { return Dispatched::Close("request shorter than its header".into()) };
    let Some(api_key) = ApiKey::from_i16(prefix.api_key) else {
        return Dispatched::Close(format!("unknown api key {}", prefix.api_key));
    };
    if !api_key.supports(prefix.api_version) {
        if api_key == ApiKey::ApiVersions {
            // KIP-511: answer in v0 with UNSUPPORTED_VERSION and our ranges, so the client
            // can retry with a version we share.
            let mut w = ResponseWriter::new(ApiKey::ApiVersions, false, prefix.correlation_id);
            ApiVersionsResponse::of_spate(ErrorCode::UNSUPPORTED_VERSION).encode(&mut w.body, Version::new(0, false));
            return ready(w.finish());
        }
        return Dispatched::Close(format!("unsupported version {} of {:?}", prefix.api_version, api_key));
    }
    let header = match read_header_rest(&mut r, prefix, api_key) {
        Ok(h) => h,
        Err(e) => return Dispatched::Close(format!("malformed request header: {e}")),
    };
    match api_key {
        ApiKey::ApiVersions => match decode::<ApiVersionsRequest>(&header, &mut r) {
            Ok(_) => ready(respond(&header, &ApiVersionsResponse::of_spate(ErrorCode::NONE))),
            Err(e) => malformed(&header, e),
        },
        ApiKey::Produce => produce::dispatch(shard, header, r).await,
        ApiKey::Fetch => fetch::dispatch(shard, header, r),
        ApiKey::ListOffsets => list_offsets::dispatch(shard, header, r).await,
        ApiKey::Metadata => metadata::dispatch(shard, header, r),
        ApiKey::CreateTopics => admin::create_topics(shard, header, r),
        ApiKey::DeleteTopics => admin::delete_topics(shard, header, r),
        ApiKey::CreatePartitions => admin::create_partitions(shard, header, r),
        ApiKey::DescribeConfigs => admin::describe_configs(shard, header, r),
        ApiKey::FindCoordinator => groups::find_coordinator(shard, header, r),
        ApiKey::JoinGroup => groups::join_group(shard, header, r, format!("/{peer}")),
        ApiKey::SyncGroup => groups::sync_group(shard, header, r),
        ApiKey::Heartbeat => groups::heartbeat(shard, header, r),
        ApiKey::LeaveGroup => groups::leave_group(shard, header, r),
        ApiKey::OffsetCommit => groups::offset_commit(shard, header, r),
        ApiKey::OffsetFetch => groups::offset_fetch(shard, header, r),
        ApiKey::ListGroups => groups::list_groups(shard, header, r),
        ApiKey::DescribeGroups => groups::describe_groups(shard, header, r),
        ApiKey::DeleteGroups => groups::delete_groups(shard, header, r),
        ApiKey::OffsetDelete => groups::offset_delete(shard, header, r),
        ApiKey::DescribeQuorum => cluster::describe_quorum(shard, header, r),
        ApiKey::DescribeCluster => cluster::describe_cluster(shard, header, r),
        ApiKey::OffsetForLeaderEpoch => leader_epoch::dispatch(shard, header, r).await,
        ApiKey::DescribeLogDirs => log_dirs::dispatch(shard, header, r).await,
        ApiKey::ElectLeaders => reassign::elect_leaders(shard, header, r),
        ApiKey::AlterPartitionReassignments => reassign::alter_partition_reassignments(shard, header, r),
        ApiKey::ListPartitionReassignments => reassign::list_partition_reassignments(shard, header, r),
        ApiKey::InitProducerId => txn::init_producer_id(shard, header, r),
        ApiKey::AddPartitionsToTxn => txn::add_partitions_to_txn(shard, header, r),
        ApiKey::AddOffsetsToTxn => txn::add_offsets_to_txn(shard, header, r),
        ApiKey::EndTxn => txn::end_txn(shard, header, r),
        ApiKey::WriteTxnMarkers => txn::write_txn_markers(shard, header, r),
        ApiKey::TxnOffsetCommit => txn::txn_offset_commit(shard, header, r),
        ApiKey::DescribeProducers => txn_admin::describe_producers(shard, header, r),
        ApiKey::DescribeTransactions => txn_admin::describe_transactions(shard, header, r),
        ApiKey::ListTransactions => txn_admin::list_transactions(shard, header, r),
        ApiKey::DeleteRecords => delete_records::dispatch(shard, header, r).await,
        ApiKey::AlterConfigs => admin::alter_configs(shard, header, r),
        ApiKey::IncrementalAlterConfigs => admin::incremental_alter_configs(shard, header, r),
    }
}
