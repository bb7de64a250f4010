#!/usr/bin/env bash
# The seeds' quickstart with real clients against a real 3-broker Spate cluster: starts three
# nodes on this machine with scripts/cluster.sh (free loopback ports, data and logs in a temp
# dir), then checks what a newcomer following README.md's "A cluster on one machine" does:
#   1. the cluster forms: kcat -L lists the 3 brokers;
#   2. `spate topics --create` a topic of 3 partitions, replication factor 3 and
#      min.insync.replicas=2; `spate topics --describe` shows every partition with 3 replicas,
#      all 3 in the Isr;
#   3. kcat produces 1000 keyed records with acks=all, confluent-kafka 1000 more (acks=all),
#      kafka-python reads back exactly the 2000, in produced order within every partition;
#   4. the leader of partition 0 is killed with kill -9; kcat at once produces 1000 more with
#      acks=all through the two remaining brokers, and the time from the kill until partition
#      0 has a new leader is measured (`spate topics --describe` every 100 ms); kcat then reads
#      all 3000 from a surviving broker, nothing missing, nothing twice, order kept;
#   5. the killed broker is started again (scripts/cluster.sh start) and rejoins: every
#      partition's Isr is 3 again;
#   6. confluent-kafka reads the 3000 through the restarted broker's port;
#   7. the three brokers still run.
# Brokers run with broker.session.timeout.ms=3000 and broker.heartbeat.interval.ms=500 (Kafka's
# defaults: 9000 and 2000), so that a killed broker is fenced, and its partitions led elsewhere,
# within seconds.
#
# Usage:  scripts/cluster-interop.sh [path-to-spate-binary]   (default: target/release/spate)
# Installs its own dependencies first (scripts/install-test-deps.sh: kcat, .venv-interop/) and
# uses the Python clients of scripts/interop/clients.py, as scripts/interop.sh does.
# Prints PASS/FAIL per check and ends with "N passed, M failed"; exits 1 if any failed; on a
# failure shows the last lines of each broker's log. On exit it stops (SIGTERM, then SIGKILL
# after 40 s) only the brokers it started, by the pids in its cluster dir.
# Environment: CLUSTER_INTEROP_KEEP_TMP=1 keeps the temp dir (the cluster dir with each node's
#              data, properties and log, the client outputs);
#              CLUSTER_INTEROP_BUDGET=seconds bounds the whole run of checks (default 600).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${1:-$REPO_ROOT/target/release/spate}"
N=3                   # nodes
TOPIC=quickstart
COUNT=1000            # records per produce
STEP_TIMEOUT=30       # seconds: bound for each kcat run, spate tool run and Python consume loop
PY_TIMEOUT=90         # seconds: hard bound for one Python client process
WAIT_TIMEOUT=60       # seconds: bound for each wait on the cluster (brokers, ISR, leader)
FAILOVER_KCAT_TIMEOUT=90 # seconds: bound for the kcat producing through the failover
BUDGET=${CLUSTER_INTEROP_BUDGET:-600} # seconds for all checks; checks not started by then fail
RICH_FMT='%p\t%o\t%k\t%s\t%h\n'
# kcat against a cluster that has lost a broker: without a socket timeout librdkafka may wait
# 60 s on a request to the dead one; records may wait up to a minute for a new leader.
KCAT_FAILOVER=(-X socket.timeout.ms=5000 -X message.timeout.ms=60000)

if [[ ! -x $BIN ]]; then
    echo "FAIL broker-binary: '$BIN' not found or not executable (build it first)"
    echo "0 passed, 1 failed"
    exit 1
fi
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

"$REPO_ROOT/scripts/install-test-deps.sh"
PY="${INTEROP_VENV:-$REPO_ROOT/.venv-interop}/bin/python"
CLIENTS="$REPO_ROOT/scripts/interop/clients.py"
CLUSTER="$REPO_ROOT/scripts/cluster.sh"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/spate-cluster-interop.XXXXXX")"
CDIR="$TMP/cluster"
PASSED=0
FAILED=0

# Two runs of N free loopback ports (clients, quorum), below the ephemeral range so that no
# outgoing connection takes one in the meantime.
read -r CLIENT_BASE CONTROLLER_BASE < <("$PY" - "$N" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
try:
    lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except OSError:
    lo = 32768
lo = max(lo, 12000)
def free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()
bases = []
for _ in range(1000):
    base = random.randrange(10000, lo - n - 1)
    ports = range(base + 1, base + n + 1)
    if all(free(p) for p in ports) and all(abs(base - b) > n for b in bases):
        bases.append(base)
        if len(bases) == 2:
            break
if len(bases) < 2:
    sys.exit("no free loopback ports found")
print(*bases)
PY
) || true
if [[ ! ${CLIENT_BASE:-} =~ ^[0-9]+$ || ! ${CONTROLLER_BASE:-} =~ ^[0-9]+$ ]]; then
    rm -rf "$TMP"
    echo "FAIL free-ports: found no $N free loopback ports twice over"
    echo "0 passed, 1 failed"
    exit 1
fi
export SPATE_BIN="$BIN" SPATE_CLUSTER_DIR="$CDIR"
export SPATE_CLUSTER_CLIENT_PORT_BASE="$CLIENT_BASE" SPATE_CLUSTER_CONTROLLER_PORT_BASE="$CONTROLLER_BASE"
export SPATE_CLUSTER_OVERRIDES="broker.session.timeout.ms=3000 broker.heartbeat.interval.ms=500"

port() { echo $((CLIENT_BASE + $1)); }
addr() { echo "127.0.0.1:$(port "$1")"; }
ALL="$(addr 1),$(addr 2),$(addr 3)"

# --- the end --------------------------------------------------------------------
STARTED=0   # 1 once scripts/cluster.sh start ran: there may be brokers to stop
stop_cluster() {
    ((STARTED == 1)) || return 0
    local t0=$SECONDS out
    out="$("$CLUSTER" stop 2>&1)" || true
    STARTED=0
    printf '%s\n' "$out" | grep -v '^stopped$' | sed 's/^/cluster-interop: /' || true
    echo "cluster-interop: the brokers stopped $((SECONDS - t0)) s after SIGTERM"
}

show_logs() {
    local i log
    for ((i = 1; i <= N; i++)); do
        log="$CDIR/node-$i.log"
        [[ -f $log ]] || continue
        echo "---- node $i log (last 40 lines of $log) ----"
        if [[ -s $log ]]; then tail -n 40 "$log" || true; else echo "(empty)"; fi
    done
    echo "---- end of broker logs ----"
}

summary() { echo "$PASSED passed, $FAILED failed"; }

FINISHED=0
finish() {
    if ((FAILED > 0)); then show_logs; fi
    stop_cluster
    if [[ ${CLUSTER_INTEROP_KEEP_TMP:-0} == 1 ]]; then
        echo "cluster-interop: kept $TMP"
    fi
    FINISHED=1
    summary
}

cleanup() {
    local rc=$?
    if ((FINISHED == 0)); then # interrupted, or the script itself went wrong
        echo "FAIL cluster-interop-script: stopped early (status $rc)"
        FAILED=$((FAILED + 1))
        finish
        ((rc != 0)) || rc=1
    fi
    if [[ ${CLUSTER_INTEROP_KEEP_TMP:-0} != 1 ]]; then
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- helpers ----------------------------------------------------------------------
# As in scripts/interop.sh: each check runs in a subshell with errexit; its last output
# line is the reason (FAIL) or the summary (PASS); earlier lines are detail on failure.
fail() { echo "$*" >&2; exit 1; }

CLUSTER_UP=0
run_check() {
    local name=$1 out rc reason
    shift
    if ((CLUSTER_UP == 0)) && [[ $name != cluster-forms ]]; then
        echo "FAIL $name: not run, the cluster did not form"
        FAILED=$((FAILED + 1))
        return 1
    fi
    if ((SECONDS - CHECKS_START >= BUDGET)); then
        echo "FAIL $name: not run, the ${BUDGET}s budget for all checks is used up"
        FAILED=$((FAILED + 1))
        return 1
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
        return 0
    fi
    echo "FAIL $name: ${reason:-exit status $rc}"
    printf '%s\n' "$out" | sed '/^[[:space:]]*$/d' | head -n -1 | tail -n 30 | sed 's/^/    | /'
    FAILED=$((FAILED + 1))
    return 1
}

# bounded SECS WHAT CMD...: CMD under `timeout SECS`; on failure shows its stderr and why.
bounded() {
    local secs=$1 what=$2 errfile rc
    shift 2
    errfile="$(mktemp "$TMP/stderr.XXXXXX")"
    timeout "$secs" "$@" 2>"$errfile" && rc=0 || rc=$?
    if ((rc != 0)); then
        tail -n 15 "$errfile" >&2
        ((rc != 124)) || fail "$what timed out after ${secs}s"
        fail "$what exited with status $rc"
    fi
}

# py_step WHAT ARGS...: scripts/interop/clients.py ARGS, hard-bounded; its summary line
# (or FAIL: reason) printed last, after whatever the client library logged on failure.
py_step() {
    local what=$1 rc out errfile
    shift
    errfile="$(mktemp "$TMP/stderr.XXXXXX")"
    out="$(timeout "$PY_TIMEOUT" "$PY" "$CLIENTS" "$@" --timeout "$STEP_TIMEOUT" 2>"$errfile")" \
        && rc=0 || rc=$?
    if ((rc != 0)); then
        tail -n 15 "$errfile" >&2
        ((rc != 124)) || fail "$what: killed after ${PY_TIMEOUT}s"
        fail "${out:-$what exited with status $rc}"
    fi
    echo "$out"
}

gen_lines() { # gen_lines COUNT [FIRST] > FILE: key-<i>:value-<i>, i = FIRST..COUNT-1
    awk -v n="$1" -v f="${2:-0}" \
        'BEGIN { for (i = f; i < n; i++) printf "key-%d:value-%d\n", i, i }'
}

now_us() { echo "${EPOCHREALTIME/./}"; }
secs_since() { # secs_since START_US: seconds since then, to 0.01 s
    local d=$(($(now_us) - $1))
    printf '%d.%02d' $((d / 1000000)) $((d % 1000000 / 10000))
}

# describe BOOTSTRAP: `spate topics --describe` of the topic, one line per partition:
# "<partition> <leader> <replicas> <isr>" (replicas and isr comma-separated).
describe() {
    timeout 10 "$BIN" topics --bootstrap-server "$1" --describe --topic "$TOPIC" 2>/dev/null \
        | awk -F'\t' '/\tPartition: / {
            delete m
            for (i = 1; i <= NF; i++) { split($i, kv, ": "); m[kv[1]] = kv[2] }
            print m["Partition"], m["Leader"], m["Replicas"], m["Isr"] }'
}

# isr_full: true when the describe output on stdin shows partitions 0..N-1, each with N
# replicas, all N in the ISR, and a leader among them.
isr_full() {
    awk -v n="$N" '{
            seen[$1] = 1
            if (split($3, r, ",") != n || split($4, s, ",") != n) bad = 1
            lead = 0
            for (i in s) if (s[i] == $2) lead = 1
            if (!lead) bad = 1
            count++ }
        END {
            if (count != n || bad) exit 1
            for (p = 0; p < n; p++) if (!(p in seen)) exit 1 }'
}

# wait_isr_full BOOTSTRAP: until every partition's ISR is full (bounded); prints the state.
wait_isr_full() {
    local state deadline=$((SECONDS + WAIT_TIMEOUT))
    while :; do
        state="$(describe "$1" || true)"
        if [[ -n $state ]] && isr_full <<<"$state"; then break; fi
        if ((SECONDS >= deadline)); then
            echo "spate topics --describe (partition leader replicas isr):" >&2
            printf '%s\n' "${state:-(nothing)}" | sed 's/^/  /' >&2
            fail "not every partition had $N replicas in its ISR within ${WAIT_TIMEOUT}s"
        fi
        sleep 0.2
    done
    awk '{ printf "%sp%s leader %s isr %s", (NR > 1 ? ", " : ""), $1, $2, $4 }' <<<"$state"
}

pid_of() { cat "$CDIR/node-$1.pid" 2>/dev/null; }

# gone PID: true when the process no longer runs (exited, or a zombie not yet reaped).
gone() {
    local st
    st="$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" || return 0
    [[ -z $st || $st == Z || $st == X ]]
}

# --- checks -----------------------------------------------------------------------
# 1. scripts/cluster.sh start 3 (it waits until every node listens and is unfenced); kcat -L
#    then lists the 3 brokers at their ports.
check_cluster_forms() {
    local t0 deadline names
    t0=$(now_us)
    "$CLUSTER" start "$N" >"$TMP/cluster-start.out" 2>&1 || {
        cat "$TMP/cluster-start.out" >&2
        fail "scripts/cluster.sh start $N failed"
    }
    deadline=$((SECONDS + WAIT_TIMEOUT))
    while :; do
        if timeout 10 kcat -L -J -b "$ALL" >"$TMP/md.json" 2>"$TMP/md.err" \
            && names="$("$PY" - "$TMP/md.json" "$ALL" <<'PY'
import json, sys
md = json.load(open(sys.argv[1]))
got = sorted((b["id"], b["name"]) for b in md.get("brokers") or [])
want = [(i + 1, a) for i, a in enumerate(sys.argv[2].split(","))]
if got != want:
    sys.exit(f"brokers {got}, expected {want}")
print(", ".join(f"{i} at {a}" for i, a in got) + f"; controller {md.get('controllerid')}")
PY
)"; then
            break
        fi
        if ((SECONDS >= deadline)); then
            cat "$TMP/md.err" >&2
            fail "kcat -L did not list the $N brokers within ${WAIT_TIMEOUT}s"
        fi
        sleep 0.2
    done
    echo "kcat -L: $N brokers: $names (up $(secs_since "$t0") s after scripts/cluster.sh start)"
}

# 2. The README's topic: 3 partitions, replication factor 3, min.insync.replicas=2.
check_topic_isr() {
    local t0 out head state
    out="$(timeout "$STEP_TIMEOUT" "$BIN" topics --bootstrap-server "$ALL" --create \
        --topic "$TOPIC" --partitions 3 --replication-factor 3 \
        --config min.insync.replicas=2 2>&1)" || fail "spate topics --create: $out"
    t0=$(now_us)
    state="$(wait_isr_full "$ALL")"
    head="$(timeout 10 "$BIN" topics --bootstrap-server "$ALL" --describe --topic "$TOPIC" \
        | head -n 1)"
    [[ $head == *"ReplicationFactor: 3"* && $head == *"min.insync.replicas=2"* ]] \
        || fail "spate topics --describe: unexpected topic line: $head"
    echo "$out; --describe: $state (full ISR $(secs_since "$t0") s after --create)"
}

# 3. kcat and confluent-kafka produce (acks=all), kafka-python reads it all back.
check_produce_consume() {
    local k c v
    gen_lines "$COUNT" >"$TMP/in-kcat-1"
    bounded "$STEP_TIMEOUT" "kcat -P" kcat -P -b "$ALL" -t "$TOPIC" -K: -X acks=all \
        <"$TMP/in-kcat-1"
    k="kcat $COUNT records (key-0..key-$((COUNT - 1)))"
    c="$(py_step "produce" produce --client confluent -b "$ALL" -t "$TOPIC" \
        -n $((2 * COUNT)) --first "$COUNT" --acks all)"
    v="$(py_step "consume" consume --client kafka-python -b "$ALL" -t "$TOPIC" \
        -n $((2 * COUNT)) --headers "produced:confluent:$COUNT-$((2 * COUNT))")"
    echo "produced with acks=all: $k, confluent-kafka ${c%% (*}; kafka-python read: $v"
}

# 4. kill -9 the leader of partition 0; kcat keeps producing through the other two; the
#    failover is timed; kcat reads everything back from a survivor.
check_failover() {
    local state leader pid i survivors=() surv t0 new="" failover kp rc t_prod deadline v
    local quorum_leader role
    quorum_leader="$(timeout 10 "$BIN" metadata-quorum --bootstrap-server "$ALL" describe \
        --status 2>/dev/null | awk '$1 == "LeaderId:" { print $2 }')" || true
    state="$(describe "$ALL")"
    leader="$(awk '$1 == 0 { print $2 }' <<<"$state")"
    [[ $leader =~ ^[1-3]$ ]] || fail "no leader of partition 0 in: ${state:-(nothing)}"
    pid="$(pid_of "$leader")" || fail "no pid file for node $leader"
    for ((i = 1; i <= N; i++)); do ((i == leader)) || survivors+=("$i"); done
    surv="$(addr "${survivors[0]}"),$(addr "${survivors[1]}")"
    gen_lines $((3 * COUNT)) $((2 * COUNT)) >"$TMP/in-kcat-3"

    t0=$(now_us)
    kill -KILL "$pid"
    echo "$leader" >"$TMP/killed"
    ( # kcat, and the time when it is done (all acknowledged, or given up)
        timeout "$FAILOVER_KCAT_TIMEOUT" kcat -P -b "$surv" -t "$TOPIC" -K: -X acks=all \
            "${KCAT_FAILOVER[@]}" <"$TMP/in-kcat-3" >"$TMP/kcat-3.out" 2>"$TMP/kcat-3.err" &
        tp=$!
        # shellcheck disable=SC2064 # the pid is meant to be expanded now
        trap "kill $tp 2>/dev/null; exit 143" TERM
        wait "$tp" && rc=0 || rc=$?
        secs_since "$t0" >"$TMP/kcat-3.done"
        exit "$rc"
    ) &
    kp=$!
    # shellcheck disable=SC2064 # the pid is meant to be expanded now
    trap "kill $kp 2>/dev/null || true" EXIT
    for ((i = 0; i < 100; i++)); do gone "$pid" && break; sleep 0.1; done
    gone "$pid" || fail "node $leader (pid $pid) still runs 10 s after kill -9"
    rm -f "$CDIR/node-$leader.pid" # so that scripts/cluster.sh start restarts it
    echo "node $leader (pid $pid), the leader of partition 0, killed with kill -9"

    deadline=$((SECONDS + WAIT_TIMEOUT))
    while :; do
        new="$(describe "$surv" | awk '$1 == 0 { print $2 }')" || true
        if [[ $new =~ ^[1-3]$ && $new != "$leader" ]]; then break; fi
        if ((SECONDS >= deadline)); then
            describe "$surv" | sed 's/^/  /' >&2 || true
            fail "partition 0 had no new leader ${WAIT_TIMEOUT}s after the kill (leader: ${new:-?})"
        fi
        sleep 0.1
    done
    failover="$(secs_since "$t0")"
    echo "failover: partition 0 led by node $new $failover s after the kill"

    wait "$kp" && rc=0 || rc=$?
    trap - EXIT
    t_prod="$(cat "$TMP/kcat-3.done" 2>/dev/null || echo '?')"
    if ((rc != 0)) || grep -q 'Delivery failed' "$TMP/kcat-3.err"; then
        tail -n 15 "$TMP/kcat-3.err" >&2
        ((rc != 124)) || fail "kcat -P through the failover timed out after ${FAILOVER_KCAT_TIMEOUT}s"
        ((rc == 0)) || fail "kcat -P through the failover exited with status $rc"
        fail "kcat -P through the failover: $(grep -c 'Delivery failed' "$TMP/kcat-3.err") records not delivered"
    fi
    bounded "$STEP_TIMEOUT" "kcat -C" kcat -C -b "$(addr "${survivors[0]}")" -t "$TOPIC" \
        "${KCAT_FAILOVER[@]}" -o beginning -e -f "$RICH_FMT" >"$TMP/out-kcat-3"
    v="$(py_step "verify" verify-kcat --file "$TMP/out-kcat-3" -n $((3 * COUNT)) \
        --format rich --headers "produced:confluent:$COUNT-$((2 * COUNT))")"
    case $quorum_leader in
        "$leader") role=", the metadata quorum's leader too" ;;
        [1-9]*) role=", not the quorum's leader ($quorum_leader)" ;;
        *) role="" ;;
    esac
    echo "node $leader (leader of p0$role) killed -9; p0 led by node $new after $failover s;" \
        "kcat produced $COUNT more with acks=all via nodes ${survivors[*]} (all acknowledged" \
        "$t_prod s after the kill); kcat read from node ${survivors[0]}: $v"
}

# 5. The killed node comes back (scripts/cluster.sh start restarts what does not run and
#    waits until it is unfenced) and every partition's ISR is full again.
check_rejoin() {
    local killed t0 t_up state
    killed="$(cat "$TMP/killed" 2>/dev/null)" || fail "no broker was killed (check 4 did not get that far)"
    t0=$(now_us)
    "$CLUSTER" start "$N" >"$TMP/cluster-restart.out" 2>&1 || {
        cat "$TMP/cluster-restart.out" >&2
        fail "scripts/cluster.sh start $N (to restart node $killed) failed"
    }
    t_up="$(secs_since "$t0")"
    state="$(wait_isr_full "$ALL")"
    echo "node $killed restarted, unfenced after $t_up s; ISR of $N again" \
        "$(secs_since "$t0") s after the restart: $state"
}

# 6. confluent-kafka reads everything through the restarted broker alone.
check_consume_restarted() {
    local killed v
    killed="$(cat "$TMP/killed" 2>/dev/null)" || fail "no broker was killed and restarted"
    v="$(py_step "consume" consume --client confluent -b "$(addr "$killed")" -t "$TOPIC" \
        -n $((3 * COUNT)) --headers "produced:confluent:$COUNT-$((2 * COUNT))")"
    echo "via node $killed at $(addr "$killed"): $v"
}

# 7. Every node still runs.
check_alive() {
    local i pid down=()
    for ((i = 1; i <= N; i++)); do
        pid="$(pid_of "$i")" && ! gone "$pid" || down+=("$i")
    done
    ((${#down[@]} == 0)) || fail "node(s) ${down[*]} no longer run"
    echo "nodes 1-$N running (pids $(pid_of 1) $(pid_of 2) $(pid_of 3))"
}

# --- run ------------------------------------------------------------------------------
echo "cluster-interop: $N nodes of $BIN, clients on 127.0.0.1:$(port 1)-$(port "$N")," \
    "quorum on 127.0.0.1:$((CONTROLLER_BASE + 1))-$((CONTROLLER_BASE + N)), in $CDIR"
CHECKS_START=$SECONDS
STARTED=1
if run_check cluster-forms check_cluster_forms; then CLUSTER_UP=1; fi
run_check topic-rf3-isr3 check_topic_isr || true
run_check kcat-confluent-produce-kafka-python-consume check_produce_consume || true
run_check kill-leader-kcat-keeps-producing check_failover || true
run_check killed-broker-rejoins-isr3 check_rejoin || true
run_check confluent-consume-via-restarted check_consume_restarted || true
run_check brokers-alive check_alive || true
echo "cluster-interop: checks took $((SECONDS - CHECKS_START)) s"

finish
((FAILED == 0))
