#!/usr/bin/env bash
# Produce and consume throughput of Spate measured with librdkafka's own load generator,
# rdkafka_performance, side by side with the same tool against librdkafka's in-process mock
# broker (its ceiling on this machine), in the same run.
#
# Memory: this VM hands memory the guest frees back to its host after a second or two, and page
# cache written into such memory costs several times more (perf/stat.sh), which the mock broker,
# writing nothing, never pays: later rounds then measure the hypervisor. WARM=1 (the default)
# writes and deletes a file as large as the round's bytes before each Spate run (bench/lib.sh's
# warm_up), so that every round starts from the same state; WARM=0 runs from whatever state
# the machine is in.
#
# Usage: bench/rdkafka-perf.sh [records (default 1000000)] [record bytes (default 1024)] [rounds (default 3)]
# Builds target/release/spate and rdkafka_performance (from the librdkafka source that the
# rdkafka-sys crate carries; cargo has it after `cargo test --no-run`). Prints one line per
# round and the medians; every run is bounded by `timeout`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RECORDS=${1:-1000000}
SIZE=${2:-1024}
ROUNDS=${3:-3}

source bench/lib.sh
build_load_generator
start_broker

# rdkafka_performance's last line: | elapsed | msgs | bytes | rtt | dr | dr_m/s | dr_MB/s | ...
rate() { tail -n1 | awk -F'|' '{gsub(/ /, ""); print $7, $8}'; }
common=(-s "$SIZE" -c "$RECORDS" -a 1 -X linger.ms=5 -X batch.size=1000000 -u)

: >"$TMP/spate" ; : >"$TMP/mock"
for r in $(seq "$ROUNDS"); do
    warm_up $((RECORDS * SIZE / 1048576 + 64))
    s=$(timeout 300 "$PERF_BIN" -P -t "bench-$r" -b "127.0.0.1:$PORT" "${common[@]}" 2>&1 | rate)
    m=$(timeout 300 "$PERF_BIN" -P -t "bench-$r" -X test.mock.num.brokers=1 "${common[@]}" 2>&1 | rate)
    echo "round $r: spate ${s% *} msgs/s (${s#* } MB/s), mock broker ${m% *} msgs/s (${m#* } MB/s)"
    echo "${s% *}" >>"$TMP/spate"; echo "${m% *}" >>"$TMP/mock"
done
spate=$(median <"$TMP/spate"); mock=$(median <"$TMP/mock")
echo "produce, $SIZE-byte records, acks=1, 1 partition: median spate $spate msgs/s, mock $mock msgs/s, ratio $(awk -v a="$spate" -v b="$mock" 'BEGIN {printf "%.2f", a/b}')"
c=$(timeout 300 "$PERF_BIN" -C -t bench-1 -p 0 -o beginning -b "127.0.0.1:$PORT" -c "$RECORDS" -u 2>&1 | tail -n2 | head -n1 | awk -F'|' '{gsub(/ /, ""); print $6, $7}')
echo "consume, from the beginning of bench-1: ${c% *} msgs/s (${c#* } MB/s)"
