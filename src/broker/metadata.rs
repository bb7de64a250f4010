//! Metadata: this broker, and the topics asked for (all of them when none are named),
//! creating unknown topics on first use when `auto.create.topics.enable` allows it.

use std::rc::Rc;

use super::controller::{self, ControllerCommand, NewTopic};
use super::{malformed, respond, Dispatched};
use crate::protocol::codec::Reader;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::metadata::{MetadataBroker, MetadataPartition, MetadataRequest, MetadataResponse, MetadataTopic};
use crate::protocol::ErrorCode;
use crate::shard::catalog::validate_topic_name;
use crate::shard::{Shard, TopicMeta};

pub fn dispatch(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let request = match super::decode::<MetadataRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let config = shard.config();
        let auto_create = request.allow_auto_topic_creation && config.auto_create_topics_enable;
        // Topics that do not exist yet and may be created now.
        let missing: Vec<String> = {
            let catalog = shard.catalog();
            request
                .topics_or_all(header.api_version)
                .into_iter()
                .flatten()
                .filter_map(|t| t.name.clone())
                .filter(|n| catalog.topic(n).is_none() && validate_topic_name(n).is_ok())
                .collect()
        };
        if auto_create && !missing.is_empty() {
            let topics = missing
                .into_iter()
                .map(|name| NewTopic { name, num_partitions: -1, replication_factor: -1, assignments: Vec::new(), configs: Default::default() })
                .collect();
            // Errors (a concurrent creation, say) show up below as the topic's state.
            controller::submit(&shard, ControllerCommand::CreateTopics { topics, validate_only: false }).await;
        }
        let catalog = shard.catalog();
        let broker_id = config.broker_id;
        let alive: std::collections::HashSet<i32> = catalog.brokers.iter().map(|b| b.id).collect();
        let describe = |meta: &TopicMeta| MetadataTopic {
            error: ErrorCode::NONE,
            name: Some(meta.name.clone()),
            topic_id: meta.id_bytes(),
            is_internal: meta.is_internal(),
            topic_authorized_operations: i32::MIN,
            partitions: (0..meta.partitions)
                .map(|p| match meta.replication.get(p as usize) {
                    // A cluster's partition: what the metadata log says. Replicas on fenced
                    // brokers are offline; a partition with no leader answers
                    // LEADER_NOT_AVAILABLE, as Kafka's does.
                    Some(state) => MetadataPartition {
                        error: if state.leader == crate::cluster::image::NO_LEADER { ErrorCode::LEADER_NOT_AVAILABLE } else { ErrorCode::NONE },
                        partition_index: p,
                        leader_id: state.leader,
                        leader_epoch: state.leader_epoch,
                        replica_nodes: state.replicas.clone(),
                        isr_nodes: state.isr.clone(),
                        offline_replicas: state.replicas.iter().copied().filter(|r| !alive.contains(r)).collect(),
                    },
                    None => MetadataPartition {
                        error: ErrorCode::NONE,
                        partition_index: p,
                        leader_id: broker_id,
                        leader_epoch: 0,
                        replica_nodes: vec![broker_id],
                        isr_nodes: vec![broker_id],
                        offline_replicas: Vec::new(),
                    },
                })
                .collect(),
        };
        let failed = |error: ErrorCode, name: Option<String>, topic_id: [u8; 16]| MetadataTopic { error, name, topic_id, ..Default::default() };
        let topics: Vec<MetadataTopic> = match request.topics_or_all(header.api_version) {
            None => catalog.topics.values().map(describe).collect(),
            Some(wanted) => wanted
                .iter()
                .map(|t| match &t.name {
                    Some(name) => match catalog.topic(name) {
                        Some(meta) => describe(meta),
                        None if validate_topic_name(name).is_err() => failed(ErrorCode::INVALID_TOPIC_EXCEPTION, Some(name.clone()), [0; 16]),
                        None => failed(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, Some(name.clone()), [0; 16]),
                    },
                    None => match catalog.topic_by_id(&t.topic_id) {
                        Some(meta) => describe(meta),
                        None => failed(ErrorCode::UNKNOWN_TOPIC_ID, None, t.topic_id),
                    },
                })
                .collect(),
        };
        let response = MetadataResponse {
            brokers: if catalog.is_cluster() {
                catalog.brokers.iter().map(|b| MetadataBroker { node_id: b.id, host: b.host.clone(), port: b.port as i32, rack: b.rack.clone() }).collect()
            } else {
                vec![MetadataBroker { node_id: broker_id, host: config.advertised_host.clone(), port: config.advertised_port as i32, rack: None }]
            },
            cluster_id: Some(config.cluster_id.clone()),
            // As KRaft brokers do, a broker stands for the controller (clients send it the
            // admin requests, which it forwards to the quorum): this one, or (while it is still
            // fenced, so not listed) one that is listed.
            controller_id: if !catalog.is_cluster() || catalog.brokers.iter().any(|b| b.id == broker_id) {
                broker_id
            } else {
                catalog.brokers.first().map_or(-1, |b| b.id)
            },
            topics,
            ..Default::default()
        };
        Some(respond(&header, &response))
    }))
}
