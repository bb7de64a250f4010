//! Seeded runs of the fuzz targets (`src/fuzz.rs`): every committed corpus and regression
//! input, then a fixed number of mutated inputs from a fixed seed, so `cargo test` replays
//! what the long campaigns (`scripts/fuzz.sh`, cargo-fuzz) found and explores a little on its
//! own. Runs in its own binary for its counting allocator: the request target also checks
//! the heap a decoded request uses against its frame's size.
//!
//! A failing input is written to `target/fuzz-failures/` and named in the panic, with the
//! command that replays it.

use std::path::{Path, PathBuf};

use spate::fuzz::{self, CountingAllocator, Rng};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Values that sit on the edges lengths and counts are checked at.
const EDGES: &[i64] = &[0, 1, -1, -2, 0x7f, 0x80, 0xff, 0x7fff, -0x8000, 0xffff, 0x7fff_ffff, -0x8000_0000, 61, 49, 12];

/// Applies one to eight random edits: bit flips, random or edge values (as 1, 2 or 4
/// big-endian bytes), insertions, deletions, duplicated runs and truncation.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    for _ in 0..1 + rng.index(8) {
        let len = input.len();
        match rng.index(7) {
            0 if len > 0 => {
                let at = rng.index(len);
                input[at] ^= 1 << rng.index(8);
            }
            1 if len > 0 => {
                let at = rng.index(len);
                input[at] = rng.next() as u8;
            }
            2 if len > 0 => {
                let width = [1, 2, 4][rng.index(3)];
                let at = rng.index(len);
                let value = EDGES[rng.index(EDGES.len())].to_be_bytes();
                for (i, b) in value[8 - width..].iter().enumerate() {
                    if at + i < len {
                        input[at + i] = *b;
                    }
                }
            }
            3 => {
                let at = rng.index(len + 1);
                let n = 1 + rng.index(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                input.splice(at..at, bytes);
            }
            4 if len > 0 => {
                let at = rng.index(len);
                let n = 1 + rng.index((len - at).min(32));
                input.drain(at..at + n);
            }
            5 if len > 0 => {
                let at = rng.index(len);
                let n = 1 + rng.index((len - at).min(64));
                let run = input[at..at + n].to_vec();
                let to = rng.index(len + 1);
                input.splice(to..to, run);
            }
            _ if len > 0 => input.truncate(rng.index(len)),
            _ => input.push(rng.next() as u8),
        }
    }
}

/// The committed inputs for `target`: its cargo-fuzz corpus and its regressions.
fn committed(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in [root.join("corpus").join(target), root.join("regressions").join(target)] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.expect("a directory entry").path()).collect();
        paths.sort();
        for path in paths {
            // A running campaign adds and removes corpus files while this reads them.
            match std::fs::read(&path) {
                Ok(bytes) => out.push((path, bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("reading {}: {e}", path.display()),
            }
        }
    }
    out
}

/// Runs `check` on each committed input, then on `iterations` mutations of the seeds (and of
/// earlier mutations), from `seed`. Returns how many inputs ran.
fn campaign(target: &str, seeds: Vec<Vec<u8>>, iterations: usize, seed: u64, mut check: impl FnMut(&[u8])) -> usize {
    let mut run = |input: &[u8], origin: &str| {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(input)));
        if let Err(panic) = outcome {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("fuzz-failures");
            std::fs::create_dir_all(&dir).expect("create target/fuzz-failures");
            let path = dir.join(format!("{target}-{:016x}", fxhash(input)));
            std::fs::write(&path, input).expect("write the failing input");
            let message = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            panic!(
                "{target}: {origin} failed: {message}\n  input: {}\n  replay: cargo fuzz run --sanitizer none {target} {}\n  keep it: copy it to fuzz/regressions/{target}/",
                path.display(),
                path.display()
            );
        }
    };
    let committed = committed(target);
    for (path, input) in &committed {
        run(input, &format!("committed input {}", path.display()));
    }
    let mut pool = seeds;
    pool.extend(committed.into_iter().map(|(_, bytes)| bytes));
    let mut rng = Rng(seed);
    for i in 0..iterations {
        let mut input =
            if pool.is_empty() || rng.index(16) == 0 { (0..rng.index(256)).map(|_| rng.next() as u8).collect() } else { pool[rng.index(pool.len())].clone() };
        mutate(&mut rng, &mut input);
        run(&input, &format!("mutation {i} of seed {seed:#x}"));
        if i % 64 == 0 && pool.len() < 4096 {
            pool.push(input);
        }
    }
    pool.len() + iterations
}

fn fxhash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

#[test]
fn request_decoding_survives_mutated_requests_within_its_heap_bound() {
    let mut worst = (0.0f64, 0usize, 0usize);
    let ran = campaign("request", fuzz::request_seeds(), 60_000, 0x5eed_0001, |input| {
        let Some((peak, received)) = fuzz::request(input) else { return };
        let ratio = peak as f64 / received as f64;
        if ratio > worst.0 {
            worst = (ratio, peak, received);
        }
    });
    println!("request: {ran} inputs; worst heap {:.2} times the frame ({} bytes for {})", worst.0, worst.1, worst.2);
}

#[test]
fn record_batch_parsers_survive_mutated_batches() {
    let ran = campaign("record_batch", fuzz::record_batch_seeds(), 20_000, 0x5eed_0002, fuzz::record_batches);
    println!("record_batch: {ran} inputs");
}

#[test]
fn segment_recovery_survives_mutated_segments() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let ran = campaign("segment_recovery", fuzz::segment_seeds(), 1_500, 0x5eed_0003, |input| fuzz::segment_recovery(input, dir.path()));
    println!("segment_recovery: {ran} inputs");
}

/// Not a check: writes the seed inputs into `fuzz/corpus/<target>/` for cargo-fuzz to start
/// from. `scripts/fuzz.sh` runs it before a campaign.
#[test]
#[ignore = "a tool for scripts/fuzz.sh, not a check"]
fn write_seed_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("corpus");
    for (target, seeds) in [("request", fuzz::request_seeds()), ("record_batch", fuzz::record_batch_seeds()), ("segment_recovery", fuzz::segment_seeds())] {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("create the corpus folder");
        for seed in seeds {
            std::fs::write(dir.join(format!("seed-{:016x}", fxhash(&seed))), &seed).expect("write a seed");
        }
    }
}
