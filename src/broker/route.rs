//! Sending per-partition work to the shards that own the partitions: one message per shard per
//! request, answers gathered back in the request's order.

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::shard::{LocalBoxFuture, Shard, ShardId};

/// The answers of a routed request, still in flight.
pub struct Routed<R> {
    groups: Vec<(Vec<usize>, flume::Receiver<Vec<R>>)>,
    len: usize,
}

/// Runs `op(shard, topic, partition, item)` for every item on the shard that owns the
/// partition. `op`'s synchronous part runs in the order of `items` (per shard), which is how a
/// produce request's appends keep their order.
pub async fn route<I, R, F>(shard: &Rc<Shard>, items: Vec<(String, i32, I)>, op: F) -> Routed<R>
where
    I: Send + 'static,
    R: Send + 'static,
    F: Fn(&Rc<Shard>, &str, i32, I) -> LocalBoxFuture<R> + Send + Sync + Copy + 'static,
{
    let len = items.len();
    // Per owner: the items' positions in the request, and the items.
    type Group<I> = (Vec<usize>, Vec<(String, i32, I)>);
    let mut by_shard: BTreeMap<ShardId, Group<I>> = BTreeMap::new();
    for (i, (topic, partition, item)) in items.into_iter().enumerate() {
        let owner = shard.owner_of(&topic, partition);
        let group = by_shard.entry(owner).or_default();
        group.0.push(i);
        group.1.push((topic, partition, item));
    }
    let mut groups = Vec::with_capacity(by_shard.len());
    for (owner, (indexes, work)) in by_shard {
        let rx = shard
            .call(owner, move |s: &Rc<Shard>| {
                let futures: Vec<LocalBoxFuture<R>> = work.into_iter().map(|(t, p, item)| op(s, &t, p, item)).collect();
                Box::pin(futures_util::future::join_all(futures)) as LocalBoxFuture<Vec<R>>
            })
            .await;
        groups.push((indexes, rx));
    }
    Routed { groups, len }
}

/// A request's partitions in its order, per topic: each refused here (`Err`) or routed.
pub type Layout = Vec<(String, Vec<(i32, Result<(), crate::protocol::ErrorCode>)>)>;

/// Whether this broker serves a partition of `meta` as its leader: UNKNOWN_TOPIC_OR_PARTITION
/// when it does not exist, NOT_LEADER_OR_FOLLOWER when another broker leads it.
pub fn led_here(meta: Option<&crate::shard::TopicMeta>, partition: i32, me: i32) -> Result<(), crate::protocol::ErrorCode> {
    use crate::protocol::ErrorCode;
    match meta {
        Some(m) if (0..m.partitions).contains(&partition) => match m.is_led_by(partition, me) {
            true => Ok(()),
            false => Err(ErrorCode::NOT_LEADER_OR_FOLLOWER),
        },
        _ => Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
    }
}

impl<R: Clone> Routed<R> {
    /// The answers laid out as the request asked (`layout` holds the routed partitions in the
    /// order of the routed items): per topic, each partition's refusal or its owner's answer,
    /// `gone` where the owning shard did not answer.
    pub async fn laid_out(self, layout: Layout, gone: R) -> Vec<(String, Vec<(i32, Result<R, crate::protocol::ErrorCode>)>)> {
        let mut answers = self.collect().await.into_iter();
        layout
            .into_iter()
            .map(|(topic, partitions)| {
                let partitions =
                    partitions.into_iter().map(|(p, known)| (p, known.map(|()| answers.next().flatten().unwrap_or_else(|| gone.clone())))).collect();
                (topic, partitions)
            })
            .collect()
    }
}

impl<R> Routed<R> {
    /// The answers in the order of the items; `None` where the owning shard is gone.
    pub async fn collect(self) -> Vec<Option<R>> {
        let mut out: Vec<Option<R>> = (0..self.len).map(|_| None).collect();
        for (indexes, rx) in self.groups {
            if let Ok(results) = rx.recv_async().await {
                for (i, r) in indexes.into_iter().zip(results) {
                    out[i] = Some(r);
                }
            }
        }
        out
    }
}
