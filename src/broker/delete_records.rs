//! DeleteRecords (21): a partition's log start moves up to the offset asked for (the high
//! watermark for -1), on the shard that owns it, as Kafka's `Partition.deleteRecordsOnLeader`:
//! a compact-only topic refuses (POLICY_VIOLATION), an offset past the high watermark is
//! OFFSET_OUT_OF_RANGE, and the answer's low watermark is the new log start. Segments wholly
//! below it are deleted at once; the log dir's checkpoint is written right after, so the new
//! start outlives a restart. In a cluster the followers take the leader's log start from their
//! next fetch; the answer does not wait for them (Kafka's DelayedDeleteRecords does, up to the
//! request's timeout, and answers the smallest log start of the replicas).

use std::rc::Rc;

use super::route::{led_here, route, Layout};
use super::{malformed, respond, Dispatched};
use crate::protocol::codec::Reader;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::delete_records::{DeleteRecordsPartitionResult, DeleteRecordsRequest, DeleteRecordsResponse, DeleteRecordsTopicResult};
use crate::protocol::ErrorCode;
use crate::shard::{LocalBoxFuture, Shard};
use crate::storage::log::ReadError;

pub async fn dispatch(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let request = match super::decode::<DeleteRecordsRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let catalog = shard.catalog();
    let me = shard.config().broker_id;
    let mut items = Vec::new();
    let mut layout: Layout = Vec::new();
    for t in &request.topics {
        let meta = catalog.topic(&t.name);
        let mut partitions = Vec::new();
        for p in &t.partitions {
            let known = led_here(meta, p.partition_index, me);
            if known.is_ok() {
                items.push((t.name.clone(), p.partition_index, p.offset));
            }
            partitions.push((p.partition_index, known));
        }
        layout.push((t.name.clone(), partitions));
    }
    let routed = route(shard, items, |s: &Rc<Shard>, topic: &str, partition: i32, offset: i64| -> LocalBoxFuture<(ErrorCode, i64)> {
        let answer = match s.log(topic, partition) {
            None => (ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, -1),
            Some(log) if !log.config().cleanup_policy.split(',').any(|p| p.trim() == "delete") => (ErrorCode::POLICY_VIOLATION, -1),
            Some(log) => match log.delete_records_before(offset) {
                Ok(low_watermark) => {
                    s.shared.request_checkpoint();
                    (ErrorCode::NONE, low_watermark)
                }
                Err(ReadError::OffsetOutOfRange { .. }) => (ErrorCode::OFFSET_OUT_OF_RANGE, -1),
                Err(_) => (ErrorCode::KAFKA_STORAGE_ERROR, -1),
            },
        };
        Box::pin(std::future::ready(answer))
    })
    .await;
    Dispatched::Respond(Box::pin(async move {
        let topics = routed
            .laid_out(layout, (ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, -1))
            .await
            .into_iter()
            .map(|(name, partitions)| DeleteRecordsTopicResult {
                name,
                partitions: partitions
                    .into_iter()
                    .map(|(partition_index, answer)| {
                        let (error, low_watermark) = answer.unwrap_or_else(|refusal| (refusal, -1));
                        DeleteRecordsPartitionResult { partition_index, low_watermark, error }
                    })
                    .collect(),
            })
            .collect();
        Some(respond(&header, &DeleteRecordsResponse { throttle_time_ms: 0, topics }))
    }))
}
