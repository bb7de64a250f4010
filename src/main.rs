//! The `spate` command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "spate", version, about = "A Kafka-compatible message broker: thread-per-core, io_uring, zero-copy")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a broker (like kafka-server-start.sh): Kafka's property names, from a file and/or
    /// overrides. With no options it listens on 127.0.0.1:9092 and keeps data in ./spate-data.
    Broker {
        /// A server.properties file.
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        /// A property that wins over the file, e.g. --override log.dirs=/tmp/spate.
        #[arg(long = "override", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Creates, lists, describes, alters and deletes topics (kafka-topics.sh).
    Topics(cli::topics::Args),
    /// Sends each line of stdin as a record (kafka-console-producer.sh).
    ConsoleProducer(cli::console::ProducerArgs),
    /// Prints records to stdout (kafka-console-consumer.sh).
    ConsoleConsumer(cli::console::ConsumerArgs),
    /// Lists, describes, deletes consumer groups and resets their offsets
    /// (kafka-consumer-groups.sh).
    ConsumerGroups(cli::groups::Args),
    /// Describes the metadata quorum (kafka-metadata-quorum.sh).
    MetadataQuorum(cli::quorum::Args),
    /// Elects preferred (or, unclean, any live) replicas as leaders (kafka-leader-election.sh).
    LeaderElection(cli::leader_election::Args),
    /// Moves partition replicas between brokers (kafka-reassign-partitions.sh).
    ReassignPartitions(cli::reassign::Args),
    /// Lists and describes transactions and producers, finds hanging transactions and aborts
    /// them (kafka-transactions.sh).
    Transactions(cli::transactions::Args),
    /// Formats log dirs for a cluster and makes cluster ids (kafka-storage.sh).
    Storage(cli::storage::Args),
    /// Load generators and this machine's ceilings (kafka-producer-perf-test.sh,
    /// kafka-consumer-perf-test.sh, end-to-end latency).
    Bench {
        #[command(subcommand)]
        command: cli::bench::Command,
    },
}

fn main() -> ExitCode {
    // The tools print their results on stdout; only the broker logs at info by default.
    // openraft reports every vote at info and every missed heartbeat to a stopped peer at warn
    // (20 a second); Spate logs what matters of those itself (fencing, elections seen in metadata).
    let default_log_level = if std::env::args().nth(1).as_deref() == Some("broker") { "info,openraft=error" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log_level)))
        .with_writer(std::io::stderr)
        // Colours only for a terminal: a log redirected to a file stays plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Topics(args) => cli::run(|| cli::topics::run(args)),
        Command::ConsoleProducer(args) => cli::run(|| cli::console::produce(args)),
        Command::ConsoleConsumer(args) => cli::run(|| cli::console::consume(args)),
        Command::ConsumerGroups(args) => cli::run(|| cli::groups::run(args)),
        Command::Bench { command } => cli::bench::run(command),
        Command::Storage(args) => cli::storage::run(args),
        Command::MetadataQuorum(args) => cli::run(|| cli::quorum::run(args)),
        Command::LeaderElection(args) => cli::run(|| cli::leader_election::run(args)),
        Command::ReassignPartitions(args) => cli::run(|| cli::reassign::run(args)),
        Command::Transactions(args) => cli::run(|| cli::transactions::run(args)),
        Command::Broker { config, overrides } => {
            if let Err(e) = spate::io::crash::check_env() {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            let config = match cli::storage::broker_config(config.as_deref(), &overrides) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            match spate::server::run_until_signal(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
