//! The command-line tools, one per Kafka script: `spate topics` (kafka-topics.sh),
//! `spate console-producer`, `spate console-consumer` and `spate consumer-groups`, with
//! Kafka's flags. Each runs the client on a compio runtime of its own and exits non-zero with
//! a one-line message when something fails.

pub mod bench;
pub mod console;
pub mod groups;
pub mod leader_election;
pub mod quorum;
pub mod reassign;
pub mod storage;
pub mod topics;
pub mod transactions;

use std::process::ExitCode;

use spate::client::{ClientConfig, Error};

/// The flags every tool shares.
#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// The broker to connect to (host:port, comma-separated for several).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// A client property for the tool's admin, producer or consumer client (repeatable).
    #[arg(long = "command-property", value_name = "KEY=VALUE")]
    pub command_properties: Vec<String>,
}

impl Common {
    /// The client configuration: bootstrap servers, short timeouts suited to a tool that a
    /// person is waiting on, then the user's properties.
    pub fn config(&self, extra: &[String]) -> Result<ClientConfig, Error> {
        let mut c = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap_server)
            .set("socket.connection.setup.timeout.ms", 5_000)
            .set("request.timeout.ms", 30_000)
            .set("default.api.timeout.ms", 30_000);
        for pair in self.command_properties.iter().chain(extra) {
            c.insert_pair(pair)?;
        }
        Ok(c)
    }
}

/// Runs a tool's future on a fresh runtime and turns its outcome into an exit code.
pub fn run<F: std::future::Future<Output = Result<(), Error>>>(f: impl FnOnce() -> F) -> ExitCode {
    let runtime = match compio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the I/O runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(f()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Splits `key=value` properties (Kafka's `--property`).
pub fn properties(pairs: &[String]) -> Result<Vec<(String, String)>, Error> {
    pairs
        .iter()
        .map(|p| p.split_once('=').map(|(k, v)| (k.trim().to_string(), v.to_string())).ok_or_else(|| Error::Config(format!("expected key=value, got {p:?}"))))
        .collect()
}
