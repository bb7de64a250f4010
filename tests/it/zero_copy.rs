//! Fetched record bytes go from segment files to sockets by sendfile (pages all cached) or
//! splice (otherwise): the broker's counters of bytes written from memory, sent with sendfile
//! and spliced show which path each byte took.

use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::Message;

use crate::support::{assign_all, assigning_consumer, client_config, create_topic, TestBroker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetched_records_go_from_files_to_sockets_not_through_memory() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "spliced", 3).await;
    const RECORDS: usize = 40_000;
    let value = vec![b'z'; 1000];
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let producer: BaseProducer = client_config(&b).set("linger.ms", "5").create().unwrap();
        for i in 0..RECORDS {
            let key = format!("{i}");
            while producer.send(BaseRecord::to("spliced").key(&key).payload(&value)).is_err() {
                producer.poll(Duration::from_millis(5));
            }
        }
        producer.flush(Duration::from_secs(30)).unwrap();
    })
    .await
    .unwrap();

    let before = broker.metrics();
    let b = bootstrap.clone();
    let payload_bytes = tokio::task::spawn_blocking(move || {
        let consumer = assigning_consumer(&b);
        assign_all(&consumer, "spliced", 3);
        let (mut n, mut bytes) = (0, 0u64);
        let deadline = Instant::now() + Duration::from_secs(60);
        while n < RECORDS && Instant::now() < deadline {
            if let Some(m) = consumer.poll(Duration::from_millis(100)) {
                bytes += m.unwrap().payload().unwrap().len() as u64;
                n += 1;
            }
        }
        assert_eq!(n, RECORDS);
        bytes
    })
    .await
    .unwrap();
    let after = broker.metrics();
    let zero_copy = (after.socket_bytes_spliced + after.socket_bytes_sendfile) - (before.socket_bytes_spliced + before.socket_bytes_sendfile);
    let from_memory = after.socket_bytes_from_memory - before.socket_bytes_from_memory;
    assert!(zero_copy >= payload_bytes, "every fetched record byte went file to socket ({zero_copy} bytes, {payload_bytes} payload)");
    // Headers, metadata and empty fetches are written from memory; they are a small fraction.
    assert!(from_memory * 20 < zero_copy, "{from_memory} bytes from memory against {zero_copy} sent from files");
}

/// Records still in the page cache (just written) go out with sendfile on the shard thread;
/// records whose pages were evicted go through io_uring splice, so that the disk read happens
/// in an io-wq worker, not on the shard. Both paths deliver the same bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_ranges_are_sent_with_sendfile_and_evicted_ones_spliced() {
    // flush.messages=1: every append is fsynced, so its pages are clean and can be evicted.
    let broker = TestBroker::start(&[("log.flush.interval.messages", "1")]);
    if let Err(why) = cachestat_and_eviction_work(&broker.log_dir()) {
        eprintln!("skipped: {why} (the broker then sends every range by splice)");
        return;
    }
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "paths", 1).await;
    const RECORDS: usize = 3_000;
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let producer: BaseProducer = client_config(&b).set("linger.ms", "5").set("enable.idempotence", "true").create().unwrap();
        for i in 0..RECORDS {
            let value = format!("{i:0>1000}");
            while producer.send(BaseRecord::<(), _>::to("paths").payload(&value)).is_err() {
                producer.poll(Duration::from_millis(5));
            }
        }
        producer.flush(Duration::from_secs(30)).unwrap();
    })
    .await
    .unwrap();
    let read_all = |bootstrap: String| async move {
        tokio::task::spawn_blocking(move || {
            let consumer = assigning_consumer(&bootstrap);
            assign_all(&consumer, "paths", 1);
            let mut values = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(60);
            while values.len() < RECORDS && Instant::now() < deadline {
                if let Some(m) = consumer.poll(Duration::from_millis(100)) {
                    values.push(String::from_utf8(m.unwrap().payload().unwrap().to_vec()).unwrap());
                }
            }
            values
        })
        .await
        .unwrap()
    };
    let expected: Vec<String> = (0..RECORDS).map(|i| format!("{i:0>1000}")).collect();

    let before = broker.metrics();
    assert_eq!(read_all(bootstrap.clone()).await, expected);
    let after = broker.metrics();
    let (sendfile, spliced) = (after.socket_bytes_sendfile - before.socket_bytes_sendfile, after.socket_bytes_spliced - before.socket_bytes_spliced);
    assert!(sendfile >= 3_000_000 && spliced == 0, "just written, so cached: {sendfile} bytes by sendfile, {spliced} spliced");

    // Evict the segment's second MiB (clean, after the fsyncs) and read everything again: the
    // ranges around it go by sendfile, the ones that reach into it by splice from there on.
    let segments: Vec<_> =
        walk(&broker.log_dir()).into_iter().filter(|p| p.extension().is_some_and(|e| e == "log") && p.to_string_lossy().contains("paths-0")).collect();
    assert_eq!(segments.len(), 1, "{segments:?}");
    let file = std::fs::File::open(&segments[0]).unwrap();
    fadvise_dontneed(&file, 1 << 20, 1 << 20);
    let before = broker.metrics();
    assert_eq!(read_all(bootstrap.clone()).await, expected);
    let after = broker.metrics();
    let (sendfile, spliced) = (after.socket_bytes_sendfile - before.socket_bytes_sendfile, after.socket_bytes_spliced - before.socket_bytes_spliced);
    assert!(spliced > 0, "evicted pages go through splice ({spliced} bytes spliced, {sendfile} by sendfile)");
    assert!(sendfile >= 1 << 20, "cached ranges still go by sendfile ({sendfile} bytes by sendfile, {spliced} spliced)");
}

/// posix_fadvise(POSIX_FADV_DONTNEED): drops the range's clean pages from the page cache.
fn fadvise_dontneed(file: &std::fs::File, offset: i64, len: i64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on a file this test holds open.
    assert_eq!(unsafe { nix::libc::posix_fadvise(file.as_raw_fd(), offset, len, nix::libc::POSIX_FADV_DONTNEED) }, 0);
}

/// How many of the file's first `len` bytes' pages are cached (cachestat(2)), or the error.
fn cached_pages(file: &std::fs::File, len: u64) -> std::io::Result<u64> {
    use std::os::fd::AsRawFd;
    let range = [0u64, len];
    let mut stat = [0u64; 5];
    // SAFETY: cachestat reads the range and writes the five counters, both live for the call.
    let rc = unsafe { nix::libc::syscall(451, file.as_raw_fd(), range.as_ptr(), stat.as_mut_ptr(), 0u32) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stat[0])
}

/// Whether this kernel has cachestat and this filesystem drops clean pages on request (tmpfs,
/// for one, keeps them): the test needs both to steer a fetch onto each path.
fn cachestat_and_eviction_work(dir: &std::path::Path) -> Result<(), String> {
    use std::io::Write;
    let path = dir.join("probe");
    let mut file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    file.write_all(&[7u8; 64 * 1024]).unwrap();
    file.sync_all().unwrap();
    let cached = cached_pages(&file, 64 * 1024).map_err(|e| format!("cachestat: {e}"))?;
    fadvise_dontneed(&file, 0, 0);
    let after = cached_pages(&file, 64 * 1024).map_err(|e| format!("cachestat: {e}"))?;
    std::fs::remove_file(&path).unwrap();
    if cached == 0 || after >= cached {
        return Err(format!("posix_fadvise(DONTNEED) left the pages cached ({cached} before, {after} after)"));
    }
    Ok(())
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
