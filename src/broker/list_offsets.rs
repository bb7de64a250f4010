//! ListOffsets: earliest, latest, max timestamp, or the first offset at or after a timestamp,
//! answered by the shard that owns each partition.

use std::rc::Rc;

use super::route::{led_here, route, Layout};
use super::{malformed, respond, Dispatched};
use crate::protocol::codec::Reader;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::list_offsets::{
    ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse, ListOffsetsTopicResponse, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, MAX_TIMESTAMP,
};
use crate::protocol::ErrorCode;
use crate::shard::{LocalBoxFuture, Shard};

/// (error, timestamp, offset)
type Answer = (ErrorCode, i64, i64);

pub async fn dispatch(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let request = match super::decode::<ListOffsetsRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let catalog = shard.catalog();
    let mut items = Vec::new();
    let mut layout: Layout = Vec::new();
    for t in &request.topics {
        let meta = catalog.topic(&t.name);
        let mut partitions = Vec::new();
        for p in &t.partitions {
            let known = led_here(meta, p.partition_index, shard.config().broker_id);
            if known.is_ok() {
                items.push((t.name.clone(), p.partition_index, (p.timestamp, request.isolation_level == 1)));
            }
            partitions.push((p.partition_index, known));
        }
        layout.push((t.name.clone(), partitions));
    }
    let routed = route(shard, items, |s: &Rc<Shard>, topic: &str, partition: i32, (timestamp, committed): (i64, bool)| -> LocalBoxFuture<Answer> {
        let Some(log) = s.log(topic, partition) else { return Box::pin(std::future::ready((ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, -1, -1))) };
        Box::pin(async move {
            match timestamp {
                // A read_committed consumer's end is the last stable offset.
                LATEST_TIMESTAMP if committed => (ErrorCode::NONE, -1, log.last_stable_offset()),
                LATEST_TIMESTAMP => (ErrorCode::NONE, -1, log.high_watermark()),
                EARLIEST_TIMESTAMP => (ErrorCode::NONE, -1, log.log_start_offset()),
                MAX_TIMESTAMP => match log.offset_of_max_timestamp().await {
                    Ok((ts, offset)) => (ErrorCode::NONE, ts, offset),
                    Err(_) => (ErrorCode::KAFKA_STORAGE_ERROR, -1, -1),
                },
                t if t < 0 => (ErrorCode::INVALID_REQUEST, -1, -1),
                t => match log.offset_for_timestamp(t).await {
                    Ok((ts, offset)) => (ErrorCode::NONE, ts, offset),
                    Err(_) => (ErrorCode::KAFKA_STORAGE_ERROR, -1, -1),
                },
            }
        })
    })
    .await;
    Dispatched::Respond(Box::pin(async move {
        let topics: Vec<ListOffsetsTopicResponse> = routed
            .laid_out(layout, (ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, -1, -1))
            .await
            .into_iter()
            .map(|(name, partitions)| ListOffsetsTopicResponse {
                name,
                partitions: partitions
                    .into_iter()
                    .map(|(partition_index, answer)| {
                        let (error, timestamp, offset) = answer.unwrap_or_else(|refusal| (refusal, -1, -1));
                        ListOffsetsPartitionResponse { partition_index, error, timestamp, offset, leader_epoch: 0 }
                    })
                    .collect(),
            })
            .collect();
        Some(respond(&header, &ListOffsetsResponse { throttle_time_ms: 0, topics }))
    }))
}
