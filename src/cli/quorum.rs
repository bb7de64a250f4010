//! `spate metadata-quorum`: kafka-metadata-quorum.sh's `describe --status` and
//! `describe --replication`, from DescribeQuorum (which any broker forwards to the active
//! controller) and DescribeCluster.

use spate::client::{Admin, Error};

use super::Common;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Describes the metadata quorum.
    Describe {
        /// The leader, its epoch, the high watermark and the voters.
        #[arg(long, group = "what")]
        status: bool,
        /// Each voter's log end offset and lag behind the leader.
        #[arg(long, group = "what")]
        replication: bool,
    },
}

pub async fn run(args: Args) -> Result<(), Error> {
    let admin = Admin::new(&args.common.config(&[])?)?;
    let Command::Describe { status, replication } = args.command;
    if !status && !replication {
        return Err(Error::Config("describe needs --status or --replication".into()));
    }
    let quorum = admin.describe_metadata_quorum().await?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    if status {
        let cluster = admin.describe_cluster().await?;
        let leader_end = quorum.current_voters.iter().find(|v| v.replica_id == quorum.leader_id).map_or(quorum.high_watermark, |v| v.log_end_offset);
        let max_lag = quorum.current_voters.iter().map(|v| (leader_end - v.log_end_offset).max(0)).max().unwrap_or(0);
        let max_lag_ms =
            quorum.current_voters.iter().filter(|v| v.last_caught_up_timestamp >= 0).map(|v| (now - v.last_caught_up_timestamp).max(0)).max().unwrap_or(0);
        let ids = |vs: &[spate::protocol::messages::describe_quorum::ReplicaState]| vs.iter().map(|v| v.replica_id.to_string()).collect::<Vec<_>>().join(",");
        println!("ClusterId:              {}", cluster.cluster_id);
        println!("LeaderId:               {}", quorum.leader_id);
        println!("LeaderEpoch:            {}", quorum.leader_epoch);
        println!("HighWatermark:          {}", quorum.high_watermark);
        println!("MaxFollowerLag:         {max_lag}");
        println!("MaxFollowerLagTimeMs:   {max_lag_ms}");
        println!("CurrentVoters:          [{}]", ids(&quorum.current_voters));
        println!("CurrentObservers:       [{}]", ids(&quorum.observers));
    }
    if replication {
        println!("{:<10} {:<14} {:<8} {:<22} {:<24} {}", "NodeId", "LogEndOffset", "Lag", "LastFetchTimestamp", "LastCaughtUpTimestamp", "Status");
        let leader_end = quorum.current_voters.iter().find(|v| v.replica_id == quorum.leader_id).map_or(quorum.high_watermark, |v| v.log_end_offset);
        for (v, kind) in quorum.current_voters.iter().map(|v| (v, "Follower")).chain(quorum.observers.iter().map(|v| (v, "Observer"))) {
            let kind = if v.replica_id == quorum.leader_id { "Leader" } else { kind };
            println!(
                "{:<10} {:<14} {:<8} {:<22} {:<24} {kind}",
                v.replica_id,
                v.log_end_offset,
                (leader_end - v.log_end_offset).max(0),
                v.last_fetch_timestamp,
                v.last_caught_up_timestamp
            );
        }
    }
    Ok(())
}
