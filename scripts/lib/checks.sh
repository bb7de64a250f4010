# checks.sh: what the ecosystem check scripts share (source it, do not run it).
#
#   source "$REPO_ROOT/scripts/lib/checks.sh"
#   checks_init NAME              # temp dir in $CHECKS_TMP, cleanup trap, counters
#   port="$(free_port)"
#   start_spate BIN PORT [KEY=VALUE...]   # a fresh broker on 127.0.0.1:PORT, data in $CHECKS_TMP;
#                                 # sets SPATE_PID; waits until it listens (30 s at most)
#   run_check NAME CMD [ARGS...]  # PASS/FAIL line; the last line CMD prints is the reason;
#                                 # on failure the 30 lines before it are shown
#   checks_summary                # "N passed, M failed"; returns 1 if any failed
#
# Every process started through start_spate or track_pid is ended by PID on exit, and only
# those. CHECKS_KEEP_TMP=1 keeps the temp dir.

checks_init() {
    CHECKS_NAME=$1
    CHECKS_TMP="$(mktemp -d "/tmp/spate-$CHECKS_NAME.XXXXXX")"
    CHECKS_PIDS=()
    CHECKS_PASSED=0
    CHECKS_FAILED=0
    trap checks_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

track_pid() { CHECKS_PIDS+=("$1"); }

checks_cleanup() {
    local pid
    for pid in "${CHECKS_PIDS[@]}"; do
        kill -9 "$pid" 2>/dev/null || true
    done
    for pid in "${CHECKS_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ ${CHECKS_KEEP_TMP:-0} == 1 ]]; then
        echo "kept $CHECKS_TMP" >&2
    else
        rm -rf "$CHECKS_TMP"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until 127.0.0.1:PORT accepts a connection, up to SECS seconds.
wait_listening() {
    local port=$1 secs=${2:-30} i
    for ((i = 0; i < secs * 20; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    echo "nothing listens on 127.0.0.1:$port after ${secs}s" >&2
    return 1
}

start_spate() {
    local bin=$1 port=$2 kv
    shift 2
    local dir="$CHECKS_TMP/spate-$port"
    mkdir -p "$dir"
    local args=(broker --override "log.dirs=$dir/data" --override "listeners=PLAINTEXT://127.0.0.1:$port")
    for kv in "$@"; do
        args+=(--override "$kv")
    done
    RUST_LOG=${RUST_LOG:-warn} "$bin" "${args[@]}" >"$dir/broker.log" 2>&1 &
    SPATE_PID=$!
    track_pid "$SPATE_PID"
    wait_listening "$port" 30
}

run_check() {
    local name=$1 out rc reason
    shift
    set +e
    out="$(set -e; "$@" 2>&1)"
    rc=$?
    set -e
    reason="$(printf '%s\n' "$out" | sed '/^[[:space:]]*$/d' | tail -n 1)"
    if ((rc == 0)); then
        echo "PASS $name: ${reason:-ok}"
        CHECKS_PASSED=$((CHECKS_PASSED + 1))
    else
        echo "FAIL $name: ${reason:-exit status $rc}"
        printf '%s\n' "$out" | sed '/^[[:space:]]*$/d' | head -n -1 | tail -n 30 | sed 's/^/    | /'
        CHECKS_FAILED=$((CHECKS_FAILED + 1))
    fi
    return 0
}

checks_summary() {
    echo "$CHECKS_NAME: $CHECKS_PASSED passed, $CHECKS_FAILED failed"
    ((CHECKS_FAILED == 0))
}
