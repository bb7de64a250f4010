//! Crash points: the broker aborts at each step of an append, a roll, a rolled segment's
//! flush, an atomic file replacement, a retention delete and a topic delete
//! (`spate::io::crash::POINTS`, armed by `SPATE_CRASH_AT`), under a librdkafka load with
//! acks=all and `flush.messages=1`. Each crash is also a power cut: everything the broker had
//! not made durable is dropped (`io::fault::power`). After each crash it restarts, and:
//! - every acknowledged record is read back at its offset (above the log start offset, for
//!   the retention points, the only ones where retention runs);
//! - the log start offset is not below one observed before the crash (nothing retention
//!   deleted comes back);
//! - every segment is a sequence of whole, CRC-valid batches;
//! - a topic whose deletion was written to the catalog stays deleted, folders and all; one
//!   whose deletion crashed before the new catalog replaced the old one is whole;
//! - the broker takes new records.
//!
//! A failure names the point; `SPATE_CRASH_POINT=<point> cargo test crash_points` runs one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::recovery::Load;
use crate::recovery::{check_batch_boundaries, read_all};
use crate::support::{assigning_consumer, client_config, create_topic, free_port, BrokerProcess};

const TOPIC: &str = "crashing";
const PARTITIONS: i32 = 2;

/// Which pass of a point to crash at: late enough that the load is running (the catalog is
/// written once at startup, the log dir's checkpoints every 100 ms, three files a time).
fn pass_for(point: &str) -> u32 {
    match point {
        p if p.starts_with("append.") => 150,
        p if p.starts_with("checkpoint_write.") => 15,
        // The catalog is written at startup, then for each topic created ("crashing", then
        // "doomed"): the fourth write is the deletion of "doomed".
        p if p.starts_with("catalog_write.") => 4,
        p if p.starts_with("retention.") => 2,
        p if p.starts_with("topic_delete.") => 1,
        _ => 6,
    }
}

fn low_watermarks(bootstrap: &str) -> Vec<i64> {
    let consumer: BaseConsumer = assigning_consumer(bootstrap);
    (0..PARTITIONS).map(|p| consumer.fetch_watermarks(TOPIC, p, Duration::from_secs(5)).map(|(low, _)| low).unwrap_or(0)).collect()
}

async fn crash_at(point: &str) {
    let pass = pass_for(point);
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("{point}:{pass}");
    let config = [
        ("log.segment.bytes", "16384"),
        ("log.flush.interval.messages", "1"),
        ("log.retention.check.interval.ms", "100"),
        ("log.flush.offset.checkpoint.interval.ms", "100"),
        ("shards", "2"),
    ];
    // Every crash is a power cut too: what the broker did not make durable is dropped before
    // it restarts (`io::fault::power`).
    let journal_dir = tempfile::tempdir().unwrap();
    let journal = journal_dir.path().join("power-journal");
    let journal_env = journal.display().to_string();
    let mut broker = BrokerProcess::start_with_env(dir.path(), free_port(), &config, &[("SPATE_CRASH_AT", &spec), ("SPATE_POWER_JOURNAL", &journal_env)]);
    let bootstrap = broker.bootstrap();
    {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        let admin: AdminClient<rdkafka::client::DefaultClientContext> = client_config(&bootstrap).create().unwrap();
        // Retention runs only where its own steps are crashed: elsewhere every acknowledged
        // record must still be there.
        let retention_bytes = if point.starts_with("retention.") { "65536" } else { "-1" };
        let topic = NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(1)).set("retention.bytes", retention_bytes);
        for r in admin.create_topics(&[topic], &AdminOptions::new()).await.unwrap() {
            r.unwrap();
        }
    }
    let deleting = point.starts_with("topic_delete.") || point.starts_with("catalog_write.");
    // Crashed before the new catalog took the old one's name, the deletion never happened.
    let deletion_undone = point == "catalog_write.after_tmp_write" || point == "catalog_write.after_tmp_fsync";
    if deleting {
        create_topic(&bootstrap, "doomed", 2).await;
    }

    let acked: crate::recovery::Acknowledged = Arc::new(Mutex::new(Vec::new()));
    // Small batches: many appends, rolls and retention passes in a short load. Bounded:
    // until the crash, or 100,000 records.
    let settings = [("linger.ms", "1"), ("batch.num.messages", "20"), ("message.timeout.ms", "3000")];
    let padding = "p".repeat(200);
    let load = Load::start(&bootstrap, TOPIC, &settings, 100_000, acked.clone(), move |i| (format!("{i:08}"), format!("{i:08}-{padding}")));

    // Watch the log start offsets move (retention) until the broker dies.
    let mut starts = vec![0i64; PARTITIONS as usize];
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut deleted_topic = false;
    let status = loop {
        if let Some(status) = broker.wait_exit(Duration::from_millis(200)) {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        if deleting && !deleted_topic && acked.lock().unwrap().len() > 500 {
            deleted_topic = true;
            let b = bootstrap.clone();
            // The call fails when the broker dies under it; what counts is what follows.
            tokio::spawn(async move {
                use rdkafka::admin::{AdminClient, AdminOptions};
                let admin: AdminClient<rdkafka::client::DefaultClientContext> = client_config(&b).create().unwrap();
                let _ = admin.delete_topics(&["doomed"], &AdminOptions::new().operation_timeout(Some(Duration::from_secs(5)))).await;
            });
        }
        let b = bootstrap.clone();
        if let Ok(lows) = tokio::task::spawn_blocking(move || low_watermarks(&b)).await {
            for (s, low) in starts.iter_mut().zip(lows) {
                *s = (*s).max(low);
            }
        }
    };
    load.stop();
    let status = status
        .unwrap_or_else(|| panic!("{point}: the broker never reached pass {pass} of the crash point ({} records acknowledged)", acked.lock().unwrap().len()));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(sigkill()), "{point}: the broker stopped by the crash point, not otherwise ({status:?})");
    let acked = acked.lock().unwrap().clone();

    let cut = spate::io::fault::power::apply_power_cut(&journal, dir.path()).expect("apply the power cut");
    broker.env = vec![("SPATE_POWER_JOURNAL".to_string(), journal_env.clone())];
    broker.restart();
    // Retention goes on after the restart (the topic keeps 64 KiB a partition): wait until
    // the log start offsets settle, read, and count as kept what is above them afterwards.
    let mut lows_after = Vec::new();
    for _ in 0..50 {
        let b = bootstrap.clone();
        let lows = tokio::task::spawn_blocking(move || low_watermarks(&b)).await.unwrap();
        if lows == lows_after {
            break;
        }
        lows_after = lows;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for p in 0..PARTITIONS as usize {
        assert!(
            lows_after[p] >= starts[p],
            "{point}: partition {p} starts at {} after the crash, below {} seen before: deleted data came back",
            lows_after[p],
            starts[p]
        );
        check_batch_boundaries(&dir.path().join(format!("{TOPIC}-{p}")));
    }
    let kept: Vec<_> = acked.iter().filter(|(p, offset, _)| *offset >= lows_after[*p as usize]).cloned().collect();
    let b = bootstrap.clone();
    let expected = kept.len();
    let stored = tokio::task::spawn_blocking(move || read_all(&b, TOPIC, PARTITIONS, expected)).await.unwrap();
    let b = bootstrap.clone();
    assert_eq!(tokio::task::spawn_blocking(move || low_watermarks(&b)).await.unwrap(), lows_after, "{point}: the log start moved while reading");
    let missing = kept.iter().filter(|(p, offset, value)| stored.get(&(*p, *offset)) != Some(value)).count();
    assert_eq!(missing, 0, "{point}: {missing} of {} acknowledged records (of {} in all) missing or changed after the crash", kept.len(), acked.len());

    if deleting {
        let consumer: BaseConsumer = assigning_consumer(&bootstrap);
        let metadata = consumer.fetch_metadata(None, Duration::from_secs(5)).unwrap();
        let exists = metadata.topics().iter().any(|t| t.name() == "doomed" && t.partitions().len() == 2);
        let mut folders: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("doomed")).collect();
        folders.sort();
        if deletion_undone {
            assert!(exists, "{point}: the catalog was not replaced, so the topic must still be there");
            assert_eq!(folders, ["doomed-0", "doomed-1"], "{point}: the topic's folders are intact");
        } else {
            assert!(!exists, "{point}: a deleted topic came back");
            assert!(folders.is_empty(), "{point}: a deleted topic left folders behind: {folders:?}");
        }
    }

    // The recovered broker takes new records where the log ends.
    let producer: rdkafka::producer::FutureProducer = client_config(&bootstrap).set("acks", "all").create().unwrap();
    producer
        .send(rdkafka::producer::FutureRecord::to(TOPIC).key("after").payload("after the crash"), Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{point}: produce after recovery: {e:?}"));
    println!(
        "{point}: pass {pass}: {} acknowledged, {} kept above the log start, all read back after a power cut that dropped {} bytes and {} names",
        acked.len(),
        kept.len(),
        cut.bytes_dropped,
        cut.names_removed
    );
}

fn sigkill() -> i32 {
    nix::sys::signal::Signal::SIGKILL as i32
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_points_every_step_recovers_without_losing_acknowledged_records() {
    let only = std::env::var("SPATE_CRASH_POINT").ok();
    for point in spate::io::crash::POINTS {
        if only.as_deref().is_some_and(|o| o != *point) {
            continue;
        }
        if point.starts_with("compaction.") {
            compaction_crash_at(point).await;
        } else {
            crash_at(point).await;
        }
    }
}

/// A compacted topic under a keyed load (40 keys) with small segments and a cleaner that runs
/// every 100 ms, crashed (and power-cut) at a step of a cleaned segment's swap. After the
/// restart: every segment is whole batches, each key's newest record is there at or after
/// its newest acknowledged offset, every acknowledged record still there has its value, and
/// the broker takes new records.
async fn compaction_crash_at(point: &str) {
    const COMPACTED: &str = "squeezed";
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("{point}:2");
    let journal_dir = tempfile::tempdir().unwrap();
    let journal = journal_dir.path().join("power-journal");
    let journal_env = journal.display().to_string();
    let config = [("log.segment.bytes", "16384"), ("log.flush.interval.messages", "1"), ("log.cleaner.backoff.ms", "100"), ("shards", "2")];
    let mut broker = BrokerProcess::start_with_env(dir.path(), free_port(), &config, &[("SPATE_CRASH_AT", &spec), ("SPATE_POWER_JOURNAL", &journal_env)]);
    let bootstrap = broker.bootstrap();
    {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        let admin: AdminClient<rdkafka::client::DefaultClientContext> = client_config(&bootstrap).create().unwrap();
        let topic = NewTopic::new(COMPACTED, 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact");
        for r in admin.create_topics(&[topic], &AdminOptions::new()).await.unwrap() {
            r.unwrap();
        }
    }
    let acked: crate::recovery::Acknowledged = Arc::new(Mutex::new(Vec::new()));
    let settings = [("linger.ms", "1"), ("batch.num.messages", "20"), ("message.timeout.ms", "3000")];
    let padding = "c".repeat(200);
    let load = Load::start(&bootstrap, COMPACTED, &settings, 200_000, acked.clone(), move |i| (format!("key-{:02}", i % 40), format!("{i:08}-{padding}")));
    let status = broker.wait_exit(Duration::from_secs(60));
    load.stop();
    let status =
        status.unwrap_or_else(|| panic!("{point}: the broker never reached pass 2 of the crash point ({} records acknowledged)", acked.lock().unwrap().len()));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(sigkill()), "{point}: the broker stopped by the crash point, not otherwise ({status:?})");
    let cut = spate::io::fault::power::apply_power_cut(&journal, dir.path()).expect("apply the power cut");
    broker.env = vec![("SPATE_POWER_JOURNAL".to_string(), journal_env.clone())];
    broker.restart();
    check_batch_boundaries(&dir.path().join(format!("{COMPACTED}-0")));
    let acked = acked.lock().unwrap().clone();
    let b = bootstrap.clone();
    let stored = tokio::task::spawn_blocking(move || read_all(&b, COMPACTED, 1, 40)).await.unwrap();
    // The newest acknowledged offset of each key, and the newest stored.
    let key_of = |value: &[u8]| -> u64 { std::str::from_utf8(&value[..8]).unwrap().parse::<u64>().unwrap() % 40 };
    let mut newest_acked: std::collections::HashMap<u64, i64> = Default::default();
    for (_, offset, value) in &acked {
        let e = newest_acked.entry(key_of(value)).or_insert(*offset);
        *e = (*e).max(*offset);
    }
    let mut newest_stored: std::collections::HashMap<u64, i64> = Default::default();
    for ((_, offset), value) in &stored {
        let e = newest_stored.entry(key_of(value)).or_insert(*offset);
        *e = (*e).max(*offset);
    }
    for (key, offset) in &newest_acked {
        assert!(newest_stored.get(key).is_some_and(|s| s >= offset), "{point}: key {key}'s newest record (offset {offset}, acknowledged) is gone");
    }
    for (p, offset, value) in &acked {
        if let Some(stored) = stored.get(&(*p, *offset)) {
            assert_eq!(stored, value, "{point}: offset {offset} holds another value after the crash");
        }
    }
    let producer: rdkafka::producer::FutureProducer = client_config(&bootstrap).set("acks", "all").create().unwrap();
    producer
        .send(rdkafka::producer::FutureRecord::to(COMPACTED).key("after").payload("after the crash"), Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{point}: produce after recovery: {e:?}"));
    println!(
        "{point}: {} acknowledged, {} stored after compaction, every key's newest there, power cut dropped {} bytes",
        acked.len(),
        stored.len(),
        cut.bytes_dropped
    );
}
