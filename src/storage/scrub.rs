//! The scrubber: re-reads sealed segments at a bounded rate (`log.scrub.bytes.per.second`) and
//! checks every batch's CRC-32C, because segments below the recovery point are served as
//! stored (zero-copy) and a bit flipped on disk there would otherwise reach consumers.
//!
//! Each shard scrubs the logs it owns, one segment chunk (at most 1 MiB) at a time on the
//! runtime's blocking pool, one chunk in flight per shard, pausing between chunks so that the
//! rate holds. A damaged batch is logged, counted (`Metrics::scrub_damaged_batches`) and no
//! longer served: `PartitionLog::mark_damaged` makes reads stop before it, and a fetch that
//! starts in it gets KAFKA_STORAGE_ERROR. (With a cluster, the replica would be rebuilt from
//! another; a single broker keeps it for an operator.)

use std::io;

use crate::io::LogFile;
use crate::protocol::record_batch;

/// The most a scrubber reads at once.
pub const CHUNK_BYTES: u32 = 1 << 20;

/// What one chunk's scan found: the bytes of whole batches checked, and the first damaged
/// batch's range, if any.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChunkScan {
    pub checked_bytes: u32,
    pub damaged: Option<(u32, u32)>,
}

/// Reads the segment from `position` (a batch start) for at most `CHUNK_BYTES` (or one batch,
/// if larger) and checks each whole batch in it. Blocking: runs on the blocking pool.
pub fn scan_chunk(file: &LogFile, position: u32, size: u32) -> io::Result<ChunkScan> {
    let want = CHUNK_BYTES.min(size - position);
    let mut bytes = vec![0u8; want as usize];
    let mut read = 0;
    while read < bytes.len() {
        let n = file.read_at_blocking(position as u64 + read as u64, &mut bytes[read..])?;
        if n == 0 {
            break;
        }
        read += n;
    }
    bytes.truncate(read);
    let mut at = 0usize;
    while at < bytes.len() {
        let size = match record_batch::batch_size(&bytes[at..]) {
            Ok(size) => size,
            // A batch that runs past the chunk: the next chunk starts with it, read whole.
            Err(record_batch::BatchError::Truncated) if at > 0 || bytes.len() < record_batch::LOG_OVERHEAD => break,
            Err(record_batch::BatchError::Truncated) => {
                let whole = record_batch::batch_size_claimed(&bytes).filter(|&n| n as u64 <= (size - position) as u64);
                let Some(whole) = whole else {
                    return Ok(ChunkScan { checked_bytes: at as u32, damaged: Some((position, size)) });
                };
                let mut batch = vec![0u8; whole];
                let mut read = 0;
                while read < whole {
                    match file.read_at_blocking(position as u64 + read as u64, &mut batch[read..])? {
                        0 => break,
                        n => read += n,
                    }
                }
                batch.truncate(read);
                let damaged = record_batch::validate_stored(&batch).is_err().then_some((position, position + whole as u32));
                return Ok(ChunkScan { checked_bytes: whole as u32, damaged });
            }
            // A length that cannot be: the rest of the segment is not to be trusted.
            Err(_) => return Ok(ChunkScan { checked_bytes: at as u32, damaged: Some((position + at as u32, size)) }),
        };
        if record_batch::validate_stored(&bytes[at..at + size]).is_err() {
            let from = position + at as u32;
            return Ok(ChunkScan { checked_bytes: at as u32, damaged: Some((from, from + size as u32)) });
        }
        at += size;
    }
    Ok(ChunkScan { checked_bytes: at as u32, damaged: None })
}
