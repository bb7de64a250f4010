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

cargo build --release --locked -q
out=$(ls -d target/debug/build/rdkafka-sys-*/out 2>/dev/null | head -n1 || true)
if [[ -z $out || ! -f $out/src/librdkafka.a ]]; then
    cargo test --no-run --locked -q
    out=$(ls -d target/debug/build/rdkafka-sys-*/out | head -n1)
fi
perf_bin=$out/examples/rdkafka_performance
[[ -x $perf_bin ]] || make -s -C "$out/examples" rdkafka_performance >/dev/null

tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
target/release/spate broker --override "log.dirs=$tmp/data" --override "listeners=PLAINTEXT://127.0.0.1:$port" 2>"$tmp/broker.log" &
broker=$!
trap 'kill $broker 2>/dev/null || true; wait $broker 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done

ticks=$(getconf CLK_TCK)
cpu_seconds() { awk -v t="$ticks" '{printf "%.3f", ($14 + $15) / t}' "/proc/$broker/stat"; }
gib=$(awk -v n="$RECORDS" -v s="$SIZE" 'BEGIN {printf "%.4f", n * s / 2^30}')

before=$(cpu_seconds)
timeout 300 "$perf_bin" -P -t stat -b "127.0.0.1:$port" -s "$SIZE" -c "$RECORDS" -a 1 -X linger.ms=5 -X batch.size=1000000 -u >/dev/null 2>&1
produced=$(awk -v a="$before" -v b="$(cpu_seconds)" 'BEGIN {printf "%.3f", b - a}')

before=$(cpu_seconds)
timeout 300 "$perf_bin" -C -t stat -p 0 -o beginning -b "127.0.0.1:$port" -c "$RECORDS" -u >/dev/null 2>&1
fetched=$(awk -v a="$before" -v b="$(cpu_seconds)" 'BEGIN {printf "%.3f", b - a}')

# The floor: writing the same bytes into fresh page-cache pages (dd's system time).
floor=$( { /usr/bin/time -f "%S" dd if=/dev/zero of="$tmp/floor" bs=1M count=$((RECORDS * SIZE / 1048576)) status=none; } 2>&1 | tail -n1)
rm -f "$tmp/floor"

echo "records: $RECORDS x $SIZE bytes ($gib GiB)"
awk -v c="$produced" -v g="$gib" -v f="$floor" 'BEGIN {printf "produce: broker %.3f CPU-s (%.2f CPU-s/GiB); page-cache write floor %.2f CPU-s/GiB; ratio %.2f\n", c, c / g, f / g, c / f}'
awk -v c="$fetched" -v g="$gib" 'BEGIN {printf "fetch:   broker %.3f CPU-s (%.2f CPU-s/GiB)\n", c, c / g}'
