//! The `spate` command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Broker { config, overrides } => {
            let mut entries = Vec::new();
            if let Some(path) = config {
                let text = match std::fs::read_to_string(&path) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("error: cannot read {}: {e}", path.display());
                        return ExitCode::from(2);
                    }
                };
                match spate::config::parse_properties(&text) {
                    Ok(p) => entries.extend(p),
                    Err(e) => {
                        eprintln!("error: {}: {e}", path.display());
                        return ExitCode::from(2);
                    }
                }
            }
            for o in overrides {
                match o.split_once('=') {
                    Some((k, v)) => entries.push((k.trim().to_owned(), v.trim().to_owned())),
                    None => {
                        eprintln!("error: --override expects KEY=VALUE, got {o:?}");
                        return ExitCode::from(2);
                    }
                }
            }
            let config = match spate::config::BrokerConfig::from_properties(&entries) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: configuration: {e}");
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
