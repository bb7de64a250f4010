//! Produce: validate every batch on the shard that received it (size, magic, CRC-32C, header
//! consistency, `max.message.bytes`), then queue each partition's batches on its owning shard.

use std::rc::Rc;

use bytes::Bytes;

use super::route::route;
use super::{malformed, Dispatched};
use crate::net::response::ResponseWriter;
use crate::protocol::codec::Reader;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::produce::{self, ProducePartitionResponse, ProduceTopicResponse};
use crate::protocol::record_batch::{self, BatchError};
use crate::protocol::ErrorCode;
use crate::shard::{LocalBoxFuture, Shard};
use crate::storage::{AppendError, AppendResult};

fn batch_error_code(e: BatchError) -> ErrorCode {
    match e {
        BatchError::Truncated | BatchError::InvalidLength | BatchError::CrcMismatch => ErrorCode::CORRUPT_MESSAGE,
        BatchError::UnsupportedMagic(_) => ErrorCode::UNSUPPORTED_FOR_MESSAGE_FORMAT,
        BatchError::InvalidRecord => ErrorCode::INVALID_RECORD,
    }
}

fn partition_error(index: i32, error: ErrorCode, message: Option<String>) -> ProducePartitionResponse {
    ProducePartitionResponse { index, error, base_offset: -1, log_append_time_ms: -1, log_start_offset: -1, error_message: message }
}

/// Checks one partition's records and splits them into batches (zero-copy slices). As in
/// Kafka, Produce v3+ carries exactly one batch per partition.
fn validate(records: Option<&Bytes>, max_message_bytes: u32) -> Result<Vec<Bytes>, (ErrorCode, String)> {
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return Err((ErrorCode::CORRUPT_MESSAGE, "produce request carries no records".into()));
    };
    let ranges = record_batch::split_batches(records).map_err(|e| (batch_error_code(e), format!("invalid record batch: {e:?}")))?;
    if ranges.len() != 1 {
        return Err((ErrorCode::INVALID_RECORD, format!("a produce request must carry exactly one record batch per partition, not {}", ranges.len())));
    }
    let mut batches = Vec::with_capacity(ranges.len());
    for range in ranges {
        let size = range.len();
        if size > max_message_bytes as usize {
            return Err((ErrorCode::MESSAGE_TOO_LARGE, format!("batch of {size} bytes is above max.message.bytes {max_message_bytes}")));
        }
        batches.push(records.slice(range));
    }
    Ok(batches)
}

pub async fn dispatch(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let request = match produce::decode_request(&mut r, header.api_version, header.flexible) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let version_ok = header.api_version >= 3;
    let acks_ok = (-1..=1).contains(&request.acks);
    let catalog = shard.catalog();
    // Immediate answers (errors found here) and the routed appends, by (topic, partition) slot.
    let mut slots: Vec<(usize, ProducePartitionResponse)> = Vec::new();
    let mut work: Vec<(String, i32, Vec<Bytes>)> = Vec::new();
    let mut work_slots: Vec<usize> = Vec::new();
    let mut layout: Vec<(String, Vec<i32>)> = Vec::new();
    let mut slot = 0;
    for topic in &request.topics {
        let meta = catalog.topic(&topic.name);
        let max_message_bytes = shard.max_message_bytes.borrow().get(&topic.name).copied().unwrap_or(shard.config().log.max_message_bytes);
        let compacted = shard.compacted_topics.borrow().contains(&topic.name);
        let mut indexes = Vec::new();
        for p in &topic.partitions {
            indexes.push(p.index);
            let immediate = if !version_ok {
                Some((ErrorCode::UNSUPPORTED_VERSION, None))
            } else if !acks_ok {
                Some((ErrorCode::INVALID_REQUIRED_ACKS, None))
            } else if meta.is_none_or(|m| p.index < 0 || p.index >= m.partitions) {
                Some((ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, None))
            } else if topic.name == crate::coordinator::OFFSETS_TOPIC {
                // As in Kafka, only the coordinator writes its internal topic.
                Some((ErrorCode::INVALID_TOPIC_EXCEPTION, Some(format!("cannot append to internal topic {}", topic.name))))
            } else {
                match validate(p.records.as_ref(), max_message_bytes) {
                    // As in Kafka, a compacted topic's records must have keys.
                    Ok(batches) if compacted && batches.iter().any(|b| record_batch::has_keyless_record(b) == Some(true)) => {
                        Some((ErrorCode::INVALID_RECORD, Some("compacted topic cannot accept a record without a key".to_string())))
                    }
                    Ok(batches) => {
                        work.push((topic.name.clone(), p.index, batches));
                        work_slots.push(slot);
                        None
                    }
                    Err((code, message)) => Some((code, Some(message))),
                }
            };
            if let Some((code, message)) = immediate {
                slots.push((slot, partition_error(p.index, code, message)));
            }
            slot += 1;
        }
        layout.push((topic.name.clone(), indexes));
    }
    let routed = route(shard, work, |s: &Rc<Shard>, topic: &str, partition: i32, batches: Vec<Bytes>| -> LocalBoxFuture<Result<AppendResult, AppendError>> {
        match s.log(topic, partition) {
            Some(log) => Box::pin(log.append(batches)),
            None => Box::pin(std::future::ready(Err(AppendError::Deleted))),
        }
    })
    .await;
    let acks = request.acks;
    Dispatched::Respond(Box::pin(async move {
        let results = routed.collect().await;
        if acks == 0 {
            return None;
        }
        for (slot, result) in work_slots.into_iter().zip(results) {
            let index = 0; // replaced below from the layout
            let response = match result {
                Some(Ok(a)) => ProducePartitionResponse {
                    index,
                    error: ErrorCode::NONE,
                    base_offset: a.base_offset,
                    log_append_time_ms: a.log_append_time_ms,
                    log_start_offset: a.log_start_offset,
                    error_message: None,
                },
                Some(Err(AppendError::Deleted)) | None => partition_error(index, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, None),
                Some(Err(AppendError::Storage)) => partition_error(index, ErrorCode::KAFKA_STORAGE_ERROR, None),
                Some(Err(AppendError::OutOfOrderSequence)) => partition_error(index, ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, None),
                Some(Err(AppendError::InvalidProducerEpoch)) => partition_error(index, ErrorCode::INVALID_PRODUCER_EPOCH, None),
            };
            slots.push((slot, response));
        }
        slots.sort_by_key(|(s, _)| *s);
        let mut answers = slots.into_iter().map(|(_, r)| r);
        let topics: Vec<ProduceTopicResponse> = layout
            .into_iter()
            .map(|(name, indexes)| ProduceTopicResponse {
                name,
                partitions: indexes
                    .into_iter()
                    .map(|index| {
                        let mut r = answers.next().expect("one answer per partition");
                        r.index = index;
                        r
                    })
                    .collect(),
            })
            .collect();
        let mut w = ResponseWriter::new(header.api_key, header.flexible, header.correlation_id);
        produce::encode_response(&mut w.body, header.api_version, header.flexible, &topics);
        Some(w.finish())
    }))
}
