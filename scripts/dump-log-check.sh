#!/usr/bin/env bash
# Checks that Apache Kafka's own kafka-dump-log (scripts/kafka-tool.sh, Kafka 4.4.0 from the
# Maven jars) reads the files Spate writes: starts a fresh Spate broker on a free loopback port
# with small segments (log.segment.bytes=65536, log.index.interval.bytes=512, 2 partitions),
# produces a few thousand records with kcat in several shapes (plain, keyed with headers, gzip,
# lz4, zstd and snappy batches, many-record batches and single-record ones), stops the broker
# with SIGTERM (clean shutdown: indexes and checkpoints written), then per partition folder:
#   - kafka-dump-log --print-data-log on every .log: exit 0, every batch `isvalid: true`, no
#     trailing invalid bytes or non-consecutive offsets, offsets 0..N-1, and the records (key,
#     payload, header keys), in offset order, exactly those produced to that partition (Kafka
#     counts each file's offsets from -1, so "Non-consecutive offsets in X.log: -1 is followed
#     by <X's base offset>" is normal for every segment but the first, Kafka's own too, and
#     is ignored);
#   - kafka-dump-log --verify-index-only on every .index and .timeindex: exit 0 and none of the
#     mismatch reports that Kafka prints on stderr while still exiting 0 ("Mismatches in :",
#     "Found timestamp mismatch", "Found out of order timestamp", "The following indexed offsets
#     are not found"); a position inside a batch makes it throw (exit 1);
#   - kafka-dump-log --index-sanity-check on them: exit 0, "passed sanity check." per file;
# and the log dir's own files: meta.properties, recovery-point-offset-checkpoint,
# log-start-offset-checkpoint and each partition's partition.metadata, in Kafka's formats.
# Transactions (KIP-98): before the stop, one transactional producer (confluent-kafka,
# `scripts/interop/clients.py txn-produce`) runs committed and aborted transactions on a second
# topic (dump-log-txn: 1 partition, segment.bytes=10000, each transaction 8 records in 2
# flushed batches, so that aborted records are in the log and some transactions span a roll;
# the sizes put aborts in rolled segments and in the active one, and the last roll inside a
# transaction); then on its partition folder:
#   - kafka-dump-log --print-data-log on the .log files: exit 0, every batch valid, every
#     record of a control batch shown as `endTxnMarker: COMMIT|ABORT`, as many COMMIT and
#     ABORT markers as transactions committed and aborted, each transaction's records (at the
#     offsets the producer's delivery reports gave) followed by its marker, nothing else;
#   - kafka-dump-log on the .txnindex files: exit 0, one `version: 0 producerId: ...
#     firstOffset: ... lastOffset: ...` entry per ABORT marker, in the .txnindex of the
#     segment holding the marker, firstOffset its transaction's first record and lastOffset
#     the marker; lastStableOffset as Kafka computes it (ProducerStateManager
#     .lastStableOffset(CompletedTxn): the first offset of another producer's transaction
#     still open, else lastOffset + 1), a check of its own;
#   - kafka-dump-log on the .snapshot files: exit 0, nothing on stderr (where a
#     CorruptSnapshotException goes), one at the log end, and each entry as Kafka's
#     ProducerStateManager would have it at that offset: epoch, coordinatorEpoch of the last
#     marker, currentTxnFirstOffset of the transaction open there, last data batch
#     (lastSequence, lastOffset, offsetDelta) and lastTimestamp (of the last batch, a marker's
#     too).
#
# Usage:  scripts/dump-log-check.sh [path-to-spate-binary]     (default: target/release/spate)
# Installs its dependencies first (scripts/install-test-deps.sh: kcat, and confluent-kafka in
# .venv-interop/ for the transactional producer); the Kafka jars are
# resolved by scripts/kafka-tool.sh (once, with Maven; later runs reuse them). Needs java 17+.
# Prints PASS/FAIL per check and ends with "N passed, M failed"; exits 1 if any failed.
# Each kafka-dump-log call is one JVM (~1 s); there are 3 per partition and 3 for the
# transactional topic, files batched with `--files a,b,c`.
# Environment: DUMPLOG_KEEP_TMP=1 keeps the temp dir (broker data and log, produced inputs,
#              kafka-dump-log outputs);
#              DUMPLOG_BUDGET=seconds bounds the whole run of checks (default 600);
#              KAFKA_JVM_PERFORMANCE_OPTS / KAFKA_HEAP_OPTS as for scripts/kafka-tool.sh (this
#              script defaults the first to quick-start flags: serial GC, C1 only).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${1:-$REPO_ROOT/target/release/spate}"
KT="$REPO_ROOT/scripts/kafka-tool.sh"
TOPIC=dump-log-check
PARTITIONS=2
SEGMENT_BYTES=65536
INDEX_INTERVAL=512
STEP_TIMEOUT=30        # seconds: bound for each kcat run (and the transactional producer)
# The transactional topic: one letter per transaction, c commits and a aborts; the record and
# segment sizes (TXN_SEGMENT_BYTES) are chosen so that, with these 8-record transactions in 2
# batches of ~1.7 KB, aborted transactions end in rolled segments (two of them spanning a roll)
# and in the active one, and the last roll (whose .snapshot is kept) falls inside a transaction.
TXN_TOPIC=dump-log-txn
TXN_PLAN=ccacaccacccaca
TXN_RECORDS=8
TXN_BATCHES=2
TXN_VALUE_BYTES=400
TXN_SEGMENT_BYTES=10000
TXN_STATE_PARTITIONS=2 # transaction.state.log.num.partitions: fewer to create than Kafka's 50
PY="${INTEROP_VENV:-$REPO_ROOT/.venv-interop}/bin/python"
CLIENTS="$REPO_ROOT/scripts/interop/clients.py"
TOOL_TIMEOUT=180       # seconds: bound for each kafka-dump-log run
RESOLVE_TIMEOUT=900    # seconds: bound for resolving the Kafka jars (first run only)
BUDGET=${DUMPLOG_BUDGET:-600} # seconds for all checks; checks not started by then fail
# A short-lived tool: start the JVM fast rather than tune it for a long run.
export KAFKA_JVM_PERFORMANCE_OPTS="${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true}"

if [[ ! -x $BIN ]]; then
    echo "FAIL broker-binary: '$BIN' not found or not executable (build it first)"
    echo "0 passed, 1 failed"
    exit 1
fi
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

"$REPO_ROOT/scripts/install-test-deps.sh"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/spate-dump-log.XXXXXX")"
DATA="$TMP/data"
LOG="$TMP/broker.log"
BROKER_PID=""
PASSED=0
FAILED=0

# Stops the broker: SIGTERM, up to WAIT seconds for it to exit, then SIGKILL. Sets
# STOP_RESULT to how it went and returns 1 unless it exited by itself with status 0.
STOP_RESULT=""
stop_broker() {
    local wait_s=${1:-30} rc i killed=0
    STOP_RESULT=""
    [[ -n $BROKER_PID ]] || return 0
    if kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        for ((i = 0; i < wait_s * 10; i++)); do
            kill -0 "$BROKER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$BROKER_PID" 2>/dev/null; then
            kill -KILL "$BROKER_PID" 2>/dev/null || true
            killed=1
        fi
    fi
    wait "$BROKER_PID" 2>/dev/null && rc=0 || rc=$?
    BROKER_PID=""
    if ((killed)); then
        STOP_RESULT="ignored SIGTERM for ${wait_s}s; sent SIGKILL"
        return 1
    fi
    STOP_RESULT="exited with status $rc after SIGTERM"
    ((rc == 0))
}

summary() { echo "$PASSED passed, $FAILED failed"; }

FINISHED=0
finish() {
    stop_broker 10 || true
    if ((FAILED > 0)) && [[ -f $LOG ]]; then
        echo "---- broker log (last 40 lines of $LOG) ----"
        if [[ -s $LOG ]]; then tail -n 40 "$LOG" || true; else echo "(empty)"; fi
        echo "---- end of broker log ----"
    fi
    if [[ ${DUMPLOG_KEEP_TMP:-0} == 1 ]]; then
        echo "dump-log-check: kept $TMP"
    fi
    FINISHED=1
    summary
}

cleanup() {
    local rc=$?
    if ((FINISHED == 0)); then # interrupted, or the script itself went wrong
        echo "FAIL dump-log-check-script: stopped early (status $rc)"
        FAILED=$((FAILED + 1))
        finish
        ((rc != 0)) || rc=1
    fi
    if [[ ${DUMPLOG_KEEP_TMP:-0} != 1 ]]; then
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pass() { echo "PASS $1: $2"; PASSED=$((PASSED + 1)); }
failed() { echo "FAIL $1: $2"; FAILED=$((FAILED + 1)); }

# Each check runs in a subshell with errexit; its last output line (stdout or stderr) is the
# reason (FAIL) or the summary (PASS); on failure the first 60 earlier lines are shown.
fail() { echo "$*" >&2; exit 1; }

CHECKS_START=$SECONDS
run_check() {
    local name=$1 out rc reason n
    shift
    if ((SECONDS - CHECKS_START >= BUDGET)); then
        failed "$name" "not run, the ${BUDGET}s budget for all checks is used up"
        return 0
    fi
    set +e
    out="$(set -e; "$@" 2>&1)"
    rc=$?
    set -e
    out="$(printf '%s\n' "$out" | sed '/^[[:space:]]*$/d')"
    reason="$(printf '%s\n' "$out" | tail -n 1)"
    if ((rc == 0)); then
        pass "$name" "${reason:-ok}"
    else
        failed "$name" "${reason:-exit status $rc}"
        n="$(printf '%s\n' "$out" | head -n -1 | wc -l)"
        printf '%s\n' "$out" | head -n -1 | head -n 60 | sed 's/^/    | /'
        if ((n > 60)); then echo "    | ... ($((n - 60)) more lines)"; fi
    fi
    return 0
}

# dump OUT_PREFIX ARGS...: kafka-dump-log ARGS, bounded; stdout/stderr/exit status in
# OUT_PREFIX.out/.err/.rc. Never fails itself.
dump() {
    local prefix=$1 rc
    shift
    timeout "$TOOL_TIMEOUT" "$KT" kafka-dump-log "$@" >"$prefix.out" 2>"$prefix.err" </dev/null &&
        rc=0 || rc=$?
    echo "$rc" >"$prefix.rc"
}

# The kafka-dump-log reports that mean a problem (stderr), as Kafka 4.4.0 prints them.
MISMATCH_RE='Mismatches in :|Found timestamp mismatch|Found out of order timestamp|The following indexed offsets are not found'
PROBLEM_RE="$MISMATCH_RE|Non-consecutive offsets in|Ignoring unknown file|Exception|Error"

# problems ERRFILE: the stderr lines of a kafka-dump-log run that report a problem. Kafka
# counts a segment's offsets from -1 in each file, so "Non-consecutive offsets in X.log" with
# only "-1 is followed by <X's base offset>" is what any segment past the first gets, Kafka's
# own included: that pair is left out (and its heading with it when it is the only one).
problems() {
    awk -v re="$PROBLEM_RE" '
        /^Non-consecutive offsets in / {
            nc = 1; head = $0; shown = 0
            base = $NF; sub(/.*\//, "", base); sub(/\.log$/, "", base); base += 0
            next
        }
        nc && /^  -?[0-9]+ is followed by -?[0-9]+$/ {
            if ($1 == -1 && $NF == base) next
            if (!shown) { print head; shown = 1 }
            print; next
        }
        { nc = 0 }
        $0 ~ re { inblock = 1; print; next }
        inblock && /^  Index |^Indexed offset: / { print; next }
        { inblock = 0 }
        /^\tat / { next }
        NF { print }
    ' "$1"
}

# summarize < PROBLEM_LINES: each report heading with its first 3 entries, "... (N more)".
summarize() {
    awk '
        function flush() { if (more > 0) printf "      ... (%d more)\n", more; more = 0 }
        /^  |^Indexed offset: / { l = $0; sub(/^ +/, "", l); if (++k <= 3) print "    " l; else more++; next }
        { flush(); k = 0; print }
        END { flush() }
    '
}

# --- the Kafka jars (before the broker starts: the first run resolves them) -----
resolve_out="$(timeout "$RESOLVE_TIMEOUT" "$KT" --resolve 2>&1)" && rc=0 || rc=$?
if ((rc != 0)); then
    printf '%s\n' "$resolve_out" | tail -n 15 | sed 's/^/    | /'
    failed kafka-tools "scripts/kafka-tool.sh --resolve failed (status $rc)"
    finish
    exit 1
fi

# --- start the broker -------------------------------------------------------------
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BOOTSTRAP="127.0.0.1:$PORT"
echo "dump-log-check: starting $BIN on $BOOTSTRAP (data in $DATA, log in $LOG)"
"$BIN" broker \
    --override "log.dirs=$DATA" \
    --override "listeners=PLAINTEXT://$BOOTSTRAP" \
    --override "num.partitions=$PARTITIONS" \
    --override "log.segment.bytes=$SEGMENT_BYTES" \
    --override "log.index.interval.bytes=$INDEX_INTERVAL" \
    --override "transaction.state.log.num.partitions=$TXN_STATE_PARTITIONS" \
    >"$LOG" 2>&1 </dev/null &
BROKER_PID=$!

port_open() { (: <>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
start_error=""
deadline=$((SECONDS + 30))
until port_open; do
    if ! kill -0 "$BROKER_PID" 2>/dev/null; then
        wait "$BROKER_PID" && rc=0 || rc=$?
        BROKER_PID=""
        start_error="broker exited with status $rc before accepting connections"
        break
    fi
    if ((SECONDS >= deadline)); then
        start_error="broker did not accept connections on $BOOTSTRAP within 30 s"
        break
    fi
    sleep 0.1
done
if [[ -n $start_error ]]; then
    failed broker-start "$start_error"
    finish
    exit 1
fi
pass broker-start "pid $BROKER_PID accepting connections on $BOOTSTRAP"

# --- produce ----------------------------------------------------------------------
# gen_values RUN COUNT > FILE: one value a line, "RUN-<i>-" then 0..179 letters of padding
# (compressible, but not all alike), never a space, tab or ':'.
gen_values() {
    awk -v run="$1" -v n="$2" 'BEGIN {
        pad = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        pad = pad pad pad pad;
        for (i = 0; i < n; i++) {
            len = (i * 37 + length(run) * 11) % 180;
            printf "%s-%06d-%s\n", run, i, substr(pad, 1 + (i % 53), len);
        }
    }'
}

# produce_run RUN PARTITION COUNT KEYED(0/1) HEADERS(0/1) [kcat -X settings...]: produces COUNT
# records to PARTITION with kcat and appends what kafka-dump-log is to print for them
# (key or "(null)", payload, header keys) to $TMP/expected-PARTITION.tsv.
HEADER_ARGS=(-H trace-id=dump-log-check -H source=kcat)
HEADER_KEYS="[trace-id,source]"
produce_run() {
    local run=$1 p=$2 n=$3 keyed=$4 headers=$5 in="$TMP/in-$1.txt" hk="[]" errfile rc
    shift 5
    local args=(-b "$BOOTSTRAP" -P -t "$TOPIC" -p "$p")
    gen_values "$run" "$n" >"$TMP/values-$run.txt"
    if ((keyed)); then
        awk -v run="$run" '{ printf "k-%s-%06d:%s\n", run, NR - 1, $0 }' "$TMP/values-$run.txt" >"$in"
        args+=(-K:)
    else
        cp "$TMP/values-$run.txt" "$in"
    fi
    if ((headers)); then
        args+=("${HEADER_ARGS[@]}")
        hk=$HEADER_KEYS
    fi
    local x
    for x in "$@"; do args+=(-X "$x"); done
    awk -v run="$run" -v keyed="$keyed" -v hk="$hk" 'BEGIN { OFS = "\t" }
        { print (keyed ? sprintf("k-%s-%06d", run, NR - 1) : "(null)"), $0, hk }' \
        "$TMP/values-$run.txt" >>"$TMP/expected-$p.tsv"
    errfile="$TMP/kcat-$run.err"
    timeout "$STEP_TIMEOUT" kcat "${args[@]}" <"$in" 2>"$errfile" && rc=0 || rc=$?
    if ((rc != 0)); then
        tail -n 10 "$errfile" >&2
        ((rc == 124)) && fail "kcat run $run timed out after ${STEP_TIMEOUT}s"
        fail "kcat run $run (partition $p) exited with status $rc"
    fi
    if grep -qi 'delivery failed\|failed to produce' "$errfile"; then
        tail -n 10 "$errfile" >&2
        fail "kcat run $run (partition $p) reported failed deliveries"
    fi
}

BIG=(linger.ms=50 batch.size=16384)    # many records a batch, batches under 16 KB
SMALL=(linger.ms=5 batch.num.messages=20)
SINGLE=(linger.ms=0 batch.num.messages=1)
produce_all() {
    : >"$TMP/expected-0.tsv"
    : >"$TMP/expected-1.tsv"
    # RUN            P  COUNT KEYED HDRS  settings
    produce_run plain-a   0 700 0 0 "${BIG[@]}"
    produce_run keyhdr-a  1 700 1 1 "${BIG[@]}"
    produce_run gzip-a    0 300 1 0 "${BIG[@]}" compression.codec=gzip
    produce_run gzip-b    1 300 0 1 "${BIG[@]}" compression.codec=gzip
    produce_run lz4-a     1 300 1 0 "${BIG[@]}" compression.codec=lz4
    produce_run lz4-b     0 300 0 0 "${SMALL[@]}" compression.codec=lz4
    produce_run zstd-a    0 300 1 1 "${BIG[@]}" compression.codec=zstd
    produce_run zstd-b    1 300 0 0 "${SMALL[@]}" compression.codec=zstd
    produce_run snappy-a  1 300 1 1 "${BIG[@]}" compression.codec=snappy
    produce_run snappy-b  0 300 0 0 "${BIG[@]}" compression.codec=snappy
    produce_run keyhdr-b  0 600 1 1 "${SMALL[@]}"
    produce_run plain-b   1 600 0 0 "${SMALL[@]}"
    produce_run single-a  0 150 1 0 "${SINGLE[@]}"
    produce_run single-b  1 150 0 1 "${SINGLE[@]}"
    # The last run on each partition is idempotent: its producer is in the snapshot below.
    produce_run plain-c   0 400 1 0 "${BIG[@]}" enable.idempotence=true
    produce_run plain-d   1 400 0 0 "${BIG[@]}" enable.idempotence=true
    echo "$(cat "$TMP"/expected-*.tsv | wc -l) records in 16 kcat runs:" \
        "$(wc -l <"$TMP/expected-0.tsv") to partition 0, $(wc -l <"$TMP/expected-1.tsv") to partition 1"
}
run_check produce produce_all

# The transactional topic: clients.py txn-produce creates it and runs TXN_PLAN, then waits
# for the last marker. $TMP/txns.tsv: one line per transaction (index, commit|abort, the
# offsets of its first and last records, from the delivery reports).
produce_txn() {
    local out="$TMP/txn-produce.out" rc
    [[ -x $PY ]] || fail "no $PY (scripts/install-test-deps.sh makes it)"
    timeout "$STEP_TIMEOUT" "$PY" "$CLIENTS" txn-produce -b "$BOOTSTRAP" -t "$TXN_TOPIC" \
        --txn-id dump-log-check-txn --plan "$TXN_PLAN" --records "$TXN_RECORDS" \
        --batches "$TXN_BATCHES" --value-bytes "$TXN_VALUE_BYTES" \
        --segment-bytes "$TXN_SEGMENT_BYTES" --out "$TMP/txns.jsonl" \
        --timeout $((STEP_TIMEOUT - 5)) >"$out" 2>&1 </dev/null && rc=0 || rc=$?
    if ((rc != 0)); then
        head -n -1 "$out" | tail -n 15 >&2
        ((rc == 124)) && fail "clients.py txn-produce timed out after ${STEP_TIMEOUT}s"
        fail "clients.py txn-produce exited with status $rc: $(tail -n 1 "$out")"
    fi
    awk '{ gsub(/[{}",:]/, " "); $0 = $0
           for (i = 1; i < NF; i++) v[$i] = $(i + 1)
           print v["txn"] "\t" v["outcome"] "\t" v["first"] "\t" v["last"] }' \
        "$TMP/txns.jsonl" >"$TMP/txns.tsv"
    (($(wc -l <"$TMP/txns.tsv") == ${#TXN_PLAN})) ||
        fail "txn-produce reported $(wc -l <"$TMP/txns.tsv") transactions, not ${#TXN_PLAN}"
    tail -n 1 "$out"
}
run_check produce-txn produce_txn

# --- clean shutdown ---------------------------------------------------------------
if stop_broker 30; then
    pass broker-shutdown "$STOP_RESULT"
else
    failed broker-shutdown "${STOP_RESULT:-not running}"
fi

# --- the partition folders ----------------------------------------------------------
# Expected codecs per partition (as kafka-dump-log names them), from the runs above.
EXPECT_CODECS_0="none gzip lz4 zstd snappy"
EXPECT_CODECS_1="none gzip lz4 zstd snappy"

# files_of P EXT: the partition's files with that suffix, in offset order, comma-separated.
files_of() {
    local f list=()
    for f in "$DATA/$TOPIC-$1"/*."$2"; do [[ -e $f ]] && list+=("$f"); done
    local IFS=,
    echo "${list[*]}"
}

check_partition_dir() {
    local p=$1 dir="$DATA/$TOPIC-$1" n
    [[ -d $dir ]] || fail "no partition folder $dir (log dir holds: $(ls "$DATA" 2>/dev/null | tr '\n' ' '))"
    n="$(find "$dir" -maxdepth 1 -name '*.log' | wc -l)"
    ((n > 0)) || fail "no .log file in $dir"
    ((n >= 2)) || fail "only $n segment in $dir: log.segment.bytes=$SEGMENT_BYTES did not roll it"
    echo "$n segments, base offsets $(cd "$dir" && ls -- *.log | sed 's/\.log$//; s/^0*\([0-9]\)/\1/' | paste -sd ' ' -);" \
        "other files: $(cd "$dir" && ls -A | grep -Ev '\.(log|index|timeindex)$' | paste -sd ' ' - || true)"
}

# The .log files through kafka-dump-log --print-data-log, parsed into
# $TMP/dump-P-log.tsv (offset, key, payload, header keys) and $TMP/dump-P-log.stats.
check_print_data_log() {
    local p=$1 files prefix="$TMP/dump-$1-log" rc bad=0
    files="$(files_of "$p" log)"
    [[ -n $files ]] || fail "no .log files for partition $p"
    dump "$prefix" --files "$files" --print-data-log
    rc="$(<"$prefix.rc")"
    awk -v stats="$prefix.stats" -v tsv="$prefix.tsv" '
        /^Dumping / { files++; next }
        /^baseOffset: / {
            batches++
            if ($0 !~ / isvalid: true$/) { invalid++; if (invalid <= 10) print "invalid batch: " $0 }
            if (match($0, / compresscodec: [^ ]+/)) codec[substr($0, RSTART + 16, RLENGTH - 16)]++
            next
        }
        /^\| offset: / {
            records++
            off = $3
            hk = "?"
            if (match($0, / headerKeys: \[[^]]*\]/)) {
                hk = substr($0, RSTART + 13, RLENGTH - 13)
                rest = substr($0, RSTART + RLENGTH)
            } else rest = $0
            key = "(null)"; val = "(null)"
            if (substr(rest, 1, 6) == " key: ") {
                i = index(rest, " payload: ")
                if (i) { key = substr(rest, 7, i - 7); rest = substr(rest, i) }
                else { key = substr(rest, 7); rest = "" }
            }
            if (substr(rest, 1, 10) == " payload: ") val = substr(rest, 11)
            printf "%s\t%s\t%s\t%s\n", off, key, val, hk > tsv
            next
        }
        /invalid bytes at the end of/ { trailing++; print; next }
        END {
            printf "" > tsv
            cs = ""
            for (c in codec) cs = cs (cs == "" ? "" : " ") c "=" codec[c]
            printf "files=%d batches=%d records=%d invalid=%d trailing=%d codecs=%s\n",
                files, batches, records, invalid + 0, trailing + 0, cs > stats
            exit (invalid + trailing > 0)
        }' "$prefix.out" || bad=1
    problems "$prefix.err" >"$prefix.problems"
    if ((rc != 0)) || [[ -s $prefix.problems ]]; then
        summarize <"$prefix.problems" >&2
        ((rc == 0)) && fail "kafka-dump-log --print-data-log exited 0 but reported problems on stderr"
        fail "kafka-dump-log --print-data-log exited with status $rc: $(grep -m1 -E 'Exception' "$prefix.err" || tail -n 1 "$prefix.err")"
    fi
    ((bad == 0)) || fail "kafka-dump-log: $(<"$prefix.stats")"
    local stats
    stats="$(<"$prefix.stats")"
    [[ $stats == files=0\ * ]] && fail "kafka-dump-log dumped no file: $stats"
    echo "exit 0, every batch isvalid: true, no stderr reports: $stats"
}

check_records_count() {
    local p=$1 got want
    [[ -f "$TMP/dump-$p-log.tsv" ]] || fail "no kafka-dump-log output for partition $p"
    got="$(wc -l <"$TMP/dump-$p-log.tsv")"
    want="$(wc -l <"$TMP/expected-$p.tsv")"
    ((got == want)) || fail "kafka-dump-log printed $got record lines across the .log files; $want were produced to partition $p"
    echo "$got record lines (| offset:) across the .log files, as produced"
}

check_records_content() {
    local p=$1 sorted="$TMP/dump-$p-sorted.tsv" d
    [[ -f "$TMP/dump-$p-log.tsv" ]] || fail "no kafka-dump-log output for partition $p"
    sort -t $'\t' -k1,1n -s "$TMP/dump-$p-log.tsv" >"$sorted"
    d="$(awk -F'\t' '$1 != NR - 1 { printf "record %d of the dump has offset %s (want %d)\n", NR, $1, NR - 1; exit 1 }' "$sorted")" ||
        fail "offsets are not 0..N-1: $d"
    if ! cut -f2- "$sorted" | cmp -s - "$TMP/expected-$p.tsv"; then
        diff <(cut -f2- "$sorted") "$TMP/expected-$p.tsv" | head -n 20 | sed 's/^/diff (< dump, > produced): /' >&2
        if cut -f2- "$sorted" | sort | cmp -s - <(sort "$TMP/expected-$p.tsv"); then
            fail "same records as produced, but not in produced order by offset"
        fi
        fail "the records (key, payload, header keys) in offset order differ from those produced"
    fi
    echo "offsets 0..$(($(wc -l <"$sorted") - 1)); keys, payloads and header keys equal those produced, in order"
}

check_codecs() {
    local p=$1 want c stats
    eval "want=\$EXPECT_CODECS_$p"
    [[ -f "$TMP/dump-$p-log.stats" ]] || fail "no kafka-dump-log output for partition $p"
    stats="$(<"$TMP/dump-$p-log.stats")"
    for c in $want; do
        [[ " ${stats##*codecs=} " == *" $c="* ]] || fail "no $c batch in the log (${stats##*codecs=}); want all of: $want"
    done
    echo "batches by compresscodec: ${stats##*codecs=}"
}

check_index_files() {
    local p=$1 dir="$DATA/$TOPIC-$1" f base missing=() ie=0 te=0 s
    for f in "$dir"/*.log; do
        [[ -e $f ]] || fail "no .log files in $dir"
        base="${f%.log}"
        [[ -f $base.index ]] || missing+=("$(basename "$base").index")
        [[ -f $base.timeindex ]] || missing+=("$(basename "$base").timeindex")
        if [[ -f $base.index ]]; then s="$(stat -c %s "$base.index")"; ie=$((ie + s / 8)); fi
        if [[ -f $base.timeindex ]]; then s="$(stat -c %s "$base.timeindex")"; te=$((te + s / 12)); fi
    done
    ((${#missing[@]} == 0)) || fail "missing: ${missing[*]}"
    ((ie > 0)) || fail "every .index is empty (log.index.interval.bytes=$INDEX_INTERVAL)"
    ((te > 0)) || fail "every .timeindex is empty"
    echo "each .log has its .index and .timeindex: $ie offset-index and $te time-index entries (by file length)"
}

check_verify_index() {
    local p=$1 files prefix="$TMP/dump-$1-verify" rc n want
    files="$(files_of "$p" index),$(files_of "$p" timeindex)"
    [[ $files != , ]] || fail "no index files for partition $p"
    dump "$prefix" --files "$files" --verify-index-only
    rc="$(<"$prefix.rc")"
    problems "$prefix.err" >"$prefix.problems"
    if ((rc != 0)) || [[ -s $prefix.problems ]]; then
        summarize <"$prefix.problems" >&2
        n="$(grep -Ec "^  Index offset: |^  Index timestamp: |^Indexed offset: " "$prefix.problems" || true)"
        ((rc == 0)) && fail "kafka-dump-log --verify-index-only exited 0 but reported $n mismatched entries on stderr," \
            "by kind (files): $(grep -E "$MISMATCH_RE" "$prefix.problems" | sed 's/ in :.*//' | sort | uniq -c |
                awk '{ n = $1; $1 = ""; printf "%s%s (%d)", sep, substr($0, 2), n; sep = "; " }')"
        fail "kafka-dump-log --verify-index-only exited with status $rc: $(grep -m1 -E 'Exception' "$prefix.err" || tail -n 1 "$prefix.err")"
    fi
    n="$(grep -c '^Dumping ' "$prefix.out" || true)"
    want="$(tr ',' '\n' <<<"$files" | grep -c .)"
    ((n == want)) || fail "kafka-dump-log went through $n of the $want index files"
    echo "exit 0, no mismatch reported on stderr for the $want .index/.timeindex files"
}

check_sanity() {
    local p=$1 files prefix="$TMP/dump-$1-sanity" rc f bad=0 nonempty=0 empty=0
    files="$(files_of "$p" index),$(files_of "$p" timeindex)"
    [[ $files != , ]] || fail "no index files for partition $p"
    dump "$prefix" --files "$files" --index-sanity-check
    rc="$(<"$prefix.rc")"
    if ((rc != 0)); then
        head -n 10 "$prefix.err" >&2
        fail "kafka-dump-log --index-sanity-check exited with status $rc: $(grep -m1 -E 'Exception' "$prefix.err" || tail -n 1 "$prefix.err")"
    fi
    while IFS= read -r f; do
        [[ -n $f ]] || continue
        if grep -Fxq "$f passed sanity check." "$prefix.out"; then
            [[ -s $f ]] && nonempty=$((nonempty + 1)) || empty=$((empty + 1))
        elif [[ ! -s $f || $(stat -c %s "$f") -lt 8 ]] && grep -Fxq "$f is empty." "$prefix.out"; then
            empty=$((empty + 1))
        else
            echo "no \"passed sanity check.\" for $f ($(stat -c %s "$f") bytes)" >&2
            bad=$((bad + 1))
        fi
    done < <(tr ',' '\n' <<<"$files")
    ((bad == 0)) || fail "$bad index files did not pass the sanity check"
    echo "exit 0, $nonempty non-empty files passed sanity check ($empty empty)"
}

# The producers' state a clean shutdown leaves (<log end offset>.snapshot, Kafka's
# ProducerSnapshot format) through kafka-dump-log: one producer, the idempotent kcat run that
# wrote last (plain-c, plain-d), its last batch ending at the log end with sequence 399; no
# CorruptSnapshotException on stderr.
check_producer_snapshot() {
    local p=$1 dir="$DATA/$TOPIC-$1" prefix="$TMP/dump-$1-snapshot" end snap rc line
    end="$(wc -l <"$TMP/expected-$p.tsv")"
    snap="$dir/$(printf '%020d' "$end").snapshot"
    [[ -f $snap ]] || fail "no $(basename "$snap") (there are: $(cd "$dir" && ls -- *.snapshot 2>/dev/null | paste -sd ' ' -))"
    dump "$prefix" --files "$snap"
    rc="$(<"$prefix.rc")"
    ((rc == 0)) || fail "kafka-dump-log exited with status $rc: $(tail -n 1 "$prefix.err")"
    [[ ! -s $prefix.err ]] || fail "kafka-dump-log: $(head -n 1 "$prefix.err")"
    (($(grep -c '^producerId: ' "$prefix.out") == 1)) || fail "want one producer, got: $(grep -c '^producerId: ' "$prefix.out")"
    line="$(grep '^producerId: ' "$prefix.out")"
    [[ $line == *"producerEpoch: 0 "* && $line == *"lastSequence: 399 "* && $line == *"lastOffset: $((end - 1)) "* ]] ||
        fail "unexpected entry: $line"
    echo "$(basename "$snap"): ${line%% lastTimestamp*} ... lastSequence: 399 lastOffset: $((end - 1))"
}

# --- the log dir's own files ------------------------------------------------------------
check_meta_properties() {
    local f="$DATA/meta.properties" v nid cid did
    [[ -f $f ]] || fail "no $f"
    prop() { sed -n "s/^$1=//p" "$f" | tail -n 1; }
    v="$(prop version)" nid="$(prop node.id)" cid="$(prop cluster.id)" did="$(prop directory.id)"
    sed 's/^/meta.properties: /' "$f" >&2
    [[ $v == 1 ]] || fail "version=${v:-(none)}, want version=1"
    [[ $nid =~ ^[0-9]+$ ]] || fail "node.id=${nid:-(none)}, want a node id"
    [[ -n $cid ]] || fail "no cluster.id"
    echo "version=1 node.id=$nid cluster.id=$cid${did:+ directory.id=$did}"
}

# check_checkpoint NAME MODE: Kafka's offset checkpoint format, "0", the entry count, then
# "topic partition offset" lines. MODE recovery: an entry for each partition of the topic,
# at most its log end offset. MODE log-start: any entry for the topic says 0.
check_checkpoint() {
    local name=$1 mode=$2 f="$DATA/$1" n lines p off want
    [[ -f $f ]] || fail "no $f"
    head -n 12 "$f" | sed "s/^/$name: /" >&2
    [[ "$(sed -n 1p "$f")" == 0 ]] || fail "first line '$(sed -n 1p "$f")', want version 0"
    n="$(sed -n 2p "$f")"
    [[ $n =~ ^[0-9]+$ ]] || fail "second line '$n', want the entry count"
    lines="$(($(wc -l <"$f") - 2))"
    ((lines == n)) || fail "says $n entries but has $lines lines after the header"
    if awk 'NR > 2 && !/^[^ ]+ [0-9]+ -?[0-9]+$/ { exit 1 }' "$f"; then :; else
        fail "an entry is not 'topic partition offset'"
    fi
    for ((p = 0; p < PARTITIONS; p++)); do
        off="$(awk -v t="$TOPIC" -v p="$p" 'NR > 2 && $1 == t && $2 == p { print $3 }' "$f")"
        want="$(wc -l <"$TMP/expected-$p.tsv" 2>/dev/null || echo 0)"
        if [[ $mode == recovery ]]; then
            [[ -n $off ]] || fail "no entry for $TOPIC $p"
            ((off >= 0 && off <= want)) || fail "$TOPIC $p at $off, outside 0..$want (its log end offset)"
        else
            [[ -z $off || $off == 0 ]] || fail "$TOPIC $p at $off, but nothing was deleted: want 0 or no entry"
        fi
    done
    if [[ $mode == recovery ]]; then
        echo "version 0, $n entries; $(awk -v t="$TOPIC" 'NR > 2 && $1 == t { printf "%s%s %s at %s", sep, $1, $2, $3; sep = ", " }' "$f")" \
            "(log end offsets $(wc -l <"$TMP/expected-0.tsv"), $(wc -l <"$TMP/expected-1.tsv"))"
    else
        echo "version 0, $n entries, none for $TOPIC past offset 0"
    fi
}

FIRST_TOPIC_ID_FILE="$TMP/topic-id"
check_partition_metadata() {
    local p=$1 f="$DATA/$TOPIC-$1/partition.metadata" l1 l2 id
    [[ -f $f ]] || fail "no $f"
    sed 's/^/partition.metadata: /' "$f" >&2
    l1="$(sed -n 1p "$f")" l2="$(sed -n 2p "$f")"
    [[ $l1 == "version: 0" ]] || fail "first line '$l1', want 'version: 0'"
    [[ $l2 == "topic_id: "* ]] || fail "second line '$l2', want 'topic_id: <id>'"
    id="${l2#topic_id: }"
    [[ $id =~ ^[A-Za-z0-9_-]{22}$ ]] || fail "topic_id '$id' is not 22 base64url characters"
    [[ $id != AAAAAAAAAAAAAAAAAAAAAA ]] || fail "topic_id is the zero UUID"
    ((p == 0)) && echo "$id" >"$FIRST_TOPIC_ID_FILE"
    if ((p > 0)) && [[ -f $FIRST_TOPIC_ID_FILE && "$(<"$FIRST_TOPIC_ID_FILE")" != "$id" ]]; then
        fail "topic_id $id differs from partition 0's $(<"$FIRST_TOPIC_ID_FILE")"
    fi
    echo "version: 0, topic_id: $id"
}

for ((p = 0; p < PARTITIONS; p++)); do
    run_check "p$p-segments" check_partition_dir "$p"
    run_check "p$p-dump-log-print-data-log" check_print_data_log "$p"
    run_check "p$p-record-count" check_records_count "$p"
    run_check "p$p-record-contents" check_records_content "$p"
    run_check "p$p-compression-codecs" check_codecs "$p"
    run_check "p$p-index-files" check_index_files "$p"
    run_check "p$p-verify-index-only" check_verify_index "$p"
    run_check "p$p-index-sanity-check" check_sanity "$p"
    run_check "p$p-producer-snapshot" check_producer_snapshot "$p"
done
run_check meta.properties check_meta_properties
run_check recovery-point-offset-checkpoint check_checkpoint recovery-point-offset-checkpoint recovery
run_check log-start-offset-checkpoint check_checkpoint log-start-offset-checkpoint log-start
for ((p = 0; p < PARTITIONS; p++)); do
    run_check "p$p-partition.metadata" check_partition_metadata "$p"
done

# --- the transactional topic ------------------------------------------------------------
TXN_DIR="$DATA/$TXN_TOPIC-0"
TXN_DUMP="$TMP/dump-txn-log" # .batches.tsv, .records.tsv, .txns.tsv: the .log dump, parsed

# files_in DIR EXT: DIR's files with that suffix, in offset order, comma-separated.
files_in() {
    local f list=()
    for f in "$1"/*."$2"; do [[ -e $f ]] && list+=("$f"); done
    local IFS=,
    echo "${list[*]}"
}

check_txn_dir() {
    local n
    [[ -d $TXN_DIR ]] || fail "no partition folder $TXN_DIR (log dir holds: $(ls "$DATA" 2>/dev/null | tr '\n' ' '))"
    n="$(find "$TXN_DIR" -maxdepth 1 -name '*.log' | wc -l)"
    ((n >= 2)) || fail "$n segment(s) in $TXN_DIR: segment.bytes=$TXN_SEGMENT_BYTES did not roll it"
    echo "$n segments, base offsets $(cd "$TXN_DIR" && ls -- *.log | sed 's/\.log$//; s/^0*\([0-9]\)/\1/' | paste -sd ' ' -);" \
        "other files: $(cd "$TXN_DIR" && ls -A | grep -Ev '\.(log|index|timeindex)$' | sed 's/^0*\([0-9]\)/\1/' | paste -sd ' ' - || true)"
}

# The .log files through kafka-dump-log --print-data-log, parsed into
#   .batches.tsv  segment, baseOffset, lastOffset, lastSequence, producerId, producerEpoch,
#                 isTransactional (0/1), isControl (0/1), maxTimestamp
#   .records.tsv  segment, offset, data|COMMIT|ABORT, key (- for a marker), producerId,
#                 producerEpoch, coordinatorEpoch (- for data)
#   .txns.tsv     per marker, in offset order: producerId, first offset of its transaction
#                 (the producer's first data record after its previous marker; - if none),
#                 marker offset, COMMIT|ABORT, segment of the first record, of the marker
check_txn_print_data_log() {
    local files rc bad=0 stats
    files="$(files_in "$TXN_DIR" log)"
    [[ -n $files ]] || fail "no .log files in $TXN_DIR"
    dump "$TXN_DUMP" --files "$files" --print-data-log
    rc="$(<"$TXN_DUMP.rc")"
    awk -v stats="$TXN_DUMP.stats" -v batches="$TXN_DUMP.batches.tsv" -v recs="$TXN_DUMP.records.tsv" '
        function fld(name,   s) {
            if (!match($0, "(^| )" name ": -?[0-9]+")) return "?"
            s = substr($0, RSTART, RLENGTH); sub(/.*: /, "", s); return s
        }
        BEGIN { printf "" > batches; printf "" > recs }
        /^Dumping / { files++; seg = $2; sub(/.*\//, "", seg); sub(/\.log$/, "", seg); seg += 0; next }
        /^baseOffset: / {
            nb++
            if ($0 !~ / isvalid: true$/) { invalid++; if (invalid <= 10) print "invalid batch: " $0 }
            ctl = ($0 ~ / isControl: true /); txn = ($0 ~ / isTransactional: true /)
            nctl += ctl
            pid = fld("producerId"); ep = fld("producerEpoch")
            ts = "?"
            if (match($0, / position: [0-9]+ [A-Za-z]+: -?[0-9]+/)) { ts = substr($0, RSTART, RLENGTH); sub(/.* /, "", ts) }
            printf "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", seg, fld("baseOffset"), fld("lastOffset"),
                fld("lastSequence"), pid, ep, txn, ctl, ts > batches
            next
        }
        /^\| offset: / {
            nr++
            key = "-"; ce = "-"
            if (ctl) {
                if (match($0, / endTxnMarker: [A-Z]+ coordinatorEpoch: -?[0-9]+/)) {
                    split(substr($0, RSTART + 1, RLENGTH - 1), m, " ")
                    type = m[2]; ce = m[4]
                    if (type != "COMMIT" && type != "ABORT") { odd++; print "unexpected marker type: " $0 }
                    marker[type]++
                } else { odd++; type = "control"; print "control record shown without endTxnMarker: " $0 }
            } else {
                type = "data"
                if ($0 ~ / endTxnMarker: /) { odd++; print "endTxnMarker in a data batch: " $0 }
                key = "(null)"; if (match($0, / key: [^ ]+/)) key = substr($0, RSTART + 6, RLENGTH - 6)
            }
            printf "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", seg, $3, type, key, pid, ep, ce > recs
            next
        }
        /invalid bytes at the end of/ { trailing++; print; next }
        END {
            printf "files=%d batches=%d (control %d) records=%d (COMMIT %d, ABORT %d) invalid=%d trailing=%d odd=%d\n",
                files, nb, nctl, nr, marker["COMMIT"], marker["ABORT"], invalid, trailing, odd > stats
            exit (invalid + trailing + odd > 0)
        }' "$TXN_DUMP.out" || bad=1
    sort -t $'\t' -k2,2n -s "$TXN_DUMP.records.tsv" | awk -F'\t' '
        $3 == "data" { if (!($5 in first)) { first[$5] = $2; fseg[$5] = $1 }; next }
        { f = ($5 in first) ? first[$5] : "-"; s = ($5 in fseg) ? fseg[$5] : "-"
          printf "%s\t%s\t%s\t%s\t%s\t%s\n", $5, f, $2, $3, s, $1; delete first[$5]; delete fseg[$5] }
    ' >"$TXN_DUMP.txns.tsv"
    problems "$TXN_DUMP.err" >"$TXN_DUMP.problems"
    if ((rc != 0)) || [[ -s $TXN_DUMP.problems ]]; then
        summarize <"$TXN_DUMP.problems" >&2
        ((rc == 0)) && fail "kafka-dump-log --print-data-log exited 0 but reported problems on stderr"
        fail "kafka-dump-log --print-data-log exited with status $rc: $(grep -m1 -E 'Exception' "$TXN_DUMP.err" || tail -n 1 "$TXN_DUMP.err")"
    fi
    stats="$(<"$TXN_DUMP.stats")"
    ((bad == 0)) || fail "kafka-dump-log: $stats"
    [[ $stats == files=0\ * ]] && fail "kafka-dump-log dumped no file: $stats"
    echo "exit 0, every batch isvalid: true, control records shown as endTxnMarker, no stderr reports: $stats"
}

need_txn_dump() {
    [[ -s $TXN_DUMP.records.tsv ]] || fail "no kafka-dump-log output for $TXN_DIR"
    [[ -s $TMP/txns.tsv ]] || fail "no report from the transactional producer ($TMP/txns.tsv)"
}

check_txn_markers() {
    local want_c want_a got_c got_a epochs
    need_txn_dump
    want_c="$(tr -cd c <<<"$TXN_PLAN" | wc -c)" want_a="$(tr -cd a <<<"$TXN_PLAN" | wc -c)"
    got_c="$(awk -F'\t' '$3 == "COMMIT"' "$TXN_DUMP.records.tsv" | wc -l)"
    got_a="$(awk -F'\t' '$3 == "ABORT"' "$TXN_DUMP.records.tsv" | wc -l)"
    ((got_c == want_c && got_a == want_a)) ||
        fail "$got_c endTxnMarker: COMMIT and $got_a endTxnMarker: ABORT in the dump; $want_c transactions were committed and $want_a aborted"
    epochs="$(awk -F'\t' '$3 != "data" { print $7 }' "$TXN_DUMP.records.tsv" | sort -u | paste -sd ' ' -)"
    echo "$got_c endTxnMarker: COMMIT and $got_a endTxnMarker: ABORT, as committed and aborted (coordinatorEpoch: $epochs)"
}

# Offsets 0..end-1 hold exactly: per transaction (in the producer's order) its records, with
# their keys, at the offsets of the delivery reports, then its marker; every batch is
# transactional and of the one producer (id and epoch).
check_txn_layout() {
    local got="$TMP/txn-layout-dump.tsv" want="$TMP/txn-layout-produced.tsv" ids
    need_txn_dump
    sort -t $'\t' -k2,2n -s "$TXN_DUMP.records.tsv" | cut -f2-4 >"$got"
    awk -F'\t' '{
        for (o = $3; o <= $4; o++) printf "%d\tdata\ttxn-%03d-%03d\n", o, $1, o - $3
        printf "%d\t%s\t-\n", $4 + 1, ($2 == "commit" ? "COMMIT" : "ABORT")
    }' "$TMP/txns.tsv" >"$want"
    if ! cmp -s "$got" "$want"; then
        diff "$got" "$want" | head -n 20 | sed 's/^/diff (< dump, > produced): /' >&2
        fail "the log (offset, data|COMMIT|ABORT, key) differs from the transactions produced"
    fi
    awk -F'\t' '$1 != NR - 1 { exit 1 }' "$got" || fail "the offsets are not 0..N-1 (the first transaction's first record is not at 0, or a gap)"
    awk -F'\t' '$7 != 1 { n++ } END { exit n > 0 }' "$TXN_DUMP.batches.tsv" ||
        fail "$(awk -F'\t' '$7 != 1' "$TXN_DUMP.batches.tsv" | wc -l) batches with isTransactional: false"
    ids="$(cut -f5,6 "$TXN_DUMP.batches.tsv" | sort -u)"
    (($(wc -l <<<"$ids") == 1)) || fail "batches of more than one producer id/epoch: $(tr '\t\n' '/ ' <<<"$ids")"
    echo "offsets 0..$(($(wc -l <"$got") - 1)): each transaction's $TXN_RECORDS records (keys and offsets as delivered)" \
        "then its marker; all $(wc -l <"$TXN_DUMP.batches.tsv") batches isTransactional: true, producerId ${ids%%$'\t'*} producerEpoch ${ids##*$'\t'}"
}

# Where the aborts are: at least one ABORT marker in a rolled segment and one in the active
# (last) segment; reports the aborted transactions that span a roll.
check_txn_abort_placement() {
    local last rolled active spans
    need_txn_dump
    last="$(cut -f1 "$TXN_DUMP.batches.tsv" | sort -n | tail -n 1)"
    rolled="$(awk -F'\t' -v l="$last" '$4 == "ABORT" && $6 != l { print $3 }' "$TXN_DUMP.txns.tsv" | paste -sd ' ' -)"
    active="$(awk -F'\t' -v l="$last" '$4 == "ABORT" && $6 == l { print $3 }' "$TXN_DUMP.txns.tsv" | paste -sd ' ' -)"
    spans="$(awk -F'\t' '$4 == "ABORT" && $5 != $6 { printf "%s%s..%s (segments %s, %s)", sep, $2, $3, $5, $6; sep = ", " }' "$TXN_DUMP.txns.tsv")"
    [[ -n $rolled ]] || fail "no ABORT marker in a rolled segment (the active one starts at $last): the sizes no longer lay the log out as meant"
    [[ -n $active ]] || fail "no ABORT marker in the active segment (base offset $last): the sizes no longer lay the log out as meant"
    echo "ABORT markers at offsets $rolled in rolled segments, $active in the active one (base $last);" \
        "aborted transactions across a roll: ${spans:-none}"
}

# The .txnindex files through kafka-dump-log, parsed into $TMP/dump-txn-index.tsv: file's base
# offset, version, producerId, firstOffset, lastOffset, lastStableOffset.
TXN_INDEX="$TMP/dump-txn-index"
check_txn_index_dump() {
    local files rc f n bytes base per=""
    files="$(files_in "$TXN_DIR" txnindex)"
    [[ -n $files ]] || fail "no .txnindex file in $TXN_DIR (there are $(cd "$TXN_DIR" && ls | paste -sd ' ' -))"
    dump "$TXN_INDEX" --files "$files"
    rc="$(<"$TXN_INDEX.rc")"
    if ((rc != 0)) || [[ -s $TXN_INDEX.err ]]; then
        grep -v $'^\tat ' "$TXN_INDEX.err" | head -n 10 >&2
        fail "kafka-dump-log on the .txnindex files exited with status $rc: $(grep -m1 -E 'Exception' "$TXN_INDEX.err" || tail -n 1 "$TXN_INDEX.err")"
    fi
    awk -v tsv="$TXN_INDEX.tsv" '
        BEGIN { printf "" > tsv }
        /^Dumping / { base = $2; sub(/.*\//, "", base); sub(/\.txnindex$/, "", base); base += 0; next }
        /^version: -?[0-9]+ producerId: -?[0-9]+ firstOffset: -?[0-9]+ lastOffset: -?[0-9]+ lastStableOffset: -?[0-9]+$/ {
            printf "%d\t%s\t%s\t%s\t%s\t%s\n", base, $2, $4, $6, $8, $10 > tsv; next
        }
        { bad++; print "unexpected line: " $0 }
        END { exit bad > 0 }' "$TXN_INDEX.out" >&2 || fail "kafka-dump-log printed lines that are not aborted transactions"
    for f in $(tr ',' ' ' <<<"$files"); do
        base="$(basename "$f" .txnindex)"; base=$((10#$base))
        n="$(awk -F'\t' -v b="$base" '$1 == b' "$TXN_INDEX.tsv" | wc -l)"
        bytes="$(stat -c %s "$f")"
        ((bytes == n * 34)) || fail "$(basename "$f"): $bytes bytes, but kafka-dump-log printed $n entries (34 bytes each)"
        per+="${per:+, }$base: $n"
    done
    awk -F'\t' '$2 != 0 { exit 1 }' "$TXN_INDEX.tsv" || fail "an entry with version other than 0: $(awk -F'\t' '$2 != 0' "$TXN_INDEX.tsv" | head -n 1)"
    echo "exit 0, $(wc -l <"$TXN_INDEX.tsv") entries, all version: 0, in $(tr ',' '\n' <<<"$files" | wc -l) files (base offset: entries: $per), 34 bytes an entry"
}

# One entry per ABORT marker, in marker order, in the .txnindex of the marker's segment:
# producerId of the marker, firstOffset its transaction's first record, lastOffset the marker
# (and those agree with the producer's delivery reports).
check_txn_index_entries() {
    local got="$TMP/txn-index-got.tsv" want="$TMP/txn-index-want.tsv" rep
    need_txn_dump
    [[ -f $TXN_INDEX.tsv ]] || fail "no kafka-dump-log output for the .txnindex files"
    cut -f1,3-5 "$TXN_INDEX.tsv" >"$got"
    awk -F'\t' -v OFS='\t' '$4 == "ABORT" { print $6, $1, $2, $3 }' "$TXN_DUMP.txns.tsv" >"$want"
    if ! cmp -s "$got" "$want"; then
        diff "$got" "$want" | head -n 20 | sed 's/^/diff (< .txnindex: segment, producerId, firstOffset, lastOffset; > the .log dump): /' >&2
        fail "the .txnindex entries are not one per ABORT marker, in its segment, with its transaction's first offset and the marker's offset"
    fi
    rep="$(awk -F'\t' -v OFS='\t' '$2 == "abort" { print $3, $4 + 1 }' "$TMP/txns.tsv")"
    [[ "$(cut -f3,4 "$got")" == "$rep" ]] ||
        fail "the entries' firstOffset/lastOffset ($(cut -f3,4 "$got" | tr '\t\n' '/ ')) are not the aborted transactions' first records and markers per the delivery reports ($(tr '\t\n' '/ ' <<<"$rep"))"
    echo "$(wc -l <"$got") entries, one per ABORT marker, each in its marker's segment; firstOffset/lastOffset" \
        "$(awk -F'\t' '{ printf "%s%s/%s", sep, $3, $4; sep = " " }' "$got") = the aborted transaction's first record/its marker"
}

# lastStableOffset as Kafka writes it (UnifiedLog.append: ProducerStateManager
# .lastStableOffset(completedTxn), after the marker): the first offset of the earliest
# transaction of another producer still open at the marker, else lastOffset + 1.
check_txn_index_lso() {
    local out
    need_txn_dump
    [[ -f $TXN_INDEX.tsv ]] || fail "no kafka-dump-log output for the .txnindex files"
    out="$(awk -F'\t' '
        FNR == NR { n++; pid[n] = $1; first[n] = $2; mark[n] = $3; next }
        {
            want = $5 + 1
            for (i = 1; i <= n; i++)
                if (pid[i] != $3 && first[i] != "-" && first[i] < $5 && mark[i] > $5 && first[i] < want) want = first[i]
            total++
            if ($6 != want) { bad++; printf "firstOffset: %s lastOffset: %s lastStableOffset: %s (Kafka: %d)\n", $4, $5, $6, want }
        }
        END { if (bad) { printf "%d of %d entries\n", bad, total; exit 1 } printf "%d entries\n", total }
    ' "$TXN_DUMP.txns.tsv" "$TXN_INDEX.tsv")" || {
        head -n -1 <<<"$out" | sed 's/^/entry: /' >&2
        fail "lastStableOffset differs from Kafka's in $(tail -n 1 <<<"$out"): Kafka writes the last stable offset after the" \
            "marker (here lastOffset + 1: no other producer has a transaction open)"
    }
    echo "lastStableOffset as Kafka computes it in all $(tail -n 1 <<<"$out")"
}

# The .snapshot files through kafka-dump-log: exit 0, nothing on stderr, one at the log end;
# each entry what Kafka's producer state holds at the snapshot's offset S, from the batches
# below S: producerEpoch, coordinatorEpoch (of the last marker, else -1),
# currentTxnFirstOffset (the open transaction's first offset, else OptionalLong.empty),
# lastTimestamp (the last batch's, data or marker), and the last data batch's lastSequence,
# lastOffset, offsetDelta and firstSequence (lastSequence - offsetDelta).
check_txn_snapshots() {
    local files prefix="$TMP/dump-txn-snapshot" rc end snaps out
    need_txn_dump
    files="$(files_in "$TXN_DIR" snapshot)"
    end="$(($(sort -t $'\t' -k3,3n "$TXN_DUMP.batches.tsv" | tail -n 1 | cut -f3) + 1))"
    [[ -f $TXN_DIR/$(printf '%020d' "$end").snapshot ]] ||
        fail "no $(printf '%020d' "$end").snapshot at the log end (there are: $(cd "$TXN_DIR" && ls -- *.snapshot 2>/dev/null | paste -sd ' ' -))"
    dump "$prefix" --files "$files"
    rc="$(<"$prefix.rc")"
    ((rc == 0)) || fail "kafka-dump-log exited with status $rc: $(grep -m1 -E 'Exception' "$prefix.err" || tail -n 1 "$prefix.err")"
    [[ ! -s $prefix.err ]] || fail "kafka-dump-log: $(head -n 1 "$prefix.err")"
    awk -v tsv="$prefix.tsv" '
        BEGIN { printf "" > tsv }
        /^Dumping / { s = $2; sub(/.*\//, "", s); sub(/\.snapshot$/, "", s); s += 0; files++; next }
        /^producerId: / {
            for (i = 1; i < NF; i += 2) v[$i] = $(i + 1)
            t = v["currentTxnFirstOffset:"]
            if (t == "OptionalLong.empty") t = -1
            else if (t ~ /^OptionalLong\[[0-9]+\]$/) { gsub(/[^0-9]/, "", t) }
            printf "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s, v["producerId:"], v["producerEpoch:"],
                v["coordinatorEpoch:"], t, v["lastTimestamp:"], v["firstSequence:"], v["lastSequence:"],
                v["lastOffset:"], v["offsetDelta:"], v["timestamp:"] > tsv
            delete v; next
        }
        { print "unexpected line: " $0; bad++ }
        END { exit bad > 0 }' "$prefix.out" >&2 || fail "kafka-dump-log printed lines that are not producer entries"
    out="$(awk -F'\t' '
        FILENAME ~ /records/ { if ($3 != "data") ce[$2] = $7; next }
        FILENAME ~ /batches/ { nb++; bo[nb] = $2; lo[nb] = $3; ls[nb] = $4; pid[nb] = $5; ep[nb] = $6; ctl[nb] = $8; ts[nb] = $9; next }
        {
            s = $1; p = $2; seen[s "/" p] = 1; snaps[s] = 1
            e = ""; c = -1; open = -1; lts = "-"; dls = "-"; dlo = "-"; dd = "-"
            for (i = 1; i <= nb; i++) {
                if (pid[i] != p || bo[i] >= s) continue
                e = ep[i]; lts = ts[i]
                if (ctl[i]) { c = ce[bo[i]]; open = -1 }
                else { if (open < 0) open = bo[i]; dls = ls[i]; dlo = lo[i]; dd = lo[i] - bo[i]; dts = ts[i] }
            }
            want = sprintf("producerEpoch: %s coordinatorEpoch: %s currentTxnFirstOffset: %s lastTimestamp: %s firstSequence: %s lastSequence: %s lastOffset: %s offsetDelta: %s timestamp: %s",
                e, c, open, lts, dls - dd, dls, dlo, dd, lts)
            got = sprintf("producerEpoch: %s coordinatorEpoch: %s currentTxnFirstOffset: %s lastTimestamp: %s firstSequence: %s lastSequence: %s lastOffset: %s offsetDelta: %s timestamp: %s",
                $3, $4, $5, $6, $7, $8, $9, $10, $11)
            if (e == "") { bad++; printf "%d.snapshot: producerId %s, which has no batch below %d\n", s, p, s }
            else if (got != want) { bad++; printf "%d.snapshot: producerId %s: %s\n    want (Kafka): %s\n", s, p, got, want }
            else summary = summary sprintf("%s%d: currentTxnFirstOffset %s coordinatorEpoch %s lastOffset %s", sep, s, (open < 0 ? "empty" : open), c, dlo)
            sep = "; "
        }
        END {
            for (i = 1; i <= nb; i++) for (s in snaps) if (bo[i] < s + 0 && !((s "/" pid[i]) in seen)) { missing[s "/" pid[i]] = 1 }
            for (k in missing) { bad++; split(k, m, "/"); printf "%d.snapshot: no entry for producerId %s, which has batches below %d\n", m[1], m[2], m[1] }
            if (bad) exit 1
            print summary
        }' "$TXN_DUMP.records.tsv" "$TXN_DUMP.batches.tsv" "$prefix.tsv")" || {
        printf '%s\n' "$out" >&2
        fail "the producer entries differ from Kafka's producer state at the snapshots' offsets"
    }
    snaps="$(cd "$TXN_DIR" && ls -- *.snapshot | sed 's/\.snapshot$//; s/^0*\([0-9]\)/\1/' | paste -sd ' ' -)"
    (($(wc -l <"$prefix.tsv") == $(tr ',' '\n' <<<"$files" | wc -l))) ||
        fail "$(wc -l <"$prefix.tsv") producer entries in $(tr ',' '\n' <<<"$files" | wc -l) snapshots ($snaps): want one each (one producer)"
    echo "exit 0, snapshots at $snaps (log end $end), one producer entry each, as Kafka's state there: $out"
}

run_check txn-segments check_txn_dir
run_check txn-dump-log-print-data-log check_txn_print_data_log
run_check txn-markers check_txn_markers
run_check txn-records-and-markers check_txn_layout
run_check txn-abort-placement check_txn_abort_placement
run_check txn-index-dump check_txn_index_dump
run_check txn-index-entries check_txn_index_entries
run_check txn-index-last-stable-offset check_txn_index_lso
run_check txn-producer-snapshots check_txn_snapshots

echo "dump-log-check: checks took $((SECONDS - CHECKS_START)) s"
finish
((FAILED == 0))
