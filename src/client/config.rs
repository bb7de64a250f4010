//! Client configuration by Kafka's property names (`bootstrap.servers`, `linger.ms`, ...), so
//! that settings carry over from the Java client and the command-line tools unchanged.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use super::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct ClientConfig {
    props: BTreeMap<String, String>,
}

impl ClientConfig {
    pub fn new() -> ClientConfig {
        ClientConfig::default()
    }

    /// Sets one property (builder style).
    pub fn set(mut self, key: &str, value: impl ToString) -> ClientConfig {
        self.props.insert(key.to_string(), value.to_string());
        self
    }

    pub fn insert(&mut self, key: &str, value: impl ToString) {
        self.props.insert(key.to_string(), value.to_string());
    }

    /// Parses a `key=value` pair, as the command-line tools take them.
    pub fn insert_pair(&mut self, pair: &str) -> Result<()> {
        let (k, v) = pair.split_once('=').ok_or_else(|| Error::Config(format!("expected key=value, got {pair:?}")))?;
        self.insert(k.trim(), v.trim());
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.props.get(key).map(String::as_str)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.props.keys().map(String::as_str)
    }

    pub fn string(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or(default).to_string()
    }

    /// A typed value, or `default` when unset; a value that does not parse is an error
    /// naming the key.
    pub fn parse<T: FromStr>(&self, key: &str, default: T) -> Result<T> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| Error::Config(format!("{key}={v:?} is not a valid value"))),
        }
    }

    pub fn millis(&self, key: &str, default: u64) -> Result<Duration> {
        Ok(Duration::from_millis(self.parse(key, default)?))
    }

    pub fn bool(&self, key: &str, default: bool) -> Result<bool> {
        self.parse(key, default)
    }

    /// `bootstrap.servers`, split on commas (default `127.0.0.1:9092`).
    pub fn bootstrap_servers(&self) -> Vec<String> {
        self.string("bootstrap.servers", "127.0.0.1:9092").split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
    }

    pub fn client_id(&self, default: &str) -> String {
        self.string("client.id", default)
    }

    /// Warns about properties the component does not know, as Kafka's clients log "supplied
    /// but isn't a known config".
    pub fn warn_unknown(&self, known: &[&str]) {
        for key in self.keys() {
            if !known.contains(&key) && !COMMON.contains(&key) {
                tracing::warn!(key, "configuration property supplied but not known to this client");
            }
        }
    }
}

/// Properties every component reads.
pub const COMMON: &[&str] = &[
    "bootstrap.servers",
    "client.id",
    "request.timeout.ms",
    "default.api.timeout.ms",
    "metadata.max.age.ms",
    "socket.connection.setup.timeout.ms",
    "retry.backoff.ms",
];
