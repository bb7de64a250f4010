//! `spate storage` (kafka-storage.sh): `random-uuid` prints a new cluster id, `format` writes
//! `meta.properties` into a node's log dir (and its metadata log dir) with that cluster id, as
//! every node of a cluster needs before its first start. `info` prints what a log dir holds.

use std::path::Path;
use std::process::ExitCode;

use spate::config::BrokerConfig;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Prints a random UUID in Kafka's form, for --cluster-id.
    RandomUuid,
    /// Writes meta.properties into the node's log dirs.
    Format {
        /// The cluster id every node of the cluster is formatted with.
        #[arg(long, short = 't')]
        cluster_id: String,
        /// The node's server.properties.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: std::path::PathBuf,
        /// A property that wins over the file.
        #[arg(long = "override", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Leaves a log dir that is formatted already as it is, instead of failing.
        #[arg(long, short = 'g')]
        ignore_formatted: bool,
        /// Accepted for kafka-storage.sh's flags: a single-voter or static quorum needs nothing more.
        #[arg(long)]
        standalone: bool,
    },
    /// Prints each log dir's meta.properties.
    Info {
        #[arg(long, short = 'c', value_name = "FILE")]
        config: std::path::PathBuf,
    },
}

pub fn run(args: Args) -> ExitCode {
    let result = match args.command {
        Command::RandomUuid => {
            println!("{}", spate::storage::meta::random_kafka_uuid());
            Ok(())
        }
        Command::Format { cluster_id, config, overrides, ignore_formatted, standalone: _ } => format(&cluster_id, &config, &overrides, ignore_formatted),
        Command::Info { config } => info(&config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn log_dirs(config: &BrokerConfig) -> Vec<std::path::PathBuf> {
    let mut dirs = vec![config.log_dirs.clone()];
    if let Some(cluster) = &config.cluster {
        if !dirs.contains(&cluster.metadata_log_dir) {
            dirs.push(cluster.metadata_log_dir.clone());
        }
    }
    dirs
}

fn format(cluster_id: &str, config: &Path, overrides: &[String], ignore_formatted: bool) -> Result<(), String> {
    let config = broker_config(Some(config), overrides)?;
    for dir in log_dirs(&config) {
        match spate::storage::meta::format_log_dir(&dir, config.broker_id, cluster_id, ignore_formatted) {
            Ok(true) => println!("Formatting {} with metadata.version 4.4-IV0.", dir.display()),
            Ok(false) => println!("{} is already formatted; left as it is.", dir.display()),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

fn info(config: &Path) -> Result<(), String> {
    let config = broker_config(Some(config), &[])?;
    for dir in log_dirs(&config) {
        match spate::storage::meta::read_meta_properties(&dir).map_err(|e| e.to_string())? {
            Some(props) => {
                println!("Found log directory:\n  {}\n", dir.display());
                let fields: Vec<String> = props.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!("Found metadata: {{{}}}\n", fields.join(", "));
            }
            None => println!("Found problem:\n  {} is not formatted.\n", dir.display()),
        }
    }
    Ok(())
}

/// The broker's configuration from a properties file (if any) and `--override key=value`s.
pub fn broker_config(file: Option<&Path>, overrides: &[String]) -> Result<BrokerConfig, String> {
    let mut entries = Vec::new();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        entries.extend(spate::config::parse_properties(&text).map_err(|e| format!("{}: {e}", path.display()))?);
    }
    for o in overrides {
        let (k, v) = o.split_once('=').ok_or_else(|| format!("--override expects KEY=VALUE, got {o:?}"))?;
        entries.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    BrokerConfig::from_properties(&entries).map_err(|e| format!("configuration: {e}"))
}
