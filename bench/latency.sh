#!/usr/bin/env bash
# p99 produce latency at half of the maximum throughput (issue 5's target: under 5 ms, acks=1),
# with `spate bench produce` (1 KiB records, one partition, BATCH_SIZE bytes per batch, default
# 256 KiB) against one fresh broker: an unthrottled run first gives the maximum, then ROUNDS
# runs are paced at half of it, each on its own topic. Prints each run's percentiles; the
# broker's own time for the same Produce requests (frame read to response written, which the
# broker logs on SIGUSR1); and what the machine itself did over the run: its steal time (this
# is a VM: time the host took the vCPUs away) and the worst stall a 1 ms sleep loop saw
# (bench/hiccup.py). A tail can so be told apart from the broker's and the machine's own.
#
# Memory: this VM hands memory the guest frees back to its host after a second or two, and a
# write into such memory costs several times one into memory just freed (see perf/stat.sh).
# WARM=1 (the default) writes and deletes a file as large as the coming run's bytes before
# each run (bench/lib.sh's warm_up), so that every run starts from the same state; WARM=0 runs
# from whatever state the machine is in. (A run longer than a few seconds outlives the warm-up:
# its later writes land in reclaimed memory again.)
#
# Usage: bench/latency.sh [records per run (default 1500000)] [rounds (default 3)]
# BROKER_OVERRIDES and SPATE_SKIP_BUILD as in bench/lib.sh. Every run is bounded by `timeout`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RECORDS=${1:-1500000}
ROUNDS=${2:-3}
SIZE=1024
WARM=${WARM:-1}
BATCH_SIZE=${BATCH_SIZE:-262144}

source bench/lib.sh
build_spate
start_broker

steal_ticks() { awk '/^cpu / {print $9}' /proc/stat; }
# The broker's own produce times since the last SIGUSR1 (which the broker answers by logging
# them per API and starting anew): "p50 p99 max" in ms, from the report this call asked for
# (waited for up to 10 s; "- - -" if it never came, or had no Produce request).
broker_produce_times() {
    local before lines
    before=$(grep -c 'request times' "$TMP/broker.log" || true)
    kill -USR1 "$BROKER_PID"
    for _ in $(seq 100); do
        (($(grep -c 'request times' "$TMP/broker.log" || true) > before)) && break
        sleep 0.1
    done
    sleep 0.2 # the report's other lines follow at once
    lines=$(tail -n +$((before + 1)) <(grep 'request times' "$TMP/broker.log") | grep 'api="Produce"' || true)
    if [[ -z $lines ]]; then echo "- - -"; return 0; fi
    echo "$lines" | tail -n1 | sed -E 's/.*p50_us=([0-9]+) p99_us=([0-9]+) p999_us=[0-9]+ max_us=([0-9]+).*/\1 \2 \3/' \
        | awk '{printf "%.2f %.2f %.2f", $1 / 1000, $2 / 1000, $3 / 1000}'
}
# One run: prints "records/s p50 p99 p99.9 max steal-seconds hiccup-p99.9 hiccup-max
# broker-p50 broker-p99 broker-max".
run() {
    local topic=$1 throughput=$2 s0 out seconds hiccup_pid
    warm_up $((RECORDS * SIZE / 1048576 + 64))
    broker_produce_times >/dev/null # starts the broker's count anew
    s0=$(steal_ticks)
    # The hiccup meter runs for the run's expected length (unthrottled: a guess of 10 s).
    seconds=$(awk -v n="$RECORDS" -v t="$throughput" 'BEGIN {print (t > 0 ? n / t : 10)}')
    python3 bench/hiccup.py "$seconds" >"$TMP/hiccup" &
    hiccup_pid=$!
    out=$(timeout 600 "$SPATE_BIN" bench produce --bootstrap-server "127.0.0.1:$PORT" --topic "$topic" --record-size "$SIZE" \
        --num-records "$RECORDS" --throughput "$throughput" --batch-size "$BATCH_SIZE" --acks 1 --json 2>"$TMP/run.err") \
        || { tail -n 3 "$TMP/run.err" >&2; kill "$hiccup_pid" 2>/dev/null || true; return 1; }
    wait "$hiccup_pid"
    python3 -c 'import json, sys; r = json.loads(sys.argv[1]); l = r["latency_ms"]; h = json.loads(sys.argv[3])
print("%.0f %.2f %.2f %.2f %.2f %.2f %.2f %.2f %s" % (r["records_per_sec"], l["p50"], l["p99"], l["p999"], l["max"], float(sys.argv[2]),
      h["p999_ms"], h["max_ms"], sys.argv[4]))' \
        "$out" "$(awk -v a="$s0" -v b="$(steal_ticks)" -v t="$(getconf CLK_TCK)" 'BEGIN {print (b - a) / t}')" "$(cat "$TMP/hiccup")" \
        "$(broker_produce_times)"
}

read -r max _ < <(run latency-max -1)
half=$((${max%.*} / 2))
echo "maximum (unthrottled, batch.size $BATCH_SIZE): $max records/s; each run below is paced at $half records/s ($RECORDS records)"
: >"$TMP/p99"
for r in $(seq "$ROUNDS"); do
    read -r rate p50 p99 p999 mx steal hp999 hmax bp50 bp99 bmax < <(run "latency-$r" "$half")
    echo "run $r: $rate records/s, latency ms p50 $p50, p99 $p99, p99.9 $p999, max $mx;" \
        "broker's own produce time ms p50 $bp50, p99 $bp99, max $bmax;" \
        "machine: steal ${steal} CPU-s, 1 ms sleeps late by p99.9 $hp999 ms, max $hmax ms"
    echo "$p99" >>"$TMP/p99"
done
echo "median p99 at half the maximum: $(median <"$TMP/p99") ms"
