#!/usr/bin/env bash
# java-check.sh: the Java client (org.apache.kafka:kafka-clients, pinned in tests/java/pom.xml)
# against a fresh Spate broker, in one JVM: the seeds' producer and consumer examples as
# written, the AdminClient's calls, transactions with read_committed, and the producer's
# defaults and compression codecs. Issue 16.
#
# Usage:  scripts/java-check.sh BIN [CHECK...]
#   BIN    the spate binary (e.g. target/release/spate)
#   CHECK  names of checks to run (default: all; `scripts/java-check.sh BIN --list` lists them)
# Prints one PASS/FAIL line per check (a FAIL is followed by what the clients printed during
# it, indented), then "java: N passed, M failed"; exits 1 if any failed.
#
# The module is built once (`mvn -q -B package` in tests/java: target/spate-java-tests-1.jar and
# target/classpath.txt, the resolved jars in ~/.m2), under a flock, and again only when
# tests/java/pom.xml or anything under tests/java/src is newer than the jar, or a jar on the
# class path is missing; mvn's output goes to target/build.log, shown if the build fails. The
# first build took 44 s here from an empty ~/.m2 (57 MB of jars and Maven plugins), 21 s with
# ~/.m2 already holding kafka-clients; later runs start the JVM directly.
# The client's own log lines (slf4j-simple, WARN and above) go to the JVM's stderr, kept in the
# temp dir and its last lines shown if a check failed.
#
# Environment:
#   JAVA                     the java binary (default: java; kafka-clients 4.x needs 17+)
#   JAVA_CHECK_MVN_ARGS      extra arguments for mvn (e.g. -o to stay offline)
#   JAVA_CHECK_TIMEOUT       seconds the JVM may run in all (default 900)
#   JAVA_CHECK_JVM_OPTS      extra JVM flags, e.g. to see the requests the client sends:
#                            -Dorg.slf4j.simpleLogger.log.org.apache.kafka.clients.NetworkClient=debug
#   CHECKS_KEEP_TMP=1        keep the temp dir (broker data and log, the JVM's output)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODULE="$REPO_ROOT/tests/java"
JAR="$MODULE/target/spate-java-tests-1.jar"
CP_FILE="$MODULE/target/classpath.txt"
JAVA="${JAVA:-java}"

if [[ $# -lt 1 ]]; then
    echo "usage: scripts/java-check.sh BIN [CHECK...]" >&2
    exit 2
fi
BIN=$1
shift

# shellcheck source=scripts/lib/checks.sh
source "$REPO_ROOT/scripts/lib/checks.sh"

needs_build() {
    [[ -f $JAR && -f $CP_FILE ]] || return 0
    [[ -z "$(find "$MODULE/pom.xml" "$MODULE/src" -newer "$JAR" -print -quit)" ]] || return 0
    local jar jars
    IFS=: read -r -a jars <"$CP_FILE"
    for jar in "${jars[@]}"; do
        [[ -f $jar ]] || return 0
    done
    return 1
}

build_module() {
    mkdir -p "$MODULE/target"
    (
        flock 9
        if needs_build; then
            echo "java-check: building tests/java (mvn -q -B package)" >&2
            local t0=$SECONDS log="$MODULE/target/build.log"
            # shellcheck disable=SC2086
            if ! (cd "$MODULE" && timeout 600 mvn -q -B ${JAVA_CHECK_MVN_ARGS:-} package) >"$log" 2>&1; then
                sed 's/\x1b\[[0-9;]*m//g' "$log" >&2
                echo "java-check: the build of tests/java failed (log: $log)" >&2
                exit 1
            fi
            echo "java-check: built in $((SECONDS - t0)) s" >&2
        fi
    ) 9>"$MODULE/target/.build.lock"
}

build_module
CLASSPATH_ARG="$JAR:$(cat "$CP_FILE")"

if [[ ${1:-} == --list ]]; then
    exec "$JAVA" -cp "$CLASSPATH_ARG" dev.spate.tests.JavaChecks --list
fi

checks_init java
port="$(free_port)"
start_spate "$BIN" "$port"
# start_spate puts the broker's data in $CHECKS_TMP/spate-$port/data (log.dirs).
LOG_DIRS="$CHECKS_TMP/spate-$port/data"
BROKER_LOG="$CHECKS_TMP/spate-$port/broker.log"

JVM_OUT="$CHECKS_TMP/java.out"
JVM_ERR="$CHECKS_TMP/java.err"
t0=$SECONDS
set +e
# shellcheck disable=SC2086
timeout "${JAVA_CHECK_TIMEOUT:-900}" "$JAVA" -Xmx512m -XX:+UseSerialGC ${JAVA_CHECK_JVM_OPTS:-} \
    -Dspate.log.dirs="$LOG_DIRS" \
    -cp "$CLASSPATH_ARG" dev.spate.tests.JavaChecks "127.0.0.1:$port" "$@" 2>"$JVM_ERR" | tee "$JVM_OUT"
JVM_RC=${PIPESTATUS[0]}
set -e
echo "java-check: the JVM ran $((SECONDS - t0)) s (exit $JVM_RC)"

passed=$(grep -c '^PASS ' "$JVM_OUT" || true)
failed=$(grep -c '^FAIL ' "$JVM_OUT" || true)
CHECKS_PASSED=$((CHECKS_PASSED + passed))
CHECKS_FAILED=$((CHECKS_FAILED + failed))

# The JVM's own outcome: it exits 0 with only PASS lines, 1 with some FAIL lines; anything
# else (a crash, the timeout, no lines at all) is a failure of its own.
jvm_outcome() {
    if ((passed + failed == 0)); then
        echo "the JVM printed no check (exit $JVM_RC); its stderr ends:"
        tail -n 20 "$JVM_ERR"
        return 1
    fi
    if ! { ((JVM_RC == 0 && failed == 0)) || ((JVM_RC == 1 && failed > 0)); }; then
        tail -n 20 "$JVM_ERR"
        echo "the JVM exited $JVM_RC after $passed PASS and $failed FAIL lines"
        return 1
    fi
    echo "exit $JVM_RC after $((passed + failed)) checks"
}
run_check java-jvm jvm_outcome

broker_alive() {
    if ! kill -0 "$SPATE_PID" 2>/dev/null; then
        tail -n 20 "$BROKER_LOG"
        echo "the broker (pid $SPATE_PID) is gone"
        return 1
    fi
    echo "pid $SPATE_PID still running"
}
run_check java-broker-alive broker_alive

if ((CHECKS_FAILED > 0)); then
    echo "--- the JVM's stderr (client logs, WARN and above), last 40 lines:"
    tail -n 40 "$JVM_ERR" | sed 's/^/    | /'
    echo "--- the broker's log, last 20 lines:"
    tail -n 20 "$BROKER_LOG" | sed 's/^/    | /'
fi
checks_summary
