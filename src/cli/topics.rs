//! `spate topics`: kafka-topics.sh.

use spate::client::{Admin, Error};

use super::Common;

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("action").required(true).args(["create", "list", "describe", "delete", "alter"])))]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Create a topic.
    #[arg(long)]
    pub create: bool,
    /// List the topics.
    #[arg(long)]
    pub list: bool,
    /// Describe the topic (or every topic) with its partitions.
    #[arg(long)]
    pub describe: bool,
    /// Delete the topic.
    #[arg(long)]
    pub delete: bool,
    /// Add partitions to the topic (with --partitions).
    #[arg(long)]
    pub alter: bool,
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// The partition count (for --create, or the new total for --alter).
    #[arg(long, value_name = "N")]
    pub partitions: Option<i32>,
    #[arg(long, value_name = "R")]
    pub replication_factor: Option<i16>,
    /// A topic configuration for --create (repeatable), e.g. --config retention.ms=60000.
    #[arg(long, value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// With --create: succeed when the topic exists already.
    #[arg(long)]
    pub if_not_exists: bool,
    /// With --delete, --alter, --describe: succeed when the topic does not exist.
    #[arg(long)]
    pub if_exists: bool,
    /// Leave internal topics (__consumer_offsets) out of --list and --describe.
    #[arg(long)]
    pub exclude_internal: bool,
}

pub async fn run(args: Args) -> Result<(), Error> {
    let admin = Admin::new(&args.common.config(&[])?)?;
    let topic = || args.topic.clone().ok_or_else(|| Error::Config("--topic is required".into()));
    let missing_ok = |e: &Error| args.if_exists && e.code() == Some(spate::protocol::error::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
    if args.create {
        let name = topic()?;
        let configs = super::properties(&args.config)?;
        match admin.create_topic(&name, args.partitions.unwrap_or(-1), args.replication_factor.unwrap_or(-1), &configs).await {
            Ok(()) => println!("Created topic {name}."),
            Err(e) if args.if_not_exists && e.code() == Some(spate::protocol::error::ErrorCode::TOPIC_ALREADY_EXISTS) => {}
            Err(e) => return Err(e),
        }
    } else if args.list {
        for name in admin.list_topics(!args.exclude_internal).await? {
            println!("{name}");
        }
    } else if args.describe {
        let names: Vec<String> = args.topic.iter().cloned().collect();
        let topics = match admin.describe_topics(&names).await {
            Ok(t) => t,
            Err(e) if missing_ok(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        for t in topics.iter().filter(|t| !(args.exclude_internal && t.internal)) {
            let configs = admin.describe_topic_configs(&t.name).await.unwrap_or_default();
            // Kafka prints the topic's own (dynamic) settings, not the defaults.
            let set: Vec<String> = configs.iter().filter(|c| c.source == 1).map(|c| format!("{}={}", c.name, c.value.as_deref().unwrap_or(""))).collect();
            let rf = t.partitions.first().map_or(0, |p| p.2.len());
            println!("Topic: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}", t.name, t.partitions.len(), rf, set.join(","));
            for (p, leader, replicas, isr) in &t.partitions {
                let join = |v: &[i32]| v.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
                println!("\tTopic: {}\tPartition: {p}\tLeader: {leader}\tReplicas: {}\tIsr: {}", t.name, join(replicas), join(isr));
            }
        }
    } else if args.delete {
        let name = topic()?;
        match admin.delete_topics(std::slice::from_ref(&name)).await {
            Ok(()) => println!("Deleted topic {name}."),
            Err(e) if missing_ok(&e) => {}
            Err(e) => return Err(e),
        }
    } else if args.alter {
        let name = topic()?;
        let total = args.partitions.ok_or_else(|| Error::Config("--alter needs --partitions".into()))?;
        match admin.create_partitions(&name, total).await {
            Ok(()) => println!("Topic {name} now has {total} partitions."),
            Err(e) if missing_ok(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
