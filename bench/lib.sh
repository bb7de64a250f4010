# shellcheck shell=bash
# Shared by the benchmark and profiling scripts (source it, don't run it):
#   build_spate           builds target/release/spate (`cargo build --release --locked -q`);
#                         SPATE_SKIP_BUILD=1 skips it and uses the binary already there;
#   build_load_generator  sets PERF_BIN to librdkafka's rdkafka_performance, built from the
#                         librdkafka source the rdkafka-sys crate carries (after `cargo test
#                         --no-run`, not run with SPATE_SKIP_BUILD=1), and builds
#                         target/release/spate (build_spate);
#   start_broker [WRAPPER...]
#                         starts a fresh broker ($SPATE_BIN, default target/release/spate) on a
#                         free loopback port in a temporary folder, sets BROKER_PID, PORT and
#                         TMP, and stops it on exit. Words given are put in front of the command
#                         (e.g. `start_broker valgrind --tool=callgrind`); BROKER_OVERRIDES
#                         ("key=value ...") adds broker settings, each as an --override;
#                         BROKER_START_SECONDS (default 10) bounds the wait for the port to open.
#                         The broker logs at info (RUST_LOG=info) to $TMP/broker.log.
#   warm_up MIB           writes and deletes a MIB-MiB file in $TMP unless WARM=0: this VM
#                         hands memory the guest frees back to its host after a second or two,
#                         and page cache written into such memory costs several times more
#                         (perf/stat.sh measures it); right after warm_up, that much is warm.
#   median                the median of the numbers on stdin, one a line.

SPATE_BIN=${SPATE_BIN:-target/release/spate}

build_spate() {
    if [[ ${SPATE_SKIP_BUILD:-0} == 1 ]]; then
        [[ -x $SPATE_BIN ]] || { echo "SPATE_SKIP_BUILD=1 but $SPATE_BIN is missing" >&2; return 1; }
        return 0
    fi
    cargo build --release --locked -q
}

build_load_generator() {
    build_spate
    local out built
    # An out folder whose rdkafka_performance is already built, else the first one.
    built=$(ls target/debug/build/rdkafka-sys-*/out/examples/rdkafka_performance 2>/dev/null | head -n1 || true)
    out=${built%/examples/rdkafka_performance}
    [[ -n $out ]] || out=$(ls -d target/debug/build/rdkafka-sys-*/out 2>/dev/null | head -n1 || true)
    if [[ -z $out || ! -f $out/src/librdkafka.a ]]; then
        [[ ${SPATE_SKIP_BUILD:-0} != 1 ]] || { echo "SPATE_SKIP_BUILD=1 but librdkafka is not built (cargo test --no-run)" >&2; return 1; }
        cargo test --no-run --locked -q
        out=$(ls -d target/debug/build/rdkafka-sys-*/out | head -n1)
    fi
    PERF_BIN=$out/examples/rdkafka_performance
    [[ -x $PERF_BIN ]] || make -s -C "$out/examples" rdkafka_performance >/dev/null
}

start_broker() {
    TMP=$(mktemp -d)
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    local overrides=() kv
    for kv in ${BROKER_OVERRIDES:-}; do overrides+=(--override "$kv"); done
    RUST_LOG=info "$@" "$SPATE_BIN" broker "${overrides[@]}" --override "log.dirs=$TMP/data" --override "listeners=PLAINTEXT://127.0.0.1:$PORT" 2>"$TMP/broker.log" &
    BROKER_PID=$!
    trap 'kill $BROKER_PID 2>/dev/null || true; wait $BROKER_PID 2>/dev/null || true; rm -rf "$TMP"' EXIT
    local tries=$(( ${BROKER_START_SECONDS:-10} * 10 ))
    for _ in $(seq "$tries"); do (echo >/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && return 0; sleep 0.1; done
    echo "the broker did not open 127.0.0.1:$PORT; its log:" >&2
    tail -n 20 "$TMP/broker.log" >&2
    return 1
}

warm_up() {
    [[ ${WARM:-1} == 1 ]] || return 0
    dd if=/dev/zero of="$TMP/warm" bs=1M count="$1" status=none
    rm -f "$TMP/warm"
}

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
