//! `spate leader-election`: kafka-leader-election.sh. Elects the preferred replica (or, with
//! `--election-type unclean`, any live replica of a leaderless partition) for one partition,
//! the partitions of a JSON file, or all of them, through ElectLeaders.

use spate::client::{Admin, Error, TopicPartition};
use spate::protocol::ErrorCode;

use super::Common;

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["topic", "all_topic_partitions", "path_to_json_file"])))]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// A file of client properties for the admin client (Kafka's --admin.config).
    #[arg(long = "admin.config", value_name = "FILE")]
    pub admin_config: Option<std::path::PathBuf>,
    /// PREFERRED or UNCLEAN.
    #[arg(long, value_name = "TYPE", ignore_case = true)]
    pub election_type: ElectionType,
    /// The topic of the partition to elect a leader for (with --partition).
    #[arg(long, value_name = "TOPIC", requires = "partition")]
    pub topic: Option<String>,
    #[arg(long, value_name = "N", requires = "topic")]
    pub partition: Option<i32>,
    /// Every partition of every topic.
    #[arg(long)]
    pub all_topic_partitions: bool,
    /// The partitions, as {"partitions": [{"topic": "t", "partition": 0}, ...]}.
    #[arg(long, value_name = "FILE")]
    pub path_to_json_file: Option<std::path::PathBuf>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    Preferred,
    Unclean,
}

#[derive(serde::Deserialize)]
struct PartitionsFile {
    partitions: Vec<PartitionEntry>,
}

#[derive(serde::Deserialize)]
struct PartitionEntry {
    topic: String,
    partition: i32,
}

/// The properties of a Kafka client properties file (`key=value` lines, `#` comments).
pub fn properties_file(path: &std::path::Path) -> Result<Vec<String>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!')).map(str::to_string).collect())
}

fn join(partitions: &[TopicPartition]) -> String {
    partitions.iter().map(|tp| format!("{}-{}", tp.topic, tp.partition)).collect::<Vec<_>>().join(", ")
}

pub async fn run(args: Args) -> Result<(), Error> {
    let extra = match &args.admin_config {
        Some(path) => properties_file(path)?,
        None => Vec::new(),
    };
    let admin = Admin::new(&args.common.config(&extra)?)?;
    let partitions: Option<Vec<TopicPartition>> = if args.all_topic_partitions {
        None
    } else if let Some(path) = &args.path_to_json_file {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        let file: PartitionsFile = serde_json::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        let mut seen = std::collections::BTreeSet::new();
        let partitions: Vec<TopicPartition> = file.partitions.into_iter().map(|p| TopicPartition { topic: p.topic, partition: p.partition }).collect();
        if let Some(dup) = partitions.iter().find(|tp| !seen.insert((tp.topic.clone(), tp.partition))) {
            return Err(Error::Config(format!("partition {}-{} appears more than once in {}", dup.topic, dup.partition, path.display())));
        }
        Some(partitions)
    } else {
        Some(vec![TopicPartition { topic: args.topic.clone().expect("grouped"), partition: args.partition.expect("required with --topic") }])
    };
    let preferred = args.election_type == ElectionType::Preferred;
    let kind = if preferred { "PREFERRED" } else { "UNCLEAN" };
    let results = admin.elect_leaders(preferred, partitions.as_deref()).await?;
    let mut elected = Vec::new();
    let mut not_needed = Vec::new();
    let mut failed = Vec::new();
    for (tp, error) in results {
        match error {
            None => elected.push(tp),
            Some((code, _)) if code == ErrorCode::ELECTION_NOT_NEEDED => not_needed.push(tp),
            Some((code, message)) => failed.push((tp, code, message)),
        }
    }
    // Kafka's LeaderElectionCommand's lines.
    if !elected.is_empty() {
        println!("Successfully completed leader election ({kind}) for partitions {}", join(&elected));
    }
    if !not_needed.is_empty() {
        println!("Valid replica already elected for partitions {}", join(&not_needed));
    }
    if failed.is_empty() {
        return Ok(());
    }
    for (tp, code, message) in &failed {
        println!("Error completing leader election ({kind}) for partition: {tp}: {code}: {message}");
    }
    Err(Error::Config(format!("{} replica(s) could not be elected", failed.len())))
}
