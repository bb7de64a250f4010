#!/usr/bin/env bash
# Runs every test of Spate: the unit and integration tests (`cargo test`: real librdkafka
# clients over real sockets against in-process and child-process brokers), then the
# cross-client interop script (kcat, confluent-kafka, kafka-python against the release binary).
# Installs what it needs itself (Debian's kcat, a Python virtualenv); needs Rust, gcc, make and
# Python 3 on the machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release --locked
cargo test --locked
scripts/interop.sh target/release/spate
