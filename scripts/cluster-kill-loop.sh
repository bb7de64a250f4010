#!/usr/bin/env bash
# The long cluster campaign: three real broker processes, a topic of replication factor 3 and
# min.insync.replicas=2, an idempotent acks=all librdkafka load, and in each cycle the leader of
# partition 0 killed with kill -9 while records flow, then restarted once a new leader took
# over; at the end every acknowledged record must be read back exactly once, at the offset it
# was acknowledged at, and every replica's log must be a prefix of the longest. CI runs 3
# cycles; this runs N (default 100). Prints each cycle's failover time and the totals.
#
#   scripts/cluster-kill-loop.sh [cycles]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export SPATE_CLUSTER_KILL_CYCLES=${1:-100}
timeout $((SPATE_CLUSTER_KILL_CYCLES * 60 + 300)) cargo test --test it -- cluster::acknowledged_records_survive --nocapture --test-threads 1 2>&1 | grep -E 'cycle|kill -9 cycles|panicked|test result'
