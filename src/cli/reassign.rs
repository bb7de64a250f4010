//! `spate reassign-partitions`: kafka-reassign-partitions.sh, with its flags and JSON files.
//! `--generate` proposes a placement of the topics of `--topics-to-move-json-file` over
//! `--broker-list` (Kafka's rack-aware `assignReplicasToBrokers`, the one topic creation uses);
//! `--execute` starts the moves of `--reassignment-json-file` (AlterPartitionReassignments),
//! printing the current assignment to roll back to; `--verify` tells which moves completed;
//! `--cancel` reverts the moves in progress; `--list` shows them. Throttles are accepted and
//! ignored: Spate has no replication quotas yet, which the tool says.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use spate::client::{Admin, Error, TopicPartition};

use super::Common;

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("action").required(true).args(["generate", "execute", "verify", "cancel", "list"])))]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// A file of client properties for the admin client.
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<std::path::PathBuf>,
    /// Propose a reassignment of --topics-to-move-json-file over --broker-list.
    #[arg(long)]
    pub generate: bool,
    /// Start the reassignment of --reassignment-json-file.
    #[arg(long)]
    pub execute: bool,
    /// Tell whether the reassignment of --reassignment-json-file has completed.
    #[arg(long)]
    pub verify: bool,
    /// Cancel the reassignment of --reassignment-json-file that is in progress.
    #[arg(long)]
    pub cancel: bool,
    /// List the reassignments in progress.
    #[arg(long)]
    pub list: bool,
    /// The plan: {"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3]}]}.
    #[arg(long, value_name = "FILE")]
    pub reassignment_json_file: Option<std::path::PathBuf>,
    /// The topics to move: {"version":1,"topics":[{"topic":"t"}]}.
    #[arg(long, value_name = "FILE")]
    pub topics_to_move_json_file: Option<std::path::PathBuf>,
    /// The brokers to move them to, e.g. 1,2,3.
    #[arg(long, value_name = "IDS")]
    pub broker_list: Option<String>,
    /// With --generate: ignore the brokers' racks.
    #[arg(long)]
    pub disable_rack_aware: bool,
    /// With --execute: start the moves even if others are in progress.
    #[arg(long)]
    pub additional: bool,
    /// Replication throttle in bytes/s (accepted; Spate has no replication quotas).
    #[arg(long, value_name = "BYTES")]
    pub throttle: Option<i64>,
    #[arg(long, value_name = "BYTES")]
    pub replica_alter_log_dirs_throttle: Option<i64>,
    /// With --verify: keep the throttles (there are none to clear).
    #[arg(long)]
    pub preserve_throttles: bool,
    /// How long to wait for the moves to be accepted, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub timeout: u64,
}

/// A reassignment plan, as Kafka's tool reads and writes it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Plan {
    #[serde(default = "version_one")]
    pub version: i32,
    pub partitions: Vec<PlanPartition>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct PlanPartition {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    #[serde(default)]
    pub log_dirs: Vec<String>,
}

fn version_one() -> i32 {
    1
}

#[derive(Deserialize)]
struct TopicsToMove {
    topics: Vec<TopicToMove>,
}

#[derive(Deserialize)]
struct TopicToMove {
    topic: String,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

fn plan_json(assignment: &BTreeMap<TopicPartition, Vec<i32>>) -> String {
    let partitions = assignment
        .iter()
        .map(|(tp, replicas)| PlanPartition {
            topic: tp.topic.clone(),
            partition: tp.partition,
            replicas: replicas.clone(),
            log_dirs: replicas.iter().map(|_| "any".to_string()).collect(),
        })
        .collect();
    serde_json::to_string(&Plan { version: 1, partitions }).expect("a plan serialises")
}

fn ids(v: &[i32]) -> String {
    v.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// The current replicas of every partition of `topics`.
async fn current(admin: &Admin, topics: &[String]) -> Result<BTreeMap<TopicPartition, Vec<i32>>, Error> {
    let mut out = BTreeMap::new();
    for t in admin.describe_topics(topics).await? {
        for (p, _, replicas, _) in t.partitions {
            out.insert(TopicPartition { topic: t.name.clone(), partition: p }, replicas);
        }
    }
    Ok(out)
}

fn plan_of(args: &Args) -> Result<BTreeMap<TopicPartition, Vec<i32>>, Error> {
    let path = args.reassignment_json_file.as_ref().ok_or_else(|| Error::Config("this action needs --reassignment-json-file".into()))?;
    let plan: Plan = read_json(path)?;
    if plan.version != 1 {
        return Err(Error::Config(format!("Not supported version field value {}", plan.version)));
    }
    if plan.partitions.is_empty() {
        return Err(Error::Config("Partition reassignment list cannot be empty".into()));
    }
    let mut out = BTreeMap::new();
    for p in plan.partitions {
        let mut seen = std::collections::BTreeSet::new();
        if p.replicas.is_empty() || !p.replicas.iter().all(|r| seen.insert(*r)) {
            return Err(Error::Config(format!("partition {}-{}: the replica list {:?} is empty or repeats a broker", p.topic, p.partition, p.replicas)));
        }
        if !p.log_dirs.is_empty() && (p.log_dirs.len() != p.replicas.len() || p.log_dirs.iter().any(|d| d != "any")) {
            return Err(Error::Config(format!("partition {}-{}: log_dirs other than \"any\" are not supported", p.topic, p.partition)));
        }
        let tp = TopicPartition { topic: p.topic, partition: p.partition };
        if out.insert(tp.clone(), p.replicas).is_some() {
            return Err(Error::Config(format!("partition {}-{} appears more than once", tp.topic, tp.partition)));
        }
    }
    Ok(out)
}

pub async fn run(args: Args) -> Result<(), Error> {
    let mut extra = vec![format!("default.api.timeout.ms={}", args.timeout)];
    if let Some(path) = &args.command_config {
        extra.extend(super::leader_election::properties_file(path)?);
    }
    let admin = Admin::new(&args.common.config(&extra)?)?;
    if args.throttle.is_some() || args.replica_alter_log_dirs_throttle.is_some() {
        eprintln!("warning: Spate has no replication quotas yet; the throttle is ignored");
    }
    if args.generate {
        return generate(&admin, &args).await;
    }
    if args.list {
        let ongoing = admin.list_partition_reassignments().await?;
        if ongoing.is_empty() {
            println!("No partition reassignments found.");
        } else {
            println!("Current partition reassignments:");
            for (tp, r) in ongoing {
                println!("{}-{}: replicas: {}. adding: {}. removing: {}.", tp.topic, tp.partition, ids(&r.replicas), ids(&r.adding), ids(&r.removing));
            }
        }
        return Ok(());
    }
    let plan = plan_of(&args)?;
    let topics: Vec<String> = plan.keys().map(|tp| tp.topic.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    if args.execute {
        let ongoing = admin.list_partition_reassignments().await?;
        if !args.additional && !ongoing.is_empty() {
            return Err(Error::Config(
                "Cannot execute because there is an existing partition assignment.  Use --additional to override this and create a new partition assignment in addition to the existing one.".into(),
            ));
        }
        let now = current(&admin, &topics).await?;
        if let Some(missing) = plan.keys().find(|tp| !now.contains_key(tp)) {
            return Err(Error::Config(format!("Topic {} not found", missing)));
        }
        let brokers: Vec<i32> = admin.describe_cluster().await?.brokers.iter().map(|b| b.broker_id).collect();
        if let Some(unknown) = plan.values().flatten().find(|b| !brokers.contains(b)) {
            return Err(Error::Config(format!("Unknown broker id {unknown}")));
        }
        let before: BTreeMap<TopicPartition, Vec<i32>> = plan.keys().map(|tp| (tp.clone(), now[tp].clone())).collect();
        println!("Current partition replica assignment\n\n{}\n", plan_json(&before));
        println!("Save this to use as the --reassignment-json-file option during rollback");
        let moves: Vec<(TopicPartition, Option<Vec<i32>>)> = plan.iter().map(|(tp, r)| (tp.clone(), Some(r.clone()))).collect();
        let results = admin.alter_partition_reassignments(&moves).await?;
        let plural = if moves.len() > 1 { "s" } else { "" };
        return report(results, &format!("Successfully started partition reassignment{plural} for "), "Error reassigning partition(s):");
    }
    if args.cancel {
        let moves: Vec<(TopicPartition, Option<Vec<i32>>)> = plan.keys().map(|tp| (tp.clone(), None)).collect();
        let results = admin.alter_partition_reassignments(&moves).await?;
        return report(results, "Successfully cancelled partition reassignment(s) for: ", "Error cancelling partition reassignment(s):");
    }
    // --verify
    let ongoing = admin.list_partition_reassignments().await?;
    let now = current(&admin, &topics).await?;
    println!("Status of partition reassignment:");
    for (tp, target) in &plan {
        if ongoing.contains_key(tp) {
            println!("Reassignment of partition {tp} is still in progress.");
        } else if now.get(tp) == Some(target) {
            println!("Reassignment of partition {tp} is completed.");
        } else {
            let replicas = now.get(tp).map_or_else(|| "unknown".to_string(), |r| ids(r));
            println!("There is no active reassignment of partition {tp}, but replica set is {replicas} rather than {}.", ids(target));
        }
    }
    // As Kafka's tool, once no reassignment is left in the cluster (there are no throttles
    // to clear, but the lines tell scripts the same thing).
    if ongoing.is_empty() && !args.preserve_throttles {
        println!(
            "Clearing broker-level throttles on brokers {}",
            ids(&admin.describe_cluster().await?.brokers.iter().map(|b| b.broker_id).collect::<Vec<_>>())
        );
        println!("Clearing topic-level throttles on topics {}", topics.join(","));
    }
    // Exit 0 either way, as Kafka's tool: the lines above say what is done.
    Ok(())
}

/// Prints the partitions accepted on one line and the refused ones below; refusals fail.
fn report(results: Vec<(TopicPartition, Option<(spate::protocol::ErrorCode, String)>)>, accepted: &str, refused: &str) -> Result<(), Error> {
    let ok: Vec<String> = results.iter().filter(|(_, e)| e.is_none()).map(|(tp, _)| tp.to_string()).collect();
    let failed: Vec<String> = results.iter().filter_map(|(tp, e)| e.as_ref().map(|(c, m)| format!("{tp}: {c}: {m}"))).collect();
    if !ok.is_empty() {
        println!("{accepted}{}", ok.join(","));
    }
    if failed.is_empty() {
        return Ok(());
    }
    println!("{refused}");
    for line in &failed {
        println!("{line}");
    }
    Err(Error::Config(format!("{} partition(s) could not be changed", failed.len())))
}

async fn generate(admin: &Admin, args: &Args) -> Result<(), Error> {
    let path = args.topics_to_move_json_file.as_ref().ok_or_else(|| Error::Config("--generate needs --topics-to-move-json-file".into()))?;
    let brokers: Vec<i32> = args
        .broker_list
        .as_deref()
        .ok_or_else(|| Error::Config("--generate needs --broker-list".into()))?
        .split(',')
        .map(|b| b.trim().parse().map_err(|_| Error::Config(format!("--broker-list: {b:?} is not a broker id"))))
        .collect::<Result<_, _>>()?;
    let wanted: TopicsToMove = read_json(path)?;
    let topics: Vec<String> = wanted.topics.into_iter().map(|t| t.topic).collect();
    let now = current(admin, &topics).await?;
    let cluster = admin.describe_cluster().await?;
    let racks: BTreeMap<i32, Option<String>> = cluster.brokers.iter().map(|b| (b.broker_id, b.rack.clone())).collect();
    if let Some(unknown) = brokers.iter().find(|b| !racks.contains_key(b)) {
        return Err(Error::Config(format!("broker {unknown} of --broker-list is not in the cluster")));
    }
    let mut chosen: Vec<(i32, Option<String>)> = brokers.iter().map(|b| (*b, if args.disable_rack_aware { None } else { racks[b].clone() })).collect();
    chosen.sort();
    if chosen.iter().any(|(_, r)| r.is_some()) && chosen.iter().any(|(_, r)| r.is_none()) {
        return Err(Error::Config("not all brokers have a rack; use --disable-rack-aware".into()));
    }
    let alternated = spate::cluster::controller::rack_alternated_of(chosen);
    let mut proposed = BTreeMap::new();
    for (i, topic) in topics.iter().enumerate() {
        let partitions: Vec<(&TopicPartition, &Vec<i32>)> = now.iter().filter(|(tp, _)| tp.topic == *topic).collect();
        let rf = partitions.first().map_or(0, |(_, r)| r.len());
        if rf > alternated.len() {
            return Err(Error::Config(format!("topic {topic} has {rf} replicas per partition, more than the {} brokers listed", alternated.len())));
        }
        let placed = spate::cluster::controller::place(&alternated, 0, partitions.len() as i32, rf, i);
        for ((tp, _), replicas) in partitions.into_iter().zip(placed) {
            proposed.insert(tp.clone(), replicas);
        }
    }
    println!("Current partition replica assignment\n{}\n", plan_json(&now));
    println!("Proposed partition reassignment configuration\n{}", plan_json(&proposed));
    Ok(())
}
