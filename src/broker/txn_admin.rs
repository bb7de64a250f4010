//! The transaction admin APIs (KIP-664), which `kafka-transactions.sh` uses to find and abort
//! hanging transactions: DescribeProducers (a partition replica's producers and their open
//! transactions), DescribeTransactions (a coordinator's state of transactional ids) and
//! ListTransactions (every transactional id a broker coordinates). They only read: the abort
//! itself is a WriteTxnMarkers from the tool to the partition leader (`txn::write_txn_markers`).
//!
//! Each answer comes from the shard that owns the state: a partition's producers from its
//! owning shard, a transactional id's state from the shard of its `__transaction_state`
//! partition, and a listing from every shard, each filtering its own ids.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::route::route;
use super::txn::on_txn_coordinator;
use super::{decode, malformed, respond, Dispatched};
use crate::coordinator::txn::{TxnMetadata, TxnState};
use crate::io::runtime::now_ms;
use crate::protocol::codec::Reader;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::describe_producers::{
    DescribeProducersPartitionResponse, DescribeProducersRequest, DescribeProducersResponse, DescribeProducersTopicResponse, ProducerState,
};
use crate::protocol::messages::describe_transactions::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, DescribedTransaction, DescribedTransactionTopic,
};
use crate::protocol::messages::list_transactions::{transactional_id_matcher, ListTransactionsRequest, ListTransactionsResponse, ListedTransaction};
use crate::protocol::ErrorCode;
use crate::shard::catalog::validate_topic_name;
use crate::shard::{LocalBoxFuture, Shard};

/// DescribeProducers: per partition, the producers its replica here knows. Kafka answers from
/// any replica, not only the leader (`kafka-transactions.sh describe-producers --broker-id`
/// asks a follower), and so does Spate: a follower's producer state is rebuilt from the
/// batches it copies.
pub fn describe_producers(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let req = match decode::<DescribeProducersRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let catalog = shard.catalog();
        let me = shard.config().broker_id;
        // Per topic: why its name is invalid, if it is, and each partition's answer (None while
        // its owning shard is asked).
        type Answers = Vec<(i32, Option<Result<Vec<ProducerState>, ErrorCode>>)>;
        let mut answers: Vec<(String, Option<String>, Answers)> = Vec::new();
        let mut asked: Vec<(String, i32, ())> = Vec::new();
        for t in req.topics {
            let meta = catalog.topic(&t.name);
            let invalid_name = if meta.is_none() { validate_topic_name(&t.name).err() } else { None };
            let mut partitions = Vec::new();
            for p in t.partition_indexes {
                let early = match &meta {
                    None if invalid_name.is_some() => Some(ErrorCode::INVALID_TOPIC_EXCEPTION),
                    None => Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
                    Some(m) if p < 0 || p >= m.partitions => Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
                    Some(m) if !m.has_replica_on(p, me) => Some(ErrorCode::NOT_LEADER_OR_FOLLOWER),
                    Some(_) => None,
                };
                if early.is_none() {
                    asked.push((t.name.clone(), p, ()));
                }
                partitions.push((p, early.map(Err)));
            }
            answers.push((t.name, invalid_name, partitions));
        }
        let mut found = route(&shard, asked, |s: &Rc<Shard>, topic: &str, p: i32, ()| {
            // A log not open here (yet) is a replica this broker does not serve now.
            let producers = s.log(topic, p).map(|log| log.describe_producers()).ok_or(ErrorCode::NOT_LEADER_OR_FOLLOWER);
            let answer = producers.map(|all| {
                all.into_iter()
                    .map(|(producer_id, epoch, last_sequence, last_timestamp, coordinator_epoch, txn_start)| ProducerState {
                        producer_id,
                        producer_epoch: epoch as i32,
                        last_sequence,
                        last_timestamp,
                        coordinator_epoch,
                        current_txn_start_offset: txn_start,
                    })
                    .collect::<Vec<_>>()
            });
            Box::pin(std::future::ready(answer)) as LocalBoxFuture<Result<Vec<ProducerState>, ErrorCode>>
        })
        .await
        .collect()
        .await
        .into_iter();
        let topics = answers
            .into_iter()
            .map(|(name, invalid_name, partitions)| DescribeProducersTopicResponse {
                partitions: partitions
                    .into_iter()
                    .map(|(partition_index, early)| {
                        // The owning shard is gone only at shutdown.
                        let answer = early.unwrap_or_else(|| found.next().flatten().unwrap_or(Err(ErrorCode::NOT_LEADER_OR_FOLLOWER)));
                        match answer {
                            Ok(active_producers) => {
                                DescribeProducersPartitionResponse { partition_index, error: ErrorCode::NONE, error_message: None, active_producers }
                            }
                            Err(error) => {
                                DescribeProducersPartitionResponse { partition_index, error, error_message: invalid_name.clone(), active_producers: Vec::new() }
                            }
                        }
                    })
                    .collect(),
                name,
            })
            .collect();
        Some(respond(&header, &DescribeProducersResponse { throttle_time_ms: 0, topics }))
    }))
}

/// DescribeTransactions: each id's state on its coordinator shard, in request order, as Kafka's
/// `TransactionCoordinator.handleDescribeTransactions` gives it: NOT_COORDINATOR when another
/// broker coordinates it (the client looks it up again), TRANSACTIONAL_ID_NOT_FOUND when no
/// coordinator state exists (nor for an id whose first InitProducerId is still being written).
pub fn describe_transactions(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let req = match decode::<DescribeTransactionsRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let described = req.transactional_ids.into_iter().map(|id| {
            let shard = shard.clone();
            async move {
                let failed = |id: &str, error: ErrorCode| DescribedTransaction { error, transactional_id: id.to_string(), ..Default::default() };
                let gone_id = id.clone();
                on_txn_coordinator(
                    &shard,
                    &id.clone(),
                    move |e| failed(&gone_id, e),
                    move |s, _| {
                        let answer = match s.txn_coordinator.borrow().txns.get(&id) {
                            Some(m) if m.state != TxnState::Dead => described(m),
                            _ => failed(&id, ErrorCode::TRANSACTIONAL_ID_NOT_FOUND),
                        };
                        Box::pin(std::future::ready(answer))
                    },
                )
                .await
            }
        });
        let transaction_states = futures_util::future::join_all(described).await;
        Some(respond(&header, &DescribeTransactionsResponse { throttle_time_ms: 0, transaction_states }))
    }))
}

/// One id's description. The partitions are those of its transaction (cleared when it
/// completes); while the markers of a PrepareCommit or PrepareAbort are being written, Kafka
/// drops each partition as its marker is written, Spate keeps them all until the end.
fn described(m: &TxnMetadata) -> DescribedTransaction {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in &m.partitions {
        topics.entry(topic).or_default().push(*partition);
    }
    DescribedTransaction {
        error: ErrorCode::NONE,
        transactional_id: m.transactional_id.clone(),
        transaction_state: m.state.name().to_string(),
        transaction_timeout_ms: m.timeout_ms,
        transaction_start_time_ms: m.start_ms,
        producer_id: m.producer_id,
        producer_epoch: m.producer_epoch,
        topics: topics.into_iter().map(|(topic, partitions)| DescribedTransactionTopic { topic: topic.to_string(), partitions }).collect(),
    }
}

/// ListTransactions: the ids of every shard, each shard filtering its own, sorted by id.
pub fn list_transactions(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let req = match decode::<ListTransactionsRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let (filter, unknown_state_filters) = match ListFilter::new(&req, now_ms()) {
            Ok(found) => found,
            // Kafka answers an invalid pattern with the error and nothing else.
            Err(_) => return Some(respond(&header, &ListTransactionsResponse { error: ErrorCode::INVALID_REGULAR_EXPRESSION, ..Default::default() })),
        };
        let per_shard = shard
            .call_all(move |s: &Rc<Shard>| {
                let listed: Vec<ListedTransaction> = s
                    .txn_coordinator
                    .borrow()
                    .txns
                    .values()
                    .filter(|m| filter.includes(m))
                    .map(|m| ListedTransaction {
                        transactional_id: m.transactional_id.clone(),
                        producer_id: m.producer_id,
                        transaction_state: m.state.name().to_string(),
                    })
                    .collect();
                Box::pin(std::future::ready(listed)) as LocalBoxFuture<Vec<ListedTransaction>>
            })
            .await;
        let mut transaction_states: Vec<ListedTransaction> = per_shard.into_iter().flatten().collect();
        transaction_states.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Some(respond(&header, &ListTransactionsResponse { throttle_time_ms: 0, error: ErrorCode::NONE, unknown_state_filters, transaction_states }))
    }))
}

/// A ListTransactions request's filters, as Kafka's `TransactionStateManager
/// .listTransactionStates` applies them (every filter must pass).
#[derive(Clone)]
struct ListFilter {
    /// None: any state. Some: one of these (empty when every name asked was unknown, which
    /// lists nothing, as in Kafka).
    states: Option<Vec<TxnState>>,
    producer_ids: Vec<i64>,
    /// Only transactions started more than this long before `now_ms`; negative: all.
    duration_ms: i64,
    now_ms: i64,
    pattern: Option<regex::Regex>,
}

impl ListFilter {
    /// The filter, and the state names that name no state; an invalid pattern's error.
    fn new(req: &ListTransactionsRequest, now_ms: i64) -> Result<(ListFilter, Vec<String>), String> {
        let pattern = transactional_id_matcher(req.transactional_id_pattern.as_deref())?;
        let mut unknown = Vec::new();
        let states = (!req.state_filters.is_empty()).then(|| {
            let mut states = Vec::new();
            for name in &req.state_filters {
                match TxnState::from_name(name) {
                    Some(s) => states.push(s),
                    None if !unknown.contains(name) => unknown.push(name.clone()),
                    None => {}
                }
            }
            states
        });
        Ok((ListFilter { states, producer_ids: req.producer_id_filters.clone(), duration_ms: req.duration_filter, now_ms, pattern }, unknown))
    }

    fn includes(&self, m: &TxnMetadata) -> bool {
        // Dead is a placeholder (an id whose first state is being written) or an id being
        // removed: Kafka leaves it out too.
        m.state != TxnState::Dead
            && (self.producer_ids.is_empty() || self.producer_ids.contains(&m.producer_id))
            && self.states.as_ref().is_none_or(|states| states.contains(&m.state))
            // As in Kafka, an id with no transaction started (-1) is older than any duration.
            && (self.duration_ms < 0 || self.now_ms.saturating_sub(m.start_ms) > self.duration_ms)
            && self.pattern.as_ref().is_none_or(|p| p.is_match(&m.transactional_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn txn(id: &str, producer_id: i64, state: TxnState, start_ms: i64) -> TxnMetadata {
        TxnMetadata {
            transactional_id: id.to_string(),
            producer_id,
            producer_epoch: 0,
            timeout_ms: 60_000,
            state,
            partitions: BTreeSet::new(),
            last_update_ms: 0,
            start_ms,
            pending: false,
        }
    }

    /// The ids of `txns` that `req` lists at time 10 000, and its unknown state names.
    fn check(req: ListTransactionsRequest, expected: &[&str], unknown: &[&str]) {
        let txns = [
            txn("app-1", 1, TxnState::Ongoing, 9_000),
            txn("app-2", 2, TxnState::Ongoing, 1_000),
            txn("batch", 3, TxnState::CompleteCommit, 500),
            txn("fresh", 4, TxnState::Empty, -1),
            txn("placeholder", 5, TxnState::Dead, -1),
        ];
        let (filter, unknown_found) = ListFilter::new(&req, 10_000).unwrap();
        let listed: Vec<&str> = txns.iter().filter(|m| filter.includes(m)).map(|m| m.transactional_id.as_str()).collect();
        assert_eq!(listed, expected, "{req:?}");
        assert_eq!(unknown_found, unknown, "{req:?}");
    }

    #[test]
    fn lists_with_kafkas_filters() {
        let all = ListTransactionsRequest::default();
        check(all.clone(), &["app-1", "app-2", "batch", "fresh"], &[]);
        let states = |names: &[&str]| ListTransactionsRequest { state_filters: names.iter().map(|s| s.to_string()).collect(), ..Default::default() };
        check(states(&["Ongoing"]), &["app-1", "app-2"], &[]);
        check(states(&["Ongoing", "ongoing", "Nope", "Nope"]), &["app-1", "app-2"], &["ongoing", "Nope"]);
        check(states(&["Nope"]), &[], &["Nope"]);
        check(ListTransactionsRequest { producer_id_filters: vec![3, 5], ..Default::default() }, &["batch"], &[]);
        // Started more than 5 s before 10 000: app-2 and batch; fresh never started.
        check(ListTransactionsRequest { duration_filter: 5_000, ..Default::default() }, &["app-2", "batch", "fresh"], &[]);
        check(ListTransactionsRequest { duration_filter: 1_000, ..Default::default() }, &["app-2", "batch", "fresh"], &[]);
        check(ListTransactionsRequest { duration_filter: 999, ..Default::default() }, &["app-1", "app-2", "batch", "fresh"], &[]);
        let pattern = |p: &str| ListTransactionsRequest { transactional_id_pattern: Some(p.to_string()), ..Default::default() };
        check(pattern("app-.*"), &["app-1", "app-2"], &[]);
        check(pattern("app"), &[], &[]);
        check(pattern(""), &["app-1", "app-2", "batch", "fresh"], &[]);
        assert!(ListFilter::new(&pattern("app-("), 0).is_err());
        check(ListTransactionsRequest { state_filters: vec!["Ongoing".into()], producer_id_filters: vec![2, 3], ..Default::default() }, &["app-2"], &[]);
    }

    #[test]
    fn describes_partitions_by_topic() {
        let mut m = txn("t", 7, TxnState::Ongoing, 5);
        m.partitions = [("b", 1), ("a", 2), ("b", 0)].iter().map(|(t, p)| (t.to_string(), *p)).collect();
        let d = described(&m);
        assert_eq!((d.transaction_state.as_str(), d.producer_id, d.transaction_start_time_ms, d.transaction_timeout_ms), ("Ongoing", 7, 5, 60_000));
        let topics: Vec<(&str, Vec<i32>)> = d.topics.iter().map(|t| (t.topic.as_str(), t.partitions.clone())).collect();
        assert_eq!(topics, vec![("a", vec![2]), ("b", vec![0, 1])]);
    }
}
