//! Produce: validate every batch on the shard that received it (size, magic, CRC-32C, header
//! consistency, `max.message.bytes`), then queue each partition's batches on its owning shard.

use std::rc::Rc;

use bytes::Bytes;

use super::route::route;
use super::{malformed, Dispatched};
use crate::protocol::codec::Reader;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::produce::{BatchIndexAndErrorMessage, ProducePartitionResponse, ProduceRequest, ProduceResponse, ProduceTopicResponse};
use crate::protocol::record_batch::{self, BatchError};
use crate::protocol::ErrorCode;
use crate::shard::{LocalBoxFuture, Shard};
use crate::storage::{AppendError, AppendResult};

fn batch_error_code(e: BatchError) -> ErrorCode {
    match e {
        BatchError::Truncated | BatchError::InvalidLength | BatchError::CrcMismatch => ErrorCode::CORRUPT_MESSAGE,
        BatchError::UnsupportedMagic(_) => ErrorCode::UNSUPPORTED_FOR_MESSAGE_FORMAT,
        BatchError::InvalidRecord | BatchError::Records(_) => ErrorCode::INVALID_RECORD,
    }
}

/// Why a routed append failed: in the log, or by replication (not led here, too few in-sync
/// replicas, not committed in time).
enum Failure {
    Append(AppendError),
    Code(ErrorCode),
}

/// Why a partition's records were refused: the error code, the message, and KIP-467's record
/// errors (the index of the record at fault in its batch).
struct Refusal {
    code: ErrorCode,
    message: String,
    record_errors: Vec<BatchIndexAndErrorMessage>,
}

impl Refusal {
    fn new(code: ErrorCode, message: String) -> Refusal {
        Refusal { code, message, record_errors: Vec::new() }
    }
}

fn partition_error(index: i32, error: ErrorCode, message: Option<String>) -> ProducePartitionResponse {
    ProducePartitionResponse { index, error, base_offset: -1, log_append_time_ms: -1, log_start_offset: -1, record_errors: Vec::new(), error_message: message }
}

/// A transactional batch's producer: (transactional id, producer id, epoch).
type TxnProducer = Option<(std::sync::Arc<str>, i64, i16)>;

/// Checks one partition's records down to every record (`record_batch::validate_produced`)
/// and returns its batch as a zero-copy slice, with its producer if it is transactional. As in
/// Kafka, Produce v3+ carries exactly one batch per partition, a compacted topic refuses
/// records without keys, and a transactional batch needs the request's transactional id.
fn validate(
    records: Option<&Bytes>,
    max_message_bytes: u32,
    compacted: bool,
    transactional_id: Option<&std::sync::Arc<str>>,
) -> Result<(Vec<Bytes>, TxnProducer), Refusal> {
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return Err(Refusal::new(ErrorCode::CORRUPT_MESSAGE, "produce request carries no records".into()));
    };
    let size = record_batch::batch_size(records).map_err(|e| Refusal::new(batch_error_code(e), format!("invalid record batch: {e:?}")))?;
    if size != records.len() {
        return Err(Refusal::new(ErrorCode::INVALID_RECORD, "a produce request must carry exactly one record batch per partition".into()));
    }
    // Checked before the records are walked: a batch too large is refused without the cost.
    if size > max_message_bytes as usize {
        return Err(Refusal::new(ErrorCode::MESSAGE_TOO_LARGE, format!("batch of {size} bytes is above max.message.bytes {max_message_bytes}")));
    }
    let (summary, txn) = match record_batch::validate_produced(records) {
        Ok((view, summary)) if view.is_transactional() => match transactional_id {
            Some(id) => (summary, Some((id.clone(), view.producer_id(), view.producer_epoch()))),
            None => return Err(Refusal::new(ErrorCode::INVALID_RECORD, "a transactional batch in a produce request without a transactional id".into())),
        },
        Ok((_, summary)) => (summary, None),
        Err(BatchError::Records(e)) => {
            return Err(Refusal {
                code: ErrorCode::INVALID_RECORD,
                message: format!("invalid record batch: {e}"),
                record_errors: e
                    .index
                    .map(|i| BatchIndexAndErrorMessage { batch_index: i, batch_index_error_message: Some(e.reason.to_string()) })
                    .into_iter()
                    .collect(),
            })
        }
        Err(e) => return Err(Refusal::new(batch_error_code(e), format!("invalid record batch: {e:?}"))),
    };
    if compacted && summary.keyless {
        return Err(Refusal::new(ErrorCode::INVALID_RECORD, "compacted topic cannot accept a record without a key".to_string()));
    }
    Ok((vec![records.clone()], txn))
}

pub async fn dispatch(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let request = match super::decode::<ProduceRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let version_ok = header.api_version >= 3;
    let acks_ok = (-1..=1).contains(&request.acks);
    let catalog = shard.catalog();
    let transactional_id: Option<std::sync::Arc<str>> = request.transactional_id.as_deref().map(std::sync::Arc::from);
    // Immediate answers (errors found here) and the routed appends, by (topic, partition) slot.
    let mut slots: Vec<(usize, ProducePartitionResponse)> = Vec::new();
    let mut work: Vec<(String, i32, (Vec<Bytes>, TxnProducer, i16, u32))> = Vec::new();
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
            } else if meta.is_some_and(|m| !m.is_led_by(p.index, shard.config().broker_id)) {
                Some((ErrorCode::NOT_LEADER_OR_FOLLOWER, None))
            } else if topic.name == crate::coordinator::OFFSETS_TOPIC || topic.name == crate::coordinator::txn::TRANSACTION_STATE_TOPIC {
                // As in Kafka, only the coordinator writes its internal topic.
                Some((ErrorCode::INVALID_TOPIC_EXCEPTION, Some(format!("cannot append to internal topic {}", topic.name))))
            } else {
                match validate(p.records.as_ref(), max_message_bytes, compacted, transactional_id.as_ref()) {
                    Ok((batches, txn)) => {
                        work.push((topic.name.clone(), p.index, (batches, txn, request.acks, request.timeout_ms.max(0) as u32)));
                        work_slots.push(slot);
                        None
                    }
                    Err(refusal) => {
                        let mut response = partition_error(p.index, refusal.code, Some(refusal.message));
                        response.record_errors = refusal.record_errors;
                        slots.push((slot, response));
                        None
                    }
                }
            };
            if let Some((code, message)) = immediate {
                slots.push((slot, partition_error(p.index, code, message)));
            }
            slot += 1;
        }
        layout.push((topic.name.clone(), indexes));
    }
    let routed = route(
        shard,
        work,
        |s: &Rc<Shard>,
         topic: &str,
         partition: i32,
         (batches, txn, acks, timeout_ms): (Vec<Bytes>, TxnProducer, i16, u32)|
         -> LocalBoxFuture<Result<AppendResult, Failure>> {
            let Some(log) = s.log(topic, partition) else { return Box::pin(std::future::ready(Err(Failure::Append(AppendError::Deleted)))) };
            // A replicated partition (a cluster's, of several replicas): led here, and with
            // acks=all, enough in-sync replicas, before anything is written.
            let replicated = match super::replication::check_produce(s, topic, partition, acks) {
                Ok(replicated) => replicated,
                Err(code) => return Box::pin(std::future::ready(Err(Failure::Code(code)))),
            };
            if !replicated && txn.is_none() {
                return Box::pin(async move { log.append(batches).await.map_err(Failure::Append) });
            }
            let records: i64 = batches.iter().map(|b| record_batch::BatchView { bytes: b }.last_offset_delta() as i64 + 1).sum();
            let (s, topic) = (s.clone(), topic.to_string());
            // KIP-890: a producer's first transactional batch in this partition is written only
            // once its transaction coordinator confirms the partition is in the transaction, and
            // only if no marker came in between (the guard). It is queued now, in request order,
            // and waits there for the answer.
            let appending: LocalBoxFuture<Result<AppendResult, AppendError>> = match txn {
                None => Box::pin(log.append(batches)),
                Some((_, producer_id, epoch)) if log.has_open_transaction(producer_id, epoch) => Box::pin(log.append_verified(batches, Some(0))),
                Some((id, producer_id, epoch)) => {
                    let guard = log.start_verification(producer_id);
                    let (answer, verified) = flume::bounded(1);
                    let (s, topic) = (s.clone(), topic.to_string());
                    crate::io::runtime::spawn_detached(async move {
                        let _ = answer.send(super::txn::verify_in_transaction(&s, &id, producer_id, epoch, &topic, partition).await);
                    });
                    Box::pin(log.append_after_verification(batches, guard, verified))
                }
            };
            Box::pin(async move {
                let appended = appending.await.map_err(|e| match e {
                    AppendError::Unverified(code) => Failure::Code(code),
                    e => Failure::Append(e),
                })?;
                if replicated {
                    super::replication::appended(&s, &topic, partition);
                    if acks == -1 {
                        // acks=all: answered once every in-sync replica has the records.
                        let end = appended.base_offset + records;
                        super::replication::wait_for_commit(&s, &log, end, std::time::Duration::from_millis(timeout_ms as u64)).await.map_err(Failure::Code)?;
                    }
                }
                Ok(appended)
            })
        },
    )
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
                    record_errors: Vec::new(),
                    error_message: None,
                },
                Some(Err(Failure::Append(AppendError::Deleted))) | None => partition_error(index, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, None),
                Some(Err(Failure::Append(AppendError::Storage))) => partition_error(index, ErrorCode::KAFKA_STORAGE_ERROR, None),
                Some(Err(Failure::Append(AppendError::OutOfOrderSequence))) => partition_error(index, ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, None),
                Some(Err(Failure::Append(AppendError::InvalidProducerEpoch))) => partition_error(index, ErrorCode::INVALID_PRODUCER_EPOCH, None),
                Some(Err(Failure::Append(AppendError::InvalidTxnState))) => partition_error(index, ErrorCode::INVALID_TXN_STATE, None),
                Some(Err(Failure::Append(AppendError::Unverified(code)))) => partition_error(index, code, None),
                // Only markers check the coordinator epoch.
                Some(Err(Failure::Append(AppendError::CoordinatorFenced))) => partition_error(index, ErrorCode::UNKNOWN_SERVER_ERROR, None),
                // Only a follower's appends check their offsets.
                Some(Err(Failure::Append(AppendError::OffsetMismatch))) => partition_error(index, ErrorCode::UNKNOWN_SERVER_ERROR, None),
                Some(Err(Failure::Code(code))) => partition_error(index, code, None),
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
        Some(super::respond(&header, &ProduceResponse { topics, throttle_time_ms: 0 }))
    }))
}
