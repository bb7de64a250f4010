#!/usr/bin/env bash
# Broker CPU seconds per GiB produced and per GiB fetched, from the broker process's own CPU
# accounting (/proc/PID/stat: user + system, io_uring worker threads included), with librdkafka's
# rdkafka_performance as the load, and this machine's floors for the same bytes measured in the
# same run (`spate bench baseline`): receive + page-cache write for produce, sendfile for fetch.
#
# On a VM, the first write into guest memory the hypervisor has taken back costs several times
# a write into memory just freed (measured here: 3.5 against 0.3 CPU-s/GiB for the same dd), so
# each produce and its floor are measured twice, cold and warm (see below); run it several
# times and compare figures from the same run, never one absolute value.
#
# With --callgrind, instead: the broker's instructions per record produced, counted by valgrind
# (callgrind) on a broker started under it, with `spate bench produce` as the load. Valgrind runs
# the broker ~50x slower, hence few records. A 1000-record produce first creates the topic and
# warms up; callgrind's counters are zeroed (callgrind_control -z) just before the measured
# produce and dumped (-d) just after it, so the count is that produce's alone (its connection
# and metadata requests included). User-space instructions only: the kernel's side (socket,
# page-cache copy) is not in it. The dump stays in perf/out/ (kcachegrind reads it; written with
# --compress-strings=no so that the awk below can read function names).
# The broker runs with one shard (shards=1): valgrind runs one thread at a time and a shard
# thread waiting in io_uring_enter keeps the others from running (with two shards, requests that
# cross shards stalled for tens of seconds), so this is one shard's path, without cross-shard
# forwarding.
#
# Usage: perf/stat.sh [records (default 1000000)] [record bytes (default 1024)]
#        perf/stat.sh --callgrind [records (default 20000)] [record bytes (default 1024)]
# Builds what it needs like bench/rdkafka-perf.sh (SPATE_SKIP_BUILD=1 skips building spate).
# Every step is bounded by `timeout`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CALLGRIND=0
if [[ ${1:-} == --callgrind ]]; then CALLGRIND=1; shift; fi
if [[ $CALLGRIND == 1 ]]; then RECORDS=${1:-20000}; else RECORDS=${1:-1000000}; fi
SIZE=${2:-1024}

source bench/lib.sh

if [[ $CALLGRIND == 1 ]]; then
    { command -v valgrind && command -v callgrind_control; } >/dev/null 2>&1 || scripts/install-perf-tools.sh valgrind
    build_spate
    OUT=perf/out
    mkdir -p "$OUT"
    rm -f "$OUT"/callgrind.out*
    BROKER_OVERRIDES=shards=1 BROKER_START_SECONDS=120 start_broker valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$OUT/callgrind.out"
    produce() {
        timeout 600 "$SPATE_BIN" bench produce --bootstrap-server "127.0.0.1:$PORT" --topic callgrind --partitions 1 \
            --record-size "$SIZE" --num-records "$1" --acks 1 --batch-size 262144 --linger-ms 5 --json 2>"$TMP/produce.err" \
            || { cat "$TMP/produce.err" >&2; return 1; }
    }
    produce 1000 >/dev/null
    timeout 60 callgrind_control -z "$BROKER_PID" >/dev/null 2>&1
    result=$(produce "$RECORDS")
    timeout 300 callgrind_control -d "$BROKER_PID" >/dev/null 2>&1
    dump=$(ls -t "$OUT"/callgrind.out.* | head -n1)
    # The dump's "summary:" line is the total of its events, instructions (Ir) by default.
    instructions=$(awk '/^summary:/ {print $2}' "$dump")
    acked=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["records"])' "$result")
    [[ $acked == "$RECORDS" ]] || echo "warning: $acked of $RECORDS records acknowledged" >&2
    echo "records: $RECORDS x $SIZE bytes, acks=1, 1 partition, one-shard broker under valgrind --tool=callgrind"
    awk -v i="$instructions" -v r="$RECORDS" -v s="$SIZE" 'BEGIN {printf "callgrind: %d broker instructions, %.0f per record, %.2f per byte (user space only)\n", i, i / r, i / (r * s)}'
    # Where they go: self instructions per function, summed from the dump's cost lines (a cost
    # line right after calls= is the call's inclusive cost, not the caller's own: skipped).
    # (valgrind 3.19's callgrind_annotate puts this dump's whole cost under clone, hence awk.)
    echo "top functions by own instructions (per record):"
    awk -v r="$RECORDS" '/^fn=/ {fn = substr($0, 4); next} /^calls=/ {skip = 1; next} /^[a-z]+=/ {next}
        /^[0-9+*-]/ {if (skip) {skip = 0; next} if (NF >= 2) cost[fn] += $2}
        END {for (f in cost) printf "%12d %8.1f  %s\n", cost[f], cost[f] / r, f}' "$dump" | sort -rn | awk 'NR <= 10' | cut -c1-160
    echo "dump: $dump (kcachegrind or qcachegrind open it)"
    exit 0
fi

build_load_generator
start_broker

ticks=$(getconf CLK_TCK)
cpu_seconds() { awk -v t="$ticks" '{printf "%.3f", ($14 + $15) / t}' "/proc/$BROKER_PID/stat"; }
gib=$(awk -v n="$RECORDS" -v s="$SIZE" 'BEGIN {printf "%.4f", n * s / 2^30}')

# This VM hands memory the guest frees back to its host after a second or two (measured: a dd
# into pages freed 1 s before cost 0.18 CPU-s per 512 MiB, 3 s or more before 1.03-1.07), so
# the same writes cost several times more into "cold" memory than into "warm". Each produce
# and its floor are measured in both states, on purpose: cold after a 5 s pause, warm right
# after writing and deleting a file as large as what is about to be written.
MIB=$((RECORDS * SIZE / 1048576 + 64))
produce() {
    local before
    before=$(cpu_seconds)
    # (Inside $(...) set -e does not apply: a failed run must fail the script by hand.)
    timeout 300 "$PERF_BIN" -P -t "$1" -b "127.0.0.1:$PORT" -s "$SIZE" -c "$RECORDS" -a 1 -X linger.ms=5 -X batch.size=1000000 -u >/dev/null 2>&1 \
        || { echo "rdkafka_performance failed producing to $1" >&2; return 1; }
    awk -v a="$before" -v b="$(cpu_seconds)" 'BEGIN {printf "%.3f", b - a}'
}
# The floors for the same bytes (`spate bench baseline`, whose page-cache write comes first):
# receiving them from a loopback socket plus writing them into fresh page-cache pages
# (produce), and sendfile of a cached file to a loopback socket (fetch).
floors() {
    timeout 300 "$SPATE_BIN" bench baseline --gib "$gib" --dir "$TMP" --json | python3 -c 'import json, sys; b = json.load(sys.stdin)
print(b["produce_floor_cpu_seconds_per_gib"], b["page_cache_write_cpu_seconds_per_gib"], b["fetch_floor_cpu_seconds_per_gib"])'
}

sleep 5
produced_cold=$(produce stat) || exit 1
sleep 5
read -r floor_cold write_cold fetch_floor_cold < <(floors)
WARM=1 warm_up "$MIB"
produced_warm=$(produce stat-warm) || exit 1
WARM=1 warm_up "$MIB"
read -r floor_warm write_warm fetch_floor_warm < <(floors)

before=$(cpu_seconds)
timeout 300 "$PERF_BIN" -C -t stat -p 0 -o beginning -b "127.0.0.1:$PORT" -c "$RECORDS" -u >/dev/null 2>&1
fetched=$(awk -v a="$before" -v b="$(cpu_seconds)" 'BEGIN {printf "%.3f", b - a}')

echo "records: $RECORDS x $SIZE bytes ($gib GiB)"
report() {
    awk -v m="$1" -v c="$2" -v g="$gib" -v f="$3" -v w="$4" 'BEGIN {printf "produce, %s memory: broker %.3f CPU-s (%.2f CPU-s/GiB); floor %.2f CPU-s/GiB (page-cache write %.2f of it); ratio %.2f\n", m, c, c / g, f, w, c / g / f}'
}
report cold "$produced_cold" "$floor_cold" "$write_cold"
report warm "$produced_warm" "$floor_warm" "$write_warm"
fetch_floor=$(awk -v a="$fetch_floor_cold" -v b="$fetch_floor_warm" 'BEGIN {print (a < b ? a : b)}')
awk -v c="$fetched" -v g="$gib" -v f="$fetch_floor" 'BEGIN {printf "fetch: broker %.3f CPU-s (%.2f CPU-s/GiB); sendfile floor %.2f CPU-s/GiB (the lower of two); ratio %.2f\n", c, c / g, f, c / g / f}'
