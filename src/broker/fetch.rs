//! Fetch: read each partition on its owning shard (which answers with a file range, not
//! bytes), long-poll until `min_bytes` are there or `max_wait_ms` passes, and send the record
//! bytes from the segment files with splice.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::route::route;
use super::{malformed, Dispatched};
use crate::net::response::ResponseWriter;
use crate::protocol::codec::Reader;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::fetch::{AbortedTransaction, EpochEndOffset, FetchPartitionResponse, FetchRequest, FetchResponse, FetchTopicResponse};
use crate::protocol::wire::RecordSet;
use crate::protocol::wire::Wire;
use crate::protocol::ErrorCode;
use crate::shard::{LocalBoxFuture, Shard, ShardId};
use crate::storage::{ReadError, ReadLimit, ReadResult};

pub fn dispatch(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let request = match super::decode::<FetchRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move { Some(fetch(&shard, header, request).await) }))
}

/// One partition of the request and what is known of it so far.
struct Slot {
    topic: String,
    partition: i32,
    fetch_offset: i64,
    max_bytes: u32,
    known: bool,
    /// Why an unknown slot is refused: an unknown partition, or (in a cluster) one that
    /// another broker leads.
    refusal: ErrorCode,
    /// A follower's fetch: its id, and the partition's current leader epoch and last fetched
    /// epoch as it sent them.
    follower: Option<(i32, i32, i32)>,
    /// A read_committed consumer's fetch (isolation level 1): up to the last stable offset.
    committed: bool,
    result: Option<Result<ReadResult, ReadError>>,
    /// What the leader answered a follower beside the read (an epoch error, a divergence).
    answer: Option<super::replication::FollowerAnswer>,
}

async fn fetch(shard: &Rc<Shard>, header: RequestHeader, request: FetchRequest) -> crate::net::Response {
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let catalog = shard.catalog();
    let mut slots: Vec<Slot> = Vec::new();
    let mut layout: Vec<(String, usize)> = Vec::new();
    for topic in &request.topics {
        let meta = catalog.topic(&topic.name);
        layout.push((topic.name.clone(), topic.partitions.len()));
        for p in &topic.partitions {
            let exists = meta.is_some_and(|m| p.partition >= 0 && p.partition < m.partitions);
            let known = exists && meta.is_some_and(|m| m.is_led_by(p.partition, shard.config().broker_id));
            let refusal = if exists { ErrorCode::NOT_LEADER_OR_FOLLOWER } else { ErrorCode::UNKNOWN_TOPIC_OR_PARTITION };
            slots.push(Slot {
                topic: topic.name.clone(),
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes.max(0) as u32,
                known,
                refusal,
                follower: (request.replica_id >= 0).then_some((request.replica_id, p.current_leader_epoch, p.last_fetched_epoch)),
                committed: request.isolation_level == 1 && request.replica_id < 0,
                result: None,
                answer: None,
            });
        }
    }
    let response_max_bytes = request.max_bytes.max(0) as u32;
    loop {
        read_all(shard, &mut slots, response_max_bytes).await;
        let bytes: u64 = slots.iter().filter_map(|s| s.result.as_ref()?.as_ref().ok()?.records.as_ref().map(|r| r.len as u64)).sum();
        let any_error = slots.iter().any(|s| !s.known || matches!(s.result, Some(Err(_)) | None) || s.answer.is_some_and(|a| a.diverging.is_some()));
        let now = Instant::now();
        if bytes >= request.min_bytes.max(0) as u64 || any_error || now >= deadline {
            break;
        }
        wait_for_any(shard, &slots, deadline - now).await;
        if Instant::now() >= deadline {
            // One last read picks up whatever arrived at the very end.
            read_all(shard, &mut slots, response_max_bytes).await;
            break;
        }
    }
    encode(header, slots, layout, response_max_bytes)
}

async fn read_all(shard: &Rc<Shard>, slots: &mut [Slot], response_max_bytes: u32) {
    type Item = (i64, u32, Option<(i32, i32, i32)>, bool);
    type Answer = (Result<ReadResult, ReadError>, Option<super::replication::FollowerAnswer>);
    let items: Vec<(String, i32, Item)> = slots
        .iter()
        .filter(|s| s.known)
        .map(|s| (s.topic.clone(), s.partition, (s.fetch_offset, s.max_bytes.min(response_max_bytes), s.follower, s.committed)))
        .collect();
    let routed = route(shard, items, |s: &Rc<Shard>, topic: &str, partition: i32, (offset, max_bytes, follower, committed): Item| -> LocalBoxFuture<Answer> {
        if let Some((id, current_epoch, last_epoch)) = follower {
            let (s, topic) = (s.clone(), topic.to_string());
            return Box::pin(async move {
                let (read, answer) = super::replication::serve_follower(s, topic, partition, id, (offset, max_bytes), (current_epoch, last_epoch)).await;
                (read, Some(answer))
            });
        }
        match s.log(topic, partition) {
            Some(log) => {
                let limit = if committed { ReadLimit::LastStable } else { ReadLimit::HighWatermark };
                Box::pin(async move { (log.read_to(offset, max_bytes, true, limit).await, None) })
            }
            None => Box::pin(std::future::ready((Err(ReadError::Deleted), None))),
        }
    })
    .await;
    let mut results = routed.collect().await.into_iter();
    for slot in slots.iter_mut().filter(|s| s.known) {
        match results.next().flatten() {
            Some((read, answer)) => {
                slot.result = Some(read);
                slot.answer = answer;
            }
            None => slot.result = None,
        }
    }
}

/// Waits until any of the partitions gets data past its fetch offset, or `timeout` passes.
async fn wait_for_any(shard: &Rc<Shard>, slots: &[Slot], timeout: Duration) {
    let mut by_shard: BTreeMap<ShardId, Vec<(String, i32, i64, ReadLimit)>> = BTreeMap::new();
    for s in slots.iter().filter(|s| s.known) {
        // Wait for data past what the last read already saw (which may be more than the fetch
        // offset, when it was just not enough for min_bytes); waiting on the fetch offset would
        // return at once and spin.
        // A follower reads to the log end, and waits for it to move.
        let seen = match &s.result {
            Some(Ok(read)) if s.committed => read.last_stable_offset.max(s.fetch_offset),
            Some(Ok(read)) if s.follower.is_none() => read.high_watermark.max(s.fetch_offset),
            _ => s.fetch_offset,
        };
        let limit = match (s.follower.is_some(), s.committed) {
            (true, _) => ReadLimit::LogEnd,
            (false, true) => ReadLimit::LastStable,
            (false, false) => ReadLimit::HighWatermark,
        };
        by_shard.entry(shard.owner_of(&s.topic, s.partition)).or_default().push((s.topic.clone(), s.partition, seen, limit));
    }
    let mut waits = Vec::new();
    for (owner, partitions) in by_shard {
        let rx = shard
            .call(owner, move |s: &Rc<Shard>| {
                let futures: Vec<LocalBoxFuture<()>> = partitions
                    .into_iter()
                    .filter_map(|(t, p, offset, limit)| s.log(&t, p).map(|log| (log, offset, limit)))
                    .map(|(log, offset, limit)| Box::pin(async move { log.wait_for(offset, timeout, limit).await }) as LocalBoxFuture<()>)
                    .collect();
                if futures.is_empty() {
                    Box::pin(std::future::ready(())) as LocalBoxFuture<()>
                } else {
                    Box::pin(async move {
                        futures_util::future::select_all(futures).await;
                    })
                }
            })
            .await;
        waits.push(Box::pin(rx.into_recv_async()));
    }
    if waits.is_empty() {
        crate::io::runtime::sleep(timeout).await;
        return;
    }
    let any = futures_util::future::select_all(waits);
    let sleep = std::pin::pin!(crate::io::runtime::sleep(timeout));
    futures_util::future::select(any, sleep).await;
}

fn encode(header: RequestHeader, slots: Vec<Slot>, layout: Vec<(String, usize)>, response_max_bytes: u32) -> crate::net::Response {
    let mut remaining = response_max_bytes as u64;
    let mut first_data = true;
    let mut slots = slots.into_iter();
    let mut files: Vec<crate::storage::FileSlice> = Vec::new();
    let topics: Vec<FetchTopicResponse> = layout
        .into_iter()
        .map(|(name, count)| FetchTopicResponse {
            name,
            partitions: (0..count)
                .map(|_| {
                    let slot = slots.next().expect("one slot per partition");
                    let unknown = FetchPartitionResponse {
                        partition_index: slot.partition,
                        error: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                        high_watermark: -1,
                        last_stable_offset: -1,
                        log_start_offset: -1,
                        aborted_transactions: Some(Vec::new()),
                        records: Some(RecordSet::default()),
                        ..Default::default()
                    };
                    if let Some(answer) = slot.answer {
                        // A follower's fetch the leader refused (epochs), or whose log diverges.
                        if !answer.error.is_ok() {
                            // With the leader's log start and high watermark, so that a follower
                            // behind the log start knows where to begin.
                            let (log_start_offset, high_watermark) = match &slot.result {
                                Some(Err(ReadError::OffsetOutOfRange { log_start_offset, high_watermark })) => (*log_start_offset, *high_watermark),
                                _ => (-1, -1),
                            };
                            return FetchPartitionResponse { error: answer.error, log_start_offset, high_watermark, ..unknown };
                        }
                        if let (Some((epoch, end_offset)), Some(Ok(read))) = (answer.diverging, &slot.result) {
                            return FetchPartitionResponse {
                                error: ErrorCode::NONE,
                                high_watermark: read.high_watermark,
                                last_stable_offset: read.last_stable_offset,
                                log_start_offset: read.log_start_offset,
                                diverging_epoch: Some(EpochEndOffset { epoch, end_offset }),
                                ..unknown
                            };
                        }
                    }
                    match slot.result {
                        _ if !slot.known => FetchPartitionResponse { error: slot.refusal, ..unknown },
                        None => unknown,
                        Some(Err(ReadError::OffsetOutOfRange { .. })) => FetchPartitionResponse { error: ErrorCode::OFFSET_OUT_OF_RANGE, ..unknown },
                        Some(Err(ReadError::Storage)) => FetchPartitionResponse { error: ErrorCode::KAFKA_STORAGE_ERROR, ..unknown },
                        Some(Err(ReadError::Deleted)) => unknown,
                        Some(Ok(read)) => {
                            // The response's max_bytes: the first partition with data may exceed
                            // it (KIP-74); later ones are cut to what is left, which may end in
                            // a partial batch that clients skip, as they do with Kafka's, but
                            // one whose first batch does not fit gets nothing.
                            let first_batch_bytes = read.first_batch_bytes as u64;
                            let records = read.records.and_then(|mut slice| {
                                if first_data {
                                    first_data = false;
                                } else if first_batch_bytes > remaining {
                                    return None;
                                } else if (slice.len as u64) > remaining {
                                    slice.len = remaining as u32;
                                }
                                remaining = remaining.saturating_sub(slice.len as u64);
                                (slice.len > 0).then(|| {
                                    let hole = RecordSet::Spliced { len: slice.len, id: files.len() as u32 };
                                    files.push(slice);
                                    hole
                                })
                            });
                            FetchPartitionResponse {
                                partition_index: slot.partition,
                                error: ErrorCode::NONE,
                                high_watermark: read.high_watermark,
                                last_stable_offset: read.last_stable_offset,
                                log_start_offset: read.log_start_offset,
                                // What a read_committed consumer must skip (Kafka's
                                // `FetchResponse.abortedTransactions`).
                                aborted_transactions: Some(
                                    read.aborted.iter().map(|&(producer_id, first_offset)| AbortedTransaction { producer_id, first_offset }).collect(),
                                ),
                                records: Some(records.unwrap_or_default()),
                                ..unknown
                            }
                        }
                    }
                })
                .collect(),
        })
        .collect();
    let response = FetchResponse { topics, ..Default::default() };
    let mut w = ResponseWriter::new(header.api_key, header.flexible, header.correlation_id);
    response.encode(&mut w.body, header.version());
    w.finish_spliced(files)
}
