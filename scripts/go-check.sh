#!/usr/bin/env bash
# go-check.sh: the Go Kafka clients against Spate, unchanged and with their default settings:
# franz-go (kgo v1.22.3, kadm v1.20.0) and IBM's sarama (v1.61.1, with its default protocol
# version 2.8 and with the newest it knows, 4.3.1), pinned in tests/go/go.mod and go.sum.
#
# Usage:  scripts/go-check.sh [path-to-spate-binary]     (default: target/release/spate)
#
# Builds tests/go once into tests/go/bin/spate-go-check (gitignored; Go's own build cache makes
# a rebuild with no change take well under a second; the first build downloads the modules
# from the Go module proxy into GOMODCACHE), starts one fresh Spate broker on a free loopback
# port (scripts/lib/checks.sh), and runs every check the program lists (`spate-go-check
# -list`), each in its own short process against that broker, with its own topics and groups:
#   kgo-*     produce (sync, async, every compression codec, stored codec checked), consume by
#             assignment, a group of two members (each record once, commits, resume), the
#             transactional producer (read_committed / read_uncommitted, LSO, an open
#             transaction), GroupTransactSession (consume-transform-produce), idempotence
#   kadm-*    CreateTopics/ListTopics, DescribeConfigs, IncrementalAlterConfigs, AlterConfigs,
#             a config applied live, DeleteRecords, ListOffsets (earliest, latest, by
#             timestamp, MAX_TIMESTAMP), groups (List/Describe/OffsetFetch/OffsetCommit/
#             DeleteGroups), Metadata and DescribeCluster, DescribeLogDirs, DeleteTopics
#   sarama-*@default, sarama-*@4.3.1
#             SyncProducer, AsyncProducer, compression, the partition consumer, ConsumerGroup
#             (two members, each record once, commits, resume), ClusterAdmin
# Each check writes, reads back and compares counts, contents, order and offsets; its last line
# is the reason it passed or failed. Then `broker-alive` checks the broker is still running.
# Prints PASS/FAIL per check and ends with "go-check: N passed, M failed"; exits 1 if any failed.
#
# Environment: GO_CHECK_ONLY=REGEX      runs only the checks whose names match (grep -E)
#              GO_CHECK_TIMEOUT=SECS    one check's deadline (default 60; a hung process is
#                                       killed 30 s after it)
#              GO_CHECK_BUDGET=SECS     all checks' budget (default 600): those left FAIL
#              CHECKS_KEEP_TMP=1        keeps the temp dir (the broker's data and log)
#              GO                       the go binary (default: go on PATH; Go 1.26+)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${1:-$REPO_ROOT/target/release/spate}"
GO="${GO:-go}"
MOD_DIR="$REPO_ROOT/tests/go"
CHECK_BIN="$MOD_DIR/bin/spate-go-check"
CHECK_TIMEOUT="${GO_CHECK_TIMEOUT:-60}"
BUDGET="${GO_CHECK_BUDGET:-600}"
BUILD_TIMEOUT=600

# shellcheck source=scripts/lib/checks.sh
source "$REPO_ROOT/scripts/lib/checks.sh"
checks_init go-check

if [[ ! -x $BIN ]]; then
    echo "FAIL broker-binary: '$BIN' not found or not executable (build it first)"
    exit 1
fi
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
if ! command -v "$GO" >/dev/null 2>&1; then
    echo "FAIL go-toolchain: no '$GO' on PATH"
    exit 1
fi

# The build: GOTOOLCHAIN=local so that a missing toolchain is an error, not a download;
# -mod=readonly so that go.mod and go.sum are used as pinned, never rewritten.
build() {
    cd "$MOD_DIR"
    GOTOOLCHAIN=local GOFLAGS=-mod=readonly timeout "$BUILD_TIMEOUT" "$GO" build -trimpath -o "$CHECK_BIN" .
    echo "built $CHECK_BIN with $("$GO" version | cut -d' ' -f3)"
}
start=$SECONDS
run_check build build
if [[ ! -x $CHECK_BIN ]] || ((CHECKS_FAILED > 0)); then
    checks_summary
    exit 1
fi
echo "go-check: build took $((SECONDS - start)) s"

port="$(free_port)"
start_spate "$BIN" "$port"
BOOTSTRAP="127.0.0.1:$port"
LOG_DIR="$CHECKS_TMP/spate-$port/data"
BROKER_LOG="$CHECKS_TMP/spate-$port/broker.log"
echo "go-check: Spate (pid $SPATE_PID) on $BOOTSTRAP, data in $LOG_DIR"

mapfile -t names < <("$CHECK_BIN" -list)
if [[ -n ${GO_CHECK_ONLY:-} ]]; then
    mapfile -t names < <(printf '%s\n' "${names[@]}" | grep -E "$GO_CHECK_ONLY" || true)
fi
if ((${#names[@]} == 0)); then
    echo "FAIL select: no check matches GO_CHECK_ONLY='${GO_CHECK_ONLY:-}'"
    exit 1
fi

one_check() {
    timeout -k 5 "$((CHECK_TIMEOUT + 30))" "$CHECK_BIN" -bootstrap "$BOOTSTRAP" -log-dir "$LOG_DIR" \
        -timeout "${CHECK_TIMEOUT}s" "$1"
}
over_budget() {
    echo "not run: the checks' budget of ${BUDGET}s (GO_CHECK_BUDGET) was spent"
    return 1
}
start=$SECONDS
for name in "${names[@]}"; do
    if ((SECONDS - start > BUDGET)); then
        run_check "$name" over_budget
    else
        run_check "$name" one_check "$name"
    fi
done
echo "go-check: ${#names[@]} checks took $((SECONDS - start)) s"

broker_alive() {
    if ! kill -0 "$SPATE_PID" 2>/dev/null; then
        tail -n 20 "$BROKER_LOG"
        echo "the broker (pid $SPATE_PID) is no longer running"
        return 1
    fi
    echo "the broker (pid $SPATE_PID) still runs"
}
run_check broker-alive broker_alive
if ((CHECKS_FAILED > 0)) && [[ -s $BROKER_LOG ]]; then
    echo "go-check: the broker's log ends with:"
    tail -n 15 "$BROKER_LOG" | sed 's/^/    | /'
fi
checks_summary
