//! `spate consumer-groups`: kafka-consumer-groups.sh.

use std::collections::BTreeMap;

use spate::client::admin::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use spate::client::{Admin, Error, TopicPartition};

use super::Common;

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("action").required(true).args(["list", "describe", "delete", "reset_offsets"])))]
#[command(group(clap::ArgGroup::new("target").args(["to_earliest", "to_latest", "to_offset", "shift_by"])))]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// List the groups.
    #[arg(long)]
    pub list: bool,
    /// Show each partition's committed offset, log end offset and lag (or, with --members,
    /// the members).
    #[arg(long)]
    pub describe: bool,
    /// Delete the group (it must have no members).
    #[arg(long)]
    pub delete: bool,
    /// Change the group's committed offsets (the group must have no members).
    #[arg(long)]
    pub reset_offsets: bool,
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// The topic whose offsets --reset-offsets changes (or topic:p0,p1).
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// With --reset-offsets: every topic the group has committed.
    #[arg(long)]
    pub all_topics: bool,
    #[arg(long)]
    pub to_earliest: bool,
    #[arg(long)]
    pub to_latest: bool,
    #[arg(long, value_name = "OFFSET")]
    pub to_offset: Option<i64>,
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
    /// Apply the reset (without it, or with --dry-run, the new offsets are only printed).
    #[arg(long)]
    pub execute: bool,
    #[arg(long)]
    pub dry_run: bool,
    /// With --describe: list the members instead of the offsets.
    #[arg(long)]
    pub members: bool,
}

pub async fn run(args: Args) -> Result<(), Error> {
    let admin = Admin::new(&args.common.config(&[])?)?;
    let group = || args.group.clone().ok_or_else(|| Error::Config("--group is required".into()));
    if args.list {
        for (name, _) in admin.list_groups().await? {
            println!("{name}");
        }
    } else if args.describe {
        let group = group()?;
        let (description, rows) = admin.describe_group_offsets(&group).await?;
        if description.group_state == "Dead" {
            return Err(Error::Invalid(format!("Consumer group '{group}' does not exist.")));
        }
        if description.members.is_empty() {
            println!("\nConsumer group '{group}' has no active members.");
        }
        println!();
        if args.members {
            println!("{:<30} {:<50} {:<20} {:<20} {}", "GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS");
            for m in &description.members {
                let count = spate::client::assignor::decode_assignment(&m.member_assignment).map_or(0, |a| a.partitions.len());
                println!("{:<30} {:<50} {:<20} {:<20} {}", group, m.member_id, m.client_host, m.client_id, count);
            }
            return Ok(());
        }
        println!(
            "{:<30} {:<30} {:<10} {:<15} {:<15} {:<15} {:<50} {:<20} {}",
            "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"
        );
        for r in rows {
            let current = r.committed.map_or("-".to_string(), |o| o.to_string());
            let lag = r.committed.map_or("-".to_string(), |o| (r.log_end - o).max(0).to_string());
            let (member, client, host) = r.owner.unwrap_or_else(|| ("-".into(), "-".into(), "-".into()));
            println!(
                "{:<30} {:<30} {:<10} {:<15} {:<15} {:<15} {:<50} {:<20} {}",
                group, r.partition.topic, r.partition.partition, current, r.log_end, lag, member, host, client
            );
        }
    } else if args.delete {
        let group = group()?;
        admin.delete_groups(std::slice::from_ref(&group)).await?;
        println!("Deletion of requested consumer groups ('{group}') was successful.");
    } else if args.reset_offsets {
        let group = group()?;
        let description = admin.describe_group(&group).await?;
        if !description.members.is_empty() && args.execute {
            return Err(Error::Invalid(format!(
                "Assignments can only be reset if the group '{group}' is inactive, but the current state is {}.",
                description.group_state
            )));
        }
        let committed = admin.group_offsets(&group).await?;
        let partitions: Vec<TopicPartition> = match (&args.topic, args.all_topics) {
            (Some(spec), _) => match spec.split_once(':') {
                Some((topic, list)) => list
                    .split(',')
                    .map(|p| p.trim().parse().map(|partition| TopicPartition { topic: topic.to_string(), partition }))
                    .collect::<Result<_, _>>()
                    .map_err(|_| Error::Config(format!("--topic {spec:?}: expected topic or topic:p0,p1")))?,
                None => admin.partitions_of(spec).await?,
            },
            (None, true) => committed.keys().cloned().collect(),
            (None, false) => return Err(Error::Config("--reset-offsets needs --topic or --all-topics".into())),
        };
        let earliest = admin.list_offsets(&partitions, EARLIEST_TIMESTAMP).await?;
        let latest = admin.list_offsets(&partitions, LATEST_TIMESTAMP).await?;
        let mut new: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for tp in &partitions {
            let (lo, hi) = (earliest[tp], latest[tp]);
            let target = if args.to_earliest {
                lo
            } else if args.to_latest {
                hi
            } else if let Some(o) = args.to_offset {
                o
            } else if let Some(n) = args.shift_by {
                committed.get(tp).copied().unwrap_or(lo) + n
            } else {
                return Err(Error::Config("--reset-offsets needs --to-earliest, --to-latest, --to-offset or --shift-by".into()));
            };
            // Kafka clamps a target outside the log to its nearest end.
            new.insert(tp.clone(), target.clamp(lo, hi));
        }
        if args.execute && !args.dry_run {
            admin.alter_group_offsets(&group, &new).await?;
        }
        println!("\n{:<30} {:<30} {:<10} {}", "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET");
        for (tp, offset) in &new {
            println!("{:<30} {:<30} {:<10} {}", group, tp.topic, tp.partition, offset);
        }
    }
    Ok(())
}
