//! `spate console-producer` and `spate console-consumer`: kafka-console-producer.sh and
//! kafka-console-consumer.sh.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use spate::client::{Consumer, Error, Producer, ProducerRecord, TopicPartition};

use super::Common;

#[derive(clap::Args, Debug)]
pub struct ProducerArgs {
    #[command(flatten)]
    pub common: Common,
    /// The brokers, as kafka-console-producer.sh's older flag names them (the seeds' quickstart
    /// uses it); --bootstrap-server is the same.
    #[arg(long, value_name = "HOST:PORT")]
    pub broker_list: Option<String>,
    #[arg(long, value_name = "TOPIC")]
    pub topic: String,
    /// Reader settings: parse.key=true, key.separator=<sep> (default a tab), ignore.error=true.
    #[arg(long, value_name = "KEY=VALUE")]
    pub property: Vec<String>,
    /// A producer property (repeatable), e.g. --producer-property linger.ms=100.
    #[arg(long, value_name = "KEY=VALUE")]
    pub producer_property: Vec<String>,
    /// batch.size.
    #[arg(long, value_name = "BYTES")]
    pub batch_size: Option<usize>,
    /// linger.ms (Kafka's console producer calls it --timeout).
    #[arg(long, value_name = "MS")]
    pub timeout: Option<u64>,
    /// acks: 0, 1 or all (-1).
    #[arg(long, value_name = "ACKS")]
    pub request_required_acks: Option<String>,
    /// compression.type: none, gzip, snappy, lz4 or zstd.
    #[arg(long, value_name = "CODEC")]
    pub compression_codec: Option<String>,
    /// Send each line synchronously (wait for its acknowledgement).
    #[arg(long)]
    pub sync: bool,
}

pub async fn produce(args: ProducerArgs) -> Result<(), Error> {
    let mut extra = Vec::new();
    if let Some(b) = args.batch_size {
        extra.push(format!("batch.size={b}"));
    }
    if let Some(t) = args.timeout {
        extra.push(format!("linger.ms={t}"));
    }
    if let Some(a) = &args.request_required_acks {
        extra.push(format!("acks={a}"));
    }
    if let Some(c) = &args.compression_codec {
        extra.push(format!("compression.type={c}"));
    }
    extra.extend(args.producer_property.iter().cloned());
    let mut common = args.common.clone();
    if let Some(brokers) = &args.broker_list {
        common.bootstrap_server = brokers.clone();
    }
    let producer = Producer::new(&common.config(&extra)?)?;
    let props = super::properties(&args.property)?;
    let prop = |k: &str| props.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let parse_key = prop("parse.key") == Some("true");
    let separator = prop("key.separator").unwrap_or("\t").to_string();
    let ignore_error = prop("ignore.error") == Some("true");
    let failed: Rc<std::cell::Cell<Option<Error>>> = Rc::default();
    // stdin is read on a thread of its own, so that the sender task keeps running (and
    // linger.ms keeps its meaning) while the tool waits for the next line.
    let (lines, incoming) = flume::bounded::<std::io::Result<String>>(1024);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    while let Ok(line) = incoming.recv_async().await {
        let line = line.map_err(|e| Error::Invalid(format!("reading stdin: {e}")))?;
        let mut record = ProducerRecord::new(&args.topic, Bytes::from(line.clone()));
        if parse_key {
            match line.split_once(separator.as_str()) {
                Some((k, v)) => {
                    record.key = Some(Bytes::from(k.to_string()));
                    record.value = Some(Bytes::from(v.to_string()));
                }
                None if ignore_error => {}
                None => return Err(Error::Invalid(format!("no key separator {separator:?} in line {line:?}"))),
            }
        }
        if args.sync {
            producer.send(record).await?;
        } else {
            let failed = failed.clone();
            producer
                .send_with_callback(record, move |r| {
                    if let Err(e) = r {
                        eprintln!("error: a record was not delivered: {e}");
                        failed.set(Some(e));
                    }
                })
                .await?;
        }
        if let Some(e) = failed.take() {
            return Err(e);
        }
    }
    producer.close().await;
    match failed.take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[derive(clap::Args, Debug)]
pub struct ConsumerArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, value_name = "TOPIC")]
    pub topic: String,
    /// Join this consumer group (offsets are committed to it).
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Start from the earliest offset when there is no committed one.
    #[arg(long)]
    pub from_beginning: bool,
    /// Read only this partition (without a group).
    #[arg(long, value_name = "P")]
    pub partition: Option<i32>,
    /// With --partition: earliest, latest or an offset.
    #[arg(long, value_name = "OFFSET", default_value = "latest")]
    pub offset: String,
    /// Exit after this many records.
    #[arg(long, value_name = "N")]
    pub max_messages: Option<u64>,
    /// Exit when no record arrives for this long.
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// Formatter settings: print.key, print.value, print.timestamp, print.partition,
    /// print.offset, print.headers (true/false), key.separator, line.separator.
    #[arg(long, value_name = "KEY=VALUE")]
    pub property: Vec<String>,
    /// A consumer property (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub consumer_property: Vec<String>,
    /// read_uncommitted or read_committed.
    #[arg(long, value_name = "LEVEL")]
    pub isolation_level: Option<String>,
}

struct Format {
    key: bool,
    value: bool,
    timestamp: bool,
    partition: bool,
    offset: bool,
    headers: bool,
    key_separator: String,
    line_separator: String,
}

pub async fn consume(args: ConsumerArgs) -> Result<(), Error> {
    let props = super::properties(&args.property)?;
    let prop = |k: &str| props.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let flag = |k: &str, default: bool| prop(k).map_or(default, |v| v == "true");
    let format = Format {
        key: flag("print.key", false),
        value: flag("print.value", true),
        timestamp: flag("print.timestamp", false),
        partition: flag("print.partition", false),
        offset: flag("print.offset", false),
        headers: flag("print.headers", false),
        key_separator: prop("key.separator").unwrap_or_else(|| "\t".into()),
        line_separator: prop("line.separator").unwrap_or_else(|| "\n".into()),
    };
    let mut extra = vec![format!("auto.offset.reset={}", if args.from_beginning { "earliest" } else { "latest" })];
    if let Some(g) = &args.group {
        extra.push(format!("group.id={g}"));
    }
    if let Some(l) = &args.isolation_level {
        extra.push(format!("isolation.level={l}"));
    }
    extra.extend(args.consumer_property.iter().cloned());
    let config = args.common.config(&extra)?;
    let consumer = Consumer::new(&config)?;
    if args.group.is_some() && args.partition.is_none() {
        consumer.subscribe(&[args.topic.as_str()], None)?;
    } else {
        // No group: read the partitions directly, as Kafka's tool does with --partition.
        let admin = spate::client::Admin::new(&config)?;
        let partitions: Vec<TopicPartition> = match args.partition {
            Some(p) => vec![TopicPartition { topic: args.topic.clone(), partition: p }],
            None => admin.partitions_of(&args.topic).await?,
        };
        consumer.assign(&partitions);
        if args.partition.is_some() {
            match args.offset.as_str() {
                "earliest" => consumer.seek_to_beginning(&partitions).await?,
                "latest" if !args.from_beginning => consumer.seek_to_end(&partitions).await?,
                "latest" => consumer.seek_to_beginning(&partitions).await?,
                n => {
                    let offset: i64 = n.parse().map_err(|_| Error::Config(format!("--offset {n:?}: expected earliest, latest or a number")))?;
                    consumer.seek(&partitions[0], offset)?;
                }
            }
        }
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut count = 0u64;
    let mut last_record = Instant::now();
    let limit = args.max_messages.unwrap_or(u64::MAX);
    let idle = args.timeout_ms.map(Duration::from_millis);
    while count < limit {
        let records = consumer.poll(Duration::from_millis(200)).await?;
        if records.is_empty() {
            out.flush().map_err(|e| Error::Invalid(e.to_string()))?;
            if idle.is_some_and(|d| last_record.elapsed() >= d) {
                break;
            }
            continue;
        }
        last_record = Instant::now();
        let mut unprinted: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for r in records {
            if count >= limit {
                // Records returned but not printed are not committed: each partition's
                // position goes back to its first unprinted record.
                unprinted.entry((r.topic.to_string(), r.partition)).or_insert(r.offset);
                continue;
            }
            write_record(&mut out, &format, &r).map_err(|e| Error::Invalid(format!("writing stdout: {e}")))?;
            count += 1;
        }
        for ((topic, partition), offset) in unprinted {
            consumer.seek(&TopicPartition { topic, partition }, offset)?;
        }
    }
    out.flush().map_err(|e| Error::Invalid(e.to_string()))?;
    eprintln!("Processed a total of {count} messages");
    consumer.close().await
}

fn write_record(out: &mut impl Write, f: &Format, r: &spate::client::ConsumerRecord) -> std::io::Result<()> {
    let text = |b: &Option<Bytes>| b.as_ref().map_or("null".to_string(), |b| String::from_utf8_lossy(b).into_owned());
    let mut fields: Vec<String> = Vec::new();
    if f.timestamp {
        fields.push(format!("{}:{}", if r.log_append_time { "LogAppendTime" } else { "CreateTime" }, r.timestamp));
    }
    if f.partition {
        fields.push(format!("Partition:{}", r.partition));
    }
    if f.offset {
        fields.push(format!("Offset:{}", r.offset));
    }
    if f.headers {
        let hs: Vec<String> = r.headers.iter().map(|h| format!("{}:{}", h.key, text(&h.value))).collect();
        fields.push(if hs.is_empty() { "NO_HEADERS".into() } else { hs.join(",") });
    }
    if f.key {
        fields.push(text(&r.key));
    }
    if f.value {
        fields.push(text(&r.value));
    }
    write!(out, "{}{}", fields.join(&f.key_separator), f.line_separator)
}
