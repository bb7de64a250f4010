#!/usr/bin/env bash
# Runs every test of Spate: the unit and integration tests (`cargo test`: real librdkafka
# clients over real sockets against in-process and child-process brokers), then the
# cross-client interop script (kcat, confluent-kafka, kafka-python against the release binary),
# then the seeds' quickstart with those clients on a 3-broker cluster, its partition 0 leader
# killed with kill -9 and restarted (scripts/cluster-interop.sh), then Apache Kafka's own
# kafka-dump-log on Spate's segment files (scripts/dump-log-check.sh),
# then every message definition against Kafka's own schemas, the JSON files inside the pinned
# kafka-clients jar (scripts/schema-check.py).
# Installs what it needs itself (Debian's kcat, a Python virtualenv, Kafka's jars with Maven);
# needs Rust, gcc, make, Python 3, Java 17 and Maven on the machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release --locked
cargo test --locked
scripts/interop.sh target/release/spate
scripts/cluster-interop.sh target/release/spate
scripts/dump-log-check.sh target/release/spate
python3 scripts/schema-check.py --quiet
