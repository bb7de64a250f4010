#!/usr/bin/env bash
# Replication's cost, measured in one run: librdkafka's rdkafka_performance producing to
#   (a) one broker, acks=1 (no replication), and
#   (b) a three-node cluster on this machine (scripts/cluster.sh), a topic of replication factor
#       3 and min.insync.replicas=2, acks=all: every record is written three times and each
#       acknowledgement waits for the followers' fetches,
# each round printing throughput and the brokers' CPU-seconds per GiB produced (utime + stime
# of every broker process, from /proc, over the produce), and the medians and ratios at the
# end. On a 2-core machine the three brokers and the load generator share the cores, so (b) is
# what three brokers cost together, not what a cluster of three machines would do.
#
# Usage: bench/cluster.sh [records (default 500000)] [record bytes (default 1024)] [rounds (default 3)]
# Memory: WARM=1 (default) writes and deletes a file as large as a round's bytes times the
# replication before each run (bench/lib.sh's warm_up); WARM=0 does not.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RECORDS=${1:-500000}
SIZE=${2:-1024}
ROUNDS=${3:-3}

source bench/lib.sh
build_load_generator
start_broker
CLUSTER_DIR="$TMP/cluster"
export SPATE_BIN SPATE_CLUSTER_DIR="$CLUSTER_DIR"
trap 'scripts/cluster.sh stop >/dev/null 2>&1 || true; kill $BROKER_PID 2>/dev/null || true; wait $BROKER_PID 2>/dev/null || true; rm -rf "$TMP"' EXIT
scripts/cluster.sh start 3 >/dev/null
"$SPATE_BIN" topics --bootstrap-server 127.0.0.1:9092 --create --topic warmup --partitions 1 --replication-factor 3 >/dev/null

# CPU ticks (utime + stime) of these pids, summed.
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
HZ=$(getconf CLK_TCK)
rate() { tail -n1 | awk -F'|' '{gsub(/ /, ""); print $7, $8}'; }
common=(-s "$SIZE" -c "$RECORDS" -X linger.ms=5 -X batch.size=1000000 -u)
gib=$(awk -v r="$RECORDS" -v s="$SIZE" 'BEGIN {print r * s / 1073741824}')
cluster_pids=$(cat "$CLUSTER_DIR"/node-*.pid)

: >"$TMP/single"; : >"$TMP/replicated"; : >"$TMP/single_cpu"; : >"$TMP/replicated_cpu"
for r in $(seq "$ROUNDS"); do
    warm_up $((RECORDS * SIZE / 1048576 + 64))
    before=$(ticks "$BROKER_PID")
    s=$(timeout 300 "$PERF_BIN" -P -t "single-$r" -b "127.0.0.1:$PORT" -a 1 "${common[@]}" 2>&1 | rate)
    single_cpu=$(awk -v t=$(( $(ticks "$BROKER_PID") - before )) -v hz="$HZ" -v g="$gib" 'BEGIN {printf "%.2f", t / hz / g}')
    "$SPATE_BIN" topics --bootstrap-server 127.0.0.1:9092 --create --topic "rf3-$r" --partitions 1 --replication-factor 3 --config min.insync.replicas=2 >/dev/null
    warm_up $((3 * RECORDS * SIZE / 1048576 + 64))
    # shellcheck disable=SC2086
    before=$(ticks $cluster_pids)
    c=$(timeout 600 "$PERF_BIN" -P -t "rf3-$r" -b 127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094 -a -1 "${common[@]}" 2>&1 | rate)
    # shellcheck disable=SC2086
    replicated_cpu=$(awk -v t=$(( $(ticks $cluster_pids) - before )) -v hz="$HZ" -v g="$gib" 'BEGIN {printf "%.2f", t / hz / g}')
    echo "round $r: one broker acks=1 ${s% *} msgs/s (${s#* } MB/s, $single_cpu CPU-s/GiB); RF=3 acks=all ${c% *} msgs/s (${c#* } MB/s, $replicated_cpu CPU-s/GiB, all three brokers)"
    echo "${s% *}" >>"$TMP/single"; echo "${c% *}" >>"$TMP/replicated"
    echo "$single_cpu" >>"$TMP/single_cpu"; echo "$replicated_cpu" >>"$TMP/replicated_cpu"
done
s=$(median <"$TMP/single"); c=$(median <"$TMP/replicated")
sc=$(median <"$TMP/single_cpu"); cc=$(median <"$TMP/replicated_cpu")
echo "produce, $SIZE-byte records, 1 partition: median one broker acks=1 $s msgs/s ($sc CPU-s/GiB), RF=3 acks=all $c msgs/s ($cc CPU-s/GiB); throughput ratio $(awk -v a="$c" -v b="$s" 'BEGIN {printf "%.2f", a/b}'), CPU ratio $(awk -v a="$cc" -v b="$sc" 'BEGIN {printf "%.2f", a/b}')"
