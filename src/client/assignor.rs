//! Consumer-group partition assignment for Kafka's "consumer" protocol type: the
//! ConsumerProtocolSubscription and ConsumerProtocolAssignment bytes that ride inside JoinGroup
//! and SyncGroup, and the range, roundrobin and cooperative-sticky assignors.
//!
//! Whichever member leads the group assigns for all, so a group that mixes this client with Java
//! or librdkafka members only behaves the same whoever leads if each assignor computes what Kafka's
//! Java assignor of the same name computes.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::protocol::codec::{DecodeError, DecodeResult, Reader, Writer};

/// The subscription version this client writes: version 3, byte for byte what librdkafka 2.x
/// sends. Version 2 is the first to carry the generation of the owned partitions, which the
/// cooperative-sticky leader needs to settle two members claiming one partition; readers of
/// older versions ignore the trailing fields.
pub const SUBSCRIPTION_VERSION: i16 = 3;

/// The assignment version this client writes. Every version so far (0 to 3) has the same fields;
/// version 1 came with the owned partitions of KIP-429.
pub const ASSIGNMENT_VERSION: i16 = 1;

/// Kafka's longest legal topic name. Partition lists repeat the topic name for every partition
/// once decoded, so a longer name is refused to keep a small message from growing a large heap.
const TOPIC_NAME_BYTES_MAX: usize = 249;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition { topic: topic.into(), partition }
    }
}

/// `topic-partition`, as Kafka's `TopicPartition.toString` and its tools print it.
impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// What a member sends in JoinGroup.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub topics: Vec<String>,
    pub user_data: Option<Bytes>,
    /// The partitions the member consumes now (cooperative protocols), from `generation_id`.
    pub owned_partitions: Vec<TopicPartition>,
    /// -1 when unknown, as in Kafka's schema; hence `Default` is written out, not derived.
    pub generation_id: i32,
}

impl Default for Subscription {
    fn default() -> Subscription {
        Subscription { topics: Vec::new(), user_data: None, owned_partitions: Vec::new(), generation_id: -1 }
    }
}

/// What the leader hands each member in SyncGroup.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assignment {
    pub partitions: Vec<TopicPartition>,
    pub user_data: Option<Bytes>,
}

pub fn encode_subscription(s: &Subscription) -> Vec<u8> {
    let mut w = Writer::new();
    w.i16(SUBSCRIPTION_VERSION);
    w.array_len(false, Some(s.topics.len()));
    for topic in &s.topics {
        w.string(false, topic);
    }
    w.nullable_bytes(false, s.user_data.as_deref());
    write_topic_partitions(&mut w, &s.owned_partitions);
    w.i32(s.generation_id);
    // RackId: this client does no rack-aware assignment, so it names no rack.
    w.nullable_string(false, None);
    w.finish().to_vec()
}

/// Reads versions 0 to 3. Like Kafka, a newer version is read as the newest known layout and
/// its trailing bytes are ignored. The rack id (version 3) is read but not kept.
pub fn decode_subscription(b: &[u8]) -> DecodeResult<Subscription> {
    let mut r = Reader::new(Bytes::copy_from_slice(b));
    let version = read_version(&mut r)?;
    // A topic name takes at least its 2-byte length.
    let topics = r.array(false, 2, |r| r.string(false))?;
    let user_data = r.nullable_bytes(false)?;
    let owned_partitions = if version >= 1 { read_topic_partitions(&mut r)? } else { Vec::new() };
    let generation_id = if version >= 2 { r.i32()? } else { -1 };
    if version >= 3 {
        r.nullable_string(false)?;
    }
    Ok(Subscription { topics, user_data, owned_partitions, generation_id })
}

pub fn encode_assignment(a: &Assignment) -> Vec<u8> {
    let mut w = Writer::new();
    w.i16(ASSIGNMENT_VERSION);
    write_topic_partitions(&mut w, &a.partitions);
    w.nullable_bytes(false, a.user_data.as_deref());
    w.finish().to_vec()
}

/// Reads any version. An empty byte string is an empty assignment: the coordinator sends one to
/// a member the leader gave nothing, and to every member when the leader sent no assignment.
pub fn decode_assignment(b: &[u8]) -> DecodeResult<Assignment> {
    if b.is_empty() {
        return Ok(Assignment::default());
    }
    let mut r = Reader::new(Bytes::copy_from_slice(b));
    read_version(&mut r)?;
    let partitions = read_topic_partitions(&mut r)?;
    let user_data = r.nullable_bytes(false)?;
    Ok(Assignment { partitions, user_data })
}

/// One member of the group, as the leader sees it in the JoinGroup response.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub subscription: Subscription,
}

pub trait Assignor {
    /// The protocol name in JoinGroup, shared with Kafka's Java client and librdkafka.
    fn name(&self) -> &'static str;

    /// Whether members keep consuming through a rebalance and only give up what they lose
    /// (KIP-429), rather than revoking everything first.
    fn is_cooperative(&self) -> bool {
        false
    }

    /// `partitions`: topic -> partition count for every subscribed topic that exists. Returns
    /// member_id -> its partitions, sorted, with every member present (possibly empty).
    fn assign(&self, members: &[Member], partitions: &BTreeMap<String, i32>) -> BTreeMap<String, Vec<TopicPartition>>;
}

/// Kafka's `range`: per topic, the subscribed members in order each take a contiguous run of
/// partitions, the first `count % members` one more than the rest.
pub struct RangeAssignor;

/// Kafka's `roundrobin`: every subscribed partition in (topic, partition) order goes to the next
/// member, in circular order, that subscribes to its topic.
pub struct RoundRobinAssignor;

/// Kafka's `cooperative-sticky`: a balanced assignment that keeps each member's partitions where
/// it can, and withholds any partition that changes hands until its owner has revoked it.
pub struct CooperativeStickyAssignor;

/// The assignor a JoinGroup protocol name selects.
pub fn by_name(name: &str) -> Option<Box<dyn Assignor>> {
    match name {
        "range" => Some(Box::new(RangeAssignor)),
        "roundrobin" => Some(Box::new(RoundRobinAssignor)),
        "cooperative-sticky" => Some(Box::new(CooperativeStickyAssignor)),
        _ => None,
    }
}

impl Assignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
    }

    // Kafka 3.5 added rack-aware placement to this assignor; without racks (this client sends
    // none) it computes exactly this.
    fn assign(&self, members: &[Member], partitions: &BTreeMap<String, i32>) -> BTreeMap<String, Vec<TopicPartition>> {
        let mut result = empty_assignment(members);
        let order = sorted_members(members);
        for (topic, &count) in partitions {
            let subscribers: Vec<&Member> = order.iter().copied().filter(|m| subscribes(m, topic)).collect();
            if subscribers.is_empty() || count <= 0 {
                continue;
            }
            let per_member = count / subscribers.len() as i32;
            let with_extra = count % subscribers.len() as i32;
            let mut next = 0;
            for (i, member) in subscribers.iter().enumerate() {
                let take = per_member + i32::from((i as i32) < with_extra);
                let assigned = result.get_mut(&member.member_id).expect("every member has an entry");
                assigned.extend((next..next + take).map(|partition| TopicPartition::new(topic.as_str(), partition)));
                next += take;
            }
        }
        for assigned in result.values_mut() {
            assigned.sort();
        }
        result
    }
}

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn assign(&self, members: &[Member], partitions: &BTreeMap<String, i32>) -> BTreeMap<String, Vec<TopicPartition>> {
        let mut result = empty_assignment(members);
        let order = sorted_members(members);
        let topics: Vec<BTreeSet<&str>> = order.iter().map(|m| subscribed_topics(m, partitions)).collect();
        let all_topics: BTreeSet<&str> = topics.iter().flatten().copied().collect();
        let mut next = 0;
        for topic in all_topics {
            for partition in 0..partitions[topic] {
                // Someone subscribes to every topic in `all_topics`, so this stops within a lap.
                while !topics[next].contains(topic) {
                    next = (next + 1) % order.len();
                }
                let assigned = result.get_mut(&order[next].member_id).expect("every member has an entry");
                assigned.push(TopicPartition::new(topic, partition));
                next = (next + 1) % order.len();
            }
        }
        result
    }
}

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &'static str {
        "cooperative-sticky"
    }

    fn is_cooperative(&self) -> bool {
        true
    }

    /// Four steps. Each member keeps the partitions it validly owns (still subscribed, and no
    /// member of a higher or equal generation claims them too). The rest go one at a time to the
    /// least loaded member that can take them, the partitions with the fewest candidates first.
    /// Then partitions move from the most to the least loaded members until no member has two
    /// more than another that could take one of its partitions; with equal subscriptions, counts
    /// then differ by at most one and only the excess of over-full members has moved. Last, the
    /// KIP-429 rule: a partition assigned to anyone other than a current owner is left out of
    /// this round; its owner sees it missing, revokes it and rejoins, and the next round hands it
    /// over.
    fn assign(&self, members: &[Member], partitions: &BTreeMap<String, i32>) -> BTreeMap<String, Vec<TopicPartition>> {
        let order = sorted_members(members);
        let eligible: Vec<BTreeSet<&str>> = order.iter().map(|m| subscribed_topics(m, partitions)).collect();
        let owners = current_owners(&order);
        let mut assigned: Vec<BTreeSet<TopicPartition>> = vec![BTreeSet::new(); order.len()];

        let mut unassigned: Vec<(usize, TopicPartition)> = Vec::new();
        for (topic, &count) in partitions {
            let candidate_count = eligible.iter().filter(|e| e.contains(topic.as_str())).count();
            if candidate_count == 0 {
                continue;
            }
            for partition in 0..count {
                let tp = TopicPartition::new(topic.as_str(), partition);
                match owners.get(&tp).map(Vec::as_slice) {
                    Some(&[owner]) if eligible[owner].contains(topic.as_str()) => {
                        assigned[owner].insert(tp);
                    }
                    _ => unassigned.push((candidate_count, tp)),
                }
            }
        }

        unassigned.sort();
        for (_, tp) in unassigned {
            let target = (0..order.len())
                .filter(|&i| eligible[i].contains(tp.topic.as_str()))
                .min_by_key(|&i| assigned[i].len())
                .expect("a partition is only pooled when some member subscribes to its topic");
            assigned[target].insert(tp);
        }

        balance(&mut assigned, &eligible, &owners);

        for (member, held) in assigned.iter_mut().enumerate() {
            held.retain(|tp| owners.get(tp).is_none_or(|o| o.iter().all(|&owner| owner == member)));
        }

        let mut result = empty_assignment(members);
        for (member, held) in order.iter().zip(assigned) {
            result.insert(member.member_id.clone(), held.into_iter().collect());
        }
        result
    }
}

/// Kafka's member order (`AbstractPartitionAssignor.MemberInfo`): static members first, by
/// `group.instance.id`, then dynamic members by member id. Rust compares strings by UTF-8 bytes
/// and Java by UTF-16 units; the two orders differ only for names mixing characters above
/// U+FFFF with U+E000..U+FFFF.
fn member_order(a: &Member, b: &Member) -> Ordering {
    let by_instance = match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    by_instance.then_with(|| a.member_id.cmp(&b.member_id))
}

fn sorted_members(members: &[Member]) -> Vec<&Member> {
    let mut order: Vec<&Member> = members.iter().collect();
    order.sort_by(|a, b| member_order(a, b));
    order
}

fn empty_assignment(members: &[Member]) -> BTreeMap<String, Vec<TopicPartition>> {
    members.iter().map(|m| (m.member_id.clone(), Vec::new())).collect()
}

fn subscribes(member: &Member, topic: &str) -> bool {
    member.subscription.topics.iter().any(|t| t == topic)
}

/// The member's subscribed topics that exist.
fn subscribed_topics<'a>(member: &'a Member, partitions: &BTreeMap<String, i32>) -> BTreeSet<&'a str> {
    member.subscription.topics.iter().map(String::as_str).filter(|t| partitions.contains_key(*t)).collect()
}

/// The generation of a member's owned partitions. Before subscription version 2, Java's
/// cooperative-sticky assignor put it in the user data as one big-endian `i32`.
fn claim_generation(subscription: &Subscription) -> i32 {
    if subscription.generation_id >= 0 {
        return subscription.generation_id;
    }
    match subscription.user_data.as_deref() {
        Some(&[a, b, c, d]) => i32::from_be_bytes([a, b, c, d]),
        _ => -1,
    }
}

/// For every claimed partition, the members (indexes into `order`) that own it now: the claimant
/// of the highest generation, or all claimants of that generation if several tie. A claim from
/// an older generation is stale: its member lost the partition in a rebalance it missed.
fn current_owners(order: &[&Member]) -> BTreeMap<TopicPartition, Vec<usize>> {
    let mut claims: BTreeMap<TopicPartition, (i32, Vec<usize>)> = BTreeMap::new();
    for (member, m) in order.iter().enumerate() {
        let generation = claim_generation(&m.subscription);
        for tp in &m.subscription.owned_partitions {
            let claim = claims.entry(tp.clone()).or_insert_with(|| (generation, Vec::new()));
            if generation > claim.0 {
                *claim = (generation, vec![member]);
            } else if generation == claim.0 && !claim.1.contains(&member) {
                claim.1.push(member);
            }
        }
    }
    claims.into_iter().map(|(tp, (_, owners))| (tp, owners)).collect()
}

fn owned_by(owners: &BTreeMap<TopicPartition, Vec<usize>>, tp: &TopicPartition, member: usize) -> bool {
    owners.get(tp).is_some_and(|o| o.contains(&member))
}

/// Moves one partition at a time from a member to one holding at least two fewer that can take
/// it. Each move lowers the sum of the squared counts, so the loop ends.
fn balance(assigned: &mut [BTreeSet<TopicPartition>], eligible: &[BTreeSet<&str>], owners: &BTreeMap<TopicPartition, Vec<usize>>) {
    while let Some((from, to, tp)) = next_move(assigned, eligible, owners) {
        let removed = assigned[from].remove(&tp);
        assert!(removed, "a move takes a partition its member holds");
        assigned[to].insert(tp);
    }
}

fn next_move(
    assigned: &[BTreeSet<TopicPartition>],
    eligible: &[BTreeSet<&str>],
    owners: &BTreeMap<TopicPartition, Vec<usize>>,
) -> Option<(usize, usize, TopicPartition)> {
    // A stable sort: among equal counts, the earlier member in Kafka's order comes first.
    let mut by_load: Vec<usize> = (0..assigned.len()).collect();
    by_load.sort_by_key(|&i| assigned[i].len());
    for &heavy in by_load.iter().rev() {
        for &light in &by_load {
            if assigned[light].len() + 2 > assigned[heavy].len() {
                break;
            }
            let movable = |tp: &TopicPartition| eligible[light].contains(tp.topic.as_str());
            // Prefer a partition `heavy` only received this round: moving it costs no revocation.
            let fresh = assigned[heavy].iter().find(|tp| movable(tp) && !owned_by(owners, tp, heavy));
            if let Some(tp) = fresh.or_else(|| assigned[heavy].iter().rev().find(|tp| movable(tp))) {
                return Some((heavy, light, tp.clone()));
            }
        }
    }
    None
}

fn write_topic_partitions(w: &mut Writer, partitions: &[TopicPartition]) {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(tp.topic.as_str()).or_default().push(tp.partition);
    }
    w.array_len(false, Some(by_topic.len()));
    for (topic, partitions) in &by_topic {
        w.string(false, topic);
        w.array_len(false, Some(partitions.len()));
        for &partition in partitions {
            w.i32(partition);
        }
    }
}

fn read_topic_partitions(r: &mut Reader) -> DecodeResult<Vec<TopicPartition>> {
    // Each topic takes at least a 2-byte name length and a 4-byte partition count.
    let topics = r.array(false, 6, |r| {
        let topic = r.string(false)?;
        if topic.len() > TOPIC_NAME_BYTES_MAX {
            return Err(DecodeError::InvalidLength(topic.len() as i64));
        }
        let partitions = r.array(false, 4, |r| r.i32())?;
        Ok((topic, partitions))
    })?;
    let mut out = Vec::with_capacity(topics.iter().map(|(_, partitions)| partitions.len()).sum());
    for (topic, partitions) in topics {
        out.extend(partitions.into_iter().map(|partition| TopicPartition::new(topic.as_str(), partition)));
    }
    Ok(out)
}

/// Kafka refuses a negative version and reads any newer one; `DecodeError` has no variant for a
/// bad version, so the value travels in `InvalidLength`.
fn read_version(r: &mut Reader) -> DecodeResult<i16> {
    let version = r.i16()?;
    if version < 0 {
        return Err(DecodeError::InvalidLength(version.into()));
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, topics: &[&str]) -> Member {
        let subscription = Subscription { topics: topics.iter().map(|t| t.to_string()).collect(), ..Subscription::default() };
        Member { member_id: id.to_string(), group_instance_id: None, subscription }
    }

    fn owning(mut m: Member, generation_id: i32, owned: &[(&str, i32)]) -> Member {
        m.subscription.generation_id = generation_id;
        m.subscription.owned_partitions = owned.iter().map(|&(t, p)| TopicPartition::new(t, p)).collect();
        m
    }

    fn topics(counts: &[(&str, i32)]) -> BTreeMap<String, i32> {
        counts.iter().map(|&(t, n)| (t.to_string(), n)).collect()
    }

    fn tps(list: &[(&str, i32)]) -> Vec<TopicPartition> {
        list.iter().map(|&(t, p)| TopicPartition::new(t, p)).collect()
    }

    fn counts(result: &BTreeMap<String, Vec<TopicPartition>>) -> Vec<usize> {
        result.values().map(Vec::len).collect()
    }

    /// Every partition of `partitions` appears at most once, and exactly once if `complete`.
    fn check_disjoint(result: &BTreeMap<String, Vec<TopicPartition>>, partitions: &BTreeMap<String, i32>, complete: bool) {
        let mut seen = BTreeSet::new();
        for tp in result.values().flatten() {
            assert!(partitions.get(&tp.topic).is_some_and(|&n| tp.partition < n), "{tp:?} does not exist");
            assert!(seen.insert(tp.clone()), "{tp:?} assigned twice");
        }
        if complete {
            assert_eq!(seen.len() as i32, partitions.values().sum::<i32>());
        }
    }

    /// What each member reports in the next JoinGroup after receiving `result`: it owns exactly
    /// what it was assigned (it revoked the rest), in the next generation.
    fn after(members: &[Member], result: &BTreeMap<String, Vec<TopicPartition>>, generation_id: i32) -> Vec<Member> {
        members
            .iter()
            .map(|m| {
                let mut m = m.clone();
                m.subscription.owned_partitions = result[&m.member_id].clone();
                m.subscription.generation_id = generation_id;
                m
            })
            .collect()
    }

    #[test]
    fn range_splits_contiguous_runs_with_the_extras_first() {
        let members = [member("m2", &["t"]), member("m1", &["t"])];
        let result = RangeAssignor.assign(&members, &topics(&[("t", 3)]));
        assert_eq!(result["m1"], tps(&[("t", 0), ("t", 1)]));
        assert_eq!(result["m2"], tps(&[("t", 2)]));

        // Per topic, only that topic's subscribers share it; a missing topic is skipped.
        let members = [member("a", &["t", "u", "missing"]), member("b", &["t"])];
        let result = RangeAssignor.assign(&members, &topics(&[("t", 4), ("u", 2)]));
        assert_eq!(result["a"], tps(&[("t", 0), ("t", 1), ("u", 0), ("u", 1)]));
        assert_eq!(result["b"], tps(&[("t", 2), ("t", 3)]));
    }

    #[test]
    fn static_members_sort_before_dynamic_ones() {
        let mut static_member = member("z", &["t"]);
        static_member.group_instance_id = Some("instance".to_string());
        let members = [member("a", &["t"]), static_member];
        let result = RangeAssignor.assign(&members, &topics(&[("t", 3)]));
        assert_eq!(result["z"], tps(&[("t", 0), ("t", 1)]));
        assert_eq!(result["a"], tps(&[("t", 2)]));
    }

    #[test]
    fn every_member_is_present_even_with_nothing() {
        let members = [member("a", &["t"]), member("b", &["t"]), member("c", &["other"])];
        for name in ["range", "roundrobin", "cooperative-sticky"] {
            let result = by_name(name).unwrap().assign(&members, &topics(&[("t", 1)]));
            assert_eq!(result.len(), 3, "{name}");
            assert!(result["c"].is_empty(), "{name}");
        }
        assert!(by_name("sticky").is_none());
    }

    #[test]
    fn roundrobin_cycles_over_two_topics() {
        // The example in Kafka's RoundRobinAssignor documentation.
        let members = [member("C1", &["t0", "t1"]), member("C0", &["t0", "t1"])];
        let result = RoundRobinAssignor.assign(&members, &topics(&[("t0", 3), ("t1", 3)]));
        assert_eq!(result["C0"], tps(&[("t0", 0), ("t0", 2), ("t1", 1)]));
        assert_eq!(result["C1"], tps(&[("t0", 1), ("t1", 0), ("t1", 2)]));
    }

    #[test]
    fn roundrobin_skips_members_not_subscribed() {
        // Kafka's documented example with unequal subscriptions.
        let members = [member("C0", &["t0"]), member("C1", &["t0", "t1"]), member("C2", &["t0", "t1", "t2"])];
        let result = RoundRobinAssignor.assign(&members, &topics(&[("t0", 1), ("t1", 2), ("t2", 3)]));
        assert_eq!(result["C0"], tps(&[("t0", 0)]));
        assert_eq!(result["C1"], tps(&[("t1", 0)]));
        assert_eq!(result["C2"], tps(&[("t1", 1), ("t2", 0), ("t2", 1), ("t2", 2)]));
    }

    #[test]
    fn sticky_first_assignment_is_balanced_and_complete() {
        let partitions = topics(&[("t", 7), ("u", 5)]);
        let members = [member("a", &["t", "u"]), member("b", &["t", "u"]), member("c", &["t", "u"])];
        let result = CooperativeStickyAssignor.assign(&members, &partitions);
        check_disjoint(&result, &partitions, true);
        assert_eq!(counts(&result), [4, 4, 4]);
    }

    #[test]
    fn sticky_puts_partitions_with_fewer_candidates_first() {
        let partitions = topics(&[("t1", 2), ("t2", 2)]);
        let members = [member("a", &["t1"]), member("b", &["t1", "t2"])];
        let result = CooperativeStickyAssignor.assign(&members, &partitions);
        assert_eq!(result["a"], tps(&[("t1", 0), ("t1", 1)]));
        assert_eq!(result["b"], tps(&[("t2", 0), ("t2", 1)]));
    }

    #[test]
    fn sticky_keeps_owned_partitions_when_a_member_joins_and_withholds_the_moved_ones() {
        let partitions = topics(&[("t", 6)]);
        let members = [
            owning(member("a", &["t"]), 1, &[("t", 0), ("t", 1), ("t", 2)]),
            owning(member("b", &["t"]), 1, &[("t", 3), ("t", 4), ("t", 5)]),
            member("c", &["t"]),
        ];
        let first = CooperativeStickyAssignor.assign(&members, &partitions);
        check_disjoint(&first, &partitions, false);
        // a and b each keep two of their own; the two that move to c are withheld this round.
        assert_eq!(first["a"], tps(&[("t", 0), ("t", 1)]));
        assert_eq!(first["b"], tps(&[("t", 3), ("t", 4)]));
        assert!(first["c"].is_empty());

        // a and b revoked t-2 and t-5 and rejoined: now c gets them, and nothing else moves.
        let second = CooperativeStickyAssignor.assign(&after(&members, &first, 2), &partitions);
        check_disjoint(&second, &partitions, true);
        assert_eq!(second["a"], first["a"]);
        assert_eq!(second["b"], first["b"]);
        assert_eq!(second["c"], tps(&[("t", 2), ("t", 5)]));
    }

    #[test]
    fn sticky_moves_only_the_excess() {
        // Three members own 4 of 12 partitions each; a fourth joins. The minimum that can move is
        // one from each, and after the follow-up round all four hold 3.
        let partitions = topics(&[("t", 8), ("u", 4)]);
        let all = ["t", "u"];
        let members = [
            owning(member("a", &all), 5, &[("t", 0), ("t", 1), ("t", 2), ("t", 3)]),
            owning(member("b", &all), 5, &[("t", 4), ("t", 5), ("t", 6), ("t", 7)]),
            owning(member("c", &all), 5, &[("u", 0), ("u", 1), ("u", 2), ("u", 3)]),
            member("d", &all),
        ];
        let first = CooperativeStickyAssignor.assign(&members, &partitions);
        assert_eq!(counts(&first), [3, 3, 3, 0]);
        for m in &members[..3] {
            assert!(first[&m.member_id].iter().all(|tp| m.subscription.owned_partitions.contains(tp)));
        }
        let second = CooperativeStickyAssignor.assign(&after(&members, &first, 6), &partitions);
        check_disjoint(&second, &partitions, true);
        assert_eq!(counts(&second), [3, 3, 3, 3]);
        let mut moved = 0;
        for m in &members {
            moved += m.subscription.owned_partitions.iter().filter(|tp| !second[&m.member_id].contains(*tp)).count();
        }
        assert_eq!(moved, 3);
    }

    #[test]
    fn sticky_rebalances_when_a_member_leaves() {
        let partitions = topics(&[("t", 6)]);
        let members = [owning(member("a", &["t"]), 3, &[("t", 0), ("t", 1)]), owning(member("b", &["t"]), 3, &[("t", 2), ("t", 3)])];
        // c left holding t-4 and t-5: nobody owns them now, so they are handed out at once.
        let result = CooperativeStickyAssignor.assign(&members, &partitions);
        check_disjoint(&result, &partitions, true);
        assert_eq!(result["a"], tps(&[("t", 0), ("t", 1), ("t", 4)]));
        assert_eq!(result["b"], tps(&[("t", 2), ("t", 3), ("t", 5)]));
    }

    #[test]
    fn sticky_settles_conflicting_claims_by_generation() {
        let partitions = topics(&[("t", 2)]);
        // The newer generation keeps the partition; the stale claim does not hold it back.
        let members = [owning(member("a", &["t"]), 3, &[("t", 0)]), owning(member("b", &["t"]), 2, &[("t", 0)])];
        let result = CooperativeStickyAssignor.assign(&members, &partitions);
        assert_eq!(result["a"], tps(&[("t", 0)]));
        assert_eq!(result["b"], tps(&[("t", 1)]));

        // Equal generations: neither keeps it, and whoever gets it must wait for the other to
        // revoke it.
        let members = [owning(member("a", &["t"]), 3, &[("t", 0)]), owning(member("b", &["t"]), 3, &[("t", 0)])];
        let result = CooperativeStickyAssignor.assign(&members, &partitions);
        check_disjoint(&result, &partitions, false);
        assert!(!result.values().flatten().any(|tp| *tp == TopicPartition::new("t", 0)));
        assert_eq!(result.values().flatten().count(), 1);
    }

    #[test]
    fn sticky_reads_the_generation_from_old_java_user_data() {
        let partitions = topics(&[("t", 1)]);
        let mut a = owning(member("a", &["t"]), -1, &[("t", 0)]);
        a.subscription.user_data = Some(Bytes::from_static(&[0, 0, 0, 7]));
        let b = owning(member("b", &["t"]), 6, &[("t", 0)]);
        let result = CooperativeStickyAssignor.assign(&[a, b], &partitions);
        assert_eq!(result["a"], tps(&[("t", 0)]));
        assert!(result["b"].is_empty());
    }

    #[test]
    fn sticky_gives_up_partitions_of_an_unsubscribed_topic() {
        let partitions = topics(&[("t", 2), ("u", 2)]);
        // a dropped u, which it still consumes. Only b can take u, so balance hands t-1 to a;
        // all three change hands, so all three wait a round for their owners to revoke them.
        let members = [owning(member("a", &["t"]), 4, &[("t", 0), ("u", 0), ("u", 1)]), owning(member("b", &["t", "u"]), 4, &[("t", 1)])];
        let first = CooperativeStickyAssignor.assign(&members, &partitions);
        assert_eq!(first["a"], tps(&[("t", 0)]));
        assert!(first["b"].is_empty());
        let second = CooperativeStickyAssignor.assign(&after(&members, &first, 5), &partitions);
        assert_eq!(second["a"], tps(&[("t", 0), ("t", 1)]));
        assert_eq!(second["b"], tps(&[("u", 0), ("u", 1)]));
    }

    #[test]
    fn sticky_converges_to_balanced_from_scattered_ownership() {
        // Pseudo-random previous assignments: a follow-up round always completes the handover.
        let partitions = topics(&[("a", 5), ("b", 11), ("c", 3)]);
        let all = ["a", "b", "c"];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..50 {
            let member_count = 2 + round % 5;
            let mut members: Vec<Member> = (0..member_count).map(|i| member(&format!("m{i}"), &all)).collect();
            for (topic, &count) in &partitions {
                for partition in 0..count {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    // Some partitions are owned by nobody (a member left).
                    let owner = (state % (member_count as u64 + 1)) as usize;
                    if owner < member_count {
                        members[owner].subscription.owned_partitions.push(TopicPartition::new(topic.as_str(), partition));
                        members[owner].subscription.generation_id = 1;
                    }
                }
            }
            let first = CooperativeStickyAssignor.assign(&members, &partitions);
            check_disjoint(&first, &partitions, false);
            let second = CooperativeStickyAssignor.assign(&after(&members, &first, 2), &partitions);
            check_disjoint(&second, &partitions, true);
            let loads = counts(&second);
            assert!(loads.iter().max().unwrap() - loads.iter().min().unwrap() <= 1, "round {round}: {loads:?}");
            // Nothing a member kept in the first round moves in the second.
            for (id, kept) in &first {
                assert!(kept.iter().all(|tp| second[id].contains(tp)), "round {round}: {id} lost a kept partition");
            }
        }
    }

    #[test]
    fn subscription_encodes_as_version_3() {
        let s = Subscription { topics: vec!["t".into()], user_data: None, owned_partitions: tps(&[("t", 0)]), generation_id: 5 };
        #[rustfmt::skip]
        let expected = [
            0, 3,                   // version
            0, 0, 0, 1, 0, 1, b't', // topics
            0xff, 0xff, 0xff, 0xff, // user_data: null
            0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 0, // owned_partitions
            0, 0, 0, 5,             // generation_id
            0xff, 0xff,             // rack_id: null
        ];
        assert_eq!(encode_subscription(&s), expected);
        assert_eq!(decode_subscription(&expected).unwrap(), s);
    }

    #[test]
    fn subscription_round_trips() {
        let s = Subscription {
            topics: vec!["orders".into(), "payments".into()],
            user_data: Some(Bytes::from_static(b"\x00\x01user")),
            owned_partitions: tps(&[("orders", 0), ("orders", 3), ("payments", 1)]),
            generation_id: 42,
        };
        assert_eq!(decode_subscription(&encode_subscription(&s)).unwrap(), s);
        let empty = Subscription::default();
        assert_eq!(empty.generation_id, -1);
        assert_eq!(decode_subscription(&encode_subscription(&empty)).unwrap(), empty);
    }

    #[test]
    fn subscription_decodes_every_version() {
        // Version 0 by hand: topics ["a", "bc"], user_data "x".
        let v0 = [0, 0, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c', 0, 0, 0, 1, b'x'];
        let s = decode_subscription(&v0).unwrap();
        assert_eq!(s.topics, ["a", "bc"]);
        assert_eq!(s.user_data.as_deref(), Some(&b"x"[..]));
        assert!(s.owned_partitions.is_empty());
        assert_eq!(s.generation_id, -1);

        let build = |version: i16, trailing: &[u8]| {
            let mut w = Writer::new();
            w.i16(version);
            w.array_len(false, Some(1));
            w.string(false, "t");
            w.nullable_bytes(false, None);
            if version >= 1 {
                write_topic_partitions(&mut w, &tps(&[("t", 2), ("t", 5)]));
            }
            if version >= 2 {
                w.i32(9);
            }
            if version >= 3 {
                w.nullable_string(false, Some("rack-1"));
            }
            w.raw(trailing);
            w.finish().to_vec()
        };
        let v1 = decode_subscription(&build(1, &[])).unwrap();
        assert_eq!(v1.owned_partitions, tps(&[("t", 2), ("t", 5)]));
        assert_eq!(v1.generation_id, -1);
        let v2 = decode_subscription(&build(2, &[])).unwrap();
        assert_eq!(v2.generation_id, 9);
        let v3 = decode_subscription(&build(3, &[])).unwrap();
        assert_eq!(v3, v2);
        // A newer version's extra fields are skipped, as Kafka does.
        assert_eq!(decode_subscription(&build(4, &[1, 2, 3, 4, 5])).unwrap(), v2);
        // librdkafka's empty (not null) user data survives as empty.
        let mut with_empty = build(0, &[]);
        with_empty.truncate(with_empty.len() - 4);
        with_empty.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(decode_subscription(&with_empty).unwrap().user_data.as_deref(), Some(&b""[..]));
    }

    #[test]
    fn assignment_round_trips() {
        let a = Assignment { partitions: tps(&[("orders", 1), ("orders", 4), ("z", 0)]), user_data: Some(Bytes::from_static(b"data")) };
        let bytes = encode_assignment(&a);
        assert_eq!(bytes[..2], [0, 1]);
        assert_eq!(decode_assignment(&bytes).unwrap(), a);
        let nothing = Assignment::default();
        assert_eq!(decode_assignment(&encode_assignment(&nothing)).unwrap(), nothing);
        assert_eq!(decode_assignment(&[]).unwrap(), nothing);
    }

    #[test]
    fn assignment_decodes_librdkafka_version_0_and_newer_versions() {
        // librdkafka writes version 0: t-0 and t-1, null user data.
        let v0 = [0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff];
        let a = decode_assignment(&v0).unwrap();
        assert_eq!(a, Assignment { partitions: tps(&[("t", 0), ("t", 1)]), user_data: None });
        let mut v9 = v0.to_vec();
        v9[1] = 9;
        v9.extend_from_slice(b"future fields");
        assert_eq!(decode_assignment(&v9).unwrap(), a);
    }

    #[test]
    fn truncated_bytes_are_errors() {
        let s = Subscription { topics: vec!["t".into()], user_data: Some(Bytes::from_static(b"u")), owned_partitions: tps(&[("t", 0)]), generation_id: 1 };
        let bytes = encode_subscription(&s);
        for len in 0..bytes.len() {
            assert!(decode_subscription(&bytes[..len]).is_err(), "subscription cut to {len} bytes");
        }
        let bytes = encode_assignment(&Assignment { partitions: tps(&[("t", 0)]), user_data: None });
        for len in 1..bytes.len() {
            assert!(decode_assignment(&bytes[..len]).is_err(), "assignment cut to {len} bytes");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        // A negative version; an absurd topic count; a topic name longer than Kafka allows.
        assert!(decode_subscription(&[0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_subscription(&[0, 1, 0x7f, 0xff, 0xff, 0xff, 0, 0]).is_err());
        assert!(decode_assignment(&[0, 0, 0xff, 0xff, 0xff, 0xfe]).is_err());
        let long = "x".repeat(TOPIC_NAME_BYTES_MAX + 1);
        let bytes = encode_assignment(&Assignment { partitions: vec![TopicPartition::new(long, 0)], user_data: None });
        assert!(decode_assignment(&bytes).is_err());

        let valid =
            encode_subscription(&Subscription { topics: vec!["orders".into()], user_data: None, owned_partitions: tps(&[("orders", 0)]), generation_id: 3 });
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            let len = (next() % 64) as usize;
            let random: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = decode_subscription(&random);
            let _ = decode_assignment(&random);
            let mut flipped = valid.clone();
            let at = (next() as usize) % flipped.len();
            flipped[at] = next() as u8;
            let _ = decode_subscription(&flipped);
            let _ = decode_assignment(&flipped);
        }
    }
}
