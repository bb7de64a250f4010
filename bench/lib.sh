# Shared by the benchmark and profiling scripts (source it, don't run it):
#   build_load_generator  sets PERF_BIN to librdkafka's rdkafka_performance, built from the
#                         librdkafka source the rdkafka-sys crate carries (after `cargo test
#                         --no-run`), and builds target/release/spate;
#   start_broker          starts a fresh release broker on a free loopback port in a temporary
#                         folder, sets BROKER_PID, PORT and TMP, and stops it on exit.

build_load_generator() {
    cargo build --release --locked -q
    local out
    out=$(ls -d target/debug/build/rdkafka-sys-*/out 2>/dev/null | head -n1 || true)
    if [[ -z $out || ! -f $out/src/librdkafka.a ]]; then
        cargo test --no-run --locked -q
        out=$(ls -d target/debug/build/rdkafka-sys-*/out | head -n1)
    fi
    PERF_BIN=$out/examples/rdkafka_performance
    [[ -x $PERF_BIN ]] || make -s -C "$out/examples" rdkafka_performance >/dev/null
}

start_broker() {
    TMP=$(mktemp -d)
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    target/release/spate broker --override "log.dirs=$TMP/data" --override "listeners=PLAINTEXT://127.0.0.1:$PORT" 2>"$TMP/broker.log" &
    BROKER_PID=$!
    trap 'kill $BROKER_PID 2>/dev/null || true; wait $BROKER_PID 2>/dev/null || true; rm -rf "$TMP"' EXIT
    for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done
}
