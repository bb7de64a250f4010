//! The transaction coordinator (KIP-98): each transactional id's producer id, epoch, state and
//! partitions, as Kafka's `TransactionStateManager` and `TransactionCoordinator` keep them.
//!
//! A transactional id lives on the shard that owns its `__transaction_state` partition (Java's
//! `abs(transactionalId.hashCode()) % transaction.state.log.num.partitions`, as for groups),
//! and its state is that shard's alone. This module is the state machine, with no IO: each
//! request either fails with Kafka's error or yields the id's next metadata, which the broker
//! (`broker::txn`) appends to `__transaction_state` before it takes effect. While that write
//! (or the markers of an ending transaction) is under way, the id is `pending`, and requests
//! for it get CONCURRENT_TRANSACTIONS, which clients retry.
//!
//! The states, with Kafka's ids (as `__transaction_state` stores them):
//! ```text
//! Empty(0) --AddPartitions--> Ongoing(1) --EndTxn--> PrepareCommit(2) --markers--> CompleteCommit(4)
//!                                         \--EndTxn/timeout/fence--> PrepareAbort(3) --markers--> CompleteAbort(5)
//! Complete*(4, 5) --AddPartitions--> Ongoing; --InitProducerId--> Empty (epoch + 1)
//! ```

use std::collections::{BTreeSet, HashMap};

use crate::protocol::ErrorCode;

pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum TxnState {
    Empty = 0,
    Ongoing = 1,
    PrepareCommit = 2,
    PrepareAbort = 3,
    CompleteCommit = 4,
    CompleteAbort = 5,
    Dead = 6,
    PrepareEpochFence = 7,
}

impl TxnState {
    pub fn from_id(id: i8) -> Option<TxnState> {
        Some(match id {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The state named `name` (Kafka's `TransactionState.fromName`, case-sensitive), as
    /// ListTransactions' state filters name them.
    pub fn from_name(name: &str) -> Option<TxnState> {
        (0..=TxnState::PrepareEpochFence as i8).filter_map(TxnState::from_id).find(|s| s.name() == name)
    }

    /// Kafka's name of the state (`TransactionState.stateName`), as DescribeTransactions and
    /// ListTransactions give it.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub last_update_ms: i64,
    /// When the transaction began (its first AddPartitionsToTxn); -1 for none.
    pub start_ms: i64,
    /// A write of this id's next state, or its markers, is under way.
    pub pending: bool,
}

impl TxnMetadata {
    /// The state after `self` moved to `state` at `now`.
    fn to(&self, state: TxnState, now: i64) -> TxnMetadata {
        TxnMetadata { state, last_update_ms: now, pending: false, ..self.clone() }
    }
}

/// What InitProducerId leads to.
#[derive(Debug, Clone, PartialEq)]
pub enum InitOutcome {
    /// Write this, then answer with its producer id and epoch.
    Write(TxnMetadata),
    /// The previous producer's transaction is open: write this (PrepareAbort under a bumped
    /// epoch, which fences the old producer), write its markers, and answer
    /// CONCURRENT_TRANSACTIONS; the client retries once the abort is complete.
    AbortFirst(TxnMetadata),
}

pub use crate::config::TransactionConfig as TxnConfig;

/// One shard's transactional ids.
pub struct TxnCoordinator {
    pub txns: HashMap<String, TxnMetadata>,
    pub config: TxnConfig,
}

impl TxnCoordinator {
    pub fn new(config: TxnConfig) -> TxnCoordinator {
        TxnCoordinator { txns: HashMap::new(), config }
    }

    /// Checks that a request of `producer_id` at `epoch` is the current producer's.
    fn current(&self, id: &str, producer_id: i64, epoch: i16) -> Result<&TxnMetadata, ErrorCode> {
        let m = self.txns.get(id).ok_or(ErrorCode::INVALID_PRODUCER_ID_MAPPING)?;
        if m.producer_id != producer_id {
            return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
        }
        if m.producer_epoch != epoch {
            return Err(ErrorCode::PRODUCER_FENCED);
        }
        if m.pending {
            return Err(ErrorCode::CONCURRENT_TRANSACTIONS);
        }
        Ok(m)
    }

    /// InitProducerId for a transactional id (Kafka's `handleInitProducerId`). `expected`:
    /// the producer id and epoch a v3+ client resumes with ((-1, -1) for none); `allocate`
    /// hands out a new producer id.
    pub fn init_producer_id(
        &self,
        id: &str,
        timeout_ms: i32,
        expected: (i64, i16),
        now: i64,
        allocate: impl FnOnce() -> i64,
    ) -> Result<InitOutcome, ErrorCode> {
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(ErrorCode::INVALID_TRANSACTION_TIMEOUT);
        }
        let Some(m) = self.txns.get(id) else {
            return Ok(InitOutcome::Write(TxnMetadata {
                transactional_id: id.to_string(),
                producer_id: allocate(),
                producer_epoch: 0,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                last_update_ms: now,
                start_ms: -1,
                pending: false,
            }));
        };
        if m.pending {
            return Err(ErrorCode::CONCURRENT_TRANSACTIONS);
        }
        // KIP-360: a producer that resumes must be the current one.
        if expected.0 >= 0 && (expected.0 != m.producer_id || expected.1 != m.producer_epoch) {
            return Err(ErrorCode::PRODUCER_FENCED);
        }
        match m.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence | TxnState::Dead => Err(ErrorCode::CONCURRENT_TRANSACTIONS),
            TxnState::Ongoing => Ok(InitOutcome::AbortFirst(self.fenced_abort(m, now))),
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let mut next = m.to(TxnState::Empty, now);
                next.timeout_ms = timeout_ms;
                next.partitions.clear();
                next.start_ms = -1;
                // An epoch about to run out gets a new producer id, as Kafka's does.
                if m.producer_epoch >= i16::MAX - 1 {
                    next.producer_id = allocate();
                    next.producer_epoch = 0;
                } else {
                    next.producer_epoch += 1;
                }
                Ok(InitOutcome::Write(next))
            }
        }
    }

    /// An open transaction aborted by the coordinator (a new producer's InitProducerId, or a
    /// timeout): PrepareAbort under the next epoch, so the old producer's requests and writes
    /// are refused from here on.
    fn fenced_abort(&self, m: &TxnMetadata, now: i64) -> TxnMetadata {
        let mut next = m.to(TxnState::PrepareAbort, now);
        if m.producer_epoch < i16::MAX - 1 {
            next.producer_epoch += 1;
        }
        next
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, whose partition is the group's offsets
    /// partition): `None` when every partition is in the transaction already.
    pub fn add_partitions(&self, id: &str, producer_id: i64, epoch: i16, partitions: &[(String, i32)], now: i64) -> Result<Option<TxnMetadata>, ErrorCode> {
        let m = self.current(id, producer_id, epoch)?;
        match m.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => Err(ErrorCode::CONCURRENT_TRANSACTIONS),
            TxnState::Dead | TxnState::PrepareEpochFence => Err(ErrorCode::INVALID_TXN_STATE),
            TxnState::Ongoing if partitions.iter().all(|p| m.partitions.contains(p)) => Ok(None),
            state => {
                let mut next = m.to(TxnState::Ongoing, now);
                if state != TxnState::Ongoing {
                    next.start_ms = now;
                    next.partitions.clear();
                }
                next.partitions.extend(partitions.iter().cloned());
                Ok(Some(next))
            }
        }
    }

    /// AddPartitionsToTxn v4+ with `verify_only` (KIP-890): the error for each partition, as a
    /// partition leader asks before it writes a producer's first transactional batch.
    pub fn verify(&self, id: &str, producer_id: i64, epoch: i16, partition: &(String, i32)) -> ErrorCode {
        let Some(m) = self.txns.get(id) else { return ErrorCode::INVALID_PRODUCER_ID_MAPPING };
        if m.producer_id != producer_id {
            return ErrorCode::INVALID_PRODUCER_ID_MAPPING;
        }
        if m.producer_epoch != epoch {
            return ErrorCode::PRODUCER_FENCED;
        }
        if m.state == TxnState::Ongoing && m.partitions.contains(partition) {
            ErrorCode::NONE
        } else {
            ErrorCode::INVALID_TXN_STATE
        }
    }

    /// EndTxn: `Some` PrepareCommit or PrepareAbort to write (then the markers), `None` for a
    /// retry of an end already complete.
    pub fn end_txn(&self, id: &str, producer_id: i64, epoch: i16, commit: bool, now: i64) -> Result<Option<TxnMetadata>, ErrorCode> {
        let m = self.current(id, producer_id, epoch)?;
        match (m.state, commit) {
            (TxnState::Ongoing, true) => Ok(Some(m.to(TxnState::PrepareCommit, now))),
            (TxnState::Ongoing, false) => Ok(Some(m.to(TxnState::PrepareAbort, now))),
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(None),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => Err(ErrorCode::CONCURRENT_TRANSACTIONS),
            _ => Err(ErrorCode::INVALID_TXN_STATE),
        }
    }

    /// The state once every marker of a PrepareCommit or PrepareAbort is written.
    pub fn complete(m: &TxnMetadata, now: i64) -> TxnMetadata {
        let state = if m.state == TxnState::PrepareCommit { TxnState::CompleteCommit } else { TxnState::CompleteAbort };
        let mut next = m.to(state, now);
        next.partitions.clear();
        next
    }

    /// The open transactions that outlived their timeout at `now`, each as the PrepareAbort
    /// (under a bumped epoch) to write, as Kafka's `abortTimedOutTransactions`.
    pub fn timed_out(&self, now: i64) -> Vec<TxnMetadata> {
        self.txns.keys().filter_map(|id| self.timed_out_one(id, now)).collect()
    }

    /// `timed_out` for one id, as it stands now: the timer checks each id again right before
    /// its write, since the ids before it were written meanwhile.
    pub fn timed_out_one(&self, id: &str, now: i64) -> Option<TxnMetadata> {
        let m = self.txns.get(id)?;
        (!m.pending && m.state == TxnState::Ongoing && m.start_ms >= 0 && now - m.start_ms > m.timeout_ms as i64).then(|| self.fenced_abort(m, now))
    }

    /// Transactions left half-ended (PrepareCommit or PrepareAbort, as loaded after a restart
    /// or a failover), whose markers must be written again.
    pub fn unfinished(&self) -> Vec<TxnMetadata> {
        self.txns.values().filter(|m| !m.pending && matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort)).cloned().collect()
    }

    /// Ids idle in a final state for `transactional.id.expiration.ms`: to be tombstoned.
    pub fn expired(&self, now: i64) -> Vec<String> {
        self.txns.keys().filter(|id| self.is_expired(id, now)).cloned().collect()
    }

    /// Whether `id` is idle past `transactional.id.expiration.ms` now.
    pub fn is_expired(&self, id: &str, now: i64) -> bool {
        self.txns.get(id).is_some_and(|m| {
            !m.pending
                && matches!(m.state, TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort)
                && now - m.last_update_ms > self.config.id_expiration_ms
        })
    }

    /// Marks `id` as being written (a placeholder for a new id), so that other requests for it
    /// wait. False, and nothing changes, if a write of it is under way already.
    #[must_use]
    pub fn begin(&mut self, next: &TxnMetadata) -> bool {
        let entry = self.txns.entry(next.transactional_id.clone()).or_insert_with(|| TxnMetadata { state: TxnState::Dead, ..next.clone() });
        !std::mem::replace(&mut entry.pending, true)
    }

    /// The write of `next` succeeded: it is the id's state now.
    pub fn commit(&mut self, mut next: TxnMetadata) {
        next.pending = false;
        self.txns.insert(next.transactional_id.clone(), next);
    }

    /// The write for `id` failed: it stays as it was (a new id is forgotten).
    pub fn abandon(&mut self, id: &str) {
        if let Some(m) = self.txns.get_mut(id) {
            m.pending = false;
            if m.state == TxnState::Dead {
                self.txns.remove(id);
            }
        }
    }

    /// Applies a record read back from `__transaction_state`.
    pub fn apply_record(&mut self, id: String, value: Option<TxnMetadata>) {
        match value {
            Some(m) => {
                self.txns.insert(id, m);
            }
            None => {
                self.txns.remove(&id);
            }
        }
    }

    /// Forgets the ids of one `__transaction_state` partition (of `partitions`): this broker
    /// no longer leads it.
    pub fn unload_partition(&mut self, partition: i32, partitions: i32) -> usize {
        let before = self.txns.len();
        self.txns.retain(|id, _| super::partition_for(id, partitions) != partition);
        before - self.txns.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coordinator() -> TxnCoordinator {
        TxnCoordinator::new(TxnConfig {
            state_log_num_partitions: 50,
            state_log_replication_factor: 1,
            state_log_segment_bytes: 1 << 20,
            max_timeout_ms: 900_000,
            id_expiration_ms: 604_800_000,
            abort_check_interval_ms: 10_000,
        })
    }

    fn apply(c: &mut TxnCoordinator, m: TxnMetadata) -> TxnMetadata {
        assert!(c.begin(&m));
        c.commit(m.clone());
        m
    }

    #[test]
    fn a_transaction_goes_from_empty_to_ongoing_to_complete() {
        let mut c = coordinator();
        assert_eq!(c.init_producer_id("t", 1_000_000, (-1, -1), 0, || 7), Err(ErrorCode::INVALID_TRANSACTION_TIMEOUT));
        let InitOutcome::Write(m) = c.init_producer_id("t", 60_000, (-1, -1), 0, || 7).unwrap() else { panic!() };
        assert_eq!((m.producer_id, m.producer_epoch, m.state), (7, 0, TxnState::Empty));
        apply(&mut c, m);
        let p = [("topic".to_string(), 0)];
        assert_eq!(c.add_partitions("t", 7, 1, &p, 1), Err(ErrorCode::PRODUCER_FENCED));
        assert_eq!(c.add_partitions("t", 8, 0, &p, 1), Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING));
        let next = c.add_partitions("t", 7, 0, &p, 1).unwrap().unwrap();
        let m = apply(&mut c, next);
        assert_eq!((m.state, m.start_ms), (TxnState::Ongoing, 1));
        assert_eq!(c.add_partitions("t", 7, 0, &p, 2), Ok(None), "already in the transaction");
        assert_eq!(c.verify("t", 7, 0, &p[0]), ErrorCode::NONE);
        assert_eq!(c.verify("t", 7, 0, &("other".to_string(), 0)), ErrorCode::INVALID_TXN_STATE);
        let prepare = c.end_txn("t", 7, 0, true, 3).unwrap().unwrap();
        assert_eq!(prepare.state, TxnState::PrepareCommit);
        assert!(c.begin(&prepare));
        assert!(!c.begin(&prepare), "one write at a time");
        assert_eq!(c.end_txn("t", 7, 0, true, 3), Err(ErrorCode::CONCURRENT_TRANSACTIONS), "pending");
        c.commit(prepare.clone());
        assert_eq!(c.end_txn("t", 7, 0, true, 3), Err(ErrorCode::CONCURRENT_TRANSACTIONS), "markers under way");
        assert_eq!(c.end_txn("t", 7, 0, false, 3), Err(ErrorCode::INVALID_TXN_STATE));
        let done = apply(&mut c, TxnCoordinator::complete(&prepare, 4));
        assert_eq!((done.state, done.partitions.len()), (TxnState::CompleteCommit, 0));
        assert_eq!(c.end_txn("t", 7, 0, true, 5), Ok(None), "a retried commit succeeds");
    }

    #[test]
    fn a_new_producer_fences_the_old_one_and_aborts_its_transaction() {
        let mut c = coordinator();
        let InitOutcome::Write(m) = c.init_producer_id("t", 60_000, (-1, -1), 0, || 7).unwrap() else { panic!() };
        apply(&mut c, m);
        let next = c.add_partitions("t", 7, 0, &[("a".to_string(), 0)], 1).unwrap().unwrap();
        apply(&mut c, next);
        let InitOutcome::AbortFirst(abort) = c.init_producer_id("t", 60_000, (-1, -1), 2, || 8).unwrap() else { panic!() };
        assert_eq!((abort.state, abort.producer_epoch), (TxnState::PrepareAbort, 1));
        apply(&mut c, abort.clone());
        assert_eq!(c.init_producer_id("t", 60_000, (-1, -1), 2, || 8), Err(ErrorCode::CONCURRENT_TRANSACTIONS));
        assert_eq!(c.end_txn("t", 7, 0, true, 3), Err(ErrorCode::PRODUCER_FENCED), "the zombie's commit");
        apply(&mut c, TxnCoordinator::complete(&abort, 3));
        let InitOutcome::Write(m) = c.init_producer_id("t", 60_000, (-1, -1), 4, || 8).unwrap() else { panic!() };
        assert_eq!((m.producer_id, m.producer_epoch, m.state), (7, 2, TxnState::Empty));
        assert_eq!(c.init_producer_id("t", 60_000, (7, 0), 4, || 8), Err(ErrorCode::PRODUCER_FENCED), "a resume with an old epoch");
    }

    #[test]
    fn an_open_transaction_past_its_timeout_is_aborted_under_a_new_epoch() {
        let mut c = coordinator();
        let InitOutcome::Write(m) = c.init_producer_id("t", 1_000, (-1, -1), 0, || 7).unwrap() else { panic!() };
        apply(&mut c, m);
        let next = c.add_partitions("t", 7, 0, &[("a".to_string(), 0)], 10).unwrap().unwrap();
        apply(&mut c, next);
        assert!(c.timed_out(1_000).is_empty());
        let aborts = c.timed_out(1_011);
        assert_eq!(aborts.len(), 1);
        assert_eq!((aborts[0].state, aborts[0].producer_epoch), (TxnState::PrepareAbort, 1));
    }
}
