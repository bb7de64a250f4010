#!/usr/bin/env bash
# The standard produce matrix, written up as a Markdown table and a latency plot.
#
# On one fresh broker: `spate bench baseline --gib 1` once (this machine's loopback TCP,
# page-cache write and sendfile ceilings, and the produce floor), then `spate bench produce
# --json` for every combination of
#   record size 1024 and 100 bytes  x  acks 1 and all  x  partitions 1 and 12  x  producers 1 and 4
# (16 runs, each on its own topic so the partition count applies), all with --batch-size 262144
# --linger-ms 5. Per run it also takes the broker's CPU seconds from /proc/PID/stat (user +
# system, io_uring workers included, as perf/stat.sh does) and divides them by the GiB produced.
#
# Writes bench/results/matrix-<date>.md (the table, the baseline, the command, the date),
# bench/results/latency-<date>.svg (bench/plot_latency.py: p50..max per run, log scale) and
# bench/results/matrix-<date>.jsonl (each run's JSON, to re-plot or compare later).
# <date> is UTC, to the minute, so a second run on the same day does not overwrite the first.
#
# Usage: bench/matrix.sh [records per run (default 200000)]
# Builds target/release/spate first (SPATE_SKIP_BUILD=1 skips that). Every run is bounded by
# `timeout` (300 s); a run that fails or times out is reported as such and the matrix goes on.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RECORDS=${1:-200000}
BATCH_SIZE=262144
LINGER_MS=5
RUN_TIMEOUT=300

source bench/lib.sh
build_spate
start_broker

STAMP=$(date -u +%Y-%m-%d-%H%M)
OUT_DIR=bench/results
MD=$OUT_DIR/matrix-$STAMP.md
SVG=$OUT_DIR/latency-$STAMP.svg
RUNS=$OUT_DIR/matrix-$STAMP.jsonl
mkdir -p "$OUT_DIR"
: >"$RUNS"

ticks=$(getconf CLK_TCK)
cpu_seconds() { awk -v t="$ticks" '{printf "%.3f", ($14 + $15) / t}' "/proc/$BROKER_PID/stat"; }

echo "baseline (spate bench baseline --gib 1) ..."
BASELINE=$(timeout "$RUN_TIMEOUT" "$SPATE_BIN" bench baseline --gib 1 --json)

for size in 1024 100; do
    for acks in 1 all; do
        for partitions in 1 12; do
            for producers in 1 4; do
                label="size=$size acks=$acks partitions=$partitions producers=$producers"
                topic="matrix-$size-$acks-$partitions-$producers"
                before=$(cpu_seconds)
                rc=0
                result=$(timeout "$RUN_TIMEOUT" "$SPATE_BIN" bench produce --bootstrap-server "127.0.0.1:$PORT" \
                    --topic "$topic" --partitions "$partitions" --record-size "$size" --num-records "$RECORDS" \
                    --acks "$acks" --producers "$producers" --batch-size "$BATCH_SIZE" --linger-ms "$LINGER_MS" \
                    --json 2>"$TMP/run.err") || rc=$?
                after=$(cpu_seconds)
                [[ $rc == 0 ]] || { echo "  $label: failed (exit $rc)"; tail -n 3 "$TMP/run.err" >&2; result='{}'; }
                # One line per run: the parameters, the bench's JSON, the broker's CPU seconds.
                LABEL=$label RESULT=$result RC=$rc CPU=$(awk -v a="$before" -v b="$after" 'BEGIN {print b - a}') \
                SIZE=$size ACKS=$acks PARTITIONS=$partitions PRODUCERS=$producers python3 -c '
import json, os
e = os.environ
run = json.loads(e["RESULT"] or "{}")
run.update(label=e["LABEL"], rc=int(e["RC"]), broker_cpu_seconds=float(e["CPU"]), size=int(e["SIZE"]),
           acks=e["ACKS"], partitions=int(e["PARTITIONS"]), producers=int(e["PRODUCERS"]))
print(json.dumps(run))' >>"$RUNS"
                if [[ $rc == 0 ]]; then
                    echo "  $label: $(tail -n1 "$RUNS" | python3 -c 'import json, sys; r = json.load(sys.stdin)
print("%.0f records/s, %.1f MB/s, p99 %.2f ms" % (r["records_per_sec"], r["mb_per_sec"], r["latency_ms"]["p99"]))')"
                fi
            done
        done
    done
done

# The write-up: table, baseline, command and date.
COMMAND="bench/matrix.sh $RECORDS"
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
SVG_NAME=$(basename "$SVG")
HOST="$(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), Linux $(uname -r)"
REV="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
export COMMAND DATE BASELINE RECORDS BATCH_SIZE LINGER_MS SVG_NAME HOST REV
python3 - "$RUNS" >"$MD" <<'PY'
import json, os, sys
e = os.environ
base = json.loads(e["BASELINE"])
tcp = base["loopback_tcp_mb_per_sec"]
runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print(f"# Produce matrix, {e['DATE']}\n")
print(f"Command: `{e['COMMAND']}` ({e['RECORDS']} records per run), each run being")
print(f"`spate bench produce --record-size SIZE --acks ACKS --partitions PARTITIONS --producers PRODUCERS "
      f"--num-records {e['RECORDS']} --batch-size {e['BATCH_SIZE']} --linger-ms {e['LINGER_MS']} --json` on its own topic,")
print("against one fresh broker (`target/release/spate broker`, 127.0.0.1).\n")
print(f"Date: {e['DATE']}. Machine: {e['HOST']}. Revision: {e['REV']}.\n")
print(f"## Results (batch.size {e['BATCH_SIZE']}, linger.ms {e['LINGER_MS']})\n")
print("Broker CPU-s/GiB: the broker process's user + system CPU seconds over the run (/proc/PID/stat),")
print("per GiB of record values produced, counted in 1/CLK_TCK ticks (10 ms), so coarse for runs under")
print("a few seconds; client CPU-s/GiB is `spate bench produce`'s own figure.")
print("Latency is send-to-acknowledgement.\n")
print("| size (B) | acks | partitions | producers | records/s | MB/s | % of loopback TCP | p50 ms | p99 ms | p99.9 ms | broker CPU-s/GiB | client CPU-s/GiB |")
print("|---:|:---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in runs:
    head = f"| {r['size']} | {r['acks']} | {r['partitions']} | {r['producers']} |"
    if r["rc"] != 0 or "records_per_sec" not in r:
        print(head + f" failed (exit {r['rc']}{', timed out' if r['rc'] == 124 else ''}) |" + " |" * 7)
        continue
    lat, gib = r["latency_ms"], r["bytes"] / 2**30
    errors = f" ({r['errors']} errors)" if r.get("errors") else ""
    print(head + f" {r['records_per_sec']:.0f}{errors} | {r['mb_per_sec']:.1f} | {100 * r['mb_per_sec'] / tcp:.1f} |"
          f" {lat['p50']:.2f} | {lat['p99']:.2f} | {lat['p999']:.2f} |"
          f" {r['broker_cpu_seconds'] / gib:.2f} | {r['client_cpu_seconds_per_gib']:.2f} |")
print("\n## Baseline (`spate bench baseline --gib 1`)\n")
print(f"- loopback TCP, one stream: {tcp:.0f} MB/s; sender {base['loopback_tcp_sender_cpu_seconds_per_gib']:.2f}, "
      f"receiver {base['loopback_tcp_receiver_cpu_seconds_per_gib']:.2f} CPU-s/GiB")
print(f"- page-cache write, fresh pages: {base['page_cache_write_mb_per_sec']:.0f} MB/s, {base['page_cache_write_cpu_seconds_per_gib']:.2f} CPU-s/GiB")
print(f"- sendfile from the page cache to loopback: {base['sendfile_mb_per_sec']:.0f} MB/s, sender {base['sendfile_sender_cpu_seconds_per_gib']:.2f} CPU-s/GiB")
print(f"- produce floor (receive + write): {base['produce_floor_cpu_seconds_per_gib']:.2f} CPU-s/GiB")
print("\nOn a VM, first-touch writes into guest memory cost several times writes into memory already")
print("touched (see perf/stat.sh), so CPU-s/GiB figures move with memory warmth: compare figures")
print("from the same run.")
print(f"\n## Latency percentiles\n\n![latency percentiles]({e['SVG_NAME']})")
PY

python3 bench/plot_latency.py "$RUNS" "$SVG" "spate bench produce, $RECORDS records per run: send-to-ack latency"
echo "wrote $MD, $SVG and $RUNS"
