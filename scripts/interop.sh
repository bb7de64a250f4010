#!/usr/bin/env bash
# Cross-client interoperability test: starts a fresh Spate broker on a free loopback
# port and checks that real Kafka clients (kcat/librdkafka, confluent-kafka-python,
# kafka-python) can produce to it and read back exactly what was produced, across
# clients, with headers and per-partition order intact; and that their consumer groups
# (subscribe, join, sync, heartbeat, commit, leave) work: records shared out exactly once
# between the members of a group, a group's next run resuming from its committed
# offsets, and different groups each reading everything; and that confluent-kafka's
# transactions (KIP-98) stay exactly once in a consume-transform-produce copier while a
# broker of its own is killed (kill -9) and restarted and the copier itself crashes.
#
# Usage:  scripts/interop.sh [path-to-spate-binary]     (default: target/release/spate)
# Installs its own dependencies first (scripts/install-test-deps.sh: kcat, .venv-interop/).
# Prints PASS/FAIL per check and ends with "N passed, M failed"; exits 1 if any failed.
# Environment: INTEROP_KEEP_TMP=1 keeps the temp dir (broker data, log, client outputs);
#              INTEROP_BUDGET=seconds bounds the whole run of checks (default 900);
#              INTEROP_DEBUG=contexts (e.g. cgrp or cgrp,fetch,protocol) turns on the
#              group consumers' debug output: kcat -d, librdkafka `debug`, kafka-python
#              DEBUG logging; it lands in the client stderr files (keep them with
#              INTEROP_KEEP_TMP=1) and the last lines are shown when a check fails.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${1:-$REPO_ROOT/target/release/spate}"
PARTITIONS=3          # num.partitions given to the broker; auto-created topics get it
COUNT=1000            # messages per produce
MORE=200              # messages produced before a consumer group's second run
STEP_TIMEOUT=30       # seconds: bound for each kcat run and each Python consume loop
PY_TIMEOUT=90         # seconds: hard bound for one Python client process
BUDGET=${INTEROP_BUDGET:-900} # seconds for all checks; checks not started by then fail

if [[ ! -x $BIN ]]; then
    echo "FAIL broker-binary: '$BIN' not found or not executable (build it first)"
    echo "0 passed, 1 failed"
    exit 1
fi
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

"$REPO_ROOT/scripts/install-test-deps.sh"
PY="${INTEROP_VENV:-$REPO_ROOT/.venv-interop}/bin/python"
CLIENTS="$REPO_ROOT/scripts/interop/clients.py"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/spate-interop.XXXXXX")"
LOG="$TMP/broker.log"
BROKER_PID=""
PASSED=0
FAILED=0

stop_broker() {
    [[ -n $BROKER_PID ]] || return 0
    if kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        local i
        for ((i = 0; i < 100; i++)); do    # up to 10 s for a clean shutdown
            kill -0 "$BROKER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$BROKER_PID" 2>/dev/null; then
            echo "interop: broker (pid $BROKER_PID) ignored SIGTERM for 10 s; sending SIGKILL"
            kill -KILL "$BROKER_PID" 2>/dev/null || true
        fi
    fi
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=""
}

summary() { echo "$PASSED passed, $FAILED failed"; }

# Stops the broker, shows its log if anything failed, prints the closing line.
FINISHED=0
finish() {
    stop_broker
    local txn_pid
    if [[ -s $TMP/txn-broker.pid ]]; then # a transactions check was cut short
        txn_pid="$(<"$TMP/txn-broker.pid")"
        kill -KILL "$txn_pid" 2>/dev/null || true
        rm -f "$TMP/txn-broker.pid"
    fi
    if ((FAILED > 0)) && [[ -f $LOG ]]; then
        echo "---- broker log (last 80 lines of $LOG) ----"
        if [[ -s $LOG ]]; then tail -n 80 "$LOG" || true; else echo "(empty)"; fi
        echo "---- end of broker log ----"
    fi
    if [[ -f $TMP/txn.failed && -f $TMP/txn-broker.log ]]; then
        echo "---- transactions broker log (last 60 lines of $TMP/txn-broker.log) ----"
        tail -n 60 "$TMP/txn-broker.log" || true
        echo "---- end of transactions broker log ----"
    fi
    if [[ ${INTEROP_KEEP_TMP:-0} == 1 ]]; then
        echo "interop: kept $TMP"
    fi
    FINISHED=1
    summary
}

cleanup() {
    local rc=$?
    if ((FINISHED == 0)); then # interrupted, or the script itself went wrong
        echo "FAIL interop-script: stopped early (status $rc)"
        FAILED=$((FAILED + 1))
        finish
        ((rc != 0)) || rc=1
    fi
    if [[ ${INTEROP_KEEP_TMP:-0} != 1 ]]; then
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- start the broker ---------------------------------------------------------
# spawn_broker DATA PORT LOG [OVERRIDE]...: starts a broker in the background (its log
# appended to LOG), its pid in SPAWNED_PID.
spawn_broker() {
    local data=$1 port=$2 log=$3 o overrides=()
    shift 3
    for o in "$@"; do overrides+=(--override "$o"); done
    "$BIN" broker \
        --override "log.dirs=$data" \
        --override "listeners=PLAINTEXT://127.0.0.1:$port" \
        "${overrides[@]}" \
        >>"$log" 2>&1 </dev/null &
    SPAWNED_PID=$!
}

port_open_at() { (: <>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_open() { port_open_at "$PORT"; }

# await_listening PID PORT SECS: until the broker PID accepts connections on PORT; on
# failure the reason in START_ERROR (and a broker that exited is reaped).
await_listening() {
    local pid=$1 port=$2 deadline=$((SECONDS + $3)) rc
    START_ERROR=""
    until port_open_at "$port"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" && rc=0 || rc=$?
            START_ERROR="broker exited with status $rc before accepting connections"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            START_ERROR="broker did not accept connections on 127.0.0.1:$port within $3 s"
            return 1
        fi
        sleep 0.1
    done
}

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'; }

PORT="$(free_port)"
BOOTSTRAP="127.0.0.1:$PORT"
echo "interop: starting $BIN on $BOOTSTRAP (data in $TMP/data, log in $LOG)"
# group.initial.rebalance.delay.ms=0 (default 3000, as in Kafka): a new consumer group's
# first rebalance completes at once instead of waiting 3 s for more members, which only
# slows the group checks down (they never depend on that wait).
spawn_broker "$TMP/data" "$PORT" "$LOG" "num.partitions=$PARTITIONS" \
    "group.initial.rebalance.delay.ms=0"
BROKER_PID=$SPAWNED_PID
start_error=""
if ! await_listening "$BROKER_PID" "$PORT" 30; then
    start_error=$START_ERROR
    kill -0 "$BROKER_PID" 2>/dev/null || BROKER_PID=""
fi
if [[ -n $start_error ]]; then
    echo "FAIL broker-start: $start_error"
    FAILED=1
    finish
    exit 1
fi
echo "interop: broker pid $BROKER_PID is accepting connections on $BOOTSTRAP"

# --- helpers ------------------------------------------------------------------
BROKER_EXIT=""
broker_alive() { # true while the broker runs; once it has exited, notes how
    [[ -n $BROKER_PID ]] || return 1
    kill -0 "$BROKER_PID" 2>/dev/null && return 0
    if [[ -z $BROKER_EXIT ]]; then
        local rc
        wait "$BROKER_PID" 2>/dev/null && rc=0 || rc=$?
        BROKER_EXIT=" (exit status $rc)"
    fi
    return 1
}

# Each check runs in a subshell with errexit; its last output line (stdout or stderr)
# is the reason (FAIL) or the summary (PASS); earlier lines are detail on failure.
# Diagnostics go to stderr so that they never end up in a redirected output file.
fail() { echo "$*" >&2; exit 1; }

run_check() {
    local name=$1 out rc reason
    shift
    if ! broker_alive; then
        echo "FAIL $name: broker process is no longer running$BROKER_EXIT"
        FAILED=$((FAILED + 1))
        return 0
    fi
    if ((SECONDS - CHECKS_START >= BUDGET)); then
        echo "FAIL $name: not run, the ${BUDGET}s budget for all checks is used up"
        FAILED=$((FAILED + 1))
        return 0
    fi
    set +e
    out="$(set -e; "$@" 2>&1)"
    rc=$?
    set -e
    reason="$(printf '%s\n' "$out" | sed '/^[[:space:]]*$/d' | tail -n 1)"
    reason="${reason#FAIL: }"
    if ((rc == 0)); then
        echo "PASS $name: ${reason:-ok}"
        PASSED=$((PASSED + 1))
    else
        echo "FAIL $name: ${reason:-exit status $rc}"
        printf '%s\n' "$out" | sed '/^[[:space:]]*$/d' | head -n -1 | tail -n 30 | sed 's/^/    | /'
        FAILED=$((FAILED + 1))
    fi
    return 0
}

# Runs a command bounded in time; on failure prints what it said and why it stopped.
bounded() {
    local secs=$1 what=$2 errfile rc
    shift 2
    errfile="$(mktemp "$TMP/stderr.XXXXXX")"
    "$@" 2>"$errfile" && rc=0 || rc=$?
    if ((rc != 0)); then
        tail -n 15 "$errfile" >&2
        if ((rc == 124)); then
            fail "$what timed out after ${secs}s"
        fi
        fail "$what exited with status $rc"
    fi
}

kcat_b() { timeout "$STEP_TIMEOUT" kcat -b "$BOOTSTRAP" "$@"; }

# kcat_produce TOPIC FILE [kcat args...]: one message per line of FILE, key:value.
kcat_produce() {
    local topic=$1 file=$2
    shift 2
    bounded "$STEP_TIMEOUT" "kcat -P" kcat_b -P -t "$topic" -K: "$@" <"$file"
}

# kcat_consume TOPIC FORMAT OUTFILE: everything from the beginning, then exit.
kcat_consume() {
    bounded "$STEP_TIMEOUT" "kcat -C" kcat_b -C -t "$1" -e -o beginning -f "$2" >"$3"
}

# py ARGS...: the Python clients (scripts/interop/clients.py), hard-bounded.
py() {
    timeout "$PY_TIMEOUT" "$PY" "$CLIENTS" "$@" --timeout "$STEP_TIMEOUT"
}

# py_step WHAT ARGS...: py, with the client's own summary (or FAIL: reason) line
# printed last, after whatever the client libraries logged on failure.
py_step() {
    local what=$1 rc out errfile
    shift
    errfile="$(mktemp "$TMP/stderr.XXXXXX")"
    out="$(py "$@" 2>"$errfile")" && rc=0 || rc=$?
    if ((rc != 0)); then
        tail -n 15 "$errfile" >&2
        if ((rc == 124)); then
            fail "$what: killed after ${PY_TIMEOUT}s"
        fi
        fail "${out:-$what exited with status $rc}"
    fi
    echo "$out"
}

gen_lines() { # gen_lines COUNT [FIRST] > FILE: key-<i>:value-<i>, i = FIRST..COUNT-1
    awk -v n="$1" -v f="${2:-0}" \
        'BEGIN { for (i = f; i < n; i++) printf "key-%d:value-%d\n", i, i }'
}

DEBUG_KCAT=()
DEBUG_PY=()
if [[ -n ${INTEROP_DEBUG:-} ]]; then
    DEBUG_KCAT=(-d "$INTEROP_DEBUG")
    DEBUG_PY=(--debug "$INTEROP_DEBUG")
fi

# kcat_group GROUP TOPIC OUTFILE: kcat as a balanced consumer (-G, subscribe) in GROUP,
# from the committed offsets (earliest where there are none) to the end of everything
# assigned (-e); kcat commits on close (auto commit).
kcat_group() {
    bounded "$STEP_TIMEOUT" "kcat -G $1" kcat_b -G "$1" -X auto.offset.reset=earliest \
        "${DEBUG_KCAT[@]}" -e -f "$RICH_FMT" "$2" >"$3"
}

# group_py ARGS...: py_step for a group member (scripts/interop/clients.py group-consume).
group_py() {
    py_step "group-consume" group-consume "$@" "${DEBUG_PY[@]}"
}

# Group members that must run at the same time run in the background of their check:
# group_bg NAME ARGS... starts `clients.py group-consume ARGS...` (bounded like py; a
# --timeout among ARGS replaces the default STEP_TIMEOUT) with
# stdout/stderr in $TMP/NAME.stdout/.stderr and its pid in BG_PID; stop_bg (the EXIT
# trap of such a check) stops those still running, by pid.
BG_PIDS=()
group_bg() {
    local name=$1
    shift
    timeout "$PY_TIMEOUT" "$PY" "$CLIENTS" group-consume --timeout "$STEP_TIMEOUT" "$@" \
        "${DEBUG_PY[@]}" >"$TMP/$name.stdout" 2>"$TMP/$name.stderr" </dev/null &
    BG_PID=$!
    BG_PIDS+=("$BG_PID")
}
stop_bg() {
    local pid
    for pid in "${BG_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
}

# bg_wait NAME PID: waits for a group_bg member (not from a subshell: it must be the
# parent); its summary line in BG_RESULT; on failure prints its stderr tail and reason
# to stderr and returns 1.
bg_wait() {
    local name=$1 pid=$2 rc last i
    wait "$pid" && rc=0 || rc=$?
    for i in "${!BG_PIDS[@]}"; do
        [[ ${BG_PIDS[i]} != "$pid" ]] || unset 'BG_PIDS[i]'
    done
    last="$(sed '/^[[:space:]]*$/d' "$TMP/$name.stdout" | tail -n 1)"
    BG_RESULT=$last
    if ((rc == 0)); then
        return 0
    fi
    tail -n 15 "$TMP/$name.stderr" | sed "s/^/$name: /" >&2
    if ((rc == 124)); then
        echo "$name: killed after ${PY_TIMEOUT}s" >&2
    else
        echo "$name: ${last:-exited with status $rc}" >&2
    fi
    return 1
}

# ctx_step CONTEXT CMD...: CMD's last output line; when CMD fails, shows what it said
# and fails with "CONTEXT: <its reason>".
ctx_step() {
    local ctx=$1 out
    shift
    if ! out="$("$@" 2>&1)"; then
        out="$(sed '/^[[:space:]]*$/d' <<<"$out")"
        head -n -1 <<<"$out" >&2
        fail "$ctx: $(tail -n 1 <<<"$out")"
    fi
    tail -n 1 <<<"$out"
}

# wait_ready SECS FILE PID [FILE PID]...: until every FILE exists (bounded); fails if the
# process PID that is to create a FILE exits first.
wait_ready() {
    local secs=$1 deadline=$((SECONDS + $1)) missing i
    shift
    local args=("$@")
    while :; do
        missing=0
        for ((i = 0; i < ${#args[@]}; i += 2)); do
            [[ -e ${args[i]} ]] && continue
            missing=1
            if ! kill -0 "${args[i + 1]}" 2>/dev/null; then
                echo "the process to create $(basename "${args[i]}") exited first" >&2
                return 1
            fi
        done
        ((missing == 0)) && return 0
        if ((SECONDS >= deadline)); then
            echo "not all of them within ${secs}s" >&2
            return 1
        fi
        sleep 0.1
    done
}

RICH_FMT='%p\t%o\t%k\t%s\t%h\n'

# --- checks -------------------------------------------------------------------
check_metadata_broker() {
    bounded "$STEP_TIMEOUT" "kcat -L" kcat_b -L -J >"$TMP/md-all.json"
    py_step "metadata" metadata --file "$TMP/md-all.json" --broker "$BOOTSTRAP"
}

check_kcat_roundtrip() {
    local t=interop-kcat
    gen_lines "$COUNT" >"$TMP/$t.in"
    kcat_produce "$t" "$TMP/$t.in"
    # Same multiset of lines as produced...
    kcat_consume "$t" '%k:%s\n' "$TMP/$t.kv"
    py_step "verify" verify-kcat --file "$TMP/$t.kv" -n "$COUNT" --format kv --expect-lines
    # ...and in produced order within every partition.
    kcat_consume "$t" '%p %k:%s\n' "$TMP/$t.pkv"
    py_step "verify" verify-kcat --file "$TMP/$t.pkv" -n "$COUNT" --format pkv
}

check_metadata_topic() {
    local t=interop-kcat # produced by check_kcat_roundtrip
    bounded "$STEP_TIMEOUT" "kcat -L -t $t" kcat_b -L -J -t "$t" >"$TMP/md-$t.json"
    py_step "metadata" metadata --file "$TMP/md-$t.json" --broker "$BOOTSTRAP" \
        --topic "$t" --partitions "$PARTITIONS"
}

check_kcat_headers() {
    local t=interop-kcat-headers
    gen_lines 100 >"$TMP/$t.in"
    kcat_produce "$t" "$TMP/$t.in" -H trace-id=abc123 -H source=kcat
    kcat_consume "$t" "$RICH_FMT" "$TMP/$t.out"
    py_step "verify" verify-kcat --file "$TMP/$t.out" -n 100 --format rich \
        --headers static:trace-id=abc123,source=kcat
}

check_confluent_roundtrip() {
    local t=interop-confluent
    py_step "produce" produce --client confluent -b "$BOOTSTRAP" -t "$t" -n "$COUNT"
    py_step "consume" consume --client confluent -b "$BOOTSTRAP" -t "$t" -n "$COUNT" \
        --headers produced:confluent
}

check_kafka_python_roundtrip() {
    local t=interop-kafka-python
    py_step "produce" produce --client kafka-python -b "$BOOTSTRAP" -t "$t" -n "$COUNT"
    py_step "consume" consume --client kafka-python -b "$BOOTSTRAP" -t "$t" -n "$COUNT" \
        --headers produced:kafka-python
}

check_kcat_to_kafka_python() {
    local t=interop-kcat-to-kafka-python
    gen_lines "$COUNT" >"$TMP/$t.in"
    kcat_produce "$t" "$TMP/$t.in"
    py_step "consume" consume --client kafka-python -b "$BOOTSTRAP" -t "$t" -n "$COUNT" \
        --headers none
}

check_kafka_python_to_confluent() {
    local t=interop-kafka-python-to-confluent
    py_step "produce" produce --client kafka-python -b "$BOOTSTRAP" -t "$t" -n "$COUNT"
    py_step "consume" consume --client confluent -b "$BOOTSTRAP" -t "$t" -n "$COUNT" \
        --headers produced:kafka-python
}

check_confluent_to_kcat() {
    local t=interop-confluent-to-kcat
    py_step "produce" produce --client confluent -b "$BOOTSTRAP" -t "$t" -n "$COUNT"
    kcat_consume "$t" "$RICH_FMT" "$TMP/$t.out"
    py_step "verify" verify-kcat --file "$TMP/$t.out" -n "$COUNT" --format rich \
        --headers produced:confluent
}

# acks=all to a topic that already exists: create it first with a default produce,
# then produce again with acks=all, and read back both halves (2 * 100 messages,
# the second half keyed 100..199 so that the whole is key-0..key-199).
check_acks_all_kcat() {
    local t=interop-acks-all-kcat
    gen_lines 200 >"$TMP/$t.all"
    head -n 100 "$TMP/$t.all" >"$TMP/$t.1"
    tail -n 100 "$TMP/$t.all" >"$TMP/$t.2"
    kcat_produce "$t" "$TMP/$t.1"
    kcat_produce "$t" "$TMP/$t.2" -X acks=all
    kcat_consume "$t" "$RICH_FMT" "$TMP/$t.out"
    py_step "verify" verify-kcat --file "$TMP/$t.out" -n 200 --format rich --headers none
}

check_acks_all_python() {
    local client=$1 t="interop-acks-all-$1"
    py_step "produce" produce --client "$client" -b "$BOOTSTRAP" -t "$t" -n 100
    py_step "produce acks=all" produce --client "$client" -b "$BOOTSTRAP" -t "$t" \
        -n 200 --first 100 --acks all
    py_step "consume" consume --client "$client" -b "$BOOTSTRAP" -t "$t" -n 200 \
        --headers "produced:$client"
}

# --- consumer groups -----------------------------------------------------------

# kcat -G: a balanced consumer reads everything, commits on close; the group's second
# run reads exactly what was produced since.
check_kcat_group() {
    local t=interop-group-kcat g=interop-group-kcat-g s1 s2
    gen_lines "$COUNT" >"$TMP/$t.in1"
    kcat_produce "$t" "$TMP/$t.in1"
    kcat_group "$g" "$t" "$TMP/$t.out1"
    s1="$(ctx_step "run 1 of group $g" py_step "verify" verify-kcat \
        --file "$TMP/$t.out1" -n "$COUNT" --format rich --headers none)"
    gen_lines $((COUNT + MORE)) "$COUNT" >"$TMP/$t.in2"
    kcat_produce "$t" "$TMP/$t.in2"
    kcat_group "$g" "$t" "$TMP/$t.out2"
    s2="$(ctx_step "run 2 of group $g (to resume from run 1's commits)" py_step "verify" \
        verify-kcat --file "$TMP/$t.out2" -n $((COUNT + MORE)) --first "$COUNT" \
        --format rich --headers none)"
    echo "run 1: ${s1%%,*}; run 2 resumed: ${s2%%,*}"
}

# confluent-kafka: two members of one group at the same time share the records out
# exactly once (half produced before they join, half once they share the partitions, so
# both get some); then the group's next run gets exactly the records produced since.
# The members' own bound (2 * STEP_TIMEOUT) covers the wait for them to share and the
# second produce too.
check_confluent_group() {
    local t=interop-group-confluent g=interop-group-confluent-g half=$((COUNT / 2))
    local m1 m2 p1 p2 r1 r2 ok=1 union s3
    trap stop_bg EXIT
    py_step "produce" produce --client confluent -b "$BOOTSTRAP" -t "$t" -n "$half" >/dev/null
    m1="$TMP/$t.m1" m2="$TMP/$t.m2"
    group_bg "$t.m1" --client confluent -b "$BOOTSTRAP" -t "$t" -g "$g" -n "$COUNT" \
        --timeout $((2 * STEP_TIMEOUT)) --headers produced:confluent \
        --out "$m1.jsonl" --peer "$m2.jsonl" \
        --ready-file "$m1.ready" --partitions "$PARTITIONS"
    p1=$BG_PID
    group_bg "$t.m2" --client confluent -b "$BOOTSTRAP" -t "$t" -g "$g" -n "$COUNT" \
        --timeout $((2 * STEP_TIMEOUT)) --headers produced:confluent \
        --out "$m2.jsonl" --peer "$m1.jsonl" \
        --ready-file "$m2.ready" --partitions "$PARTITIONS"
    p2=$BG_PID
    if ! wait_ready "$STEP_TIMEOUT" "$m1.ready" "$p1" "$m2.ready" "$p2"; then
        stop_bg
        bg_wait "$t.m1" "$p1" >/dev/null || true
        bg_wait "$t.m2" "$p2" >/dev/null || true
        fail "the two members of $g did not come to share the $PARTITIONS partitions"
    fi
    py_step "produce" produce --client confluent -b "$BOOTSTRAP" -t "$t" -n "$COUNT" \
        --first "$half" >/dev/null
    bg_wait "$t.m1" "$p1" || ok=0
    r1=$BG_RESULT
    bg_wait "$t.m2" "$p2" || ok=0
    r2=$BG_RESULT
    union="$(ctx_step "the 2 members of $g together" py_step "verify" verify-records \
        --file "$m1.jsonl" --file "$m2.jsonl" -n "$COUNT" --headers produced:confluent \
        --each-nonempty)"
    ((ok == 1)) || fail "a member of $g failed (see above)"
    py_step "produce" produce --client confluent -b "$BOOTSTRAP" -t "$t" \
        -n $((COUNT + MORE)) --first "$COUNT" >/dev/null
    s3="$(ctx_step "run 2 of group $g (to resume from the members' commits)" \
        group_py --client confluent -b "$BOOTSTRAP" -t "$t" -g "$g" \
        -n $((COUNT + MORE)) --first "$COUNT" --headers produced:confluent)"
    echo "2 members together: ${union%%,*} (${union##*; }; member 1: $r1; member 2: $r2);" \
        "run 2 resumed: ${s3%%,*}"
}

# kafka-python: a member reads everything, commits on close(); the group's next run
# reads exactly what was produced since.
check_kafka_python_group() {
    local t=interop-group-kafka-python g=interop-group-kafka-python-g s1 s2
    py_step "produce" produce --client kafka-python -b "$BOOTSTRAP" -t "$t" -n "$COUNT" \
        >/dev/null
    s1="$(ctx_step "run 1 of group $g" group_py --client kafka-python -b "$BOOTSTRAP" \
        -t "$t" -g "$g" -n "$COUNT" --headers produced:kafka-python)"
    py_step "produce" produce --client kafka-python -b "$BOOTSTRAP" -t "$t" \
        -n $((COUNT + MORE)) --first "$COUNT" >/dev/null
    s2="$(ctx_step "run 2 of group $g (to resume from run 1's commits)" \
        group_py --client kafka-python -b "$BOOTSTRAP" -t "$t" -g "$g" \
        -n $((COUNT + MORE)) --first "$COUNT" --headers produced:kafka-python)"
    echo "run 1: ${s1%%,*}; run 2 resumed: ${s2%%,*}"
}

# Publish-subscribe: two groups (confluent-kafka, kafka-python) on one topic, at the
# same time, each read every record.
check_pubsub_groups() {
    local t=interop-group-pubsub g1=interop-group-pubsub-confluent
    local g2=interop-group-pubsub-kafka-python p1 p2 r1 r2 ok=1
    trap stop_bg EXIT
    py_step "produce" produce --client confluent -b "$BOOTSTRAP" -t "$t" -n "$COUNT" \
        >/dev/null
    group_bg "$t.confluent" --client confluent -b "$BOOTSTRAP" -t "$t" -g "$g1" \
        -n "$COUNT" --headers produced:confluent
    p1=$BG_PID
    group_bg "$t.kafka-python" --client kafka-python -b "$BOOTSTRAP" -t "$t" -g "$g2" \
        -n "$COUNT" --headers produced:confluent
    p2=$BG_PID
    bg_wait "$t.confluent" "$p1" || ok=0
    r1=$BG_RESULT
    bg_wait "$t.kafka-python" "$p2" || ok=0
    r2=$BG_RESULT
    ((ok == 1)) || fail "not every group read every record (see above)"
    echo "group $g1: ${r1%%,*}; group $g2: ${r2%%,*}"
}

# --- transactions -----------------------------------------------------------------
#
# A consume-transform-produce application with confluent-kafka's transactional producer
# (clients.py txn-copy) copies a topic exactly once while its broker is killed with
# kill -9 and restarted, and while the copier itself crashes before a commit. The check
# has a broker of its own (fresh data, its own port), which it kills; the other checks'
# broker is never touched.
TXN_COUNT=4000         # input records (3 partitions, produced without a transaction)
TXN_KILLS=3            # kill -9 of the broker during the copy
TXN_CRASHES=3          # copier processes that crash on purpose, uncommitted
TXN_COPY_TIMEOUT=60    # seconds: bound for the whole copy (all copier processes)
TXN_DATA="$TMP/txn-data"
TXN_LOG="$TMP/txn-broker.log"
TXN_PID_FILE="$TMP/txn-broker.pid" # the running one, for finish() should a check be cut
TXN_PORT="$(free_port)"
TXN_BROKER=""
TXN_VERIFIED="$TMP/txn.verified"   # check 1's verification summary, for check 2

# txn_broker_start: (re)starts the transactions broker on TXN_PORT with TXN_DATA.
txn_broker_start() {
    spawn_broker "$TXN_DATA" "$TXN_PORT" "$TXN_LOG" "num.partitions=$PARTITIONS" \
        "transaction.state.log.num.partitions=4" "offsets.topic.num.partitions=4" \
        "group.initial.rebalance.delay.ms=0"
    TXN_BROKER=$SPAWNED_PID
    echo "$TXN_BROKER" >"$TXN_PID_FILE"
    if ! await_listening "$TXN_BROKER" "$TXN_PORT" 30; then
        kill -0 "$TXN_BROKER" 2>/dev/null || TXN_BROKER=""
        tail -n 15 "$TXN_LOG" >&2
        fail "transactions broker (re)start: $START_ERROR"
    fi
}

# txn_broker_kill9: kill -9, then waits until the port is closed: a killed broker's
# listening socket outlives its process by a few milliseconds, and a restart that found
# it open would not know whether it is up.
txn_broker_kill9() {
    local deadline=$((SECONDS + 10))
    echo "==== interop: kill -9 $TXN_BROKER ====" >>"$TXN_LOG"
    kill -KILL "$TXN_BROKER"
    wait "$TXN_BROKER" 2>/dev/null || true
    TXN_BROKER=""
    while port_open_at "$TXN_PORT"; do
        ((SECONDS < deadline)) || fail "127.0.0.1:$TXN_PORT still open 10 s after kill -9"
        sleep 0.005
    done
}

# txn_broker_stop: SIGTERM; fails unless the broker exits with status 0 within 20 s.
txn_broker_stop() {
    local pid=$TXN_BROKER rc i
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        TXN_BROKER=""
        rm -f "$TXN_PID_FILE"
        fail "the transactions broker ignored SIGTERM for 20 s (killed)"
    fi
    wait "$pid" 2>/dev/null && rc=0 || rc=$?
    TXN_BROKER=""
    rm -f "$TXN_PID_FILE"
    ((rc == 0)) || fail "the transactions broker exited with status $rc on SIGTERM"
}

# EXIT trap of the transactions checks: stops what they started, by pid.
TXN_COPIER=""
txn_cleanup() {
    local rc=$?
    ((rc == 0)) || : >"$TMP/txn.failed" # finish() shows the broker log
    if [[ -n $TXN_COPIER ]]; then
        kill -TERM "$TXN_COPIER" 2>/dev/null || true
        wait "$TXN_COPIER" 2>/dev/null || true
    fi
    if [[ -n $TXN_BROKER ]]; then
        kill -KILL "$TXN_BROKER" 2>/dev/null || true
        wait "$TXN_BROKER" 2>/dev/null || true
    fi
    rm -f "$TXN_PID_FILE"
}

txn_progress() { # records the copier has committed so far
    local n=0
    [[ -s $TMP/txn.progress ]] && n="$(<"$TMP/txn.progress")"
    echo "${n:-0}"
}

# A fresh broker; TXN_COUNT records produced to interop-txn-in; clients.py txn-copy copies
# them to interop-txn-out in transactions of up to 100 records with their offsets
# (send_offsets_to_transaction), its first TXN_CRASHES processes each crashing in a random
# transaction after writing it (fenced and aborted by the next one's init_transactions),
# and rebuilding its clients on any error. Meanwhile the broker is killed (kill -9) and
# restarted TXN_KILLS times, each time at a random moment once another part of the
# records is committed. Then a read_committed consumer must find every input record in
# the output exactly once, in its partition, in order, and a read_uncommitted one the
# aborted copies too; the group's offsets must be at the input's ends; and the broker
# must stop cleanly.
check_txn_copy_kill9() {
    local in=interop-txn-in out=interop-txn-out g=interop-txn-copier b k target n
    local started=$SECONDS deadline kills_at=() copy_rc copy_out verified
    local kills_log="$TMP/txn-kills.log" # when each kill came, for a failure's post-mortem
    trap txn_cleanup EXIT
    rm -f "$TXN_VERIFIED"
    b="127.0.0.1:$TXN_PORT"
    txn_broker_start
    py_step "produce" produce --client confluent -b "$b" -t "$in" -n "$TXN_COUNT" >/dev/null
    timeout $((TXN_COPY_TIMEOUT + 15)) "$PY" "$CLIENTS" txn-copy -b "$b" --input "$in" \
        --output "$out" -g "$g" --txn-id interop-txn-copier --crashes "$TXN_CRASHES" \
        --work-ms 20 --seed "$RANDOM" --progress "$TMP/txn.progress" \
        --stop-file "$TMP/txn.stop" --timeout "$TXN_COPY_TIMEOUT" \
        >"$TMP/txn-copy.stdout" 2>"$TMP/txn-copy.stderr" </dev/null &
    TXN_COPIER=$!
    deadline=$((SECONDS + TXN_COPY_TIMEOUT))
    for ((k = 1; k <= TXN_KILLS; k++)); do
        # Once about k / (TXN_KILLS + 1) of the records are committed (give or take a
        # twentieth)...
        target=$((k * TXN_COUNT / (TXN_KILLS + 1) - TXN_COUNT / 20))
        target=$((target + RANDOM % (TXN_COUNT / 10)))
        until (($(txn_progress) >= target)); do
            if ! kill -0 "$TXN_COPIER" 2>/dev/null; then
                tail -n 15 "$TMP/txn-copy.stderr" >&2
                fail "the copier exited after $(txn_progress) records committed, before" \
                    "kill $k: $(tail -n 1 "$TMP/txn-copy.stdout" | sed 's/^FAIL: //')"
            fi
            if ((SECONDS >= deadline)); then
                tail -n 15 "$TMP/txn-copy.stderr" >&2
                fail "kill $k: the copier committed only $(txn_progress) of $target" \
                    "records within ${TXN_COPY_TIMEOUT}s"
            fi
            sleep 0.02
        done
        # ...a random moment later (a transaction takes some 30 ms, 20 of them with its
        # records written and not committed): mid-transaction, mid-commit or between two.
        sleep "0.$(printf '%03d' $((RANDOM % 100)))"
        n="$(txn_progress)"
        ((n < TXN_COUNT)) || fail "the copy was over before kill $k (raise TXN_COUNT)"
        echo "$(date +%T.%N) kill $k: $n records committed (target $target)" >>"$kills_log"
        txn_broker_kill9
        txn_broker_start
        echo "$(date +%T.%N) kill $k: restarted, $(txn_progress) committed" >>"$kills_log"
        kills_at+=("$n")
    done
    : >"$TMP/txn.stop" # the copier may finish now (once all is committed)
    wait "$TXN_COPIER" && copy_rc=0 || copy_rc=$?
    TXN_COPIER=""
    copy_out="$(sed '/^[[:space:]]*$/d' "$TMP/txn-copy.stdout" | tail -n 1)"
    if ((copy_rc != 0)); then
        tail -n 15 "$TMP/txn-copy.stderr" >&2
        ((copy_rc != 124)) || fail "the copier was killed after $((TXN_COPY_TIMEOUT + 15))s"
        fail "copier: ${copy_out#FAIL: }"
    fi
    verified="$(ctx_step "after the copy" py_step "verify" txn-verify -b "$b" \
        --input "$in" --output "$out" -g "$g" -n "$TXN_COUNT" --min-aborted 1)"
    txn_broker_stop
    echo "$verified" >"$TXN_VERIFIED"
    echo "$TXN_KILLS kill -9 (at ${kills_at[*]} records committed); copier: $copy_out;" \
        "$verified; broker stopped cleanly; $((SECONDS - started))s in all"
}

# The same broker's data, after a clean restart: the same records, read_committed and
# read_uncommitted, as check_txn_copy_kill9 verified (aborted transactions are still
# known, from the partitions' transaction indexes).
check_txn_after_restart() {
    local b before verified
    trap txn_cleanup EXIT
    [[ -s $TXN_VERIFIED ]] || fail "nothing to verify: the copy check did not get that far"
    before="$(<"$TXN_VERIFIED")"
    b="127.0.0.1:$TXN_PORT"
    txn_broker_start
    verified="$(ctx_step "after a clean restart" py_step "verify" txn-verify -b "$b" \
        --input interop-txn-in --output interop-txn-out -g interop-txn-copier \
        -n "$TXN_COUNT" --min-aborted 1)"
    [[ $verified == "$before" ]] || fail "after a clean restart: $verified;" \
        "before it: $before"
    txn_broker_stop
    echo "$verified"
}

CHECKS_START=$SECONDS
run_check "kcat-metadata-broker" check_metadata_broker
run_check "kcat-produce-consume" check_kcat_roundtrip
run_check "kcat-metadata-topic" check_metadata_topic
run_check "kcat-headers" check_kcat_headers
run_check "confluent-kafka-roundtrip" check_confluent_roundtrip
run_check "kafka-python-roundtrip" check_kafka_python_roundtrip
run_check "cross-kcat-to-kafka-python" check_kcat_to_kafka_python
run_check "cross-kafka-python-to-confluent" check_kafka_python_to_confluent
run_check "cross-confluent-to-kcat" check_confluent_to_kcat
run_check "acks-all-kcat" check_acks_all_kcat
run_check "acks-all-confluent-kafka" check_acks_all_python confluent
run_check "acks-all-kafka-python" check_acks_all_python kafka-python
run_check "group-kcat-resume" check_kcat_group
run_check "group-confluent-kafka-2-members-resume" check_confluent_group
run_check "group-kafka-python-resume" check_kafka_python_group
run_check "group-pubsub-confluent-kafka-python" check_pubsub_groups
run_check "txn-confluent-copy-kill-9" check_txn_copy_kill9
run_check "txn-confluent-after-clean-restart" check_txn_after_restart

# The broker must have survived all of the above.
if broker_alive; then
    echo "PASS broker-alive: pid $BROKER_PID still running"
    PASSED=$((PASSED + 1))
else
    echo "FAIL broker-alive: the broker process exited during the run$BROKER_EXIT"
    FAILED=$((FAILED + 1))
fi

finish
((FAILED == 0))
