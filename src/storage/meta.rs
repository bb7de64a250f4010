//! The log dir's `meta.properties`, as Kafka's `kafka-storage.sh format` writes it, and the
//! upgrade of a log dir written by an earlier Spate.
//!
//! ```text
//! #
//! #Written by Spate
//! cluster.id=<22-character Kafka UUID>
//! directory.id=<22-character Kafka UUID>
//! node.id=<node.id>
//! version=1
//! ```
//!
//! A log dir without it is formatted on first start (a single node formats itself). One that
//! holds partition folders but no `meta.properties` was written by an earlier Spate: its
//! `.index` and `.timeindex` files named each batch's first offset, where Kafka's name its
//! last, so they are removed (recovery rebuilds them in Kafka's format), and the recovery
//! point each partition folder kept is moved into the log dir's checkpoint file.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use super::{checkpoint, parse_partition_dir_name, uuid_to_kafka_string, RECOVERY_POINT_FILE};

pub const META_PROPERTIES_FILE: &str = "meta.properties";

/// Reads `meta.properties` (Java properties: `key=value` lines, `#` comments).
pub fn read_meta_properties(log_dir: &Path) -> io::Result<Option<BTreeMap<String, String>>> {
    let Some(bytes) = crate::io::fs::read_if_exists(&log_dir.join(META_PROPERTIES_FILE))? else { return Ok(None) };
    let text = String::from_utf8(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "meta.properties is not UTF-8"))?;
    Ok(Some(
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())))
            .collect(),
    ))
}

/// Checks the log dir's `meta.properties` against this node and returns its cluster id. A log
/// dir without one is formatted now (a single node formats itself, upgrading an earlier
/// Spate's log dir), unless `must_be_formatted` (a node of a cluster, which Kafka also refuses
/// to start before `kafka-storage.sh format` gave every node the same cluster id).
pub fn prepare_log_dir(log_dir: &Path, node_id: i32, must_be_formatted: bool) -> io::Result<String> {
    if let Some(props) = read_meta_properties(log_dir)? {
        if props.get("version").map(String::as_str) != Some("1") {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{}: only meta.properties version 1 is known", log_dir.display())));
        }
        // As Kafka: a log dir belongs to one node.
        if props.get("node.id") != Some(&node_id.to_string()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: meta.properties has node.id {:?}, but this broker's node.id is {node_id}", log_dir.display(), props.get("node.id")),
            ));
        }
        return props
            .get("cluster.id")
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{}: meta.properties has no cluster.id", log_dir.display())));
    }
    if must_be_formatted {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{}: no meta.properties; format the log dir first (spate storage format --cluster-id ID --config FILE)", log_dir.display()),
        ));
    }
    upgrade_earlier_log_dir(log_dir)?;
    let cluster_id = random_kafka_uuid();
    format_log_dir(log_dir, node_id, &cluster_id, false)?;
    Ok(cluster_id)
}

/// Writes `meta.properties` as `kafka-storage.sh format` does. A log dir formatted already is
/// an error unless `ignore_formatted` (Kafka's `--ignore-formatted`), and then is left as it is.
pub fn format_log_dir(log_dir: &Path, node_id: i32, cluster_id: &str, ignore_formatted: bool) -> io::Result<bool> {
    if read_meta_properties(log_dir)?.is_some() {
        if ignore_formatted {
            return Ok(false);
        }
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} is already formatted (use --ignore-formatted to skip it)", log_dir.display())));
    }
    if cluster_id.is_empty() || !cluster_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cluster id {cluster_id:?} is not a Kafka UUID (spate storage random-uuid makes one)"),
        ));
    }
    crate::io::fs::create_dir_all(log_dir)?;
    let text = format!("#\n#Written by Spate\ncluster.id={cluster_id}\ndirectory.id={}\nnode.id={node_id}\nversion=1\n", uuid_to_kafka_string(&random_uuid()));
    crate::io::fs::write_atomic(&log_dir.join(META_PROPERTIES_FILE), text.as_bytes(), None)?;
    Ok(true)
}

/// An earlier Spate's partition folders: index files out (rebuilt at open), their recovery
/// points into the log dir's checkpoint (written before the folders' own files go, so a
/// crash in between loses nothing but a scan).
fn upgrade_earlier_log_dir(log_dir: &Path) -> io::Result<()> {
    let mut folders = Vec::new();
    for name in crate::io::fs::list_dir(log_dir)? {
        if parse_partition_dir_name(&name).is_some() && log_dir.join(&name).is_dir() {
            folders.push(log_dir.join(name));
        }
    }
    if folders.is_empty() {
        return Ok(());
    }
    tracing::info!(log_dir = %log_dir.display(), partitions = folders.len(), "upgrading a log dir of an earlier Spate to Kafka's index format and checkpoints");
    let mut points = checkpoint::read(&log_dir.join(RECOVERY_POINT_FILE));
    for folder in &folders {
        points.extend(checkpoint::read(&folder.join(RECOVERY_POINT_FILE)));
    }
    checkpoint::write(&log_dir.join(RECOVERY_POINT_FILE), &points)?;
    for folder in &folders {
        for name in crate::io::fs::list_dir(folder)? {
            if name.ends_with(".index") || name.ends_with(".timeindex") || name == RECOVERY_POINT_FILE {
                crate::io::fs::remove_file_if_exists(&folder.join(name))?;
            }
        }
        crate::io::fs::sync_dir(folder)?;
    }
    Ok(())
}

/// A random UUID in Kafka's form (22 characters of URL-safe base64), never starting with '-'
/// (Kafka's `Uuid.randomUuid` draws again for those too, so that an id is never taken for a
/// command-line flag).
pub fn random_kafka_uuid() -> String {
    loop {
        let id = uuid_to_kafka_string(&random_uuid());
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// A random version 4 UUID from the OS's randomness.
pub fn random_uuid() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes)).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(1);
        bytes = t.to_le_bytes();
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_dir_formats_itself_once_and_keeps_its_node() {
        let dir = tempfile::tempdir().unwrap();
        let cluster_id = prepare_log_dir(dir.path(), 3, false).unwrap();
        let props = read_meta_properties(dir.path()).unwrap().unwrap();
        assert_eq!(props["version"], "1");
        assert_eq!(props["node.id"], "3");
        assert_eq!(props["cluster.id"].len(), 22);
        assert_eq!(props["directory.id"].len(), 22);
        assert_eq!(prepare_log_dir(dir.path(), 3, true).unwrap(), cluster_id);
        assert_eq!(read_meta_properties(dir.path()).unwrap().unwrap(), props, "formatted once");
        let e = prepare_log_dir(dir.path(), 4, false).unwrap_err();
        assert!(e.to_string().contains("node.id"), "{e}");
    }

    #[test]
    fn a_cluster_node_needs_a_formatted_log_dir() {
        let dir = tempfile::tempdir().unwrap();
        let e = prepare_log_dir(dir.path(), 1, true).unwrap_err();
        assert!(e.to_string().contains("spate storage format"), "{e}");
        assert!(format_log_dir(dir.path(), 1, "q1Sh-9_ISia_zwGINzRvyQ", false).unwrap());
        assert_eq!(prepare_log_dir(dir.path(), 1, true).unwrap(), "q1Sh-9_ISia_zwGINzRvyQ");
        assert!(format_log_dir(dir.path(), 1, "q1Sh-9_ISia_zwGINzRvyQ", false).is_err(), "formatted once");
        assert!(!format_log_dir(dir.path(), 1, "other", true).unwrap(), "--ignore-formatted leaves it");
        assert!(format_log_dir(tempfile::tempdir().unwrap().path(), 1, "not a uuid!", false).is_err());
    }

    #[test]
    fn an_earlier_spates_log_dir_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("orders-0");
        std::fs::create_dir(&part).unwrap();
        std::fs::write(part.join("00000000000000000000.log"), b"").unwrap();
        std::fs::write(part.join("00000000000000000000.index"), [0u8; 8]).unwrap();
        std::fs::write(part.join("00000000000000000000.timeindex"), [0u8; 12]).unwrap();
        checkpoint::write(&part.join(RECOVERY_POINT_FILE), &[("orders".into(), 0, 42)]).unwrap();
        prepare_log_dir(dir.path(), 0, false).unwrap();
        assert_eq!(checkpoint::read(&dir.path().join(RECOVERY_POINT_FILE)), vec![("orders".into(), 0, 42)]);
        let mut left = crate::io::fs::list_dir(&part).unwrap();
        left.sort();
        assert_eq!(left, vec!["00000000000000000000.log".to_string()], "old indexes and the folder's checkpoint are gone");
        assert!(read_meta_properties(dir.path()).unwrap().is_some());
    }
}

/// A fresh topic id, as the catalog writes it (32 hex digits).
pub fn new_topic_id() -> String {
    random_uuid().iter().map(|b| format!("{b:02x}")).collect()
}

/// Kafka's rule for topic names: 1 to 249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("topic name {name:?} is illegal"));
    }
    if name.len() > crate::config::limits::TOPIC_NAME_LENGTH_MAX {
        return Err(format!("topic name is longer than {} characters", crate::config::limits::TOPIC_NAME_LENGTH_MAX));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
        return Err(format!("topic name {name:?} contains characters other than ASCII alphanumerics, '.', '_' and '-'"));
    }
    // The metadata log's name (its folder is `__cluster_metadata-0`), reserved as in Kafka.
    if name == "__cluster_metadata" {
        return Err("topic name __cluster_metadata is reserved for the metadata log".to_string());
    }
    Ok(())
}
