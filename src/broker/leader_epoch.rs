//! OffsetForLeaderEpoch (23, KIP-101/KIP-279/KIP-320): where a leader epoch ends in this
//! broker's log, answered by the shard that owns each partition, as Kafka's
//! `Partition.lastOffsetForLeaderEpoch`: the client's `current_leader_epoch` is checked
//! against the partition's (FENCED_LEADER_EPOCH when older, UNKNOWN_LEADER_EPOCH when newer),
//! only the leader answers, and the epoch cache says where the asked epoch ends (the log end
//! for the latest epoch; -1 and -1 for an epoch this log knows nothing of). Consumers call it
//! to check their position after a leader change; followers of other brokers too.

use std::rc::Rc;

use super::route::{route, Layout};
use super::{malformed, respond, Dispatched};
use crate::protocol::codec::Reader;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::offset_for_leader_epoch::{
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, OffsetForLeaderPartitionResult, OffsetForLeaderTopicResult,
};
use crate::protocol::ErrorCode;
use crate::shard::{LocalBoxFuture, Shard};

/// (error, epoch, end offset)
type Answer = (ErrorCode, i32, i64);

pub async fn dispatch(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let request = match super::decode::<OffsetForLeaderEpochRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let catalog = shard.catalog();
    let me = shard.config().broker_id;
    let mut items = Vec::new();
    let mut layout: Layout = Vec::new();
    for t in &request.topics {
        let meta = catalog.topic(&t.topic);
        let mut partitions = Vec::new();
        for p in &t.partitions {
            let known = match meta {
                Some(m) if (0..m.partitions).contains(&p.partition) => {
                    // The epoch first, then leadership, as Kafka's `Partition` checks them.
                    let (leader, epoch) = m.leader_of(p.partition, me);
                    if p.current_leader_epoch >= 0 && p.current_leader_epoch < epoch {
                        Err(ErrorCode::FENCED_LEADER_EPOCH)
                    } else if p.current_leader_epoch > epoch {
                        Err(ErrorCode::UNKNOWN_LEADER_EPOCH)
                    } else if leader != me {
                        Err(ErrorCode::NOT_LEADER_OR_FOLLOWER)
                    } else {
                        Ok(epoch)
                    }
                }
                _ => Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
            };
            if let Ok(current) = known {
                items.push((t.topic.clone(), p.partition, (p.leader_epoch, current)));
            }
            partitions.push((p.partition, known.map(drop)));
        }
        layout.push((t.topic.clone(), partitions));
    }
    let asked = route(shard, items, |s: &Rc<Shard>, topic: &str, partition: i32, (epoch, current): (i32, i32)| -> LocalBoxFuture<Answer> {
        let answer = match s.log(topic, partition) {
            None => (ErrorCode::NOT_LEADER_OR_FOLLOWER, -1, -1),
            // A single node's log stamps no epochs (its only one is the 0 that Metadata
            // reports): epoch 0 ends at the log end.
            Some(log) if log.last_epoch() < 0 => {
                if epoch == current && epoch >= 0 {
                    (ErrorCode::NONE, current, log.log_end_offset())
                } else {
                    (ErrorCode::NONE, -1, -1)
                }
            }
            Some(log) => {
                let (e, end) = log.end_offset_for_epoch(epoch);
                (ErrorCode::NONE, e, end)
            }
        };
        Box::pin(std::future::ready(answer))
    })
    .await;
    Dispatched::Respond(Box::pin(async move {
        let topics = asked
            .laid_out(layout, (ErrorCode::NOT_LEADER_OR_FOLLOWER, -1, -1))
            .await
            .into_iter()
            .map(|(topic, partitions)| OffsetForLeaderTopicResult {
                topic,
                partitions: partitions
                    .into_iter()
                    .map(|(partition, answer)| {
                        let (error, leader_epoch, end_offset) = answer.unwrap_or_else(|refusal| (refusal, -1, -1));
                        OffsetForLeaderPartitionResult { error, partition, leader_epoch, end_offset }
                    })
                    .collect(),
            })
            .collect();
        Some(respond(&header, &OffsetForLeaderEpochResponse { throttle_time_ms: 0, topics }))
    }))
}
