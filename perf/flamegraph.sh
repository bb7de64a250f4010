#!/usr/bin/env bash
# A CPU flamegraph of the broker under load, and perf's top-30 symbols.
#
# Usage: perf/flamegraph.sh [--fetch] [seconds (default 20)]
#   produce (default): `spate bench produce` runs for the whole recording;
#   --fetch:           records are produced first (FETCH_RECORDS, default 500000), then
#                      `spate bench consume` reads them from the beginning again and again.
# Environment: RECORD_SIZE (1024), PARTITIONS (12 for produce, 1 for --fetch), PRODUCERS (1)
#              shape the load (`spate bench consume` reads a 12-partition topic at ~2 MB/s today,
#              while kcat reads it at full speed: a client-side problem, so --fetch uses 1);
#              SPATE_SKIP_BUILD=1 profiles target/release/spate as it is instead of building.
# Writes perf/out/flamegraph-<mode>.svg, perf/out/top30-<mode>.txt (`perf report --no-children
# --sort symbol`), and keeps perf/out/perf-<mode>.data and stacks-<mode>.folded for a closer look.
#
# How it profiles: `perf record -e cpu-clock -F 999 -p BROKER_PID` (a software clock: this VM
# has no hardware counters), only the broker process, load generator excluded. The build is
# `cargo build --profile profiling` with RUSTFLAGS="-C force-frame-pointers=yes" (full debug
# info), so stacks come from frame pointers (`-g`). With SPATE_SKIP_BUILD=1 the release binary
# has no frame pointers (and line tables only), so stacks are unwound from copies of the stack
# (`--call-graph dwarf`): bigger perf.data, slower `perf script`, same picture. Folding and
# drawing is inferno's (inferno-collapse-perf, inferno-flamegraph), installed into .tools/ with
# `cargo install` when missing.
#
# How to read the flamegraph: each box is a function; its width is its share of the broker's
# CPU time (samples in it or in what it called): not a duration, and left-to-right order is
# alphabetical, not time. Stacks grow bottom-up: the bottom box of a tower is the thread's name
# (spate-shard-N, iou-wrk-PID), each box's caller is the box below it, and the top edge is where
# the CPU actually was; a box wider than everything on top of it spends that difference itself.
# Click a box to zoom, Ctrl-F to search (the matches' total share shows bottom right).
# The broker's frames (names as in src/):
#   - spate-shard-N: one thread per shard, each a compio runtime on io_uring, under
#     spate::server::run_shard. Two kinds of towers above compio_runtime::Runtime:
#       * compio_driver::Proactor::poll -> ...iour::Driver::submit_auto -> syscall ->
#         __do_sys_io_uring_enter: io_uring submission (io_submit_sqes; socket sends and
#         receives run inline there: io_sendmsg -> tcp_sendmsg, io_recv) and waiting for
#         completions (io_cqring_wait -> schedule, i.e. idle);
#       * the tasks. An async fn shows as its future's poll, `path::fn::{{closure}}`, and what
#         the compiler inlined into it as `{async_fn#0}<...>` frames, so several functions share
#         one box. spate::net::connection::serve::{{closure}} is a connection: its reader
#         (read_requests, splitting frames with net::frame::next_frame, calling
#         spate::broker::dispatch) and writer (write_responses, write_response, write_all);
#         spate::broker::produce::dispatch::{{closure}} validates batches
#         (protocol::record_batch::validate, crc32c::...) and hands them to the owning shard
#         (spate::shard::Shard::call); spate::storage::log::PartitionLog::append / commit
#         is the partition's single writer (writer_loop -> write_group -> commit: groups queued
#         appends, stamps offsets into header copies, one writev per group through
#         io::file::LogFile::write_all_at); spate::broker::fetch::read_all and
#         storage::log::PartitionLog::read locate what a fetch sends.
#   - iou-wrk-PID: io_uring's kernel worker threads (kernel frames only, not linked to the task
#     that queued the work). The buffered segment writes run there (io_wq_worker -> io_write ->
#     ext4_buffered_write_iter -> copy_folio_from_iter_atomic: the copy into the page cache,
#     the widest tower under produce load), and so do the splices of fetch responses, which
#     spate::io::splice::PipePool::send_file / splice_chunk queue (io_splice -> do_splice ->
#     filemap_splice_read / splice_to_socket: file -> pipe -> socket, no copy through user
#     space; the widest tower under --fetch).
# Kernel frames show only if perf may see them (kernel.perf_event_paranoid <= 1, or root).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MODE=produce
if [[ ${1:-} == --fetch ]]; then MODE=fetch; shift; fi
DURATION=${1:-20}
RECORD_SIZE=${RECORD_SIZE:-1024}
if [[ $MODE == fetch ]]; then PARTITIONS=${PARTITIONS:-1}; else PARTITIONS=${PARTITIONS:-12}; fi
PRODUCERS=${PRODUCERS:-1}
FETCH_RECORDS=${FETCH_RECORDS:-500000}
INFERNO_VERSION=0.12.3
OUT=perf/out
mkdir -p "$OUT"

source bench/lib.sh

# Tools: perf from apt, inferno from crates.io into .tools/ (a cargo build: only when missing).
timeout 10 perf --version >/dev/null 2>&1 || scripts/install-perf-tools.sh perf
INFERNO=.tools/bin
if [[ ! -x $INFERNO/inferno-flamegraph || ! -x $INFERNO/inferno-collapse-perf ]]; then
    if [[ ${SPATE_SKIP_BUILD:-0} == 1 ]]; then
        echo "inferno is not in $INFERNO and SPATE_SKIP_BUILD=1: no SVG this time; would run:"
        echo "  cargo install inferno --locked --version $INFERNO_VERSION --root .tools"
        INFERNO=
    else
        cargo install inferno --locked --version "$INFERNO_VERSION" --root .tools -q
    fi
fi

# The binary: a frame-pointer build with full debug info, or the release binary as it is.
if [[ ${SPATE_SKIP_BUILD:-0} == 1 ]]; then
    SPATE_BIN=target/release/spate
    CALL_GRAPH=(--call-graph dwarf)
else
    RUSTFLAGS="-C force-frame-pointers=yes" cargo build --profile profiling --locked -q
    SPATE_BIN=target/profiling/spate
    CALL_GRAPH=(-g)
fi
[[ -x $SPATE_BIN ]] || { echo "$SPATE_BIN is missing" >&2; exit 1; }
start_broker
BOOTSTRAP=(--bootstrap-server "127.0.0.1:$PORT")

# The load, in the background, running a little longer than the recording on both ends.
if [[ $MODE == produce ]]; then
    timeout $((DURATION + 60)) "$SPATE_BIN" bench produce "${BOOTSTRAP[@]}" --topic flame --partitions "$PARTITIONS" \
        --record-size "$RECORD_SIZE" --producers "$PRODUCERS" --duration $((DURATION + 3)) \
        --batch-size 262144 --linger-ms 5 --reporting-interval 3600 >"$TMP/load.out" 2>&1 &
else
    echo "preloading $FETCH_RECORDS records of $RECORD_SIZE bytes ..."
    timeout 300 "$SPATE_BIN" bench produce "${BOOTSTRAP[@]}" --topic flame --partitions "$PARTITIONS" \
        --record-size "$RECORD_SIZE" --num-records "$FETCH_RECORDS" --batch-size 262144 --linger-ms 5 \
        --reporting-interval 3600 >"$TMP/preload.out" 2>&1
    (
        end=$(($(date +%s) + DURATION + 3))
        while (($(date +%s) < end)); do
            timeout 120 "$SPATE_BIN" bench consume "${BOOTSTRAP[@]}" --topic flame --num-records "$FETCH_RECORDS" \
                --reporting-interval 3600 >>"$TMP/load.out" 2>&1 || break
        done
    ) &
fi
LOAD_PID=$!
sleep 1

echo "recording the broker (pid $BROKER_PID, $SPATE_BIN) for $DURATION s under $MODE load ..."
DATA=$OUT/perf-$MODE.data
if ! timeout $((DURATION + 60)) perf record -e cpu-clock -F 999 "${CALL_GRAPH[@]}" -p "$BROKER_PID" -o "$DATA" \
    -- sleep "$DURATION" >"$TMP/perf.err" 2>&1; then
    cat "$TMP/perf.err" >&2
    if grep -qiE 'paranoid|permission|not permitted|access' "$TMP/perf.err"; then
        echo "perf may not record here: allow it with e.g. 'sudo sysctl kernel.perf_event_paranoid=1'" \
            "(or run as root); this script changes no system setting." >&2
    fi
    exit 1
fi
wait "$LOAD_PID" || echo "note: the load generator ended with an error; see below" >&2
tail -n 2 "$TMP/load.out"

# perf's own view: the top 30 symbols by self time.
TOP=$OUT/top30-$MODE.txt
# (perf 6.1 appends empty IPC columns, "-  -", on a VM without counters: dropped with the padding.)
{
    echo "# perf report -i $DATA --no-children --sort symbol: top 30 by self time ([k] kernel, [.] user)"
    timeout 600 perf report -i "$DATA" --no-children --sort symbol --stdio -g none 2>/dev/null \
        | awk '/^# (Samples|Event count)/ {print; next}
               !/^#/ && NF && n < 30 {sub(/( +-)+ *$/, ""); sub(/ +$/, ""); print; n++}'
} >"$TOP"

if [[ -n $INFERNO ]]; then
    FOLDED=$OUT/stacks-$MODE.folded
    SVG=$OUT/flamegraph-$MODE.svg
    timeout 900 perf script -i "$DATA" 2>/dev/null | "$INFERNO/inferno-collapse-perf" >"$FOLDED"
    timeout 300 "$INFERNO/inferno-flamegraph" --title "spate broker, $MODE load, $DURATION s (perf cpu-clock 999 Hz)" \
        <"$FOLDED" >"$SVG"
    echo "wrote $SVG and $TOP"
else
    echo "wrote $TOP (no flamegraph: inferno missing)"
fi
head -n 12 "$TOP"
