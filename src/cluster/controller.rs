//! The active controller's decisions, as pure functions of the metadata image: each takes what
//! a broker or an operator asked for and returns the records that do it (and per-item results),
//! without IO, so they are tested here directly. The quorum service (`service.rs`) proposes
//! the records and answers once they are committed. The rules are Kafka's
//! (`ReplicationControlManager`, `PartitionChangeBuilder`, `StripedReplicaPlacer`,
//! `ClusterControlManager` in apache/kafka's `metadata` module), simplified where noted.

use std::collections::{BTreeMap, BTreeSet};

use super::image::{MetadataImage, MetadataRecord, PartitionImage, NO_LEADER};
use crate::protocol::ErrorCode;

pub type ItemResult = Result<(), (ErrorCode, String)>;

/// A topic to create: -1 partitions or replication factor for the defaults; explicit
/// assignments (partition -> replicas) win over both.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NewTopic {
    pub name: String,
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub assignments: Vec<Vec<i32>>,
    pub configs: BTreeMap<String, String>,
}

/// The broker settings the decisions need.
#[derive(Debug, Clone)]
pub struct Settings {
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub unclean_leader_election: bool,
    pub max_partitions: i32,
}

/// Orders the active brokers so that consecutive ones are on different racks where possible
/// (Kafka's rack-alternated list): brokers grouped by rack, then taken one per rack in turn.
pub fn rack_alternated(image: &MetadataImage) -> Vec<(i32, Option<String>)> {
    rack_alternated_of(image.active_brokers().map(|b| (b.broker_id, b.rack.clone())))
}

/// `rack_alternated` of any brokers (id, rack), as `kafka-reassign-partitions --generate`
/// places replicas over the brokers it is given.
pub fn rack_alternated_of(brokers: impl IntoIterator<Item = (i32, Option<String>)>) -> Vec<(i32, Option<String>)> {
    let mut by_rack: BTreeMap<Option<String>, Vec<(i32, Option<String>)>> = BTreeMap::new();
    for (id, rack) in brokers {
        by_rack.entry(rack.clone()).or_default().push((id, rack));
    }
    let mut out = Vec::new();
    let longest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    for i in 0..longest {
        for ids in by_rack.values() {
            if let Some(b) = ids.get(i) {
                out.push(b.clone());
            }
        }
    }
    out
}

/// Places `partitions` new partitions of `rf` replicas each, starting at partition `first`,
/// over `brokers` (the rack-alternated list, `rack_alternated`): Kafka's
/// `assignReplicasToBrokers`. The first replica of partition p is broker `(start + p) % n`;
/// the others follow it at a shift that grows each time a full round of brokers has passed, so
/// leaders and followers spread evenly. With racks (every broker has one), a replica is only
/// placed on a rack that has none of the partition's replicas yet, until every rack has one
/// (`assignReplicasToBrokersRackAware`).
pub fn place(brokers: &[(i32, Option<String>)], first: i32, partitions: i32, rf: usize, start: usize) -> Vec<Vec<i32>> {
    let n = brokers.len();
    let racks: BTreeSet<&str> = brokers.iter().filter_map(|(_, r)| r.as_deref()).collect();
    let rack_aware = !racks.is_empty() && brokers.iter().all(|(_, r)| r.is_some());
    let replica_index = |first: usize, shift: usize, j: usize| (first + 1 + (shift + j) % (n - 1)) % n;
    let mut out = Vec::with_capacity(partitions.max(0) as usize);
    let mut shift = if rack_aware { 0 } else { start };
    for i in 0..partitions.max(0) as usize {
        let p = first as usize + i;
        if p > 0 && p % n == 0 {
            shift += 1;
        }
        let lead = (p + start) % n;
        let mut replicas = vec![brokers[lead].0];
        if !rack_aware {
            replicas.extend((0..rf.saturating_sub(1)).map(|j| brokers[replica_index(lead, shift, j)].0));
        } else {
            let mut used_racks: BTreeSet<&str> = BTreeSet::from([brokers[lead].1.as_deref().unwrap_or("")]);
            let mut k = 0;
            while replicas.len() < rf.min(n) {
                let (id, rack) = &brokers[replica_index(lead, shift * racks.len(), k)];
                let rack = rack.as_deref().unwrap_or("");
                if (!used_racks.contains(rack) || used_racks.len() == racks.len()) && !replicas.contains(id) {
                    replicas.push(*id);
                    used_racks.insert(rack);
                }
                k += 1;
            }
        }
        out.push(replicas);
    }
    out
}

/// The leader a partition should have among `isr` (in replica order: the preferred replica
/// first), from active brokers; with `unclean`, any active replica when no ISR member is.
fn elect(image: &MetadataImage, replicas: &[i32], isr: &[i32], unclean: bool) -> Option<(i32, Option<Vec<i32>>)> {
    let active = |id: &i32| image.brokers.get(id).is_some_and(|b| b.is_active());
    if let Some(l) = replicas.iter().find(|r| isr.contains(r) && active(r)) {
        return Some((*l, None));
    }
    // An unclean election: the new leader's log is the truth, the ISR is just it.
    if unclean {
        return replicas.iter().find(|r| active(r)).map(|l| (*l, Some(vec![*l])));
    }
    None
}

pub fn create_topics(
    image: &MetadataImage,
    topics: &[NewTopic],
    settings: &Settings,
    mut new_id: impl FnMut() -> String,
    check_configs: impl Fn(&BTreeMap<String, String>) -> Result<(), String>,
) -> (Vec<ItemResult>, Vec<MetadataRecord>) {
    let mut records = Vec::new();
    let mut results = Vec::new();
    let brokers = rack_alternated(image);
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for t in topics {
        *seen.entry(&t.name).or_default() += 1;
    }
    for t in topics {
        let result = (|| {
            if seen[t.name.as_str()] > 1 {
                return Err((ErrorCode::INVALID_REQUEST, format!("topic {} appears more than once in the request", t.name)));
            }
            crate::storage::meta::validate_topic_name(&t.name).map_err(|m| (ErrorCode::INVALID_TOPIC_EXCEPTION, m))?;
            if image.topic(&t.name).is_some() {
                return Err((ErrorCode::TOPIC_ALREADY_EXISTS, format!("topic '{}' already exists", t.name)));
            }
            check_configs(&t.configs).map_err(|m| (ErrorCode::INVALID_CONFIG, m))?;
            let assignments = if !t.assignments.is_empty() {
                if t.num_partitions != -1 || t.replication_factor != -1 {
                    return Err((ErrorCode::INVALID_REQUEST, "both assignments and a partition count or replication factor".to_string()));
                }
                check_assignments(image, &t.assignments, None)?;
                t.assignments.clone()
            } else {
                let partitions = if t.num_partitions == -1 { settings.num_partitions } else { t.num_partitions };
                if !(1..=settings.max_partitions).contains(&partitions) {
                    return Err((ErrorCode::INVALID_PARTITIONS, format!("number of partitions must be between 1 and {}", settings.max_partitions)));
                }
                let rf = if t.replication_factor == -1 { settings.default_replication_factor } else { t.replication_factor };
                if rf < 1 {
                    return Err((ErrorCode::INVALID_REPLICATION_FACTOR, "replication factor must be larger than 0".to_string()));
                }
                if rf as usize > brokers.len() {
                    return Err((ErrorCode::INVALID_REPLICATION_FACTOR, format!("replication factor: {rf} larger than available brokers: {}", brokers.len())));
                }
                place(&brokers, 0, partitions, rf as usize, start_for(&t.name, brokers.len()))
            };
            Ok(assignments)
        })();
        match result {
            Ok(assignments) => {
                let topic_id = new_id();
                records.push(MetadataRecord::Topic { name: t.name.clone(), topic_id: topic_id.clone() });
                for (key, value) in &t.configs {
                    records.push(MetadataRecord::TopicConfig { topic_id: topic_id.clone(), key: key.clone(), value: Some(value.clone()) });
                }
                for (p, replicas) in assignments.into_iter().enumerate() {
                    records.push(new_partition(image, &topic_id, p as i32, replicas));
                }
                results.push(Ok(()));
            }
            Err(e) => results.push(Err(e)),
        }
    }
    (results, records)
}

/// A partition's record: the ISR is its active replicas, the leader the first of them.
fn new_partition(image: &MetadataImage, topic_id: &str, partition: i32, replicas: Vec<i32>) -> MetadataRecord {
    let isr: Vec<i32> = replicas.iter().copied().filter(|r| image.brokers.get(r).is_some_and(|b| b.is_active())).collect();
    let leader = isr.first().copied().unwrap_or(NO_LEADER);
    MetadataRecord::Partition { topic_id: topic_id.to_string(), partition, replicas, isr, leader, leader_epoch: 0 }
}

/// Where a topic's placement starts: from its name, so topics spread their leaders.
fn start_for(name: &str, n: usize) -> usize {
    if n == 0 {
        0
    } else {
        crc32c::crc32c(name.as_bytes()) as usize % n
    }
}

/// Explicit replica assignments: every partition the same count of distinct, registered
/// brokers (`expected`: the topic's replication factor, for new partitions of a topic).
fn check_assignments(image: &MetadataImage, assignments: &[Vec<i32>], expected: Option<usize>) -> Result<(), (ErrorCode, String)> {
    let rf = expected.unwrap_or_else(|| assignments[0].len());
    for (p, replicas) in assignments.iter().enumerate() {
        let distinct: BTreeSet<i32> = replicas.iter().copied().collect();
        if replicas.is_empty() || distinct.len() != replicas.len() {
            return Err((ErrorCode::INVALID_REPLICA_ASSIGNMENT, format!("partition {p}: replicas must be distinct and not empty")));
        }
        if replicas.len() != rf {
            return Err((ErrorCode::INVALID_REPLICA_ASSIGNMENT, format!("partition {p}: {} replicas, not the {rf} the others have", replicas.len())));
        }
        if let Some(r) = replicas.iter().find(|r| !image.brokers.contains_key(r)) {
            return Err((ErrorCode::INVALID_REPLICA_ASSIGNMENT, format!("partition {p}: broker {r} is not registered")));
        }
    }
    Ok(())
}

pub fn delete_topics(image: &MetadataImage, names: &[String], deletion_enabled: bool) -> (Vec<ItemResult>, Vec<MetadataRecord>) {
    let mut records = Vec::new();
    let mut removed = BTreeSet::new();
    let results = names
        .iter()
        .map(|name| {
            if !deletion_enabled {
                return Err((ErrorCode::TOPIC_DELETION_DISABLED, "topic deletion is disabled (delete.topic.enable=false)".to_string()));
            }
            match image.topic(name) {
                Some(t) if removed.insert(t.id.clone()) => {
                    records.push(MetadataRecord::RemoveTopic { topic_id: t.id.clone() });
                    Ok(())
                }
                _ => Err((ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, format!("topic '{name}' does not exist"))),
            }
        })
        .collect();
    (results, records)
}

/// New partitions for existing topics: `(name, new total, explicit assignments of the new ones)`.
pub fn create_partitions(image: &MetadataImage, topics: &[(String, i32, Vec<Vec<i32>>)], settings: &Settings) -> (Vec<ItemResult>, Vec<MetadataRecord>) {
    let max_partitions = settings.max_partitions;
    let brokers = rack_alternated(image);
    let mut records = Vec::new();
    let results = topics
        .iter()
        .map(|(name, count, assignments)| {
            let t = image.topic(name).ok_or_else(|| (ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, format!("topic '{name}' does not exist")))?;
            let current = t.partitions.len() as i32;
            if *count <= current {
                return Err((
                    ErrorCode::INVALID_PARTITIONS,
                    format!("topic currently has {current} partitions, which is higher than or equal to the requested {count}"),
                ));
            }
            if *count > max_partitions {
                return Err((ErrorCode::INVALID_PARTITIONS, format!("number of partitions must be at most {max_partitions}")));
            }
            let rf = t.partitions.values().next().map_or(1, |p| p.replicas.len());
            let new = if assignments.is_empty() {
                if rf > brokers.len() {
                    return Err((ErrorCode::INVALID_REPLICATION_FACTOR, format!("replication factor: {rf} larger than available brokers: {}", brokers.len())));
                }
                place(&brokers, current, count - current, rf, start_for(name, brokers.len()))
            } else {
                if assignments.len() as i32 != count - current {
                    return Err((ErrorCode::INVALID_REPLICA_ASSIGNMENT, format!("{} assignments for {} new partitions", assignments.len(), count - current)));
                }
                check_assignments(image, assignments, Some(rf))?;
                assignments.clone()
            };
            for (i, replicas) in new.into_iter().enumerate() {
                records.push(new_partition(image, &t.id, current + i as i32, replicas));
            }
            Ok(())
        })
        .collect();
    (results, records)
}

/// The changes that take `broker` out of every ISR and leadership (fencing, controlled
/// shutdown, re-registration after a crash). As in Kafka, the last member of an ISR stays in
/// it (so the partition can come back when that broker does) and the partition is leaderless.
pub fn remove_from_partitions(image: &MetadataImage, broker: i32, unclean: bool) -> Vec<MetadataRecord> {
    // As applied, so that elections below see the broker gone.
    let mut view = image.clone();
    if let Some(b) = view.brokers.get_mut(&broker) {
        b.fenced = true;
    }
    let mut records = Vec::new();
    for t in image.topics.values() {
        for (p, part) in &t.partitions {
            if !part.isr.contains(&broker) && part.leader != broker {
                continue;
            }
            let mut isr: Vec<i32> = part.isr.iter().copied().filter(|r| *r != broker).collect();
            if isr.is_empty() {
                isr = part.isr.clone();
            }
            let leader = if part.leader == broker || part.leader == NO_LEADER {
                match elect(&view, &part.replicas, &isr, unclean) {
                    Some((l, new_isr)) => {
                        if let Some(new_isr) = new_isr {
                            isr = new_isr;
                        }
                        l
                    }
                    None => NO_LEADER,
                }
            } else {
                part.leader
            };
            records.extend(change(&t.id, *p, part, leader, isr, None));
        }
    }
    records
}

/// A `PartitionChange` with only what differs from `part`, or none when nothing does (as
/// Kafka's `PartitionChangeBuilder`: an empty change would still bump the partition epoch and
/// fail the leader's next AlterPartition).
fn change(topic_id: &str, partition: i32, part: &PartitionImage, leader: i32, isr: Vec<i32>, replicas: Option<Vec<i32>>) -> Option<MetadataRecord> {
    let target = Assignment {
        leader,
        isr,
        replicas: replicas.unwrap_or_else(|| part.replicas.clone()),
        adding: part.adding_replicas.clone(),
        removing: part.removing_replicas.clone(),
    };
    change_to(topic_id, partition, part, target)
}

/// A partition's replicas, ISR and leader, and the reassignment's, as a change sets them.
#[derive(Debug, Clone, PartialEq)]
struct Assignment {
    leader: i32,
    isr: Vec<i32>,
    replicas: Vec<i32>,
    adding: Vec<i32>,
    removing: Vec<i32>,
}

/// The `PartitionChange` from `part` to `to`, with only the fields that differ.
fn change_to(topic_id: &str, partition: i32, part: &PartitionImage, to: Assignment) -> Option<MetadataRecord> {
    let record = MetadataRecord::PartitionChange {
        topic_id: topic_id.to_string(),
        partition,
        leader: (to.leader != part.leader).then_some(to.leader),
        isr: (to.isr != part.isr).then_some(to.isr),
        replicas: (to.replicas != part.replicas).then_some(to.replicas),
        adding: (to.adding != part.adding_replicas).then_some(to.adding),
        removing: (to.removing != part.removing_replicas).then_some(to.removing),
    };
    match &record {
        MetadataRecord::PartitionChange { leader: None, isr: None, replicas: None, adding: None, removing: None, .. } => None,
        _ => Some(record),
    }
}

/// Completes a reassignment once every target replica is in `isr`, as Kafka's
/// `PartitionReassignmentReplicas.maybeCompleteReassignment`: the replicas become the target,
/// the removed ones leave the ISR, and a leader that is no longer in it (or not active) hands
/// over to the first target replica in the ISR that is active. Otherwise (or when no target
/// replica could lead) the partition keeps `leader` and `isr` as they are.
fn maybe_complete(image: &MetadataImage, part: &PartitionImage, leader: i32, isr: Vec<i32>) -> Assignment {
    let unchanged = Assignment {
        leader,
        isr: isr.clone(),
        replicas: part.replicas.clone(),
        adding: part.adding_replicas.clone(),
        removing: part.removing_replicas.clone(),
    };
    if !part.is_reassigning() {
        return unchanged;
    }
    let target = part.target_replicas();
    let target_isr: Vec<i32> = isr.iter().copied().filter(|r| !part.removing_replicas.contains(r)).collect();
    if target.is_empty() || !target.iter().all(|r| target_isr.contains(r)) {
        return unchanged;
    }
    let active = |id: &i32| image.brokers.get(id).is_some_and(|b| b.is_active());
    let leader = if target_isr.contains(&leader) && active(&leader) {
        leader
    } else {
        match elect(image, &target, &target_isr, false) {
            Some((l, _)) => l,
            None => return unchanged,
        }
    };
    Assignment { leader, isr: target_isr, replicas: target, adding: Vec::new(), removing: Vec::new() }
}

/// AlterPartitionReassignments (KIP-455): for each partition, `Some(target)` starts (or
/// changes) a reassignment to `target`, `None` cancels the one in progress. As Kafka's
/// `ReplicationControlManager.changePartitionReassignment` and `PartitionReassignmentReplicas`:
/// the replicas become the target followed by the current replicas it drops (`removing`), the
/// new ones (`adding`) join as followers and catch up, and the move completes
/// (`maybe_complete`) once every target replica is in the ISR, at once if none is new. A
/// reassignment changed midway is computed from the replicas as they are, new ones included.
/// Cancelling (`PartitionReassignmentRevert`) drops the replicas being added, from the ISR
/// too; the leader stays unless it was one of them.
pub fn alter_reassignments(image: &MetadataImage, requests: &[(String, i32, Option<Vec<i32>>)]) -> (Vec<(String, i32, ItemResult)>, Vec<MetadataRecord>) {
    let mut records = Vec::new();
    let mut results = Vec::new();
    for (name, p, target) in requests {
        let result = (|| {
            let t = image.topic(name).ok_or((ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, format!("Unable to find a topic named {name}.")))?;
            let part = t.partitions.get(p).ok_or((ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, format!("Unable to find partition {name}:{p}.")))?;
            let Some(target) = target else {
                if !part.is_reassigning() {
                    return Err((ErrorCode::NO_REASSIGNMENT_IN_PROGRESS, format!("no reassignment of {name}-{p} is in progress")));
                }
                let replicas: Vec<i32> = part.replicas.iter().copied().filter(|r| !part.adding_replicas.contains(r)).collect();
                let isr: Vec<i32> = part.isr.iter().copied().filter(|r| !part.adding_replicas.contains(r)).collect();
                if isr.is_empty() {
                    return Err((
                        ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                        format!("cancelling the reassignment of {name}-{p} would require an unclean leader election"),
                    ));
                }
                let leader = if replicas.contains(&part.leader) { part.leader } else { elect(image, &replicas, &isr, false).map_or(NO_LEADER, |(l, _)| l) };
                records.extend(change_to(&t.id, *p, part, Assignment { leader, isr, replicas, adding: Vec::new(), removing: Vec::new() }));
                return Ok(());
            };
            if target.is_empty() {
                return Err((ErrorCode::INVALID_REPLICA_ASSIGNMENT, "The manual partition assignment includes an empty replica list.".to_string()));
            }
            let mut seen = std::collections::BTreeSet::new();
            if let Some(dup) = target.iter().find(|r| !seen.insert(**r)) {
                return Err((ErrorCode::INVALID_REPLICA_ASSIGNMENT, format!("The manual partition assignment includes the broker {dup} more than once.")));
            }
            if let Some(unknown) = target.iter().find(|r| !image.brokers.contains_key(r)) {
                return Err((
                    ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                    format!("The manual partition assignment includes broker {unknown}, but no such broker is registered."),
                ));
            }
            let mut removing: Vec<i32> = part.replicas.iter().copied().filter(|r| !target.contains(r)).collect();
            removing.sort();
            let mut adding: Vec<i32> = target.iter().copied().filter(|r| !part.replicas.contains(r)).collect();
            adding.sort();
            let mut replicas = target.clone();
            replicas.extend(&removing);
            let reassigning = PartitionImage { replicas, adding_replicas: adding, removing_replicas: removing, ..part.clone() };
            let mut to = maybe_complete(image, &reassigning, part.leader, part.isr.clone());
            if !reassigning.is_reassigning() {
                // Only the order changed: the replicas are the target's, leadership stays.
                to.replicas = target.clone();
            }
            records.extend(change_to(&t.id, *p, part, to));
            Ok(())
        })();
        results.push((name.clone(), *p, result));
    }
    (results, records)
}

/// Leaderless partitions that `broker`, just unfenced, can lead now.
pub fn elect_for_unfenced(image: &MetadataImage, broker: i32, unclean: bool) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for t in image.topics.values() {
        for (p, part) in &t.partitions {
            if part.leader != NO_LEADER || !part.replicas.contains(&broker) {
                continue;
            }
            if let Some((leader, isr)) = elect(image, &part.replicas, &part.isr, unclean) {
                records.extend(change(&t.id, *p, part, leader, isr.unwrap_or_else(|| part.isr.clone()), None));
            }
        }
    }
    records
}

/// A leader's ISR change (AlterPartition, KIP-497), checked as Kafka's controller checks it:
/// the sender leads the partition at that leader epoch, the partition epoch is current, and
/// every new member is an active replica.
pub fn alter_partition(
    image: &MetadataImage,
    from: i32,
    topic_id: &str,
    partition: i32,
    leader_epoch: i32,
    partition_epoch: i32,
    new_isr: &[i32],
) -> Result<Vec<MetadataRecord>, ErrorCode> {
    let part = image.partition(topic_id, partition).ok_or(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)?;
    if part.leader != from {
        return Err(ErrorCode::NOT_LEADER_OR_FOLLOWER);
    }
    if leader_epoch != part.leader_epoch {
        return Err(ErrorCode::FENCED_LEADER_EPOCH);
    }
    if partition_epoch != part.partition_epoch {
        return Err(ErrorCode::INVALID_UPDATE_VERSION);
    }
    let eligible = |r: &i32| part.replicas.contains(r) && image.brokers.get(r).is_some_and(|b| b.is_active());
    if !new_isr.contains(&from) || new_isr.iter().any(|r| !eligible(r)) {
        return Err(ErrorCode::INELIGIBLE_REPLICA);
    }
    let mut isr = new_isr.to_vec();
    isr.sort_by_key(|r| part.replicas.iter().position(|x| x == r));
    isr.dedup();
    // The ISR that a reassignment waited for ends it.
    Ok(change_to(topic_id, partition, part, maybe_complete(image, part, part.leader, isr)).into_iter().collect())
}

/// Elections an operator asks for (ElectLeaders): `preferred` moves leadership to the first
/// replica when it is in the ISR and active; otherwise an unclean election for partitions with
/// no leader. `partitions` empty means every partition.
pub fn elect_leaders(image: &MetadataImage, preferred: bool, partitions: &[(String, i32)]) -> (Vec<(String, i32, ItemResult)>, Vec<MetadataRecord>) {
    let all: Vec<(String, i32)> = if partitions.is_empty() {
        image.topics.values().flat_map(|t| t.partitions.keys().map(|p| (t.name.clone(), *p))).collect()
    } else {
        partitions.to_vec()
    };
    let mut records = Vec::new();
    let mut results = Vec::new();
    for (name, p) in all {
        let Some((t, part)) = image.topic(&name).and_then(|t| Some((t, t.partitions.get(&p)?))) else {
            results.push((name, p, Err((ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, "no such partition".to_string()))));
            continue;
        };
        let result = if preferred {
            let want = part.replicas[0];
            if part.leader == want {
                Err((ErrorCode::ELECTION_NOT_NEEDED, "the preferred replica leads already".to_string()))
            } else if part.isr.contains(&want) && image.brokers.get(&want).is_some_and(|b| b.is_active()) {
                records.extend(change(&t.id, p, part, want, part.isr.clone(), None));
                Ok(())
            } else if let (NO_LEADER, Some((l, _))) = (part.leader, elect(image, &part.replicas, &part.isr, false)) {
                // As Kafka's `electPreferredLeader`: a leaderless partition gets the first
                // valid ISR replica when the preferred one cannot lead.
                records.extend(change(&t.id, p, part, l, part.isr.clone(), None));
                Ok(())
            } else {
                Err((ErrorCode::PREFERRED_LEADER_NOT_AVAILABLE, format!("broker {want} is not in the ISR or not active")))
            }
        } else if part.leader != NO_LEADER {
            Err((ErrorCode::ELECTION_NOT_NEEDED, "the partition has a leader".to_string()))
        } else {
            match elect(image, &part.replicas, &part.isr, true) {
                Some((l, isr)) => {
                    records.extend(change(&t.id, p, part, l, isr.unwrap_or_else(|| part.isr.clone()), None));
                    Ok(())
                }
                None => Err((ErrorCode::ELIGIBLE_LEADERS_NOT_AVAILABLE, "no replica is active".to_string())),
            }
        };
        results.push((name, p, result));
    }
    (results, records)
}

/// The preferred-leader rebalance (`auto.leader.rebalance.enable`): every partition whose
/// preferred replica is in the ISR and active but does not lead gets it back as leader.
pub fn preferred_rebalance(image: &MetadataImage) -> Vec<MetadataRecord> {
    elect_leaders(image, true, &[]).1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_with(brokers: &[(i32, Option<&str>)]) -> MetadataImage {
        let mut image = MetadataImage::default();
        for (i, (id, rack)) in brokers.iter().enumerate() {
            let offset = i as u64 + 1;
            image.apply_batch(
                offset,
                &[MetadataRecord::RegisterBroker { broker_id: *id, incarnation_id: "x".into(), host: "h".into(), port: 1, rack: rack.map(str::to_string) }],
            );
            image.apply_batch(offset, &[MetadataRecord::UnfenceBroker { broker_id: *id, epoch: offset }]);
        }
        image
    }

    fn settings() -> Settings {
        Settings { num_partitions: 1, default_replication_factor: 1, unclean_leader_election: false, max_partitions: 10_000 }
    }

    fn apply(image: &mut MetadataImage, records: &[MetadataRecord]) {
        let offset = image.offset + 1;
        image.apply_batch(offset, records);
    }

    #[test]
    fn placement_spreads_leaders_and_keeps_replicas_on_distinct_brokers_and_racks() {
        let image = image_with(&[(1, Some("a")), (2, Some("a")), (3, Some("b")), (4, Some("b")), (5, Some("c")), (6, Some("c"))]);
        let brokers = rack_alternated(&image);
        let racks: BTreeMap<i32, String> = image.brokers.values().map(|b| (b.broker_id, b.rack.clone().unwrap())).collect();
        let placed = place(&brokers, 0, 12, 3, 0);
        let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
        for replicas in &placed {
            let distinct: BTreeSet<_> = replicas.iter().collect();
            assert_eq!(distinct.len(), 3, "{replicas:?}");
            let rack_set: BTreeSet<_> = replicas.iter().map(|r| &racks[r]).collect();
            assert_eq!(rack_set.len(), 3, "one replica per rack: {replicas:?}");
            *leaders.entry(replicas[0]).or_default() += 1;
        }
        assert!(leaders.values().all(|n| *n == 2), "leaders spread evenly: {leaders:?}");
    }

    #[test]
    fn topics_are_created_with_their_replicas_in_the_isr_and_checked() {
        let mut image = image_with(&[(1, None), (2, None), (3, None)]);
        let topic = |name: &str, partitions, rf| NewTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: rf,
            assignments: vec![],
            configs: Default::default(),
        };
        let mut n = 0;
        let (results, records) = create_topics(
            &image,
            &[topic("a", 3, 3), topic("b", 1, 4), topic("bad/name", 1, 1)],
            &settings(),
            || {
                n += 1;
                format!("{n:032x}")
            },
            |_| Ok(()),
        );
        assert!(results[0].is_ok());
        assert_eq!(results[1].as_ref().unwrap_err().0, ErrorCode::INVALID_REPLICATION_FACTOR);
        assert_eq!(results[2].as_ref().unwrap_err().0, ErrorCode::INVALID_TOPIC_EXCEPTION);
        apply(&mut image, &records);
        let t = image.topic("a").unwrap();
        assert_eq!(t.partitions.len(), 3);
        for p in t.partitions.values() {
            assert_eq!(p.replicas.len(), 3);
            assert_eq!(p.isr, p.replicas);
            assert_eq!(p.leader, p.replicas[0]);
        }
        let leaders: BTreeSet<i32> = t.partitions.values().map(|p| p.leader).collect();
        assert_eq!(leaders.len(), 3, "three partitions, three leaders");
        let (results, _) = create_topics(&image, &[topic("a", 1, 1)], &settings(), || "x".into(), |_| Ok(()));
        assert_eq!(results[0].as_ref().unwrap_err().0, ErrorCode::TOPIC_ALREADY_EXISTS);
    }

    #[test]
    fn fencing_moves_leadership_to_the_isr_and_the_last_member_stays() {
        let mut image = image_with(&[(1, None), (2, None), (3, None)]);
        let t =
            NewTopic { name: "t".into(), num_partitions: -1, replication_factor: -1, assignments: vec![vec![1, 2], vec![1, 3]], configs: Default::default() };
        let (results, records) = create_topics(&image, &[t], &settings(), || "id".into(), |_| Ok(()));
        assert!(results[0].is_ok(), "{results:?}");
        apply(&mut image, &records);
        let shrink = alter_partition(&image, 1, "id", 1, 0, 0, &[1]).unwrap();
        apply(&mut image, &shrink);
        let records = remove_from_partitions(&image, 1, false);
        apply(&mut image, &records);
        let p0 = image.partition("id", 0).unwrap();
        assert_eq!((p0.leader, p0.isr.as_slice(), p0.leader_epoch), (2, &[2][..], 1), "the ISR's next member leads");
        let p1 = image.partition("id", 1).unwrap();
        assert_eq!((p1.leader, p1.isr.as_slice()), (NO_LEADER, &[1][..]), "no one else in the ISR: leaderless, the last member kept");
        // Broker 1 comes back (a new registration, then unfenced): it leads partition 1 again.
        apply(&mut image, &[MetadataRecord::RegisterBroker { broker_id: 1, incarnation_id: "y".into(), host: "h".into(), port: 1, rack: None }]);
        let epoch = image.brokers[&1].epoch;
        apply(&mut image, &[MetadataRecord::UnfenceBroker { broker_id: 1, epoch }]);
        let records = elect_for_unfenced(&image, 1, false);
        apply(&mut image, &records);
        assert_eq!(image.partition("id", 1).unwrap().leader, 1);
        assert_eq!(image.partition("id", 0).unwrap().leader, 2, "a led partition keeps its leader");
        // Unclean: a partition whose only ISR member is gone goes to any live replica.
        let t = NewTopic { name: "u".into(), num_partitions: -1, replication_factor: -1, assignments: vec![vec![3, 2]], configs: Default::default() };
        let (_, records) = create_topics(&image, &[t], &settings(), || "uid".into(), |_| Ok(()));
        apply(&mut image, &records);
        let shrink = alter_partition(&image, 3, "uid", 0, 0, 0, &[3]).unwrap();
        apply(&mut image, &shrink);
        let clean = remove_from_partitions(&image, 3, false);
        let mut clean_image = image.clone();
        apply(&mut clean_image, &clean);
        assert_eq!(clean_image.partition("uid", 0).unwrap().leader, NO_LEADER);
        let unclean = remove_from_partitions(&image, 3, true);
        apply(&mut image, &unclean);
        let p = image.partition("uid", 0).unwrap();
        assert_eq!((p.leader, p.isr.as_slice()), (2, &[2][..]));
    }

    #[test]
    fn a_reassignment_adds_replicas_waits_for_them_in_the_isr_then_drops_the_old_ones() {
        let mut image = image_with(&[(1, None), (2, None), (3, None), (4, None)]);
        let t = NewTopic { name: "t".into(), num_partitions: -1, replication_factor: -1, assignments: vec![vec![1, 2, 3]], configs: Default::default() };
        let (_, records) = create_topics(&image, &[t], &settings(), || "id".into(), |_| Ok(()));
        apply(&mut image, &records);
        let refused = |image: &MetadataImage, target: Option<Vec<i32>>| alter_reassignments(image, &[("t".into(), 0, target)]).0[0].2.clone().unwrap_err().0;
        assert_eq!(refused(&image, None), ErrorCode::NO_REASSIGNMENT_IN_PROGRESS);
        assert_eq!(refused(&image, Some(vec![])), ErrorCode::INVALID_REPLICA_ASSIGNMENT);
        assert_eq!(refused(&image, Some(vec![2, 2])), ErrorCode::INVALID_REPLICA_ASSIGNMENT);
        assert_eq!(refused(&image, Some(vec![2, 9])), ErrorCode::INVALID_REPLICA_ASSIGNMENT, "broker 9 is not registered");
        let (results, _) = alter_reassignments(&image, &[("u".into(), 0, Some(vec![1]))]);
        assert_eq!(results[0].2.clone().unwrap_err().0, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);

        // 1,2,3 -> 4,2,3: 4 is added and catches up; the leader, 1, is being removed.
        let (results, records) = alter_reassignments(&image, &[("t".into(), 0, Some(vec![4, 2, 3]))]);
        assert!(results[0].2.is_ok());
        apply(&mut image, &records);
        let p = image.partition("id", 0).unwrap().clone();
        assert_eq!((p.replicas.clone(), p.adding_replicas.clone(), p.removing_replicas.clone()), (vec![4, 2, 3, 1], vec![4], vec![1]));
        assert_eq!((p.leader, p.isr.clone()), (1, vec![1, 2, 3]), "nothing moves before the new replica is in sync");
        // 4 caught up: the leader's ISR change completes the move, and leadership goes to the
        // first target replica in sync.
        let records = alter_partition(&image, 1, "id", 0, p.leader_epoch, p.partition_epoch, &[1, 2, 3, 4]).unwrap();
        apply(&mut image, &records);
        let p = image.partition("id", 0).unwrap().clone();
        assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader), (vec![4, 2, 3], vec![4, 2, 3], 4));
        assert!(!p.is_reassigning());

        // A move cancelled before it completes goes back to the original replicas.
        let (_, records) = alter_reassignments(&image, &[("t".into(), 0, Some(vec![1, 2]))]);
        apply(&mut image, &records);
        let p = image.partition("id", 0).unwrap().clone();
        assert_eq!((p.replicas.clone(), p.adding_replicas.clone(), p.removing_replicas.clone()), (vec![1, 2, 3, 4], vec![1], vec![3, 4]));
        let (results, records) = alter_reassignments(&image, &[("t".into(), 0, None)]);
        assert!(results[0].2.is_ok());
        apply(&mut image, &records);
        let p = image.partition("id", 0).unwrap().clone();
        assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader, p.is_reassigning()), (vec![2, 3, 4], vec![4, 2, 3], 4, false));

        // Shrinking to replicas already in sync completes at once.
        let (_, records) = alter_reassignments(&image, &[("t".into(), 0, Some(vec![2, 3]))]);
        apply(&mut image, &records);
        let p = image.partition("id", 0).unwrap().clone();
        assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader, p.is_reassigning()), (vec![2, 3], vec![2, 3], 2, false));
    }

    #[test]
    fn alter_partition_is_fenced_by_epochs_and_eligibility() {
        let mut image = image_with(&[(1, None), (2, None), (3, None)]);
        let t = NewTopic { name: "t".into(), num_partitions: -1, replication_factor: -1, assignments: vec![vec![1, 2, 3]], configs: Default::default() };
        let (_, records) = create_topics(&image, &[t], &settings(), || "id".into(), |_| Ok(()));
        apply(&mut image, &records);
        assert_eq!(alter_partition(&image, 2, "id", 0, 0, 0, &[2]).unwrap_err(), ErrorCode::NOT_LEADER_OR_FOLLOWER);
        assert_eq!(alter_partition(&image, 1, "id", 0, 1, 0, &[1]).unwrap_err(), ErrorCode::FENCED_LEADER_EPOCH);
        assert_eq!(alter_partition(&image, 1, "id", 0, 0, 5, &[1]).unwrap_err(), ErrorCode::INVALID_UPDATE_VERSION);
        assert_eq!(alter_partition(&image, 1, "id", 0, 0, 0, &[2]).unwrap_err(), ErrorCode::INELIGIBLE_REPLICA, "the leader stays in");
        let records = alter_partition(&image, 1, "id", 0, 0, 0, &[1, 3]).unwrap();
        apply(&mut image, &records);
        assert_eq!(image.partition("id", 0).unwrap().isr, vec![1, 3]);
        apply(&mut image, &[MetadataRecord::FenceBroker { broker_id: 2, epoch: 2 }]);
        assert_eq!(alter_partition(&image, 1, "id", 0, 0, 1, &[3, 2, 1]).unwrap_err(), ErrorCode::INELIGIBLE_REPLICA, "a fenced broker cannot join");
        let records = alter_partition(&image, 1, "id", 0, 0, 1, &[3, 1]).unwrap();
        assert!(records.is_empty(), "the ISR is kept in replica order: no change, no record");
    }

    #[test]
    fn preferred_elections_bring_leadership_back() {
        let mut image = image_with(&[(1, None), (2, None)]);
        let t = NewTopic { name: "t".into(), num_partitions: -1, replication_factor: -1, assignments: vec![vec![1, 2]], configs: Default::default() };
        let (_, records) = create_topics(&image, &[t], &settings(), || "id".into(), |_| Ok(()));
        apply(&mut image, &records);
        let (results, records) = elect_leaders(&image, true, &[("t".into(), 0)]);
        assert_eq!(results[0].2.as_ref().unwrap_err().0, ErrorCode::ELECTION_NOT_NEEDED);
        assert!(records.is_empty());
        let moved = remove_from_partitions(&image, 1, false);
        apply(&mut image, &moved);
        apply(&mut image, &[MetadataRecord::RegisterBroker { broker_id: 1, incarnation_id: "y".into(), host: "h".into(), port: 1, rack: None }]);
        let epoch = image.brokers[&1].epoch;
        apply(&mut image, &[MetadataRecord::UnfenceBroker { broker_id: 1, epoch }]);
        assert!(preferred_rebalance(&image).is_empty(), "not back in the ISR yet");
        let grow = alter_partition(&image, 2, "id", 0, 1, 1, &[2, 1]).unwrap();
        apply(&mut image, &grow);
        let records = preferred_rebalance(&image);
        apply(&mut image, &records);
        assert_eq!(image.partition("id", 0).unwrap().leader, 1);
    }
}

/// One topic's configuration change: IncrementalAlterConfigs' operations (`(key, op, value)`,
/// op as `AlterConfigOp.OpType`), or with `replace` AlterConfigs' whole new set of overrides.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConfigChange {
    pub topic: String,
    pub ops: Vec<(String, i8, Option<String>)>,
    pub replace: bool,
}

/// The topic's overrides after `change`, as Kafka's `ConfigurationControlManager` computes
/// them: SET and DELETE name one key; APPEND and SUBTRACT add or remove list items (only for
/// LIST configs, starting from the topic default when the key is not set); AlterConfigs'
/// set replaces every override. The result must pass `check` (the topic config's own rules).
pub fn altered_configs(
    current: &BTreeMap<String, String>,
    change: &ConfigChange,
    check: impl Fn(&BTreeMap<String, String>) -> Result<(), String>,
) -> Result<BTreeMap<String, String>, (ErrorCode, String)> {
    use crate::protocol::messages::alter_configs::{OP_APPEND, OP_DELETE, OP_SET, OP_SUBTRACT};
    let mut seen = BTreeSet::new();
    if let Some((key, _, _)) = change.ops.iter().find(|(k, _, _)| !seen.insert(k.as_str())) {
        return Err((ErrorCode::INVALID_REQUEST, format!("Error due to duplicate config keys: {key}")));
    }
    let mut new = if change.replace { BTreeMap::new() } else { current.clone() };
    for (key, op, value) in &change.ops {
        match (*op, value) {
            (OP_SET, Some(v)) => {
                new.insert(key.clone(), v.clone());
            }
            (OP_SET, None) => return Err((ErrorCode::INVALID_CONFIG, format!("Null value not supported for topic configs: {key}"))),
            (OP_DELETE, _) => {
                new.remove(key);
            }
            (OP_APPEND | OP_SUBTRACT, value) => {
                // Of the topic configs Spate knows, only cleanup.policy is a LIST.
                if key != "cleanup.policy" {
                    let verb = if *op == OP_APPEND { "APPEND" } else { "SUBTRACT" };
                    return Err((ErrorCode::INVALID_CONFIG, format!("Can't {verb} to key {key} because its type is not LIST.")));
                }
                let old = new.get(key).map_or("delete", String::as_str);
                let mut items: Vec<String> = old.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect();
                for item in value.as_deref().unwrap_or("").split(',') {
                    if *op == OP_APPEND && !items.iter().any(|i| i == item) {
                        items.push(item.to_string());
                    } else if *op == OP_SUBTRACT {
                        items.retain(|i| i != item);
                    }
                }
                new.insert(key.clone(), items.join(","));
            }
            (other, _) => return Err((ErrorCode::INVALID_REQUEST, format!("unknown config operation {other}"))),
        }
    }
    check(&new).map_err(|m| (ErrorCode::INVALID_CONFIG, m))?;
    Ok(new)
}

/// The metadata records that turn a topic's overrides from `old` into `new`.
pub fn config_records(topic_id: &str, old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<MetadataRecord> {
    let removed = old.keys().filter(|k| !new.contains_key(*k)).map(|k| (k.clone(), None));
    let set = new.iter().filter(|(k, v)| old.get(*k) != Some(v)).map(|(k, v)| (k.clone(), Some(v.clone())));
    removed.chain(set).map(|(key, value)| MetadataRecord::TopicConfig { topic_id: topic_id.to_string(), key, value }).collect()
}

/// AlterConfigs and IncrementalAlterConfigs for topics, on the active controller.
pub fn alter_configs(
    image: &MetadataImage,
    changes: &[ConfigChange],
    check: impl Fn(&BTreeMap<String, String>) -> Result<(), String>,
) -> (Vec<ItemResult>, Vec<MetadataRecord>) {
    let mut records = Vec::new();
    let results = changes
        .iter()
        .map(|change| {
            let topic = image.topic(&change.topic).ok_or((ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, format!("topic '{}' does not exist", change.topic)))?;
            let new = altered_configs(&topic.configs, change, &check)?;
            records.extend(config_records(&topic.id, &topic.configs, &new));
            Ok(())
        })
        .collect();
    (results, records)
}
