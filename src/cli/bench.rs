//! `spate bench`: load generators on the Rust client, modelled on kafka-producer-perf-test and
//! kafka-consumer-perf-test, an end-to-end latency probe, and `baseline`, which measures this
//! machine's own ceilings (loopback TCP, page-cache writes) for the other figures to be read
//! against.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use spate::client::{Admin, Consumer, Error, Producer, ProducerRecord, TopicPartition};

use super::Common;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Produces records as fast as allowed and reports throughput and send-to-ack latency.
    Produce(ProduceArgs),
    /// Reads records and reports throughput.
    Consume(ConsumeArgs),
    /// Produces at a fixed rate and reports produce-to-consume latency.
    E2e(E2eArgs),
    /// Measures this machine's loopback TCP, page-cache write and sendfile throughput and CPU cost.
    Baseline(BaselineArgs),
    /// Measures the worst stall a client sees while the broker creates and deletes a topic of
    /// many partitions (and, with --watch-secs, while it does whatever else is going on).
    Stall(StallArgs),
}

#[derive(clap::Args, Debug)]
pub struct StallArgs {
    #[command(flatten)]
    pub common: Common,
    /// Partitions of the topic created and then deleted (0: neither).
    #[arg(long, default_value_t = 10_000)]
    pub partitions: i32,
    /// Seconds to probe before the first operation (the baseline) and after the last.
    #[arg(long, default_value_t = 3)]
    pub idle_secs: u64,
    /// Seconds to probe while nothing is asked of the broker (run compaction or a load beside it).
    #[arg(long, default_value_t = 0)]
    pub watch_secs: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value = "spate-bench")]
    pub topic: String,
    /// Partitions of the topic when the bench creates it.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    #[arg(long, default_value_t = 1024)]
    pub record_size: usize,
    /// Values are taken from this file's lines instead of random bytes.
    #[arg(long)]
    pub payload_file: Option<std::path::PathBuf>,
    #[arg(long)]
    pub num_records: Option<u64>,
    /// Seconds to run (instead of --num-records).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Records per second across all producers; -1 for no limit.
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub throughput: i64,
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    #[arg(long, default_value = "1")]
    pub acks: String,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub linger_ms: Option<u64>,
    #[arg(long, default_value = "none")]
    pub compression: String,
    #[arg(long, value_name = "KEY=VALUE")]
    pub producer_property: Vec<String>,
    /// Seconds between progress lines.
    #[arg(long, default_value_t = 5)]
    pub reporting_interval: u64,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Produce in transactions of this many milliseconds each (kafka-producer-perf-test's
    /// flag): a commit when a transaction is this old; the summary adds the commit latency.
    #[arg(long)]
    pub transaction_duration_ms: Option<u64>,
    /// The transactional id (each producer thread adds "-<n>").
    #[arg(long, default_value = "performance-producer-default-transactional-id")]
    pub transactional_id: String,
}

#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value = "spate-bench")]
    pub topic: String,
    #[arg(long)]
    pub num_records: Option<u64>,
    #[arg(long)]
    pub duration: Option<u64>,
    /// Read as a member of this group (otherwise every partition is assigned from the start).
    #[arg(long)]
    pub group: Option<String>,
    #[arg(long, value_name = "KEY=VALUE")]
    pub consumer_property: Vec<String>,
    #[arg(long, default_value_t = 5)]
    pub reporting_interval: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct E2eArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value = "spate-bench-e2e")]
    pub topic: String,
    #[arg(long, default_value_t = 1024)]
    pub record_size: usize,
    /// Records per second.
    #[arg(long, default_value_t = 1000)]
    pub throughput: u64,
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    #[arg(long, default_value = "1")]
    pub acks: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct BaselineArgs {
    /// GiB to send over loopback, to write into the page cache and to sendfile (fractions allowed).
    #[arg(long, default_value_t = 2.0)]
    pub gib: f64,
    /// Where the page-cache test file goes (deleted afterwards).
    #[arg(long, default_value = "/tmp")]
    pub dir: std::path::PathBuf,
    #[arg(long)]
    pub json: bool,
}

pub fn run(command: Command) -> std::process::ExitCode {
    match command {
        Command::Produce(args) => super::run(|| produce(args)),
        Command::Consume(args) => super::run(|| consume(args)),
        Command::E2e(args) => super::run(|| e2e(args)),
        Command::Stall(args) => super::run(|| stall(args)),
        Command::Baseline(args) => match baseline(&args) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}

fn histogram() -> Histogram<u64> {
    // Microseconds, up to an hour, 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds")
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// CPU seconds (user + system) this process has used.
/// This process's CPU seconds (user + system).
fn cpu_seconds() -> f64 {
    rusage_seconds(nix::libc::RUSAGE_SELF)
}

/// The calling thread's CPU seconds (user + system).
fn thread_cpu_seconds() -> f64 {
    rusage_seconds(nix::libc::RUSAGE_THREAD)
}

fn rusage_seconds(who: nix::libc::c_int) -> f64 {
    // SAFETY: getrusage fills the struct it is given; a zeroed rusage is a valid value.
    let mut usage: nix::libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { nix::libc::getrusage(who, &mut usage) };
    let t = |tv: nix::libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

async fn ensure_topic(common: &Common, topic: &str, partitions: i32) -> Result<(), Error> {
    let admin = Admin::new(&common.config(&[])?)?;
    match admin.create_topic(topic, partitions, 1, &[]).await {
        Ok(()) => admin.wait_for_topic(topic).await,
        Err(e) if e.code() == Some(spate::protocol::error::ErrorCode::TOPIC_ALREADY_EXISTS) => Ok(()),
        Err(e) => Err(e),
    }
}

/// One phase of `stall`: the probe's round-trip times (µs) while it lasted, and how long.
struct Phase {
    name: &'static str,
    hist: Histogram<u64>,
    secs: f64,
}

/// A producer on a one-partition topic sends one small record at a time (acks=1, no linger)
/// and times each round trip, phase by phase, while the main task asks the broker to create a
/// topic of `--partitions` partitions, then to delete it. Run against a one-shard broker, the
/// probe's connection shares the shard that does the work; the max of each phase is the worst
/// stall a client saw.
async fn stall(args: StallArgs) -> Result<(), Error> {
    let probe_topic = "spate-stall-probe";
    ensure_topic(&args.common, probe_topic, 1).await?;
    let producer = Rc::new(Producer::new(&args.common.config(&["linger.ms=0".into(), "acks=1".into()])?)?);
    let admin = Admin::new(&args.common.config(&["request.timeout.ms=600000".into(), "default.api.timeout.ms=600000".into()])?)?;
    let current: Rc<RefCell<Phase>> = Rc::new(RefCell::new(Phase { name: "idle", hist: histogram(), secs: 0.0 }));
    let stop = Rc::new(std::cell::Cell::new(false));
    let probe = {
        let (producer, current, stop) = (producer.clone(), current.clone(), stop.clone());
        compio::runtime::spawn(async move {
            while !stop.get() {
                let started = Instant::now();
                let record = ProducerRecord { topic: probe_topic.to_string(), value: Some(Bytes::from_static(b"probe")), ..Default::default() };
                if producer.send(record).await.is_ok() {
                    let _ = current.borrow_mut().hist.record(started.elapsed().as_micros() as u64);
                }
            }
        })
    };
    let mut phases = Vec::new();
    let mut next_phase = |name: &'static str, started: Instant| {
        let mut phase = current.replace(Phase { name, hist: histogram(), secs: 0.0 });
        phase.secs = started.elapsed().as_secs_f64();
        phases.push(phase);
        Instant::now()
    };
    let mut started = Instant::now();
    compio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let topic = format!("spate-stall-{}", std::process::id());
    if args.partitions > 0 {
        started = next_phase("create", started);
        admin.create_topic(&topic, args.partitions, 1, &[]).await?;
        started = next_phase("delete", started);
        admin.delete_topics(std::slice::from_ref(&topic)).await?;
    }
    if args.watch_secs > 0 {
        started = next_phase("watch", started);
        compio::time::sleep(Duration::from_secs(args.watch_secs)).await;
    }
    started = next_phase("idle after", started);
    compio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    next_phase("end", started);
    stop.set(true);
    let _ = probe.await;
    for p in &phases {
        let h = &p.hist;
        let (p50, p99, max) = (ms(h.value_at_quantile(0.5)), ms(h.value_at_quantile(0.99)), ms(h.max()));
        if args.json {
            println!(
                "{{\"phase\":\"{}\",\"secs\":{:.3},\"round_trips\":{},\"p50_ms\":{p50:.3},\"p99_ms\":{p99:.3},\"max_ms\":{max:.3}}}",
                p.name,
                p.secs,
                h.len()
            );
        } else {
            println!("{:<11} {:>8.3} s  {:>7} round trips  p50 {p50:>8.3} ms  p99 {p99:>8.3} ms  max {max:>8.3} ms", p.name, p.secs, h.len());
        }
    }
    Ok(())
}

fn payloads(args: &ProduceArgs) -> Result<Vec<Bytes>, Error> {
    if let Some(path) = &args.payload_file {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        let lines: Vec<Bytes> = text.lines().filter(|l| !l.is_empty()).map(|l| Bytes::from(l.to_string())).collect();
        if lines.is_empty() {
            return Err(Error::Invalid("the payload file has no lines".into()));
        }
        return Ok(lines);
    }
    // Random bytes (xorshift): compressible data would flatter the compressed runs.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut value = vec![0u8; args.record_size];
    for b in value.iter_mut() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *b = seed as u8;
    }
    Ok(vec![Bytes::from(value)])
}

struct Progress {
    records: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    done: AtomicBool,
}

async fn produce(args: ProduceArgs) -> Result<(), Error> {
    if args.num_records.is_none() && args.duration.is_none() {
        return Err(Error::Config("give --num-records or --duration".into()));
    }
    ensure_topic(&args.common, &args.topic, args.partitions).await?;
    let mut extra = vec![format!("acks={}", args.acks), format!("compression.type={}", args.compression)];
    if let Some(b) = args.batch_size {
        extra.push(format!("batch.size={b}"));
    }
    if let Some(l) = args.linger_ms {
        extra.push(format!("linger.ms={l}"));
    }
    extra.extend(args.producer_property.iter().cloned());
    let config = args.common.config(&extra)?;
    Producer::new(&config)?; // checks the configuration before the threads start
    let payloads = payloads(&args)?;
    let progress = Arc::new(Progress { records: AtomicU64::new(0), bytes: AtomicU64::new(0), errors: AtomicU64::new(0), done: AtomicBool::new(false) });
    let n = args.producers.max(1);
    let start = Instant::now();
    let cpu_start = cpu_seconds();
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (config, payloads, progress, args) = (config.clone(), payloads.clone(), progress.clone(), args.clone());
            std::thread::spawn(move || -> Result<(Histogram<u64>, Histogram<u64>), Error> {
                let runtime = compio::runtime::Runtime::new().map_err(|e| Error::Invalid(e.to_string()))?;
                let config = match args.transaction_duration_ms {
                    Some(_) => config.set("transactional.id", format!("{}-{i}", args.transactional_id)),
                    None => config,
                };
                runtime.block_on(produce_one(i, n, config, payloads, progress, args))
            })
        })
        .collect();
    let reporter = {
        let progress = progress.clone();
        let interval = Duration::from_secs(args.reporting_interval.max(1));
        std::thread::spawn(move || {
            let mut last = (Instant::now(), 0u64, 0u64);
            while !progress.done.load(Ordering::Relaxed) {
                let wake = Instant::now() + interval;
                while Instant::now() < wake && !progress.done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let (r, b) = (progress.records.load(Ordering::Relaxed), progress.bytes.load(Ordering::Relaxed));
                let secs = last.0.elapsed().as_secs_f64();
                eprintln!("{} records acknowledged, {:.1} records/sec ({:.2} MB/sec)", r, (r - last.1) as f64 / secs, (b - last.2) as f64 / secs / 1e6);
                last = (Instant::now(), r, b);
            }
        })
    };
    let mut total = histogram();
    let mut commits = histogram();
    let mut failure = None;
    for t in threads {
        match t.join().map_err(|_| Error::Invalid("a producer thread panicked".into()))? {
            Ok((h, c)) => {
                total.add(h).expect("same bounds");
                commits.add(c).expect("same bounds");
            }
            Err(e) => failure = Some(e),
        }
    }
    // Timed before the reporter thread is joined: it sleeps in 50 ms steps.
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_start;
    progress.done.store(true, Ordering::Relaxed);
    let _ = reporter.join();
    if let Some(e) = failure {
        return Err(e);
    }
    let records = progress.records.load(Ordering::Relaxed);
    let bytes = progress.bytes.load(Ordering::Relaxed);
    let errors = progress.errors.load(Ordering::Relaxed);
    summary(args.json, "produce", records, bytes, errors, secs, cpu, Some(&total));
    if args.transaction_duration_ms.is_some() && !args.json {
        println!(
            "{} transactions, commit latency ms: p50 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2}.",
            commits.len(),
            ms(commits.value_at_quantile(0.50)),
            ms(commits.value_at_quantile(0.99)),
            ms(commits.value_at_quantile(0.999)),
            ms(commits.max())
        );
    }
    Ok(())
}

/// The shortest wait `--throughput` pacing sleeps (kafka-producer-perf-test's throttler sleeps
/// no less than 2 ms either): records due sooner are sent at once.
const PACING_MIN_SLEEP: Duration = Duration::from_millis(2);

async fn produce_one(
    index: usize,
    of: usize,
    config: spate::client::ClientConfig,
    payloads: Vec<Bytes>,
    progress: Arc<Progress>,
    args: ProduceArgs,
) -> Result<(Histogram<u64>, Histogram<u64>), Error> {
    let producer = Producer::new(&config)?;
    let hist = Rc::new(RefCell::new(histogram()));
    // With --transaction-duration-ms: each transaction's start, and the commit latencies.
    let transaction = args.transaction_duration_ms.map(Duration::from_millis);
    let mut commits = histogram();
    let mut txn_start = Instant::now();
    if transaction.is_some() {
        producer.init_transactions().await?;
        producer.begin_transaction()?;
    }
    let quota = args.num_records.map(|n| n / of as u64 + u64::from((index as u64) < n % of as u64));
    let deadline = args.duration.map(|d| Instant::now() + Duration::from_secs(d));
    let rate = (args.throughput > 0).then(|| args.throughput as f64 / of as f64);
    let start = Instant::now();
    let mut sent = 0u64;
    loop {
        if quota.is_some_and(|q| sent >= q) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if let Some(rate) = rate {
            // Pace to the rate: wait until this record's slot comes, once at least
            // PACING_MIN_SLEEP ahead (as Kafka's ThroughputThrottler does with its 2 ms). A
            // timer per record (every 6 µs at 160,000/s) cost this client most of a core on a
            // VM, taking it from the broker it measures.
            let due = start + Duration::from_secs_f64(sent as f64 / rate);
            let now = Instant::now();
            if due > now + PACING_MIN_SLEEP {
                compio::time::sleep(due - now).await;
            }
        }
        let value = payloads[(sent as usize) % payloads.len()].clone();
        let len = value.len() as u64;
        let record = ProducerRecord { topic: args.topic.clone(), value: Some(value), ..Default::default() };
        let sent_at = Instant::now();
        let (h, p) = (hist.clone(), progress.clone());
        producer
            .send_with_callback(record, move |r| {
                match r {
                    Ok(_) => {
                        p.records.fetch_add(1, Ordering::Relaxed);
                        p.bytes.fetch_add(len, Ordering::Relaxed);
                    }
                    Err(_) => {
                        p.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let _ = h.borrow_mut().record(sent_at.elapsed().as_micros() as u64);
            })
            .await?;
        sent += 1;
        if transaction.is_some_and(|d| txn_start.elapsed() >= d) {
            let at = Instant::now();
            producer.commit_transaction().await?;
            let _ = commits.record(at.elapsed().as_micros() as u64);
            producer.begin_transaction()?;
            txn_start = Instant::now();
        }
    }
    if transaction.is_some() {
        let at = Instant::now();
        producer.commit_transaction().await?;
        let _ = commits.record(at.elapsed().as_micros() as u64);
    }
    producer.close().await;
    let h = hist.borrow().clone();
    Ok((h, commits))
}

#[allow(clippy::too_many_arguments)]
fn summary(json: bool, kind: &str, records: u64, bytes: u64, errors: u64, secs: f64, cpu: f64, latency: Option<&Histogram<u64>>) {
    let rps = records as f64 / secs;
    let mbps = bytes as f64 / secs / 1e6;
    let cpu_per_gib = if bytes > 0 { cpu / (bytes as f64 / (1u64 << 30) as f64) } else { 0.0 };
    if json {
        let mut v = serde_json::json!({
            "bench": kind, "records": records, "bytes": bytes, "errors": errors, "seconds": secs,
            "records_per_sec": rps, "mb_per_sec": mbps, "client_cpu_seconds": cpu, "client_cpu_seconds_per_gib": cpu_per_gib,
        });
        if let Some(h) = latency {
            v["latency_ms"] = serde_json::json!({
                "p50": ms(h.value_at_quantile(0.50)), "p95": ms(h.value_at_quantile(0.95)), "p99": ms(h.value_at_quantile(0.99)),
                "p999": ms(h.value_at_quantile(0.999)), "max": ms(h.max()), "mean": h.mean() / 1000.0,
            });
        }
        println!("{v}");
        return;
    }
    print!("{records} records, {rps:.1} records/sec ({mbps:.2} MB/sec), {errors} errors, client {cpu_per_gib:.2} CPU-s/GiB");
    if let Some(h) = latency {
        print!(
            ", latency ms: {:.2} avg, p50 {:.2}, p95 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2}",
            h.mean() / 1000.0,
            ms(h.value_at_quantile(0.50)),
            ms(h.value_at_quantile(0.95)),
            ms(h.value_at_quantile(0.99)),
            ms(h.value_at_quantile(0.999)),
            ms(h.max())
        );
    }
    println!(".");
}

async fn consume(args: ConsumeArgs) -> Result<(), Error> {
    if args.num_records.is_none() && args.duration.is_none() {
        return Err(Error::Config("give --num-records or --duration".into()));
    }
    let mut extra = vec!["auto.offset.reset=earliest".to_string(), "enable.auto.commit=false".to_string()];
    if let Some(g) = &args.group {
        extra.push(format!("group.id={g}"));
    }
    extra.extend(args.consumer_property.iter().cloned());
    let config = args.common.config(&extra)?;
    let consumer = Consumer::new(&config)?;
    if args.group.is_some() {
        consumer.subscribe(&[args.topic.as_str()], None)?;
    } else {
        let partitions: Vec<TopicPartition> = Admin::new(&config)?.partitions_of(&args.topic).await?;
        consumer.assign(&partitions);
        consumer.seek_to_beginning(&partitions).await?;
    }
    let start = Instant::now();
    let cpu_start = cpu_seconds();
    let deadline = args.duration.map(|d| start + Duration::from_secs(d));
    let limit = args.num_records.unwrap_or(u64::MAX);
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut report_at = start + Duration::from_secs(args.reporting_interval.max(1));
    let mut last_data = Instant::now();
    while records < limit && deadline.is_none_or(|d| Instant::now() < d) {
        let batch = consumer.poll(Duration::from_millis(200)).await?;
        if batch.is_empty() && last_data.elapsed() > Duration::from_secs(10) {
            eprintln!("no records for 10 s; stopping");
            break;
        }
        if !batch.is_empty() {
            last_data = Instant::now();
        }
        for r in &batch {
            records += 1;
            bytes += r.value.as_ref().map_or(0, Bytes::len) as u64 + r.key.as_ref().map_or(0, Bytes::len) as u64;
        }
        if Instant::now() >= report_at {
            let secs = start.elapsed().as_secs_f64();
            eprintln!("{records} records read, {:.1} records/sec ({:.2} MB/sec)", records as f64 / secs, bytes as f64 / secs / 1e6);
            report_at += Duration::from_secs(args.reporting_interval.max(1));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    summary(args.json, "consume", records, bytes, 0, secs, cpu_seconds() - cpu_start, None);
    consumer.close().await
}

async fn e2e(args: E2eArgs) -> Result<(), Error> {
    ensure_topic(&args.common, &args.topic, 1).await?;
    let consumer = Consumer::new(&args.common.config(&["fetch.max.wait.ms=100".into()])?)?;
    let tp = TopicPartition { topic: args.topic.clone(), partition: 0 };
    consumer.assign(std::slice::from_ref(&tp));
    consumer.seek_to_end(std::slice::from_ref(&tp)).await?;
    consumer.poll(Duration::from_millis(1)).await?; // starts the fetch pipeline
    let producer = Producer::new(&args.common.config(&[format!("acks={}", args.acks), "linger.ms=0".into()])?)?;
    let epoch = Instant::now();
    let total = args.throughput * args.duration;
    let mut hist = histogram();
    let mut received = 0u64;
    let mut value = vec![0u8; args.record_size.max(8)];
    for i in 0..total {
        let due = epoch + Duration::from_secs_f64(i as f64 / args.throughput as f64);
        while Instant::now() < due {
            for r in consumer.poll(due.saturating_duration_since(Instant::now())).await? {
                record_e2e(&mut hist, epoch, &r);
                received += 1;
            }
        }
        value[..8].copy_from_slice(&(epoch.elapsed().as_nanos() as u64).to_be_bytes());
        producer.send_with_callback(ProducerRecord::new(&args.topic, value.clone()), |_| {}).await?;
    }
    let drain_until = Instant::now() + Duration::from_secs(10);
    while received < total && Instant::now() < drain_until {
        for r in consumer.poll(Duration::from_millis(100)).await? {
            record_e2e(&mut hist, epoch, &r);
            received += 1;
        }
    }
    producer.close().await;
    let (p50, p99, p999, max) = (ms(hist.value_at_quantile(0.5)), ms(hist.value_at_quantile(0.99)), ms(hist.value_at_quantile(0.999)), ms(hist.max()));
    if args.json {
        println!(
            "{}",
            serde_json::json!({"bench": "e2e", "records": received, "rate": args.throughput, "latency_ms": {"p50": p50, "p99": p99, "p999": p999, "max": max}})
        );
    } else {
        println!("{received} of {total} records at {}/s, end-to-end latency ms: p50 {p50:.2}, p99 {p99:.2}, p99.9 {p999:.2}, max {max:.2}.", args.throughput);
    }
    consumer.close().await
}

fn record_e2e(hist: &mut Histogram<u64>, epoch: Instant, r: &spate::client::ConsumerRecord) {
    if let Some(v) = r.value.as_ref().filter(|v| v.len() >= 8) {
        let sent = u64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
        let now = epoch.elapsed().as_nanos() as u64;
        let _ = hist.record(now.saturating_sub(sent) / 1000);
    }
}

/// This machine's ceilings, each with its CPU cost measured per thread: one loopback TCP stream
/// with large buffers (the receiver's side is what a broker pays to take in produced bytes),
/// sequential buffered writes of fresh pages into the page cache, and `sendfile` of that
/// (cached) file to a loopback socket (what a zero-copy fetch cannot go below). The produce
/// floor is receiving plus writing; the fetch floor is the sendfile sender. The page-cache write
/// comes first, so that a caller can control how warm the memory it writes into is.
///
/// On loopback the receiving side's TCP processing runs in the sender's context (softirq), so
/// per-thread CPU charges it to the sender: the receiver's share is its copy out of the socket,
/// and the sender's includes delivery. A broker sits on the same sides (receiver of produces,
/// sender of fetches), so its figures and these compare.
fn baseline(args: &BaselineArgs) -> std::io::Result<()> {
    const CHUNK: usize = 1 << 20;
    // Whole chunks, at least one.
    let total = ((args.gib * (1u64 << 30) as f64) as u64 / CHUNK as u64).max(1) * CHUNK as u64;
    let gib = total as f64 / (1u64 << 30) as f64;

    let chunk = vec![7u8; CHUNK];
    let path = args.dir.join(format!("spate-baseline-{}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<(f64, f64, Transfer)> {
        let cpu0 = thread_cpu_seconds();
        let t0 = Instant::now();
        let mut f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path)?;
        let mut written = 0u64;
        while written < total {
            f.write_all(&chunk)?;
            written += CHUNK as u64;
        }
        let write = (t0.elapsed().as_secs_f64(), thread_cpu_seconds() - cpu0);
        let sendfile = stream_to_reader(|s| {
            let mut offset: nix::libc::off_t = 0;
            while (offset as u64) < total {
                let left = (total - offset as u64).min(1 << 30) as usize;
                if nix::sys::sendfile::sendfile(s.as_fd(), f.as_fd(), Some(&mut offset), left).map_err(std::io::Error::from)? == 0 {
                    return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the file ended early"));
                }
            }
            Ok(())
        })?;
        Ok((write.0, write.1, sendfile))
    })();
    let _ = std::fs::remove_file(&path);
    let (write_secs, write_cpu, sendfile) = result?;
    let tcp = stream_to_reader(|s| {
        let mut sent = 0u64;
        while sent < total {
            s.write_all(&chunk)?;
            sent += CHUNK as u64;
        }
        Ok(())
    })?;

    let write_mbps = total as f64 / write_secs / 1e6;
    let produce_floor = (tcp.receiver_cpu + write_cpu) / gib;
    let fetch_floor = sendfile.sender_cpu / gib;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "loopback_tcp_mb_per_sec": tcp.mb_per_sec(),
                "loopback_tcp_sender_cpu_seconds_per_gib": tcp.sender_cpu / gib,
                "loopback_tcp_receiver_cpu_seconds_per_gib": tcp.receiver_cpu / gib,
                "page_cache_write_mb_per_sec": write_mbps, "page_cache_write_cpu_seconds_per_gib": write_cpu / gib,
                "sendfile_mb_per_sec": sendfile.mb_per_sec(), "sendfile_sender_cpu_seconds_per_gib": fetch_floor,
                "produce_floor_cpu_seconds_per_gib": produce_floor, "fetch_floor_cpu_seconds_per_gib": fetch_floor,
            })
        );
    } else {
        println!(
            "loopback TCP, one stream: {:.0} MB/sec; sender {:.2}, receiver {:.2} CPU-s/GiB",
            tcp.mb_per_sec(),
            tcp.sender_cpu / gib,
            tcp.receiver_cpu / gib
        );
        println!("page-cache write, fresh pages: {write_mbps:.0} MB/sec, {:.2} CPU-s/GiB", write_cpu / gib);
        println!("sendfile from the page cache to loopback: {:.0} MB/sec, sender {fetch_floor:.2} CPU-s/GiB", sendfile.mb_per_sec());
        println!("floors: produce (receive + write) {produce_floor:.2} CPU-s/GiB, fetch (sendfile) {fetch_floor:.2} CPU-s/GiB");
    }
    Ok(())
}

/// One transfer over a loopback connection: wall time, bytes, and each side's thread CPU.
struct Transfer {
    seconds: f64,
    bytes: u64,
    sender_cpu: f64,
    receiver_cpu: f64,
}

impl Transfer {
    fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / self.seconds / 1e6
    }
}

/// Runs `send` on a fresh loopback connection whose other end a thread reads to the end with a
/// 1 MiB buffer.
fn stream_to_reader(send: impl FnOnce(&mut std::net::TcpStream) -> std::io::Result<()>) -> std::io::Result<Transfer> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    // Connected before the receiver starts, so that a failed connect cannot leave it waiting
    // in accept() for ever (the backlog holds the connection meanwhile).
    let mut stream = std::net::TcpStream::connect(listener.local_addr()?)?;
    let receiver = std::thread::spawn(move || -> std::io::Result<(u64, f64)> {
        let (mut s, _) = listener.accept()?;
        let cpu0 = thread_cpu_seconds();
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0u64;
        loop {
            match s.read(&mut buf)? {
                0 => return Ok((n, thread_cpu_seconds() - cpu0)),
                k => n += k as u64,
            }
        }
    });
    let t0 = Instant::now();
    let cpu0 = thread_cpu_seconds();
    let sent = send(&mut stream);
    drop(stream);
    let sender_cpu = thread_cpu_seconds() - cpu0;
    // The stream is closed by now, so the receiver sees its end even if sending failed.
    let received = receiver.join().map_err(|_| std::io::Error::other("receiver panicked"))?;
    sent?;
    let (bytes, receiver_cpu) = received?;
    Ok(Transfer { seconds: t0.elapsed().as_secs_f64(), bytes, sender_cpu, receiver_cpu })
}
