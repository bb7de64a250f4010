//! Kafka's offset checkpoint file format, used for the recovery point:
//!
//! ```text
//! 0                 version
//! 1                 number of entries
//! <topic> <partition> <offset>
//! ```
//!
//! Files are replaced atomically (temporary file, fsync, rename, fsync the folder).

use std::io;
use std::path::Path;

pub fn write(path: &Path, entries: &[(String, i32, i64)]) -> io::Result<()> {
    crate::io::fs::write_atomic(path, encode(entries).as_bytes(), Some(&crate::io::crash::CHECKPOINT_WRITE))
}

/// Like `write`, for a file named `name` in the open folder `dir`.
pub fn write_at(dir: &std::fs::File, name: &str, entries: &[(String, i32, i64)]) -> io::Result<()> {
    crate::io::fs::write_atomic_at(dir, name, encode(entries).as_bytes(), Some(&crate::io::crash::CHECKPOINT_WRITE))
}

fn encode(entries: &[(String, i32, i64)]) -> String {
    let mut text = format!("0\n{}\n", entries.len());
    for (topic, partition, offset) in entries {
        text.push_str(&format!("{topic} {partition} {offset}\n"));
    }
    text
}

/// Reads a checkpoint file; a missing or malformed file reads as empty (recovery then scans
/// the whole log, which is always safe).
pub fn read(path: &Path) -> Vec<(String, i32, i64)> {
    let Ok(Some(bytes)) = crate::io::fs::read_if_exists(path) else { return Vec::new() };
    let Ok(text) = String::from_utf8(bytes) else { return Vec::new() };
    let mut lines = text.lines();
    if lines.next() != Some("0") {
        return Vec::new();
    }
    let Some(count) = lines.next().and_then(|l| l.parse::<usize>().ok()) else { return Vec::new() };
    let mut out = Vec::new();
    for line in lines.take(count) {
        let mut parts = line.rsplitn(3, ' ');
        let (Some(offset), Some(partition), Some(topic)) = (parts.next(), parts.next(), parts.next()) else { return Vec::new() };
        let (Ok(offset), Ok(partition)) = (offset.parse(), partition.parse()) else { return Vec::new() };
        out.push((topic.to_owned(), partition, offset));
    }
    if out.len() != count {
        return Vec::new();
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        super::write(&path, &[("a-b".into(), 3, 42)]).unwrap();
        assert_eq!(super::read(&path), vec![("a-b".to_string(), 3, 42)]);
        std::fs::write(&path, "0\n2\na 1 5\n").unwrap();
        assert!(super::read(&path).is_empty(), "a short file reads as empty");
    }
}
