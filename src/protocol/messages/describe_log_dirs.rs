//! DescribeLogDirs (key 35), versions 1-5; flexible from 2 (DescribeLogDirsRequest.json,
//! DescribeLogDirsResponse.json): each log directory of a broker with the partitions in it and
//! their sizes, as `kafka-log-dirs.sh --describe` and the admin client's `describeLogDirs` ask
//! for them. Version 4 adds the volume's total and usable bytes, 5 whether a directory is
//! cordoned.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct DescribeLogDirsRequest {
        /// The topics to describe, or null for all of them.
        pub topics: Option<Vec<DescribeLogDirsRequestTopic>>,
    }

    /// The schema's DescribableLogDirTopic.
    pub struct DescribeLogDirsRequestTopic {
        pub topic: String,
        pub partitions: Vec<i32>,
    }

    pub struct DescribeLogDirsResponse {
        pub throttle_time_ms: i32,
        pub error: ErrorCode [3..],
        pub results: Vec<DescribeLogDirsResult>,
    }

    pub struct DescribeLogDirsResult {
        pub error: ErrorCode,
        /// The directory's absolute path.
        pub log_dir: String,
        pub topics: Vec<DescribeLogDirsTopic>,
        /// The volume's size in bytes, -1 when unknown.
        pub total_bytes: i64 [4..] = -1,
        /// The volume's usable bytes, -1 when unknown.
        pub usable_bytes: i64 [4..] = -1,
        pub is_cordoned: bool [5..],
    }

    pub struct DescribeLogDirsTopic {
        pub name: String,
        pub partitions: Vec<DescribeLogDirsPartition>,
    }

    pub struct DescribeLogDirsPartition {
        pub partition_index: i32,
        /// The size of the partition's segments in bytes.
        pub partition_size: i64,
        /// How far the log end is behind the high watermark (or, for a future log, behind
        /// the current one's log end).
        pub offset_lag: i64,
        /// Whether this is a future log (AlterReplicaLogDirs moving the replica here).
        pub is_future_key: bool,
    }
}

impl Request for DescribeLogDirsRequest {
    const KEY: ApiKey = ApiKey::DescribeLogDirs;
    const VERSIONS: (i16, i16) = (1, 5);
    const FLEXIBLE_FROM: i16 = 2;
    type Response = DescribeLogDirsResponse;
}
