//! Idempotent producers (KIP-98): per partition, the last batches each producer id wrote, so
//! that a retried batch is answered with its first offset instead of being written twice, and
//! a batch that skips sequence numbers is refused.
//!
//! As in Kafka, the last 5 batches of a producer are remembered (a producer keeps at most 5
//! requests in flight when idempotent). A producer the log knows nothing of (new, or from
//! before a restart: this state is not yet rebuilt from the log at startup) may start at any
//! sequence, as Kafka allows since KIP-360.

use std::collections::{HashMap, VecDeque};

/// Batches remembered per producer.
const BATCHES_REMEMBERED: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// A new batch, in order: write it.
    Append,
    /// A batch already written (a retry): answer with its first offset, write nothing.
    Duplicate { base_offset: i64 },
    /// The sequence does not follow the producer's last batch.
    OutOfOrder,
    /// An older epoch of a producer that has moved on (a zombie).
    Fenced,
}

#[derive(Debug, Default)]
struct Producer {
    epoch: i16,
    /// (first sequence, last sequence, first offset), oldest first.
    batches: VecDeque<(i32, i32, i64)>,
}

#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, Producer>,
}

impl ProducerStates {
    pub fn check(&self, producer_id: i64, epoch: i16, first_sequence: i32, last_sequence: i32) -> SequenceCheck {
        if producer_id < 0 {
            return SequenceCheck::Append;
        }
        let Some(p) = self.producers.get(&producer_id) else { return SequenceCheck::Append };
        if epoch < p.epoch {
            return SequenceCheck::Fenced;
        }
        if epoch > p.epoch {
            return SequenceCheck::Append;
        }
        if let Some(&(_, _, base_offset)) = p.batches.iter().find(|(f, l, _)| *f == first_sequence && *l == last_sequence) {
            return SequenceCheck::Duplicate { base_offset };
        }
        match p.batches.back() {
            // Sequences wrap from i32::MAX to 0.
            Some(&(_, last, _)) if first_sequence != last.wrapping_add(1).max(0) => SequenceCheck::OutOfOrder,
            _ => SequenceCheck::Append,
        }
    }

    /// Forgets the batches at or after `offset` (the log was cut there): a retry of one of
    /// them must be written again, not answered with an offset that is gone.
    pub fn truncate_from(&mut self, offset: i64) {
        self.producers.retain(|_, p| {
            p.batches.retain(|(_, _, base)| *base < offset);
            !p.batches.is_empty()
        });
    }

    /// Remembers a batch that is being written.
    pub fn record(&mut self, producer_id: i64, epoch: i16, first_sequence: i32, last_sequence: i32, base_offset: i64) {
        if producer_id < 0 {
            return;
        }
        let p = self.producers.entry(producer_id).or_default();
        if epoch != p.epoch {
            p.epoch = epoch;
            p.batches.clear();
        }
        p.batches.push_back((first_sequence, last_sequence, base_offset));
        if p.batches.len() > BATCHES_REMEMBERED {
            p.batches.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_duplicates_and_gaps_are_refused() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(7, 0, 0, 9), SequenceCheck::Append);
        s.record(7, 0, 0, 9, 100);
        assert_eq!(s.check(7, 0, 0, 9), SequenceCheck::Duplicate { base_offset: 100 });
        assert_eq!(s.check(7, 0, 10, 19), SequenceCheck::Append);
        assert_eq!(s.check(7, 0, 12, 19), SequenceCheck::OutOfOrder);
        s.record(7, 1, 0, 4, 200);
        assert_eq!(s.check(7, 0, 10, 19), SequenceCheck::Fenced, "the old epoch is a zombie");
        assert_eq!(s.check(-1, 0, 5, 5), SequenceCheck::Append, "non-idempotent producers are not checked");
        s.record(8, 0, i32::MAX - 1, i32::MAX, 300);
        assert_eq!(s.check(8, 0, 0, 3), SequenceCheck::Append, "sequences wrap");
    }
}
