#!/usr/bin/env bash
# Broker memory against records stored: produces STEPS rounds of RECORDS records of SIZE bytes
# into one fresh broker (64 MiB segments, so that rolled segments pile up) and prints the
# broker's anonymous resident memory (its heap and stacks: RssAnon) and its file-backed
# resident memory (mapped index files and the binary: RssFile) after each round. The goal:
# RssAnon flat as the log grows.
#
# Usage: bench/memory.sh [records per round (default 1000000)] [rounds (default 4)] [record bytes (default 1024)] [partitions (default 12)]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RECORDS=${1:-1000000}
ROUNDS=${2:-4}
SIZE=${3:-1024}
PARTITIONS=${4:-12}
source bench/lib.sh
build_spate
BROKER_OVERRIDES="log.segment.bytes=67108864 ${BROKER_OVERRIDES:-}" start_broker

rss() { awk '/^(RssAnon|RssFile):/ {printf "%s %d MiB  ", $1, $2 / 1024}' "/proc/$BROKER_PID/status"; }
stored() { du -sm "$TMP/data" | cut -f1; }
echo "before: $(rss) stored 0 MiB"
for round in $(seq "$ROUNDS"); do
    timeout 600 "$SPATE_BIN" bench produce --bootstrap-server "127.0.0.1:$PORT" --topic memory --partitions "$PARTITIONS" \
        --record-size "$SIZE" --num-records "$RECORDS" --batch-size 262144 --linger-ms 5 --acks 1 >/dev/null
    echo "after round $round: $(rss) stored $(stored) MiB"
done
