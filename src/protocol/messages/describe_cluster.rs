//! DescribeCluster (key 60), versions 0-1; flexible from 0 (DescribeClusterRequest.json,
//! DescribeClusterResponse.json): the cluster id, the controller and the brokers, as the Java
//! admin client's `describeCluster` asks for them.

use crate::message;
use crate::protocol::error::ErrorCode;
use crate::protocol::wire::Request;
use crate::protocol::ApiKey;

message! {
    pub struct DescribeClusterRequest {
        pub include_cluster_authorized_operations: bool,
        /// 1: brokers, 2: controllers.
        pub endpoint_type: i8 [1..] = 1,
    }

    pub struct DescribeClusterResponse {
        pub throttle_time_ms: i32,
        pub error: ErrorCode,
        pub error_message: Option<String> [0.., nullable 0..],
        pub endpoint_type: i8 [1..] = 1,
        pub cluster_id: String,
        pub controller_id: i32 = -1,
        pub brokers: Vec<DescribeClusterBroker>,
        pub cluster_authorized_operations: i32 = i32::MIN,
    }

    pub struct DescribeClusterBroker {
        pub broker_id: i32,
        pub host: String,
        pub port: i32,
        pub rack: Option<String> [0.., nullable 0..],
    }
}

impl Request for DescribeClusterRequest {
    const KEY: ApiKey = ApiKey::DescribeCluster;
    const VERSIONS: (i16, i16) = (0, 1);
    const FLEXIBLE_FROM: i16 = 0;
    type Response = DescribeClusterResponse;
}
