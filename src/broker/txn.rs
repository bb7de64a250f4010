//! The transaction APIs (KIP-98): InitProducerId with a transactional id, AddPartitionsToTxn,
//! AddOffsetsToTxn, EndTxn and TxnOffsetCommit from producers, WriteTxnMarkers between
//! brokers, and the transaction coordinator's own work (markers, timeouts, expiry).
//!
//! A transactional id is coordinated by the leader of its `__transaction_state` partition, on
//! the shard that owns that partition: `crate::coordinator::txn` is its state machine, and
//! every transition is appended to the partition (acks=all in a cluster) before it takes
//! effect, as Kafka's `TransactionStateManager.appendTransactionToLog` does. Ending a
//! transaction is two writes around the markers: PrepareCommit (or PrepareAbort), answered at
//! once; then a marker in every partition of the transaction (on this broker's owning shards,
//! or through the other leaders' WriteTxnMarkers), retried until each is written; then
//! CompleteCommit. A restarted or new coordinator finds the Prepare state in the log and writes
//! the markers again (a marker is idempotent: the second one ends nothing).

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use super::groups::{append_internal, ensure_coordinator_topic};
use super::{malformed, respond, Dispatched};
use crate::coordinator::txn::{InitOutcome, TxnCoordinator, TxnMetadata, TxnState, TRANSACTION_STATE_TOPIC};
use crate::coordinator::{partition_for, records, records_batch, txn_log, OFFSETS_TOPIC, OFFSET_METADATA_MAX_BYTES};
use crate::io::runtime::{now_ms, sleep, spawn_detached};
use crate::protocol::codec::Reader;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::add_offsets_to_txn::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use crate::protocol::messages::add_partitions_to_txn::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, AddPartitionsToTxnResult, AddPartitionsToTxnTopic,
    AddPartitionsToTxnTopicResult, AddPartitionsToTxnTransaction,
};
use crate::protocol::messages::end_txn::{EndTxnRequest, EndTxnResponse};
use crate::protocol::messages::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};
use crate::protocol::messages::txn_offset_commit::{
    TxnOffsetCommitRequest, TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use crate::protocol::messages::write_txn_markers::{
    WritableTxnMarker, WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopic, WritableTxnMarkerTopicResult, WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
};
use crate::protocol::record_batch::{self, ControlRecord};
use crate::protocol::ErrorCode;
use crate::shard::{LocalBoxFuture, Shard, ShardId};
use crate::storage::AppendError;

/// How long a broker-to-broker request (markers, verification) may take.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between two rounds of a transaction's markers (the first is 50 ms).
const MARKER_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// How many partitions `__transaction_state` has (its own count once created).
fn txn_partitions(shard: &Shard) -> i32 {
    shard.catalog().topic(TRANSACTION_STATE_TOPIC).map_or(shard.config().transactions.state_log_num_partitions, |t| t.partitions)
}

/// The shard and `__transaction_state` partition that coordinate `id` on this broker, or the
/// error for a client that asked the wrong broker (NOT_COORDINATOR: it looks again) or too
/// early (COORDINATOR_NOT_AVAILABLE: it retries).
fn coordinated_here(shard: &Shard, id: &str) -> Result<(ShardId, i32), ErrorCode> {
    let catalog = shard.catalog();
    let topic = catalog.topic(TRANSACTION_STATE_TOPIC).ok_or(ErrorCode::COORDINATOR_NOT_AVAILABLE)?;
    let partition = partition_for(id, topic.partitions);
    if !topic.is_led_by(partition, shard.config().broker_id) {
        return Err(ErrorCode::NOT_COORDINATOR);
    }
    Ok((shard.owner_of(TRANSACTION_STATE_TOPIC, partition), partition))
}

/// Runs `work` on the shard that coordinates `id` (with its `__transaction_state` partition)
/// and waits for its answer; `gone` makes the answer for an error found before.
pub(super) async fn on_txn_coordinator<R, F>(shard: &Rc<Shard>, id: &str, gone: impl Fn(ErrorCode) -> R, work: F) -> R
where
    R: Send + 'static,
    F: FnOnce(&Rc<Shard>, i32) -> LocalBoxFuture<R> + Send + 'static,
{
    if id.is_empty() {
        return gone(ErrorCode::INVALID_REQUEST);
    }
    let (owner, partition) = match coordinated_here(shard, id) {
        Ok(found) => found,
        Err(e) => return gone(e),
    };
    let rx = shard.call(owner, move |s: &Rc<Shard>| work(s, partition)).await;
    rx.recv_async().await.unwrap_or_else(|_| gone(ErrorCode::COORDINATOR_NOT_AVAILABLE))
}

/// The epoch of this coordinator of `partition`: the partition's leader epoch, which markers
/// carry so that a deposed coordinator's are refused.
fn coordinator_epoch(shard: &Shard, partition: i32) -> i32 {
    let catalog = shard.catalog();
    catalog.topic(TRANSACTION_STATE_TOPIC).map_or(0, |t| t.leader_of(partition, shard.config().broker_id).1.max(0))
}

/// Appends `next` to the id's `__transaction_state` partition and, once written, makes it the
/// id's state; meanwhile the id is pending (CONCURRENT_TRANSACTIONS to other requests).
async fn write_state(shard: &Rc<Shard>, partition: i32, next: TxnMetadata) -> ErrorCode {
    if !shard.txn_coordinator.borrow_mut().begin(&next) {
        return ErrorCode::CONCURRENT_TRANSACTIONS;
    }
    let record = (txn_log::encode_key(&next.transactional_id), Some(txn_log::encode_value(&next)));
    let error = append_internal(shard, TRANSACTION_STATE_TOPIC, partition, records_batch(&[record]), 1, None).await;
    let mut coordinator = shard.txn_coordinator.borrow_mut();
    if error.is_ok() {
        coordinator.commit(next);
    } else {
        coordinator.abandon(&next.transactional_id);
    }
    error
}

/// A PrepareCommit or PrepareAbort was written: the markers, then the Complete state, in the
/// background. Stops when this shard no longer coordinates the transaction (a new coordinator
/// takes it over from the log).
fn complete_in_background(shard: &Rc<Shard>, partition: i32, prepared: TxnMetadata) {
    spawn_detached(complete_transaction(shard.clone(), partition, prepared));
}

/// Whether `prepared` is still what this shard holds for its id (neither unloaded nor moved
/// on).
fn still_prepared(shard: &Shard, prepared: &TxnMetadata) -> bool {
    shard
        .txn_coordinator
        .borrow()
        .txns
        .get(&prepared.transactional_id)
        .is_some_and(|m| m.producer_id == prepared.producer_id && m.producer_epoch == prepared.producer_epoch && m.state == prepared.state && !m.pending)
}

async fn complete_transaction(shard: Rc<Shard>, partition: i32, prepared: TxnMetadata) {
    let commit = prepared.state == TxnState::PrepareCommit;
    let epoch = coordinator_epoch(&shard, partition);
    let mut remaining: Vec<(String, i32)> = prepared.partitions.iter().cloned().collect();
    let mut backoff = Duration::from_millis(50);
    while !remaining.is_empty() {
        if !still_prepared(&shard, &prepared) {
            return;
        }
        let errors = write_markers_anywhere(&shard, prepared.producer_id, prepared.producer_epoch, commit, epoch, &remaining).await;
        let catalog = shard.catalog();
        let mut left = Vec::new();
        for (tp, error) in remaining.into_iter().zip(errors) {
            match error {
                ErrorCode::NONE => {}
                // A deleted topic's partitions need no marker.
                _ if catalog.topic(&tp.0).is_none_or(|t| tp.1 >= t.partitions) => {}
                // A newer coordinator (or producer epoch) wrote this partition's marker: this
                // coordinator is deposed; the new one completes the transaction.
                ErrorCode::TRANSACTION_COORDINATOR_FENCED | ErrorCode::INVALID_PRODUCER_EPOCH | ErrorCode::PRODUCER_FENCED => {
                    tracing::warn!(transactional_id = %prepared.transactional_id, topic = %tp.0, partition = tp.1, %error, "transaction marker refused: stopping");
                    return;
                }
                error => {
                    tracing::debug!(transactional_id = %prepared.transactional_id, topic = %tp.0, partition = tp.1, %error, "transaction marker not written yet");
                    left.push(tp);
                }
            }
        }
        remaining = left;
        if !remaining.is_empty() {
            sleep(backoff).await;
            backoff = (backoff * 2).min(MARKER_BACKOFF_MAX);
        }
    }
    // Every marker is written: the transaction is complete.
    backoff = Duration::from_millis(50);
    loop {
        if !still_prepared(&shard, &prepared) {
            return;
        }
        let next = TxnCoordinator::complete(&prepared, now_ms());
        if write_state(&shard, partition, next).await.is_ok() {
            return;
        }
        sleep(backoff).await;
        backoff = (backoff * 2).min(MARKER_BACKOFF_MAX);
    }
}

/// Writes one transaction's markers in `partitions`, wherever they are led: on this broker's
/// shards directly, on another broker with one WriteTxnMarkers to it. One error per partition.
async fn write_markers_anywhere(
    shard: &Rc<Shard>,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    partitions: &[(String, i32)],
) -> Vec<ErrorCode> {
    let catalog = shard.catalog();
    let me = shard.config().broker_id;
    let mut errors = vec![ErrorCode::UNKNOWN_SERVER_ERROR; partitions.len()];
    // Leader -> the indexes of its partitions.
    let mut by_leader: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for (i, (topic, p)) in partitions.iter().enumerate() {
        match catalog.topic(topic) {
            Some(t) if *p < t.partitions => by_leader.entry(t.leader_of(*p, me).0).or_default().push(i),
            _ => errors[i] = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
        }
    }
    for (leader, indexes) in by_leader {
        if leader == me {
            let mut pending = Vec::new();
            for &i in &indexes {
                let (topic, p) = partitions[i].clone();
                let owner = shard.owner_of(&topic, p);
                let rx = shard
                    .call(owner, move |s: &Rc<Shard>| {
                        let s = s.clone();
                        Box::pin(async move { write_marker_here(&s, &topic, p, producer_id, producer_epoch, commit, coordinator_epoch).await })
                            as LocalBoxFuture<ErrorCode>
                    })
                    .await;
                pending.push((i, rx));
            }
            for (i, rx) in pending {
                errors[i] = rx.recv_async().await.unwrap_or(ErrorCode::NOT_LEADER_OR_FOLLOWER);
            }
            continue;
        }
        let Some(address) = catalog.brokers.iter().find(|b| b.id == leader).map(|b| format!("{}:{}", b.host, b.port)) else {
            for &i in &indexes {
                errors[i] = ErrorCode::NOT_LEADER_OR_FOLLOWER;
            }
            continue;
        };
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for &i in &indexes {
            topics.entry(partitions[i].0.as_str()).or_default().push(partitions[i].1);
        }
        let request = WriteTxnMarkersRequest {
            markers: vec![WritableTxnMarker {
                producer_id,
                producer_epoch,
                transaction_result: commit,
                topics: topics.into_iter().map(|(name, partition_indexes)| WritableTxnMarkerTopic { name: name.to_string(), partition_indexes }).collect(),
                coordinator_epoch,
            }],
        };
        let answer = super::peer::call(&address, &request, 1, PEER_TIMEOUT).await;
        let results: BTreeMap<(String, i32), ErrorCode> = match answer {
            Ok(response) => response
                .markers
                .into_iter()
                .flat_map(|m| m.topics)
                .flat_map(|t| {
                    let name = t.name;
                    t.partitions.into_iter().map(move |p| ((name.clone(), p.partition_index), p.error))
                })
                .collect(),
            Err(e) => {
                tracing::debug!(%address, error = %e, "WriteTxnMarkers failed");
                BTreeMap::new()
            }
        };
        for &i in &indexes {
            errors[i] = results.get(&partitions[i]).copied().unwrap_or(ErrorCode::REQUEST_TIMED_OUT);
        }
    }
    errors
}

/// Writes a marker in a partition this shard owns and leads (acks=all in a cluster). In
/// `__consumer_offsets`, the marker also ends the producer's pending offset commits there.
async fn write_marker_here(
    shard: &Rc<Shard>,
    topic: &str,
    partition: i32,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
) -> ErrorCode {
    let Some(log) = shard.log(topic, partition) else { return ErrorCode::UNKNOWN_TOPIC_OR_PARTITION };
    let replicated = match super::replication::check_produce(shard, topic, partition, -1) {
        Ok(replicated) => replicated,
        Err(code) => return code,
    };
    let batch = record_batch::control_batch(producer_id, producer_epoch, ControlRecord { commit, coordinator_epoch }, now_ms());
    let appended = match log.append(vec![batch.into()]).await {
        Ok(appended) => appended,
        Err(AppendError::InvalidProducerEpoch) => return ErrorCode::INVALID_PRODUCER_EPOCH,
        Err(AppendError::CoordinatorFenced) => return ErrorCode::TRANSACTION_COORDINATOR_FENCED,
        Err(AppendError::Deleted) => return ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
        Err(AppendError::Storage) => return ErrorCode::KAFKA_STORAGE_ERROR,
        Err(_) => return ErrorCode::UNKNOWN_SERVER_ERROR,
    };
    if replicated {
        super::replication::appended(shard, topic, partition);
        if let Err(code) = super::replication::wait_for_commit(shard, &log, appended.base_offset + 1, Duration::from_secs(5)).await {
            return code;
        }
    }
    if topic == OFFSETS_TOPIC {
        let partitions = super::offsets_partitions(shard);
        shard.coordinator.borrow_mut().complete_txn_offsets(producer_id, commit, partition, partitions);
    }
    ErrorCode::NONE
}

/// Asks the coordinator of `id` whether `topic`-`partition` is in the producer's ongoing
/// transaction (KIP-890's verification, before a partition leader writes the producer's first
/// transactional batch or offsets there), from any shard. Errors are those a producer knows
/// what to do with: INVALID_PRODUCER_EPOCH (it is fenced), INVALID_TXN_STATE (not in the
/// transaction), NOT_ENOUGH_REPLICAS (the coordinator cannot be asked now: retry), as Kafka's
/// `AddPartitionsToTxnManager` maps them.
pub async fn verify_in_transaction(shard: &Rc<Shard>, id: &str, producer_id: i64, producer_epoch: i16, topic: &str, partition: i32) -> ErrorCode {
    let catalog = shard.catalog();
    let Some(txn_topic) = catalog.topic(TRANSACTION_STATE_TOPIC) else { return ErrorCode::INVALID_TXN_STATE };
    let me = shard.config().broker_id;
    let (leader, _) = txn_topic.leader_of(partition_for(id, txn_topic.partitions), me);
    let error = if leader == me {
        let (id, topic) = (id.to_string(), topic.to_string());
        on_txn_coordinator(
            shard,
            &id.clone(),
            |e| e,
            move |s, _| Box::pin(std::future::ready(s.txn_coordinator.borrow().verify(&id, producer_id, producer_epoch, &(topic, partition)))),
        )
        .await
    } else {
        let Some(address) = catalog.brokers.iter().find(|b| b.id == leader).map(|b| format!("{}:{}", b.host, b.port)) else {
            return ErrorCode::NOT_ENOUGH_REPLICAS;
        };
        let request = AddPartitionsToTxnRequest {
            transactions: vec![AddPartitionsToTxnTransaction {
                transactional_id: id.to_string(),
                producer_id,
                producer_epoch,
                verify_only: true,
                topics: vec![AddPartitionsToTxnTopic { name: topic.to_string(), partitions: vec![partition] }],
            }],
            ..Default::default()
        };
        match super::peer::call(&address, &request, 4, PEER_TIMEOUT).await {
            Ok(r) if !r.error.is_ok() => r.error,
            Ok(r) => r
                .results_by_transaction
                .iter()
                .flat_map(|t| &t.topic_results)
                .flat_map(|t| &t.results_by_partition)
                .map(|p| p.error)
                .next()
                .unwrap_or(ErrorCode::INVALID_TXN_STATE),
            Err(_) => ErrorCode::NOT_ENOUGH_REPLICAS,
        }
    };
    match error {
        ErrorCode::NONE => ErrorCode::NONE,
        ErrorCode::PRODUCER_FENCED | ErrorCode::INVALID_PRODUCER_EPOCH => ErrorCode::INVALID_PRODUCER_EPOCH,
        ErrorCode::INVALID_TXN_STATE | ErrorCode::INVALID_PRODUCER_ID_MAPPING => ErrorCode::INVALID_TXN_STATE,
        _ => ErrorCode::NOT_ENOUGH_REPLICAS,
    }
}

/// PRODUCER_FENCED as a request of `version` knows it: versions before `since` (the one that
/// added the error) get INVALID_PRODUCER_EPOCH, as Kafka's `KafkaApis` answers them.
fn fenced_for(version: i16, since: i16, error: ErrorCode) -> ErrorCode {
    if error == ErrorCode::PRODUCER_FENCED && version < since {
        ErrorCode::INVALID_PRODUCER_EPOCH
    } else {
        error
    }
}

pub fn init_producer_id(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let req = match super::decode::<InitProducerIdRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let answer = |error: ErrorCode, producer_id: i64, producer_epoch: i16| InitProducerIdResponse { error, producer_id, producer_epoch, ..Default::default() };
    let Some(id) = req.transactional_id.clone() else {
        // An idempotent producer gets a fresh id.
        return super::ready(respond(&header, &answer(ErrorCode::NONE, shard.shared.allocate_producer_id(), 0)));
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        ensure_coordinator_topic(&shard, 1).await;
        let (timeout_ms, expected) = (req.transaction_timeout_ms, (req.producer_id, req.producer_epoch));
        let (error, producer_id, producer_epoch) = on_txn_coordinator(
            &shard,
            &id.clone(),
            |e| (e, -1, -1),
            move |s, partition| {
                let s = s.clone();
                Box::pin(async move {
                    let outcome = s.txn_coordinator.borrow().init_producer_id(&id, timeout_ms, expected, now_ms(), || s.shared.allocate_producer_id());
                    match outcome {
                        Err(e) => (e, -1, -1),
                        Ok(InitOutcome::Write(next)) => {
                            let (producer_id, epoch) = (next.producer_id, next.producer_epoch);
                            match write_state(&s, partition, next).await {
                                ErrorCode::NONE => (ErrorCode::NONE, producer_id, epoch),
                                e => (e, -1, -1),
                            }
                        }
                        // The previous producer's transaction is aborted first (which fences
                        // it); the client retries on CONCURRENT_TRANSACTIONS.
                        Ok(InitOutcome::AbortFirst(abort)) => match write_state(&s, partition, abort.clone()).await {
                            ErrorCode::NONE => {
                                complete_in_background(&s, partition, abort);
                                (ErrorCode::CONCURRENT_TRANSACTIONS, -1, -1)
                            }
                            e => (e, -1, -1),
                        },
                    }
                })
            },
        )
        .await;
        Some(respond(&header, &answer(fenced_for(header.api_version, 4, error), producer_id, producer_epoch)))
    }))
}

/// Adds partitions to `id`'s transaction on its coordinator shard: one error for them all.
async fn add_partitions(shard: &Rc<Shard>, id: String, producer_id: i64, producer_epoch: i16, partitions: Vec<(String, i32)>) -> ErrorCode {
    on_txn_coordinator(
        shard,
        &id.clone(),
        |e| e,
        move |s, partition| {
            let s = s.clone();
            Box::pin(async move {
                let next = s.txn_coordinator.borrow().add_partitions(&id, producer_id, producer_epoch, &partitions, now_ms());
                match next {
                    Err(e) => e,
                    Ok(None) => ErrorCode::NONE,
                    Ok(Some(next)) => write_state(&s, partition, next).await,
                }
            })
        },
    )
    .await
}

/// The partitions of `topics` that exist (else UNKNOWN_TOPIC_OR_PARTITION), and the results
/// with `error` for all of them (or their own error).
fn topic_results(shard: &Shard, topics: &[AddPartitionsToTxnTopic], error: impl Fn(&str, i32) -> Option<ErrorCode>) -> Vec<AddPartitionsToTxnTopicResult> {
    let catalog = shard.catalog();
    topics
        .iter()
        .map(|t| AddPartitionsToTxnTopicResult {
            name: t.name.clone(),
            results_by_partition: t
                .partitions
                .iter()
                .map(|&p| {
                    let known = catalog.topic(&t.name).is_some_and(|m| p >= 0 && p < m.partitions);
                    let error = if known { error(&t.name, p) } else { Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION) };
                    AddPartitionsToTxnPartitionResult { partition_index: p, error: error.unwrap_or(ErrorCode::NONE) }
                })
                .collect(),
        })
        .collect()
}

/// One transaction of AddPartitionsToTxn: added (or, `verify_only`, checked). As in Kafka, a
/// request naming an unknown partition adds none: the others get OPERATION_NOT_ATTEMPTED.
async fn add_or_verify(shard: &Rc<Shard>, t: AddPartitionsToTxnTransaction) -> Vec<AddPartitionsToTxnTopicResult> {
    let unknown = topic_results(shard, &t.topics, |_, _| None).iter().flat_map(|r| &r.results_by_partition).any(|p| !p.error.is_ok());
    if unknown {
        return topic_results(shard, &t.topics, |_, _| Some(ErrorCode::OPERATION_NOT_ATTEMPTED));
    }
    let partitions: Vec<(String, i32)> = t.topics.iter().flat_map(|topic| topic.partitions.iter().map(|&p| (topic.name.clone(), p))).collect();
    if t.verify_only {
        let (id, pid, epoch) = (t.transactional_id.clone(), t.producer_id, t.producer_epoch);
        let (checked, count) = (partitions.clone(), partitions.len());
        let errors: Vec<ErrorCode> = on_txn_coordinator(
            shard,
            &t.transactional_id,
            |e| vec![e; count],
            move |s, _| {
                let c = s.txn_coordinator.borrow();
                let errors = checked.iter().map(|p| c.verify(&id, pid, epoch, p)).collect();
                Box::pin(std::future::ready(errors))
            },
        )
        .await;
        let by_partition: BTreeMap<(String, i32), ErrorCode> = partitions.into_iter().zip(errors).collect();
        return topic_results(shard, &t.topics, |topic, p| by_partition.get(&(topic.to_string(), p)).copied());
    }
    let error = add_partitions(shard, t.transactional_id.clone(), t.producer_id, t.producer_epoch, partitions).await;
    topic_results(shard, &t.topics, |_, _| Some(error))
}

pub fn add_partitions_to_txn(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let req = match super::decode::<AddPartitionsToTxnRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let response = if header.api_version <= 3 {
            let t = AddPartitionsToTxnTransaction {
                transactional_id: req.v3_and_below_transactional_id,
                producer_id: req.v3_and_below_producer_id,
                producer_epoch: req.v3_and_below_producer_epoch,
                verify_only: false,
                topics: req.v3_and_below_topics,
            };
            let mut results = add_or_verify(&shard, t).await;
            for p in results.iter_mut().flat_map(|t| t.results_by_partition.iter_mut()) {
                p.error = fenced_for(header.api_version, 2, p.error);
            }
            AddPartitionsToTxnResponse { results_by_topic_v3_and_below: results, ..Default::default() }
        } else {
            let mut results_by_transaction = Vec::new();
            for t in req.transactions {
                let transactional_id = t.transactional_id.clone();
                results_by_transaction.push(AddPartitionsToTxnResult { transactional_id, topic_results: add_or_verify(&shard, t).await });
            }
            AddPartitionsToTxnResponse { results_by_transaction, ..Default::default() }
        };
        Some(respond(&header, &response))
    }))
}

pub fn add_offsets_to_txn(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let req = match super::decode::<AddOffsetsToTxnRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        ensure_coordinator_topic(&shard, 0).await;
        // The group's offsets partition joins the transaction: its marker ends the commit.
        let partition = partition_for(&req.group_id, super::offsets_partitions(&shard));
        let error = add_partitions(&shard, req.transactional_id, req.producer_id, req.producer_epoch, vec![(OFFSETS_TOPIC.to_string(), partition)]).await;
        Some(respond(&header, &AddOffsetsToTxnResponse { throttle_time_ms: 0, error: fenced_for(header.api_version, 2, error) }))
    }))
}

pub fn end_txn(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let req = match super::decode::<EndTxnRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let (id, producer_id, epoch, commit) = (req.transactional_id, req.producer_id, req.producer_epoch, req.committed);
        let error = on_txn_coordinator(
            &shard,
            &id.clone(),
            |e| e,
            move |s, partition| {
                let s = s.clone();
                Box::pin(async move {
                    let next = s.txn_coordinator.borrow().end_txn(&id, producer_id, epoch, commit, now_ms());
                    match next {
                        Err(e) => e,
                        Ok(None) => ErrorCode::NONE,
                        Ok(Some(prepared)) => match write_state(&s, partition, prepared.clone()).await {
                            ErrorCode::NONE => {
                                complete_in_background(&s, partition, prepared);
                                ErrorCode::NONE
                            }
                            e => e,
                        },
                    }
                })
            },
        )
        .await;
        Some(respond(&header, &EndTxnResponse { throttle_time_ms: 0, error: fenced_for(header.api_version, 2, error) }))
    }))
}

/// WriteTxnMarkers, from a transaction coordinator: each marker in each partition, written on
/// the partition's shard if this broker leads it.
pub fn write_txn_markers(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let req = match super::decode::<WriteTxnMarkersRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let catalog = shard.catalog();
        let me = shard.config().broker_id;
        let mut markers = Vec::new();
        for m in req.markers {
            let mut topics = Vec::new();
            for t in m.topics {
                let mut partitions = Vec::new();
                for p in t.partition_indexes {
                    let error = match catalog.topic(&t.name) {
                        Some(meta) if p >= 0 && p < meta.partitions && meta.is_led_by(p, me) => {
                            let (topic, owner) = (t.name.clone(), shard.owner_of(&t.name, p));
                            let (pid, epoch, commit, coordinator_epoch) = (m.producer_id, m.producer_epoch, m.transaction_result, m.coordinator_epoch);
                            let rx = shard
                                .call(owner, move |s: &Rc<Shard>| {
                                    let s = s.clone();
                                    Box::pin(async move { write_marker_here(&s, &topic, p, pid, epoch, commit, coordinator_epoch).await })
                                        as LocalBoxFuture<ErrorCode>
                                })
                                .await;
                            rx.recv_async().await.unwrap_or(ErrorCode::NOT_LEADER_OR_FOLLOWER)
                        }
                        Some(meta) if p >= 0 && p < meta.partitions => ErrorCode::NOT_LEADER_OR_FOLLOWER,
                        _ => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    };
                    partitions.push(WritableTxnMarkerPartitionResult { partition_index: p, error });
                }
                topics.push(WritableTxnMarkerTopicResult { name: t.name, partitions });
            }
            markers.push(WritableTxnMarkerResult { producer_id: m.producer_id, topics });
        }
        Some(respond(&header, &WriteTxnMarkersResponse { markers }))
    }))
}

/// TxnOffsetCommit: the offsets go into the group's `__consumer_offsets` partition as a
/// transactional batch of the producer, and count once its commit marker is written there.
pub fn txn_offset_commit(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let req = match super::decode::<TxnOffsetCommitRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let now = now_ms();
        let mut commits: Vec<(String, i32, Result<records::OffsetValue, ErrorCode>)> = Vec::new();
        for t in &req.topics {
            for p in &t.partitions {
                let metadata = p.committed_metadata.clone().unwrap_or_default();
                let value = if metadata.len() > OFFSET_METADATA_MAX_BYTES {
                    Err(ErrorCode::OFFSET_METADATA_TOO_LARGE)
                } else {
                    Ok(records::OffsetValue { offset: p.committed_offset, leader_epoch: p.committed_leader_epoch, metadata, commit_timestamp: now })
                };
                commits.push((t.name.clone(), p.partition_index, value));
            }
        }
        let (txn_id, group_id, pid, epoch) = (req.transactional_id.clone(), req.group_id.clone(), req.producer_id, req.producer_epoch);
        let (generation, member_id, instance) = (req.generation_id, req.member_id.clone(), req.group_instance_id.clone());
        let gone = vec![ErrorCode::COORDINATOR_NOT_AVAILABLE; commits.len()];
        let errors = super::groups::on_coordinator(&shard, &req.group_id, gone, move |s, partition| {
            let s = s.clone();
            Box::pin(async move { commit_in_transaction(&s, partition, (txn_id, group_id, pid, epoch), (generation, member_id, instance), commits).await })
        })
        .await;
        // A fenced producer learns it as PRODUCER_FENCED here (v2+), as in Kafka.
        let fenced = |e: ErrorCode| if e == ErrorCode::INVALID_PRODUCER_EPOCH && header.api_version >= 2 { ErrorCode::PRODUCER_FENCED } else { e };
        let mut errors = errors.into_iter().map(fenced);
        let topics = req
            .topics
            .iter()
            .map(|t| TxnOffsetCommitResponseTopic {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| TxnOffsetCommitResponsePartition {
                        partition_index: p.partition_index,
                        error: errors.next().unwrap_or(ErrorCode::UNKNOWN_SERVER_ERROR),
                    })
                    .collect(),
            })
            .collect();
        Some(respond(&header, &TxnOffsetCommitResponse { throttle_time_ms: 0, topics }))
    }))
}

/// On the group's coordinator shard: checks the member (KIP-447: a commit from outside the
/// group's generation is fenced; one without a generation is allowed), writes the offsets as
/// the producer's transactional batch, and holds them pending until the marker.
async fn commit_in_transaction(
    shard: &Rc<Shard>,
    partition: i32,
    (txn_id, group_id, producer_id, producer_epoch): (String, String, i64, i16),
    (generation, member_id, instance): (i32, String, Option<String>),
    commits: Vec<(String, i32, Result<records::OffsetValue, ErrorCode>)>,
) -> Vec<ErrorCode> {
    if generation >= 0 || !member_id.is_empty() {
        let check = shard.coordinator.borrow_mut().check_commit(&group_id, generation, &member_id, instance.as_deref());
        if !check.is_ok() {
            return commits.iter().map(|_| check).collect();
        }
    }
    // The offsets partition must be in the transaction (AddOffsetsToTxn came first), verified
    // here, on the partition's shard, under a guard a marker voids (KIP-890), as a produced
    // batch is.
    let Some(log) = shard.log(OFFSETS_TOPIC, partition) else { return commits.iter().map(|_| ErrorCode::COORDINATOR_NOT_AVAILABLE).collect() };
    let guard = if log.has_open_transaction(producer_id, producer_epoch) {
        0
    } else {
        let guard = log.start_verification(producer_id);
        let verified = verify_in_transaction(shard, &txn_id, producer_id, producer_epoch, OFFSETS_TOPIC, partition).await;
        if !verified.is_ok() {
            return commits.iter().map(|_| verified).collect();
        }
        guard
    };
    let now = now_ms();
    let mut batch = record_batch::BatchBuilder::new(now, 0);
    let mut count = 0i64;
    for (topic, p, v) in &commits {
        if let Ok(v) = v {
            let key = records::encode_key(&records::RecordKey::Offset { group: group_id.clone(), topic: topic.clone(), partition: *p });
            batch.append(now, Some(key.as_slice()), Some(records::encode_offset_value(v).as_slice()), &[]);
            count += 1;
        }
    }
    let written = if count == 0 {
        ErrorCode::NONE
    } else {
        let fields =
            record_batch::BatchFields { attributes: record_batch::ATTR_TRANSACTIONAL, ..record_batch::BatchFields::producer(producer_id, producer_epoch, -1) };
        append_internal(shard, OFFSETS_TOPIC, partition, batch.finish_uncompressed(&fields).into(), count, Some(guard)).await
    };
    let mut pending = Vec::new();
    let errors = commits
        .into_iter()
        .map(|(topic, p, v)| match v {
            Err(e) => e,
            Ok(_) if !written.is_ok() => written,
            Ok(value) => {
                pending.push((group_id.clone(), topic, p, value));
                ErrorCode::NONE
            }
        })
        .collect();
    if !pending.is_empty() {
        shard.coordinator.borrow_mut().add_txn_offsets(producer_id, pending);
    }
    errors
}

/// Loads the transactional ids of one `__transaction_state` partition this shard leads (at
/// startup, and when it becomes the leader), and finishes the transactions left half-ended.
pub fn load_txn_partition(shard: &Rc<Shard>, log: &Rc<crate::storage::PartitionLog>) {
    let partitions = txn_partitions(shard);
    let mut loaded = 0usize;
    {
        let mut coordinator = shard.txn_coordinator.borrow_mut();
        coordinator.unload_partition(log.partition, partitions);
        let result = log.for_each_batch_blocking(|batch| match records::batch_records(batch) {
            Ok(recs) => {
                for (key, value) in recs {
                    let Ok(Some(id)) = txn_log::decode_key(key) else { continue };
                    let value = match value.map(|v| txn_log::decode_value(&id, v)) {
                        Some(Ok(m)) => Some(m),
                        None => None,
                        Some(Err(e)) => {
                            tracing::warn!(partition = log.partition, transactional_id = %id, error = %e, "skipping an unreadable __transaction_state record");
                            continue;
                        }
                    };
                    coordinator.apply_record(id, value);
                    loaded += 1;
                }
            }
            Err(e) => tracing::warn!(partition = log.partition, error = %e, "skipping an unreadable __transaction_state batch"),
        });
        if let Err(e) = result {
            tracing::error!(partition = log.partition, error = %e, "could not read __transaction_state");
        }
    }
    let unfinished: Vec<TxnMetadata> =
        shard.txn_coordinator.borrow().unfinished().into_iter().filter(|m| partition_for(&m.transactional_id, partitions) == log.partition).collect();
    if loaded > 0 {
        tracing::info!(shard = shard.id.0, partition = log.partition, records = loaded, unfinished = unfinished.len(), "loaded transactional ids");
    }
    for m in unfinished {
        complete_in_background(shard, log.partition, m);
    }
}

/// This broker no longer leads a `__transaction_state` partition: its ids are forgotten (their
/// marker tasks stop at their next round).
pub fn unload_txn_partition(shard: &Rc<Shard>, partition: i32) {
    let partitions = txn_partitions(shard);
    shard.txn_coordinator.borrow_mut().unload_partition(partition, partitions);
}

/// The coordinator's timer (`transaction.abort.timed.out.transaction.cleanup.interval.ms`):
/// aborts the transactions open longer than their timeout (fencing their producer with a
/// bumped epoch, as Kafka does), and tombstones the ids idle past
/// `transactional.id.expiration.ms`.
pub async fn expire_transactions(shard: &Rc<Shard>) {
    let partitions = txn_partitions(shard);
    let (timed_out, expired) = {
        let c = shard.txn_coordinator.borrow();
        let now = now_ms();
        (c.timed_out(now), c.expired(now))
    };
    // Each id is checked again right before its write: the writes before it took time, and its
    // producer may have ended the transaction (or reused the id) meanwhile.
    for id in timed_out.into_iter().map(|m| m.transactional_id) {
        let Some(abort) = shard.txn_coordinator.borrow().timed_out_one(&id, now_ms()) else { continue };
        let partition = partition_for(&id, partitions);
        tracing::info!(transactional_id = %id, producer_id = abort.producer_id, "aborting a transaction past its timeout");
        if write_state(shard, partition, abort.clone()).await.is_ok() {
            complete_in_background(shard, partition, abort);
        }
    }
    for id in expired {
        let partition = partition_for(&id, partitions);
        let m = {
            let c = shard.txn_coordinator.borrow();
            if !c.is_expired(&id, now_ms()) {
                continue;
            }
            c.txns[&id].clone()
        };
        if !shard.txn_coordinator.borrow_mut().begin(&m) {
            continue;
        }
        let error = append_internal(shard, TRANSACTION_STATE_TOPIC, partition, records_batch(&[(txn_log::encode_key(&id), None)]), 1, None).await;
        let mut c = shard.txn_coordinator.borrow_mut();
        if error.is_ok() {
            c.apply_record(id, None);
        } else {
            c.abandon(&id);
        }
    }
}
