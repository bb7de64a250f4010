#!/usr/bin/env bash
# A cluster of Spate nodes on this machine, as the seeds' quickstart starts three Kafka brokers
# on one host: node i (1..N) is broker and controller (process.roles=broker,controller), serves
# clients on 127.0.0.1:909(1+i) and the quorum on 127.0.0.1:1909(0+i) (base ports that can be
# moved, see Environment), keeps its data in $SPATE_CLUSTER_DIR/node-i (default ./spate-cluster),
# its log in node-i.log.
#
# Usage: scripts/cluster.sh start [N]     formats the nodes on first use (one cluster id for
#                                         all, kept in cluster.id), starts N nodes (default 3)
#        scripts/cluster.sh stop          SIGTERM to each node it started (a controlled shutdown)
#        scripts/cluster.sh status        which nodes run, and the quorum as node 1 sees it
# Environment: SPATE_BIN (default target/release/spate, built if missing),
#              SPATE_CLUSTER_DIR, SPATE_CLUSTER_OVERRIDES ("key=value key=value" for every node),
#              SPATE_CLUSTER_CLIENT_PORT_BASE (default 9091: node i serves clients on base+i),
#              SPATE_CLUSTER_CONTROLLER_PORT_BASE (default 19090: node i's quorum port is base+i).
#              (status asks node 1 on the client base port + 1, so give it the same base).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${SPATE_BIN:-$REPO_ROOT/target/release/spate}"
DIR="${SPATE_CLUSTER_DIR:-$PWD/spate-cluster}"
command="${1:-}"
N="${2:-3}"

CLIENT_PORT_BASE="${SPATE_CLUSTER_CLIENT_PORT_BASE:-9091}"
CONTROLLER_PORT_BASE="${SPATE_CLUSTER_CONTROLLER_PORT_BASE:-19090}"
client_port() { echo $((CLIENT_PORT_BASE + $1)); }
controller_port() { echo $((CONTROLLER_PORT_BASE + $1)); }

voters() {
    local i out=""
    for ((i = 1; i <= N; i++)); do out+="${out:+,}$i@127.0.0.1:$(controller_port "$i")"; done
    echo "$out"
}

write_config() {
    local i=$1
    cat > "$DIR/node-$i.properties" <<PROPS
# Node $i of a $N-node Spate cluster on one machine (scripts/cluster.sh).
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$(voters)
listeners=PLAINTEXT://127.0.0.1:$(client_port "$i"),CONTROLLER://127.0.0.1:$(controller_port "$i")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$DIR/node-$i/data
num.partitions=3
PROPS
}

running() { [[ -f $DIR/node-$1.pid ]] && kill -0 "$(cat "$DIR/node-$1.pid")" 2>/dev/null; }

# How many times node $1's log says the controller unfenced it.
unfenced() { local c; c=$(grep -c "fenced=false" "$DIR/node-$1.log" 2>/dev/null || true); echo "${c:-0}"; }

start() {
    if [[ ! -x $BIN ]]; then
        (cd "$REPO_ROOT" && cargo build --release --locked)
    fi
    mkdir -p "$DIR"
    [[ -f $DIR/cluster.id ]] || "$BIN" storage random-uuid > "$DIR/cluster.id"
    local id i overrides=() unfenced_before=()
    id="$(cat "$DIR/cluster.id")"
    for o in ${SPATE_CLUSTER_OVERRIDES:-}; do overrides+=(--override "$o"); done
    for ((i = 1; i <= N; i++)); do
        if running "$i"; then
            echo "node $i already runs (pid $(cat "$DIR/node-$i.pid"))"
            continue
        fi
        write_config "$i"
        unfenced_before[i]=$(unfenced "$i")
        "$BIN" storage format --cluster-id="$id" --config "$DIR/node-$i.properties" --ignore-formatted > /dev/null
        "$BIN" broker --config "$DIR/node-$i.properties" "${overrides[@]}" >> "$DIR/node-$i.log" 2>&1 &
        echo $! > "$DIR/node-$i.pid"
        echo "node $i: pid $!, clients on 127.0.0.1:$(client_port "$i"), controller on 127.0.0.1:$(controller_port "$i"), log $DIR/node-$i.log"
    done
    # The nodes wait for each other (a quorum needs a majority): up to 60 s for every listener.
    local deadline=$((SECONDS + 60))
    for ((i = 1; i <= N; i++)); do
        until (echo > "/dev/tcp/127.0.0.1/$(client_port "$i")") 2>/dev/null; do
            if ((SECONDS > deadline)) || ! running "$i"; then
                echo "node $i did not start; the end of its log:" >&2
                tail -n 20 "$DIR/node-$i.log" >&2
                exit 1
            fi
            sleep 0.2
        done
    done
    # And until each node started now has registered and been unfenced (it serves partitions).
    for ((i = 1; i <= N; i++)); do
        [[ -n ${unfenced_before[i]:-} ]] || continue
        until (( $(unfenced "$i") > unfenced_before[i] )); do
            if ((SECONDS > deadline)); then
                echo "node $i was not unfenced by the controller; the end of its log:" >&2
                tail -n 20 "$DIR/node-$i.log" >&2
                exit 1
            fi
            sleep 0.2
        done
    done
    echo "cluster $id: $N nodes up; bootstrap.servers=127.0.0.1:$(client_port 1)"
}

stop() {
    local i pid
    for f in "$DIR"/node-*.pid; do
        [[ -f $f ]] || continue
        pid="$(cat "$f")"
        if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; fi
    done
    for f in "$DIR"/node-*.pid; do
        [[ -f $f ]] || continue
        pid="$(cat "$f")"
        for ((i = 0; i < 400; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "pid $pid ignored SIGTERM for 40 s; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$f"
    done
    echo "stopped"
}

status() {
    local i
    for f in "$DIR"/node-*.pid; do
        [[ -f $f ]] || { echo "no node started from $DIR"; return 0; }
        i="${f##*/node-}"; i="${i%.pid}"
        if running "$i"; then echo "node $i: running (pid $(cat "$f"))"; else echo "node $i: not running"; fi
    done
    "$BIN" metadata-quorum --bootstrap-server "127.0.0.1:$(client_port 1)" describe --status 2>/dev/null || true
}

case "$command" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start [N] | stop | status" >&2; exit 2 ;;
esac
