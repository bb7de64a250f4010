//! `spate transactions`: kafka-transactions.sh, with its commands, flags and tables. `list`,
//! `describe` and `describe-producers` show what the coordinators and the partition replicas
//! hold; `find-hanging` looks for transactions open in a partition that no coordinator will
//! end (its producer's transactional id is unknown, or its transaction no longer includes the
//! partition); `abort` ends one with an abort marker written by the partition's leader.
//!
//! The tables are printed as Kafka's `ToolsUtils.prettyPrintTable` prints them: each column
//! padded to its widest value and followed by a tab, so that scripts written against Kafka's
//! output read this one too.

use std::collections::{BTreeMap, BTreeSet};

use spate::client::admin::{AbortTransactionSpec, ProducerState, TransactionDescription, TransactionFilter};
use spate::client::{Admin, Error, TopicPartition};
use spate::protocol::messages::list_transactions::transactional_id_matcher;
use spate::protocol::ErrorCode;

use super::Common;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// A file of client properties for the admin client.
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// List transactions.
    List {
        /// Only transactions running longer than this many milliseconds (all when negative).
        #[arg(long, value_name = "DURATION_FILTER", allow_hyphen_values = true)]
        duration_filter: Option<i64>,
        /// Only transactional ids this regular expression matches (whole).
        #[arg(long, value_name = "TRANSACTIONAL_ID_PATTERN")]
        transactional_id_pattern: Option<String>,
    },
    /// Describe the state of an active transactional-id.
    Describe {
        #[arg(long, value_name = "TRANSACTIONAL_ID")]
        transactional_id: String,
    },
    /// Describe the states of active producers for a topic partition.
    DescribeProducers {
        /// Describe the producer state on this broker's replica (default: the leader's).
        #[arg(long, value_name = "BROKER_ID")]
        broker_id: Option<i32>,
        #[arg(long, value_name = "TOPIC")]
        topic: String,
        #[arg(long, value_name = "PARTITION")]
        partition: i32,
    },
    /// Abort a hanging transaction (requires administrative privileges).
    Abort {
        #[arg(long, value_name = "TOPIC")]
        topic: String,
        #[arg(long, value_name = "PARTITION")]
        partition: i32,
        /// The start offset of the transaction to abort (brokers on 3.0 and above).
        #[arg(long, value_name = "START_OFFSET")]
        start_offset: Option<i64>,
        /// For older brokers: the producer id, with --producer-epoch and --coordinator-epoch.
        #[arg(long, value_name = "PRODUCER_ID")]
        producer_id: Option<i64>,
        #[arg(long, value_name = "PRODUCER_EPOCH")]
        producer_epoch: Option<i16>,
        #[arg(long, value_name = "COORDINATOR_EPOCH", allow_hyphen_values = true)]
        coordinator_epoch: Option<i32>,
    },
    /// Find hanging transactions.
    FindHanging {
        /// The broker to search for hanging transactions.
        #[arg(long, value_name = "BROKER_ID")]
        broker_id: Option<i32>,
        /// The longest transaction timeout in minutes, to limit the scope of the search.
        #[arg(long, value_name = "MAX_TRANSACTION_TIMEOUT", default_value_t = 15)]
        max_transaction_timeout: i32,
        /// The topic to limit the search to (required with --partition).
        #[arg(long, value_name = "TOPIC")]
        topic: Option<String>,
        #[arg(long, value_name = "PARTITION")]
        partition: Option<i32>,
    },
}

pub async fn run(args: Args) -> Result<(), Error> {
    let extra = match &args.command_config {
        Some(path) => super::leader_election::properties_file(path)?,
        None => Vec::new(),
    };
    let admin = Admin::new(&args.common.config(&extra)?)?;
    match args.command {
        Command::List { duration_filter, transactional_id_pattern } => list(&admin, duration_filter, transactional_id_pattern.as_deref()).await,
        Command::Describe { transactional_id } => describe(&admin, &transactional_id).await,
        Command::DescribeProducers { broker_id, topic, partition } => describe_producers(&admin, broker_id, TopicPartition::new(topic, partition)).await,
        Command::Abort { topic, partition, start_offset, producer_id, producer_epoch, coordinator_epoch } => {
            let tp = TopicPartition::new(topic, partition);
            let spec = match (start_offset, producer_id) {
                (Some(offset), _) => abort_spec_at(&admin, &tp, offset).await?,
                (None, Some(producer_id)) => {
                    let producer_epoch = producer_epoch.ok_or_else(|| Error::Config("Missing required argument --producer-epoch".into()))?;
                    let coordinator_epoch = coordinator_epoch.ok_or_else(|| Error::Config("Missing required argument --coordinator-epoch".into()))?;
                    // A transaction begun by a new producer id that hung before its first
                    // commit or abort shows coordinator epoch -1; 0 is at most any leader
                    // epoch, as Kafka's tool reasons.
                    AbortTransactionSpec { partition: tp, producer_id, producer_epoch, coordinator_epoch: coordinator_epoch.max(0) }
                }
                (None, None) => {
                    return Err(Error::Config(
                        "The transaction to abort must be identified either with --start-offset (for brokers on 3.0 or above) or with \
                         --producer-id, --producer-epoch, and --coordinator-epoch (for older brokers)"
                            .into(),
                    ))
                }
            };
            admin.abort_transaction(&spec).await.map_err(|e| {
                let AbortTransactionSpec { partition, producer_id, producer_epoch, coordinator_epoch } = &spec;
                Error::Invalid(format!(
                    "Failed to abort transaction of producer {producer_id} (epoch {producer_epoch}, coordinator epoch {coordinator_epoch}) in {partition}: {e}"
                ))
            })
        }
        Command::FindHanging { broker_id, max_transaction_timeout, topic, partition } => {
            find_hanging(&admin, broker_id, max_transaction_timeout, topic, partition).await
        }
    }
}

async fn list(admin: &Admin, duration_filter: Option<i64>, pattern: Option<&str>) -> Result<(), Error> {
    // The client speaks ListTransactions v1 (Kafka 3.8 and later serve it), which has no
    // pattern: it is applied here, as the coordinator would apply it (RE2 syntax, the whole id).
    let pattern = transactional_id_matcher(pattern).map_err(|e| {
        Error::Config(format!("{}: the transactional id pattern is not a valid regular expression: {e}", ErrorCode::INVALID_REGULAR_EXPRESSION))
    })?;
    let listed = admin
        .list_transactions(&TransactionFilter { duration_ms: duration_filter, ..Default::default() })
        .await
        .map_err(|e| Error::Invalid(format!("Failed to list transactions: {e}")))?;
    let rows: Vec<Vec<String>> = listed
        .into_iter()
        .filter(|t| pattern.as_ref().is_none_or(|p| p.is_match(&t.transactional_id)))
        .map(|t| vec![t.transactional_id, t.coordinator_id.to_string(), t.producer_id.to_string(), t.state])
        .collect();
    print_table(&["TransactionalId", "Coordinator", "ProducerId", "TransactionState"], &rows);
    Ok(())
}

async fn describe(admin: &Admin, id: &str) -> Result<(), Error> {
    let failed = |e: Error| Error::Invalid(format!("Failed to describe transaction state of transactional-id `{id}`: {e}"));
    let mut described = admin.describe_transactions(&[id.to_string()]).await.map_err(failed)?;
    let d = match described.pop() {
        Some((_, result)) => result.map_err(failed)?,
        None => return Err(failed(Error::Protocol("no answer".into()))),
    };
    let (start, duration) = match d.start_time_ms {
        Some(start) => (start.to_string(), (now_ms() - start).to_string()),
        None => ("None".to_string(), "None".to_string()),
    };
    let partitions = d.partitions.iter().map(|tp| tp.to_string()).collect::<Vec<_>>().join(",");
    let row = vec![
        d.coordinator_id.to_string(),
        id.to_string(),
        d.producer_id.to_string(),
        d.producer_epoch.to_string(),
        d.state,
        d.timeout_ms.to_string(),
        start,
        duration,
        partitions,
    ];
    print_table(
        &[
            "CoordinatorId",
            "TransactionalId",
            "ProducerId",
            "ProducerEpoch",
            "TransactionState",
            "TransactionTimeoutMs",
            "CurrentTransactionStartTimeMs",
            "TransactionDurationMs",
            "TopicPartitions",
        ],
        &[row],
    );
    Ok(())
}

async fn describe_producers(admin: &Admin, broker_id: Option<i32>, tp: TopicPartition) -> Result<(), Error> {
    let on = broker_id.map_or("leader".to_string(), |b| format!("broker {b}"));
    let failed = |e: Error| Error::Invalid(format!("Failed to describe producers for partition {tp} on {on}: {e}"));
    let producers = producers_of(admin, &tp, broker_id).await.map_err(failed)?;
    let rows: Vec<Vec<String>> = producers
        .iter()
        .map(|p| {
            vec![
                p.producer_id.to_string(),
                p.producer_epoch.to_string(),
                // Kafka prints any negative coordinator epoch (none yet) as -1.
                p.coordinator_epoch.max(-1).to_string(),
                p.last_sequence.to_string(),
                p.last_timestamp.to_string(),
                if p.current_txn_start_offset >= 0 { p.current_txn_start_offset.to_string() } else { "None".to_string() },
            ]
        })
        .collect();
    print_table(&["ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch", "LastSequence", "LastTimestamp", "CurrentTransactionStartOffset"], &rows);
    Ok(())
}

/// One partition's producers.
async fn producers_of(admin: &Admin, tp: &TopicPartition, broker_id: Option<i32>) -> Result<Vec<ProducerState>, Error> {
    let mut answer = admin.describe_producers(std::slice::from_ref(tp), broker_id).await?;
    match answer.pop() {
        Some((_, result)) => result,
        None => Err(Error::Protocol(format!("no answer for {tp}"))),
    }
}

/// What `abort --start-offset` aborts: the producer whose transaction in `tp` starts there, as
/// the partition's leader describes it.
async fn abort_spec_at(admin: &Admin, tp: &TopicPartition, start_offset: i64) -> Result<AbortTransactionSpec, Error> {
    let producers = producers_of(admin, tp, None).await.map_err(|e| Error::Invalid(format!("Failed to validate producer state for partition {tp}: {e}")))?;
    let p = producers
        .iter()
        .find(|p| p.current_txn_start_offset >= 0 && p.current_txn_start_offset == start_offset)
        .ok_or_else(|| Error::Invalid(format!("Could not find any open transactions starting at offset {start_offset} on partition {tp}")))?;
    // The epoch is an int32 in DescribeProducers and an int16 everywhere else: Kafka's tool
    // narrows it the same way.
    Ok(AbortTransactionSpec {
        partition: tp.clone(),
        producer_id: p.producer_id,
        producer_epoch: p.producer_epoch as i16,
        coordinator_epoch: p.coordinator_epoch.max(0),
    })
}

/// A transaction open in one partition.
struct OpenTransaction {
    partition: TopicPartition,
    producer: ProducerState,
}

async fn find_hanging(admin: &Admin, broker_id: Option<i32>, max_timeout_minutes: i32, topic: Option<String>, partition: Option<i32>) -> Result<(), Error> {
    if topic.is_none() && broker_id.is_none() {
        return Err(Error::Config("The `find-hanging` command requires either --topic or --broker-id to limit the scope of the search".into()));
    }
    if partition.is_some() && topic.is_none() {
        return Err(Error::Config("The --partition argument requires --topic to be provided".into()));
    }
    let max_timeout_ms = i64::from(max_timeout_minutes) * 60_000;
    let partitions = partitions_to_search(admin, topic, partition, broker_id).await?;
    // Candidates: transactions open longer than any transaction may last.
    let now = now_ms();
    let on = broker_id.map_or("their leaders".to_string(), |b| format!("broker {b}"));
    let described = admin
        .describe_producers(&partitions, broker_id)
        .await
        .map_err(|e| Error::Invalid(format!("Failed to describe producers for {} partitions on {on}: {e}", partitions.len())))?;
    let mut candidates: BTreeMap<i64, Vec<OpenTransaction>> = BTreeMap::new();
    for (tp, producers) in described {
        let producers = producers.map_err(|e| Error::Invalid(format!("Failed to describe producers for {} partitions on {on}: {e}", partitions.len())))?;
        for p in producers {
            if p.current_txn_start_offset >= 0 && now - p.last_timestamp > max_timeout_ms {
                candidates.entry(p.producer_id).or_default().push(OpenTransaction { partition: tp.clone(), producer: p });
            }
        }
    }
    let mut hanging: Vec<OpenTransaction> = Vec::new();
    if !candidates.is_empty() {
        // Their transactional ids, by producer id, and what their coordinators hold.
        let filter = TransactionFilter { producer_ids: candidates.keys().copied().collect(), ..Default::default() };
        let listed = admin
            .list_transactions(&filter)
            .await
            .map_err(|e| Error::Invalid(format!("Failed to list transactions for {} producers: {e}", candidates.len())))?;
        let ids: BTreeMap<i64, String> =
            listed.into_iter().filter(|t| candidates.contains_key(&t.producer_id)).map(|t| (t.producer_id, t.transactional_id)).collect();
        let unique: Vec<String> = ids.values().cloned().collect::<BTreeSet<_>>().into_iter().collect();
        let mut descriptions: BTreeMap<String, Option<TransactionDescription>> = BTreeMap::new();
        let failed = |e: Error| Error::Invalid(format!("Failed to describe {} transactions: {e}", unique.len()));
        for (id, result) in admin.describe_transactions(&unique).await.map_err(failed)? {
            match result {
                Ok(d) => descriptions.insert(id, Some(d)),
                Err(Error::Broker(ErrorCode::TRANSACTIONAL_ID_NOT_FOUND, _)) => descriptions.insert(id, None),
                Err(e) => return Err(failed(e)),
            };
        }
        for (producer_id, open) in candidates {
            match ids.get(&producer_id).and_then(|id| descriptions.get(id).cloned().flatten()) {
                // No transactional id has this producer id (or its id is gone): nothing will
                // end its transactions.
                None => hanging.extend(open),
                // The coordinator lists the partitions of the open transaction (and, while it
                // ends one, those still without a marker): one it does not list will get no
                // marker from it.
                Some(d) => hanging.extend(open.into_iter().filter(|o| !d.partitions.contains(&o.partition))),
            }
        }
    }
    let rows: Vec<Vec<String>> = hanging
        .iter()
        .map(|t| {
            vec![
                t.partition.topic.clone(),
                t.partition.partition.to_string(),
                t.producer.producer_id.to_string(),
                t.producer.producer_epoch.to_string(),
                t.producer.coordinator_epoch.max(-1).to_string(),
                t.producer.current_txn_start_offset.to_string(),
                t.producer.last_timestamp.to_string(),
                ((now - t.producer.last_timestamp) / 60_000).to_string(),
            ]
        })
        .collect();
    print_table(&["Topic", "Partition", "ProducerId", "ProducerEpoch", "CoordinatorEpoch", "StartOffset", "LastTimestamp", "Duration(min)"], &rows);
    Ok(())
}

/// The partitions `find-hanging` looks at: the one given, or those of the topic given (or of
/// every topic, internal ones included) with a replica on `broker_id` when it is given.
async fn partitions_to_search(admin: &Admin, topic: Option<String>, partition: Option<i32>, broker_id: Option<i32>) -> Result<Vec<TopicPartition>, Error> {
    let topics = match (topic, partition) {
        (Some(topic), Some(partition)) => return Ok(vec![TopicPartition::new(topic, partition)]),
        (Some(topic), None) => vec![topic],
        (None, _) => admin.list_topics(true).await.map_err(|e| Error::Invalid(format!("Failed to list topics: {e}")))?,
    };
    let mut partitions = Vec::new();
    // Described in batches, as Kafka's tool does, so that no request grows with the cluster.
    for batch in topics.chunks(500) {
        let described = admin.describe_topics(batch).await.map_err(|e| Error::Invalid(format!("Failed to describe {} topics: {e}", batch.len())))?;
        for t in described {
            for (p, _leader, replicas, _isr) in t.partitions {
                if broker_id.is_none_or(|b| replicas.contains(&b)) {
                    partitions.push(TopicPartition::new(t.name.clone(), p));
                }
            }
        }
    }
    Ok(partitions)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Prints a table as Kafka's `ToolsUtils.prettyPrintTable` does: every value left-aligned in
/// a column as wide as its widest value (or header), each followed by a tab.
fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    print!("{}", table(headers, rows));
}

fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, value) in widths.iter_mut().zip(row) {
            *w = (*w).max(value.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        for (w, value) in widths.iter().zip(row) {
            out.push_str(value);
            out.extend(std::iter::repeat_n(' ', w - value.chars().count()));
            out.push('\t');
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_padded_and_tab_separated_as_kafkas() {
        let rows = vec![vec!["app-1".to_string(), "0".to_string()], vec!["a".to_string(), "12345".to_string()]];
        assert_eq!(
            table(&["TransactionalId", "Coordinator"], &rows),
            "TransactionalId\tCoordinator\t\napp-1          \t0          \t\na              \t12345      \t\n"
        );
        assert_eq!(table(&["Topic"], &[]), "Topic\t\n", "no rows: the header alone");
    }
}
