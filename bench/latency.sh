#!/usr/bin/env bash
# p99 produce latency at half of the maximum throughput (issue 5's target: under 5 ms, acks=1),
# with `spate bench produce` (1 KiB records, one partition, 256 KiB batches) against one fresh
# broker: an unthrottled run first gives the maximum, then ROUNDS runs are paced at half of it,
# each on its own topic. Prints each run's percentiles, the machine's steal time over the run
# (this is a VM: time the host took the vCPUs away shows up as latency), and the medians.
#
# Memory: this VM hands memory the guest frees back to its host after a second or two, and a
# write into such memory costs several times one into memory just freed (see perf/stat.sh).
# WARM=1 (the default) writes and deletes a file as large as the coming run's bytes before
# each run, so that every run starts from the same state; WARM=0 runs from whatever state the
# machine is in.
#
# Usage: bench/latency.sh [records per run (default 1500000)] [rounds (default 3)]
# BROKER_OVERRIDES and SPATE_SKIP_BUILD as in bench/lib.sh. Every run is bounded by `timeout`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RECORDS=${1:-1500000}
ROUNDS=${2:-3}
SIZE=1024
WARM=${WARM:-1}

source bench/lib.sh
build_spate
start_broker

warm_up() {
    [[ $WARM == 1 ]] || return 0
    dd if=/dev/zero of="$TMP/warm" bs=1M count=$((RECORDS * SIZE / 1048576 + 64)) status=none
    rm -f "$TMP/warm"
}
steal_ticks() { awk '/^cpu / {print $9}' /proc/stat; }
# One run: prints "records/s p50 p99 p99.9 max steal-seconds".
run() {
    local topic=$1 throughput=$2 s0 out
    warm_up
    s0=$(steal_ticks)
    out=$(timeout 600 "$SPATE_BIN" bench produce --bootstrap-server "127.0.0.1:$PORT" --topic "$topic" --record-size "$SIZE" \
        --num-records "$RECORDS" --throughput "$throughput" --batch-size 262144 --acks 1 --json 2>"$TMP/run.err") \
        || { tail -n 3 "$TMP/run.err" >&2; return 1; }
    python3 -c 'import json, sys; r = json.loads(sys.argv[1]); l = r["latency_ms"]
print("%.0f %.2f %.2f %.2f %.2f %.2f" % (r["records_per_sec"], l["p50"], l["p99"], l["p999"], l["max"], float(sys.argv[2])))' \
        "$out" "$(awk -v a="$s0" -v b="$(steal_ticks)" -v t="$(getconf CLK_TCK)" 'BEGIN {print (b - a) / t}')"
}

read -r max _ < <(run latency-max -1)
half=$((${max%.*} / 2))
echo "maximum (unthrottled): $max records/s; each run below is paced at $half records/s ($RECORDS records)"
: >"$TMP/p99"
for r in $(seq "$ROUNDS"); do
    read -r rate p50 p99 p999 mx steal < <(run "latency-$r" "$half")
    echo "run $r: $rate records/s, latency ms p50 $p50, p99 $p99, p99.9 $p999, max $mx; steal ${steal} CPU-s"
    echo "$p99" >>"$TMP/p99"
done
echo "median p99 at half the maximum: $(sort -n "$TMP/p99" | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}') ms"
