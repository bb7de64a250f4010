//! The admin APIs: CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs and
//! IncrementalAlterConfigs (through the controller) and DescribeConfigs (from the shard's
//! catalog copy and the broker configuration).

use std::rc::Rc;

use super::controller::{self, ConfigChange, ControllerCommand, NewTopic, TopicResult};
use super::{decode, malformed, respond, Dispatched};
use crate::config::{BrokerConfig, TOPIC_CONFIG_NAMES};
use crate::protocol::codec::Reader;
use crate::protocol::header::RequestHeader;
use crate::protocol::messages::alter_configs::{
    AlterConfigsRequest, AlterConfigsResourceResponse, AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use crate::protocol::messages::create_partitions::{CreatePartitionsRequest, CreatePartitionsResponse, CreatePartitionsTopicResult};
use crate::protocol::messages::create_topics::{CreatableTopicConfigs, CreatableTopicResult, CreateTopicsRequest, CreateTopicsResponse};
use crate::protocol::messages::delete_topics::{DeletableTopicResult, DeleteTopicsRequest, DeleteTopicsResponse};
use crate::protocol::messages::describe_configs::{
    ConfigEntry, DescribeConfigsRequest, DescribeConfigsResponse, DescribeConfigsResult, RESOURCE_BROKER, RESOURCE_TOPIC, SOURCE_DEFAULT_CONFIG,
    SOURCE_STATIC_BROKER_CONFIG, SOURCE_TOPIC_CONFIG,
};
use crate::protocol::ErrorCode;
use crate::shard::Shard;

pub fn create_topics(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let request = match decode::<CreateTopicsRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let mut early: Vec<Option<(ErrorCode, String)>> = Vec::new();
        let mut topics = Vec::new();
        for t in &request.topics {
            let num_partitions = t.num_partitions;
            let mut error = None;
            if !t.assignments.is_empty() {
                if t.num_partitions != -1 || t.replication_factor != -1 {
                    error = Some((ErrorCode::INVALID_REQUEST, "both assignments and a partition count or replication factor were given".to_string()));
                }
                // Kafka lists them by partition index; they must be 0, 1, 2...
                if t.assignments.iter().enumerate().any(|(i, a)| a.partition_index != i as i32) {
                    error = error.or(Some((ErrorCode::INVALID_REPLICA_ASSIGNMENT, "assignments must cover partitions 0 to n-1 in order".to_string())));
                }
            }
            let mut configs = std::collections::BTreeMap::new();
            for c in &t.configs {
                match &c.value {
                    Some(v) => {
                        configs.insert(c.name.clone(), v.clone());
                    }
                    None => error = error.or(Some((ErrorCode::INVALID_CONFIG, format!("{}: null value", c.name)))),
                }
            }
            early.push(error);
            topics.push(NewTopic {
                name: t.name.clone(),
                num_partitions,
                replication_factor: t.replication_factor,
                assignments: t.assignments.iter().map(|a| a.broker_ids.clone()).collect(),
                configs,
            });
        }
        let valid: Vec<NewTopic> = topics.iter().zip(&early).filter(|(_, e)| e.is_none()).map(|(t, _)| t.clone()).collect();
        let mut created = controller::submit(&shard, ControllerCommand::CreateTopics { topics: valid, validate_only: request.validate_only }).await.into_iter();
        let config = shard.config();
        let results: Vec<CreatableTopicResult> = topics
            .iter()
            .zip(early)
            .map(|(t, early)| {
                let result: TopicResult = match early {
                    Some(e) => Err(e),
                    None => created.next().unwrap_or(Err((ErrorCode::UNKNOWN_SERVER_ERROR, "controller unavailable".into()))),
                };
                match result {
                    Ok(meta) => {
                        let log = config.topic_config(&meta.configs).unwrap_or_else(|_| config.log.clone());
                        CreatableTopicResult {
                            name: meta.name.clone(),
                            topic_id: meta.id_bytes(),
                            error: ErrorCode::NONE,
                            error_message: None,
                            num_partitions: meta.partitions,
                            replication_factor: meta.replication.first().map_or(1, |p| p.replicas.len() as i16),
                            configs: Some(
                                TOPIC_CONFIG_NAMES
                                    .iter()
                                    .map(|(name, _)| CreatableTopicConfigs {
                                        name: name.to_string(),
                                        value: BrokerConfig::topic_config_value(&log, name),
                                        read_only: false,
                                        config_source: if meta.configs.contains_key(*name) { SOURCE_TOPIC_CONFIG } else { SOURCE_DEFAULT_CONFIG },
                                        is_sensitive: false,
                                    })
                                    .collect(),
                            ),
                            topic_config_error_code: None,
                        }
                    }
                    Err((error, message)) => CreatableTopicResult {
                        name: t.name.clone(),
                        topic_id: [0; 16],
                        error,
                        error_message: Some(message),
                        num_partitions: -1,
                        replication_factor: -1,
                        configs: Some(Vec::new()),
                        topic_config_error_code: None,
                    },
                }
            })
            .collect();
        Some(respond(&header, &CreateTopicsResponse { throttle_time_ms: 0, topics: results }))
    }))
}

pub fn delete_topics(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let request = match decode::<DeleteTopicsRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let catalog = shard.catalog();
        // Topics named by id are resolved to names here; unknown ids are answered directly.
        let resolved: Vec<(Option<String>, [u8; 16])> = request
            .names_or_ids()
            .into_iter()
            .map(|(name, id)| match name {
                Some(n) => (Some(n), id),
                None => (catalog.topic_by_id(&id).map(|m| m.name.clone()), id),
            })
            .collect();
        let names: Vec<String> = resolved.iter().filter_map(|(n, _)| n.clone()).collect();
        let mut deleted = controller::submit(&shard, ControllerCommand::DeleteTopics { names }).await.into_iter();
        let results: Vec<DeletableTopicResult> = resolved
            .into_iter()
            .map(|(name, id)| match name {
                None => DeletableTopicResult { name: None, topic_id: id, error: ErrorCode::UNKNOWN_TOPIC_ID, error_message: Some("unknown topic id".into()) },
                Some(name) => match deleted.next() {
                    Some(Ok(meta)) => DeletableTopicResult { name: Some(name), topic_id: meta.id_bytes(), error: ErrorCode::NONE, error_message: None },
                    Some(Err((error, message))) => DeletableTopicResult { name: Some(name), topic_id: id, error, error_message: Some(message) },
                    None => DeletableTopicResult { name: Some(name), topic_id: id, error: ErrorCode::UNKNOWN_SERVER_ERROR, error_message: None },
                },
            })
            .collect();
        Some(respond(&header, &DeleteTopicsResponse { throttle_time_ms: 0, responses: results }))
    }))
}

pub fn create_partitions(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let request = match decode::<CreatePartitionsRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let counts = request.counts();
        let names: Vec<String> = counts.iter().map(|(n, _)| n.clone()).collect();
        let results = controller::submit(&shard, ControllerCommand::CreatePartitions { topics: counts, validate_only: request.validate_only }).await;
        let results: Vec<CreatePartitionsTopicResult> = names
            .into_iter()
            .zip(results.into_iter().map(Some).chain(std::iter::repeat(None)))
            .map(|(name, r)| match r {
                Some(Ok(_)) => CreatePartitionsTopicResult { name, error: ErrorCode::NONE, error_message: None },
                Some(Err((error, m))) => CreatePartitionsTopicResult { name, error, error_message: Some(m) },
                None => CreatePartitionsTopicResult { name, error: ErrorCode::UNKNOWN_SERVER_ERROR, error_message: None },
            })
            .collect();
        Some(respond(&header, &CreatePartitionsResponse { throttle_time_ms: 0, results }))
    }))
}

/// Kafka's config_type for a topic-level configuration (for DescribeConfigs v3+).
fn config_type(name: &str) -> i8 {
    const STRING: i8 = 2;
    const INT: i8 = 3;
    const LONG: i8 = 5;
    const LIST: i8 = 7;
    match name {
        "segment.bytes" | "index.interval.bytes" | "segment.index.bytes" | "max.message.bytes" => INT,
        "cleanup.policy" => LIST,
        "message.timestamp.type" => STRING,
        _ => LONG,
    }
}

pub fn describe_configs(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let request = match decode::<DescribeConfigsRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let catalog = shard.catalog();
    let config = shard.config();
    let wanted = |keys: &Option<Vec<String>>, name: &str| keys.as_ref().is_none_or(|k| k.iter().any(|k| k == name));
    let results: Vec<DescribeConfigsResult> = request
        .resources
        .iter()
        .map(|res| {
            let mut result = DescribeConfigsResult {
                error: ErrorCode::NONE,
                error_message: None,
                resource_type: res.resource_type,
                resource_name: res.resource_name.clone(),
                configs: Vec::new(),
            };
            match res.resource_type {
                RESOURCE_TOPIC => match catalog.topic(&res.resource_name) {
                    None => {
                        result.error = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION;
                        result.error_message = Some(format!("topic '{}' does not exist", res.resource_name));
                    }
                    Some(meta) => {
                        let log = config.topic_config(&meta.configs).unwrap_or_else(|_| config.log.clone());
                        for (name, _) in TOPIC_CONFIG_NAMES.iter().filter(|(n, _)| wanted(&res.configuration_keys, n)) {
                            let source = if meta.configs.contains_key(*name) { SOURCE_TOPIC_CONFIG } else { SOURCE_DEFAULT_CONFIG };
                            result.configs.push(ConfigEntry {
                                name: name.to_string(),
                                value: BrokerConfig::topic_config_value(&log, name),
                                read_only: false,
                                source,
                                is_sensitive: false,
                                config_type: config_type(name),
                                ..Default::default()
                            });
                        }
                    }
                },
                RESOURCE_BROKER if res.resource_name.is_empty() || res.resource_name == config.broker_id.to_string() => {
                    for (name, value) in config.properties.iter().filter(|(n, v)| !v.is_empty() && wanted(&res.configuration_keys, n)) {
                        result.configs.push(ConfigEntry {
                            name: name.clone(),
                            value: Some(value.clone()),
                            read_only: true,
                            source: SOURCE_STATIC_BROKER_CONFIG,
                            is_sensitive: false,
                            config_type: 0,
                            ..Default::default()
                        });
                    }
                }
                RESOURCE_BROKER => {
                    result.error = ErrorCode::INVALID_REQUEST;
                    result.error_message = Some(format!("this broker is {}", config.broker_id));
                }
                other => {
                    result.error = ErrorCode::INVALID_REQUEST;
                    result.error_message = Some(format!("resource type {other} is not supported"));
                }
            }
            result
        })
        .collect();
    let mut response = DescribeConfigsResponse { throttle_time_ms: 0, results };
    response.set_is_default_from_source();
    super::ready(respond(&header, &response))
}

/// AlterConfigs (33): each resource's overrides become the set given.
pub fn alter_configs(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let request = match decode::<AlterConfigsRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let resources = request
        .resources
        .into_iter()
        .map(|res| {
            let ops = res.configs.into_iter().map(|c| (c.name, crate::protocol::messages::alter_configs::OP_SET, c.value)).collect();
            (res.resource_type, res.resource_name, ops)
        })
        .collect();
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let responses = alter_resources(&shard, resources, true, request.validate_only).await;
        Some(respond(&header, &AlterConfigsResponse { throttle_time_ms: 0, responses }))
    }))
}

/// IncrementalAlterConfigs (44, KIP-339): SET, DELETE, APPEND and SUBTRACT per key.
pub fn incremental_alter_configs(shard: &Rc<Shard>, header: RequestHeader, mut r: Reader) -> Dispatched {
    let request = match decode::<IncrementalAlterConfigsRequest>(&header, &mut r) {
        Ok(req) => req,
        Err(e) => return malformed(&header, e),
    };
    let resources = request
        .resources
        .into_iter()
        .map(|res| (res.resource_type, res.resource_name, res.configs.into_iter().map(|c| (c.name, c.config_operation, c.value)).collect()))
        .collect();
    let shard = shard.clone();
    Dispatched::Respond(Box::pin(async move {
        let responses = alter_resources(&shard, resources, false, request.validate_only).await;
        Some(respond(&header, &IncrementalAlterConfigsResponse { throttle_time_ms: 0, responses }))
    }))
}

type ConfigOps = Vec<(String, i8, Option<String>)>;

/// Topic resources go to the controller as one change; a resource named twice is refused, as
/// Kafka refuses it; broker resources are refused: Spate has no dynamic broker configs yet.
async fn alter_resources(shard: &Rc<Shard>, resources: Vec<(i8, String, ConfigOps)>, replace: bool, validate_only: bool) -> Vec<AlterConfigsResourceResponse> {
    let mut answers: Vec<Option<(ErrorCode, Option<String>)>> = Vec::new();
    let mut changes = Vec::new();
    for (i, (kind, name, ops)) in resources.iter().enumerate() {
        let twice = resources.iter().enumerate().any(|(j, (k, n, _))| j != i && k == kind && n == name);
        let refused = match *kind {
            _ if twice => Some((ErrorCode::INVALID_REQUEST, format!("Error due to duplicate resource: {name}"))),
            RESOURCE_TOPIC => None,
            RESOURCE_BROKER => {
                Some((ErrorCode::INVALID_REQUEST, "dynamic broker configs are not supported by Spate yet: set them in server.properties".to_string()))
            }
            other => Some((ErrorCode::INVALID_REQUEST, format!("resource type {other} is not supported"))),
        };
        match refused {
            Some((code, message)) => answers.push(Some((code, Some(message)))),
            None => {
                answers.push(None);
                changes.push(ConfigChange { topic: name.clone(), ops: ops.clone(), replace });
            }
        }
    }
    let mut results = if changes.is_empty() {
        Vec::new().into_iter()
    } else {
        controller::submit(shard, ControllerCommand::AlterConfigs { changes, validate_only }).await.into_iter()
    };
    resources
        .into_iter()
        .zip(answers)
        .map(|((resource_type, resource_name, _), answer)| {
            let (error, error_message) = answer.unwrap_or_else(|| match results.next() {
                Some(Ok(_)) => (ErrorCode::NONE, None),
                Some(Err((code, message))) => (code, Some(message)),
                None => (ErrorCode::UNKNOWN_SERVER_ERROR, Some("controller unavailable".to_string())),
            });
            AlterConfigsResourceResponse { error, error_message, resource_type, resource_name }
        })
        .collect()
}
