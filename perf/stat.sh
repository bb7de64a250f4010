#!/usr/bin/env bash
# Broker CPU seconds per GiB produced and per GiB fetched, from the broker process's own CPU
# accounting (/proc/PID/stat: user + system, io_uring worker threads included), with librdkafka's
# rdkafka_performance as the load, and this machine's page-cache write cost measured in the same
# run as the floor to compare the produce figure with.
#
# On a VM, the first write into guest memory the hypervisor has not yet given the guest costs
# several times a write into memory already touched (measured here: 3.5 against 0.3 CPU-s/GiB
# for the same dd), so both figures swing from run to run with memory warmth: run it several
# times and compare figures from the same run, never one absolute value.
#
# Usage: perf/stat.sh [records (default 1000000)] [record bytes (default 1024)]
# Builds what it needs like bench/rdkafka-perf.sh. Every step is bounded by `timeout`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RECORDS=${1:-1000000}
SIZE=${2:-1024}

source bench/lib.sh
build_load_generator
start_broker

ticks=$(getconf CLK_TCK)
cpu_seconds() { awk -v t="$ticks" '{printf "%.3f", ($14 + $15) / t}' "/proc/$BROKER_PID/stat"; }
gib=$(awk -v n="$RECORDS" -v s="$SIZE" 'BEGIN {printf "%.4f", n * s / 2^30}')

before=$(cpu_seconds)
timeout 300 "$PERF_BIN" -P -t stat -b "127.0.0.1:$PORT" -s "$SIZE" -c "$RECORDS" -a 1 -X linger.ms=5 -X batch.size=1000000 -u >/dev/null 2>&1
produced=$(awk -v a="$before" -v b="$(cpu_seconds)" 'BEGIN {printf "%.3f", b - a}')

before=$(cpu_seconds)
timeout 300 "$PERF_BIN" -C -t stat -p 0 -o beginning -b "127.0.0.1:$PORT" -c "$RECORDS" -u >/dev/null 2>&1
fetched=$(awk -v a="$before" -v b="$(cpu_seconds)" 'BEGIN {printf "%.3f", b - a}')

# The floor: writing the same bytes into fresh page-cache pages (dd's system time).
floor=$( { /usr/bin/time -f "%S" dd if=/dev/zero of="$TMP/floor" bs=1M count=$((RECORDS * SIZE / 1048576)) status=none; } 2>&1 | tail -n1)
rm -f "$TMP/floor"

echo "records: $RECORDS x $SIZE bytes ($gib GiB)"
awk -v c="$produced" -v g="$gib" -v f="$floor" 'BEGIN {printf "produce: broker %.3f CPU-s (%.2f CPU-s/GiB); page-cache write floor %.2f CPU-s/GiB; ratio %.2f\n", c, c / g, f / g, c / f}'
awk -v c="$fetched" -v g="$gib" 'BEGIN {printf "fetch:   broker %.3f CPU-s (%.2f CPU-s/GiB)\n", c, c / g}'
