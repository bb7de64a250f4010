//! DescribeLogDirs (35): the broker's log dir, its volume's size and free space, and each
//! partition replica kept there with its size, gathered from the shards that own them. Spate
//! has one log dir and no future replicas (AlterReplicaLogDirs), so `offset_lag` is always 0,
//! as Kafka reports it for a current replica (`max(high watermark - log end, 0)`).

use std::rc::Rc;

use super::route::route;
use super::{malformed, respond, Dispatched};
use crate::protocol::codec::Reader;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::describe_log_dirs::{
    DescribeLogDirsPartition, DescribeLogDirsRequest, DescribeLogDirsResponse, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use crate::protocol::ErrorCode;
use crate::shard::{LocalBoxFuture, Shard};

pub async fn dispatch(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let request = match super::decode::<DescribeLogDirsRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let catalog = shard.catalog();
    let me = shard.config().broker_id;
    // The replicas asked about that this broker keeps (all of them when no topic is named).
    let mut items: Vec<(String, i32, ())> = Vec::new();
    match &request.topics {
        None => {
            for meta in catalog.topics.values() {
                items.extend((0..meta.partitions).filter(|p| meta.has_replica_on(*p, me)).map(|p| (meta.name.clone(), p, ())));
            }
        }
        Some(topics) => {
            for t in topics {
                let Some(meta) = catalog.topic(&t.topic) else { continue };
                items.extend(
                    t.partitions.iter().filter(|p| (0..meta.partitions).contains(*p) && meta.has_replica_on(**p, me)).map(|p| (t.topic.clone(), *p, ())),
                );
            }
        }
    }
    let keys: Vec<(String, i32)> = items.iter().map(|(t, p, ())| (t.clone(), *p)).collect();
    let sizes = route(shard, items, |s: &Rc<Shard>, topic: &str, partition: i32, ()| -> LocalBoxFuture<Option<u64>> {
        Box::pin(std::future::ready(s.log(topic, partition).map(|log| log.size_bytes())))
    })
    .await;
    let dir = shard.config().log_dirs.clone();
    Dispatched::Respond(Box::pin(async move {
        let mut topics: Vec<DescribeLogDirsTopic> = Vec::new();
        for ((topic, partition), size) in keys.into_iter().zip(sizes.collect().await) {
            let Some(Some(size)) = size else { continue };
            if topics.last().is_none_or(|t| t.name != topic) {
                topics.push(DescribeLogDirsTopic { name: topic, partitions: Vec::new() });
            }
            let partition = DescribeLogDirsPartition { partition_index: partition, partition_size: size as i64, offset_lag: 0, is_future_key: false };
            topics.last_mut().expect("pushed above").partitions.push(partition);
        }
        let absolute = std::path::absolute(&dir).unwrap_or(dir);
        let (total, usable) = crate::io::fs::volume_space(&absolute).map_or((-1, -1), |(t, u)| (t as i64, u as i64));
        let result = DescribeLogDirsResult {
            error: ErrorCode::NONE,
            log_dir: absolute.display().to_string(),
            topics,
            total_bytes: total,
            usable_bytes: usable,
            is_cordoned: false,
        };
        Some(respond(&header, &DescribeLogDirsResponse { throttle_time_ms: 0, error: ErrorCode::NONE, results: vec![result] }))
    }))
}
