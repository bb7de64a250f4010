//! The controller: the one place where topics are created, deleted and given partitions. It
//! runs on shard 0, one change at a time; each change is persisted to the catalog file, then
//! broadcast to every shard (`apply_catalog`), and answered only when every shard has opened or
//! removed the partitions it owns.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::config::limits;
use crate::protocol::ErrorCode;
use crate::shard::catalog::{new_topic_id, validate_topic_name};
use crate::shard::{Catalog, LocalBoxFuture, Shard, TopicMeta, CONTROLLER_SHARD};
use crate::storage::log::OpenedLog;
use crate::storage::{partition_dir_name, PartitionLog, RecoveryPoint};

/// A topic to create; `assignments` (partition -> replicas) are explicit placements.
pub use crate::cluster::controller::NewTopic;

pub type TopicResult = Result<TopicMeta, (ErrorCode, String)>;

/// A change for the controller.
#[derive(Debug, Clone)]
pub enum ControllerCommand {
    CreateTopics {
        topics: Vec<NewTopic>,
        validate_only: bool,
    },
    DeleteTopics {
        names: Vec<String>,
    },
    CreatePartitions {
        topics: Vec<(String, i32)>,
        validate_only: bool,
    },
    /// AlterConfigs and IncrementalAlterConfigs for topics.
    AlterConfigs {
        changes: Vec<ConfigChange>,
        validate_only: bool,
    },
}

pub use crate::cluster::controller::ConfigChange;

/// Runs a change on the controller shard (in a cluster: on the active controller) and returns
/// one result per topic, in order.
pub async fn submit(shard: &Rc<Shard>, command: ControllerCommand) -> Vec<TopicResult> {
    if shard.config().cluster.is_some() {
        return submit_to_quorum(shard, command).await;
    }
    let rx = shard.call(CONTROLLER_SHARD, move |s: &Rc<Shard>| Box::pin(execute(s.clone(), command)) as LocalBoxFuture<Vec<TopicResult>>).await;
    rx.recv_async().await.unwrap_or_default()
}

/// Asks the active controller of this broker's cluster, following redirects, for up to five
/// of the quorum's request timeouts.
pub async fn ask_controller(shard: &Rc<Shard>, request: &crate::cluster::rpc::ControllerRequest) -> std::io::Result<crate::cluster::rpc::ControllerResponse> {
    let Some(cluster) = shard.config().cluster.as_ref() else {
        return Err(std::io::Error::other("this broker runs without a metadata quorum (no process.roles)"));
    };
    let timeout = std::time::Duration::from_millis(cluster.quorum_request_timeout_ms);
    let client = crate::cluster::member::ControllerClient::new(cluster.quorum_addresses.clone(), timeout);
    client.ask(request, timeout * 5).await
}

/// A change in a cluster: the active controller decides and commits it to the metadata log;
/// it is answered once this shard's catalog shows it (the metadata thread applies each new
/// image to every shard), so that the client's next Metadata request here sees it too.
async fn submit_to_quorum(shard: &Rc<Shard>, command: ControllerCommand) -> Vec<TopicResult> {
    use crate::cluster::rpc::{ControllerRequest, ControllerResponse};
    let before = shard.catalog();
    // For a config change, the overrides each topic should end with, to know when this
    // shard's catalog shows them.
    let mut expected_configs: Option<Vec<Option<BTreeMap<String, String>>>> = None;
    let (request, names, validate_only, deleting) = match command {
        ControllerCommand::AlterConfigs { changes, validate_only } => {
            let config = shard.config();
            expected_configs = Some(
                changes
                    .iter()
                    .map(|c| {
                        let current = before.topic(&c.topic)?;
                        crate::cluster::controller::altered_configs(&current.configs, c, |m| config.topic_config(m).map(|_| ())).ok()
                    })
                    .collect(),
            );
            let names = changes.iter().map(|c| c.topic.clone()).collect();
            (ControllerRequest::AlterConfigs { changes, validate_only }, names, validate_only, false)
        }
        ControllerCommand::CreateTopics { topics, validate_only } => {
            let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
            (ControllerRequest::CreateTopics { topics, validate_only }, names, validate_only, false)
        }
        ControllerCommand::DeleteTopics { names } => (ControllerRequest::DeleteTopics { names: names.clone() }, names, false, true),
        ControllerCommand::CreatePartitions { topics, validate_only } => {
            let names = topics.iter().map(|t| t.0.clone()).collect();
            (
                ControllerRequest::CreatePartitions { topics: topics.into_iter().map(|(n, c)| (n, c, Vec::new())).collect(), validate_only },
                names,
                validate_only,
                false,
            )
        }
    };
    let errors = match ask_controller(shard, &request).await {
        Ok(ControllerResponse::Items { errors }) => errors,
        Ok(ControllerResponse::Error { code, message }) => names.iter().map(|_| Some((code, message.clone()))).collect(),
        Ok(other) => names.iter().map(|_| Some((ErrorCode::UNKNOWN_SERVER_ERROR.0, format!("unexpected answer {other:?}")))).collect(),
        Err(e) => names.iter().map(|_| Some((ErrorCode::NOT_CONTROLLER.0, format!("no active controller: {e}")))).collect(),
    };
    // Wait (at most 10 s) for the metadata to reach this shard.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let settled = |catalog: &Catalog| {
        if let Some(expected) = &expected_configs {
            return validate_only
                || names.iter().zip(&errors).zip(expected).filter(|((_, e), _)| e.is_none()).all(|((n, _), want)| match want {
                    Some(want) => catalog.topic(n).is_some_and(|t| &t.configs == want),
                    None => true,
                });
        }
        names.iter().zip(&errors).filter(|(_, e)| e.is_none()).all(|(n, _)| match (deleting, catalog.topic(n), before.topic(n)) {
            (true, now, was) => now.is_none() || now.map(|t| &t.id) != was.map(|t| &t.id),
            (false, Some(now), was) => validate_only || was.is_none_or(|w| w.partitions != now.partitions),
            (false, None, _) => validate_only,
        })
    };
    while !settled(&shard.catalog()) && std::time::Instant::now() < deadline {
        crate::io::runtime::sleep(std::time::Duration::from_millis(10)).await;
    }
    let catalog = shard.catalog();
    names
        .iter()
        .zip(errors)
        .map(|(name, error)| match error {
            Some((code, message)) => Err((ErrorCode(code), message)),
            None => {
                let meta = if deleting { before.topic(name) } else { catalog.topic(name) };
                meta.cloned().ok_or((ErrorCode::REQUEST_TIMED_OUT, format!("topic '{name}' was changed, but this broker has not seen the change yet")))
            }
        })
        .collect()
}

/// Executes one change. Changes run one at a time, in arrival order: each holds the
/// controller shard's single token for its whole run.
async fn execute(shard: Rc<Shard>, command: ControllerCommand) -> Vec<TopicResult> {
    let token = shard.controller_token.1.recv_async().await;
    let result = execute_locked(&shard, command).await;
    if token.is_ok() {
        let _ = shard.controller_token.0.try_send(());
    }
    result
}

async fn execute_locked(shard: &Rc<Shard>, command: ControllerCommand) -> Vec<TopicResult> {
    let config = shard.config();
    let mut catalog: Catalog = (*shard.catalog()).clone();
    let mut results: Vec<TopicResult> = Vec::new();
    let mut changed = false;
    let deleting = matches!(command, ControllerCommand::DeleteTopics { .. });
    match command {
        ControllerCommand::CreateTopics { topics, validate_only } => {
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            for t in &topics {
                *seen.entry(t.name.clone()).or_default() += 1;
            }
            for t in topics {
                let result = (|| {
                    if seen[&t.name] > 1 {
                        return Err((ErrorCode::INVALID_REQUEST, format!("topic {} appears more than once in the request", t.name)));
                    }
                    validate_topic_name(&t.name).map_err(|m| (ErrorCode::INVALID_TOPIC_EXCEPTION, m))?;
                    if catalog.topic(&t.name).is_some() {
                        return Err((ErrorCode::TOPIC_ALREADY_EXISTS, format!("topic '{}' already exists", t.name)));
                    }
                    let partitions = if t.num_partitions == -1 { config.num_partitions } else { t.num_partitions };
                    if !(1..=limits::TOPIC_PARTITIONS_MAX).contains(&partitions) {
                        return Err((ErrorCode::INVALID_PARTITIONS, format!("number of partitions must be between 1 and {}", limits::TOPIC_PARTITIONS_MAX)));
                    }
                    let replication = if t.replication_factor == -1 { config.default_replication_factor } else { t.replication_factor };
                    if replication != 1 {
                        return Err((ErrorCode::INVALID_REPLICATION_FACTOR, format!("replication factor {replication} is not possible with 1 broker")));
                    }
                    config.topic_config(&t.configs).map_err(|m| (ErrorCode::INVALID_CONFIG, m))?;
                    if !t.assignments.is_empty() && t.assignments.iter().any(|a| a.as_slice() != [config.broker_id]) {
                        return Err((ErrorCode::INVALID_REPLICA_ASSIGNMENT, format!("assignments may only name broker {}", config.broker_id)));
                    }
                    let partitions = if t.assignments.is_empty() { partitions } else { t.assignments.len() as i32 };
                    let meta = TopicMeta { name: t.name.clone(), id: new_topic_id(), partitions, configs: t.configs.clone(), replication: Vec::new() };
                    Ok(meta)
                })();
                if let (Ok(meta), false) = (&result, validate_only) {
                    catalog.topics.insert(meta.name.clone(), meta.clone());
                    changed = true;
                }
                results.push(result);
            }
        }
        ControllerCommand::DeleteTopics { names } => {
            for name in names {
                let result = if !config.delete_topic_enable {
                    Err((ErrorCode::TOPIC_DELETION_DISABLED, "topic deletion is disabled (delete.topic.enable=false)".to_string()))
                } else {
                    match catalog.topics.remove(&name) {
                        Some(meta) => {
                            changed = true;
                            Ok(meta)
                        }
                        None => Err((ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, format!("topic '{name}' does not exist"))),
                    }
                };
                results.push(result);
            }
        }
        ControllerCommand::AlterConfigs { changes, validate_only } => {
            for change in changes {
                let result = match catalog.topics.get_mut(&change.topic) {
                    None => Err((ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, format!("topic '{}' does not exist", change.topic))),
                    Some(meta) => crate::cluster::controller::altered_configs(&meta.configs, &change, |c| config.topic_config(c).map(|_| ())).map(|new| {
                        if !validate_only && new != meta.configs {
                            meta.configs = new;
                            changed = true;
                        }
                        meta.clone()
                    }),
                };
                results.push(result);
            }
        }
        ControllerCommand::CreatePartitions { topics, validate_only } => {
            for (name, count) in topics {
                let result = match catalog.topics.get_mut(&name) {
                    None => Err((ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, format!("topic '{name}' does not exist"))),
                    Some(meta) if count <= meta.partitions => Err((
                        ErrorCode::INVALID_PARTITIONS,
                        format!("topic currently has {} partitions, which is higher than or equal to the requested {count}", meta.partitions),
                    )),
                    Some(_) if count > limits::TOPIC_PARTITIONS_MAX => {
                        Err((ErrorCode::INVALID_PARTITIONS, format!("number of partitions must be at most {}", limits::TOPIC_PARTITIONS_MAX)))
                    }
                    Some(meta) => {
                        if !validate_only {
                            meta.partitions = count;
                            changed = true;
                        }
                        Ok(meta.clone())
                    }
                };
                results.push(result);
            }
        }
    }
    if changed {
        if let Err(e) = catalog.save(&config.log_dirs) {
            tracing::error!(error = %e, "could not persist the catalog");
            return results.into_iter().map(|r| r.and(Err((ErrorCode::KAFKA_STORAGE_ERROR, format!("could not persist the catalog: {e}"))))).collect();
        }
        if deleting {
            crate::io::crash::point("topic_delete.after_catalog_write");
        }
        let catalog = Arc::new(catalog);
        shard
            .call_all(move |s: &Rc<Shard>| {
                let catalog = catalog.clone();
                let s = s.clone();
                Box::pin(async move { apply_catalog(&s, catalog, false).await }) as LocalBoxFuture<()>
            })
            .await;
        // A deleted partition's entries leave the log dir's checkpoints now, so that a topic
        // of the same name created before the next periodic write never inherits them.
        if deleting {
            shard.shared.request_checkpoint();
        }
    }
    results
}

/// Makes a shard's partitions match a catalog: opens the partitions it owns that are new,
/// removes those whose topic is gone (or was recreated under a new id), and installs the
/// catalog as the shard's copy. `startup` (true only when the broker starts) opens the logs
/// from the recovery points of the log dir's checkpoint, or as cleanly stopped.
///
/// After startup, the slow part runs on the runtime's blocking pool, in one task, so the shard
/// serves its connections meanwhile: renaming deleted partitions' folders away and removing
/// them (renamed first, so a topic of the same name opens a fresh folder), then creating the
/// new partitions (folders, first segments, fsyncs) or recovering them. The new catalog is
/// installed once every new partition is open.
pub async fn apply_catalog(shard: &Rc<Shard>, catalog: Arc<Catalog>, startup: bool) {
    let old = shard.catalog.borrow().clone();
    let config = shard.config();
    // Removed or recreated topics first, so that a recreated topic opens a fresh folder.
    let gone: Vec<(String, i32)> = shard
        .partitions
        .borrow()
        .logs()
        .filter(|log| match (old.topic(&log.topic), catalog.topic(&log.topic)) {
            (_, None) => true,
            // Recreated, or (in a cluster) moved off this broker.
            (Some(o), Some(n)) => o.id != n.id || !n.has_replica_on(log.partition, config.broker_id),
            (None, Some(n)) => !n.has_replica_on(log.partition, config.broker_id),
        })
        .map(|log| (log.topic.clone(), log.partition))
        .collect();
    let mut tombs = Vec::new();
    for key in gone {
        let log = shard.partitions.borrow_mut().remove(&key.0, key.1).expect("listed above");
        log.mark_deleted();
        let dir = log.dir().to_owned();
        let tomb = dir.with_file_name(format!("{}.{}-delete", partition_dir_name(&key.0, key.1), crate::shard::catalog::new_topic_id()));
        tombs.push((dir, tomb));
    }
    let mut max_message_bytes = std::collections::HashMap::new();
    let mut compacted = std::collections::HashSet::new();
    let mut to_open = Vec::new();
    for meta in catalog.topics.values() {
        let log_config = match config.topic_config(&meta.configs) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(topic = %meta.name, error = %e, "invalid topic configuration; using the broker's");
                config.log.clone()
            }
        };
        max_message_bytes.insert(meta.name.clone(), log_config.max_message_bytes);
        if log_config.cleanup_policy.split(',').any(|p| p.trim() == "compact") {
            compacted.insert(meta.name.clone());
        }
        for partition in 0..meta.partitions {
            if shard.owner_of(&meta.name, partition) != shard.id || !meta.has_replica_on(partition, config.broker_id) {
                continue;
            }
            if let Some(log) = shard.partitions.borrow().get(&meta.name, partition) {
                if log.config() != log_config {
                    log.set_config(log_config.clone());
                }
                continue;
            }
            let dir = config.log_dirs.join(partition_dir_name(&meta.name, partition));
            let start = match (startup, shard.shared.clean_shutdown) {
                (true, true) => RecoveryPoint::CleanShutdown,
                (true, false) => RecoveryPoint::At(shard.shared.recovery_points.get(&(meta.name.clone(), partition)).copied().unwrap_or(0)),
                // Created since the start: a new folder, or one this broker has just opened.
                (false, _) => RecoveryPoint::At(0),
            };
            to_open.push((dir, meta.name.clone(), partition, log_config.clone(), start, meta.id_bytes()));
        }
    }
    let open_all = move || {
        // Renamed first, all of them, so that a recreated topic opens fresh folders below.
        let renamed: Vec<_> = tombs
            .into_iter()
            .filter_map(|(dir, tomb)| match crate::io::fs::rename(&dir, &tomb) {
                Ok(()) => {
                    crate::io::crash::point("topic_delete.after_folder_rename");
                    Some(tomb)
                }
                Err(e) => {
                    tracing::error!(dir = %dir.display(), error = %e, "could not remove a deleted partition's folder");
                    None
                }
            })
            .collect();
        for tomb in &renamed {
            if let Err(e) = crate::io::fs::remove_dir_all(tomb) {
                tracing::error!(dir = %tomb.display(), error = %e, "could not remove a deleted partition's folder");
            }
        }
        to_open
            .into_iter()
            .map(|(dir, topic, partition, log_config, start, topic_id)| {
                // As Kafka's InconsistentTopicIdException guards: a folder left by another
                // topic of this name (a deletion whose removal did not finish, or that a power
                // cut undid) is never adopted; it is set aside and the partition starts anew.
                let expected = crate::storage::uuid_to_kafka_string(&topic_id);
                let mut start = start;
                if crate::storage::read_partition_topic_id(&dir).is_some_and(|found| found != expected) {
                    let aside = dir.with_file_name(format!("{}.{}-delete", partition_dir_name(&topic, partition), crate::shard::catalog::new_topic_id()));
                    tracing::warn!(dir = %dir.display(), "a partition folder of another topic id; setting it aside");
                    if let Err(e) = crate::io::fs::rename(&dir, &aside).and_then(|()| crate::io::fs::remove_dir_all(&aside)) {
                        return (dir, Err(e));
                    }
                    start = RecoveryPoint::At(0);
                }
                let opened = OpenedLog::open(&dir, &topic, partition, log_config, start)
                    .and_then(|log| crate::storage::write_partition_metadata(&dir, &topic_id).map(|()| log));
                (dir, opened)
            })
            .collect::<Vec<_>>()
    };
    // At startup no connection is served yet (listeners open once every shard is ready): the
    // shard opens its logs itself. Later, the blocking pool does, while the shard serves.
    let opened = if startup { Ok(open_all()) } else { compio::runtime::spawn_blocking(open_all).await.map_err(|_| ()) };
    match opened {
        Ok(opened) => {
            for (dir, result) in opened {
                match result {
                    Ok(log) => {
                        let log = PartitionLog::from_opened(log);
                        if let Some(start) = shard.shared.log_starts.get(&(log.topic.clone(), log.partition)).filter(|_| startup) {
                            log.advance_log_start(*start);
                        }
                        shard.partitions.borrow_mut().insert(log)
                    }
                    Err(e) => tracing::error!(dir = %dir.display(), error = %e, "could not open a partition"),
                }
            }
        }
        Err(_) => tracing::error!("opening partitions failed on the blocking pool"),
    }
    *shard.max_message_bytes.borrow_mut() = max_message_bytes;
    *shard.compacted_topics.borrow_mut() = compacted;
    if catalog.is_cluster() {
        super::replication::apply_roles(shard, &catalog);
    }
    shard.catalog.replace(catalog);
}

/// Removes partition folders that the catalog does not list (a topic deleted just before a
/// crash, or partitions beyond a topic's count), so that nothing deleted comes back when a
/// topic of the same name is created. Runs at startup, before any shard opens a log.
pub fn remove_orphans(catalog: &Catalog, log_dir: &std::path::Path, broker_id: i32) -> std::io::Result<()> {
    if !log_dir.exists() {
        return Ok(());
    }
    for name in crate::io::fs::list_dir(log_dir)? {
        let path = log_dir.join(&name);
        if !path.is_dir() {
            continue;
        }
        let orphan = if name.ends_with("-delete") {
            true
        } else if name == crate::cluster::raft::METADATA_LOG_DIR {
            false
        } else if let Some((topic, partition)) = crate::storage::parse_partition_dir_name(&name) {
            catalog.topic(&topic).is_none_or(|t| partition >= t.partitions || !t.has_replica_on(partition, broker_id))
        } else {
            false
        };
        if orphan {
            tracing::warn!(dir = %path.display(), "removing a partition folder that no topic owns");
            crate::io::fs::remove_dir_all(&path)?;
        }
    }
    Ok(())
}
