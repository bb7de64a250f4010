#!/usr/bin/env bash
# kafka-tool.sh: runs Apache Kafka's own command-line tools (and its broker) from the jars that
# Maven Central serves, as Kafka's bin/*.sh would, so tests can check Spate against Kafka's
# reading of the same files and protocol: e.g. that Kafka's kafka-dump-log accepts the segment
# and index files Spate writes, or that kafka-topics and the console clients work against it.
#
# Usage:  scripts/kafka-tool.sh TOOL [ARGS...]
#   e.g.  scripts/kafka-tool.sh kafka-dump-log --files X.log --print-data-log
#         scripts/kafka-tool.sh kafka-dump-log --files X.index,X.timeindex --verify-index-only
#         scripts/kafka-tool.sh kafka-topics --bootstrap-server 127.0.0.1:9092 --list
#   TOOL is one of the names that `scripts/kafka-tool.sh --list` prints (a trailing .sh is
#   allowed), or `kafka-run-class CLASS` for any other main class on the class path.
#   --list       prints each tool name with its main class
#   --classpath  prints the class path (resolving the jars first if needed)
#   --resolve    only resolves the jars
# The tool runs in this shell's process (exec), so its exit code is the tool's and a PID taken
# from `scripts/kafka-tool.sh kafka-server-start ... &` is the JVM's own.
# For tests, as Kafka 4.4.0 behaves: most tools print --help to stderr and exit 1; kafka-dump-log
# reports index mismatches on stderr ("Mismatches in :FILE" / "  Index offset: N, log offset: M",
# "Found timestamp mismatch in :FILE", ...) and still exits 0, so check its stderr, not its exit
# code; --index-sanity-check exits 1 (with an exception) only when a file's length is not a
# whole number of entries.
#
# The jars: scripts/kafka-tools/pom.xml pins the Kafka version (property kafka.version). On first
# use the script runs `mvn -q -B dependency:copy-dependencies` once into
# target/kafka-libs/<version>/ (gitignored with target/), under a flock so that concurrent calls
# wait for one resolution instead of racing; later calls reuse the jars (no Maven, no network)
# until pom.xml changes. The first resolution downloads ~55 MB (92 jars) and took 30-36 s here.
# Logging: log4j2 with scripts/kafka-tools/log4j2.properties, WARN and above, to stderr.
#
# Environment:
#   KAFKA_HEAP_OPTS            heap flags (default -Xmx512m; Kafka's own scripts use -Xmx1G -Xms1G
#                              for the broker: say which was used in any comparison)
#   KAFKA_JVM_PERFORMANCE_OPTS GC and JVM flags (default: those of Kafka's kafka-run-class.sh)
#   KAFKA_OPTS                 further JVM flags, appended
#   KAFKA_LOG4J_OPTS           replaces the -Dlog4j2.configurationFile=... flag
#   KAFKA_TOOL_LOG_LEVEL       root log level for the checked-in config (default WARN)
#   KAFKA_TOOL_CACHE           where resolved jars go (default <repo>/target/kafka-libs)
#   KAFKA_TOOL_RESOLVE_TIMEOUT seconds allowed for the Maven resolution (default 600)
#   KAFKA_TOOL_MVN_ARGS        extra arguments for mvn (e.g. -o to stay offline)
#   JAVA                       the java binary (default: java from PATH; Kafka 4.x needs 17+)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="$REPO_ROOT/scripts/kafka-tools"
POM="$TOOLS_DIR/pom.xml"
LOG4J2_CONFIG="$TOOLS_DIR/log4j2.properties"
CACHE_ROOT="${KAFKA_TOOL_CACHE:-$REPO_ROOT/target/kafka-libs}"
RESOLVE_TIMEOUT="${KAFKA_TOOL_RESOLVE_TIMEOUT:-600}"
JAVA="${JAVA:-java}"

die() { printf 'kafka-tool: %s\n' "$*" >&2; exit 2; }

# Tool name -> main class, as Kafka 4.4's bin/*.sh map them. Each class was checked to exist in
# the 4.4.0 jars (unzip -Z1): DumpLogSegments and ConfigCommand moved from kafka.tools /
# kafka.admin (Scala, core) to org.apache.kafka.tools (kafka-tools jar); StorageTool and
# kafka.Kafka are still in core (kafka_2.13). Keep this list in that form: --list prints it.
TOOLS="
kafka-dump-log              org.apache.kafka.tools.DumpLogSegments
kafka-storage               kafka.tools.StorageTool
kafka-topics                org.apache.kafka.tools.TopicCommand
kafka-configs               org.apache.kafka.tools.ConfigCommand
kafka-console-producer      org.apache.kafka.tools.ConsoleProducer
kafka-console-consumer      org.apache.kafka.tools.consumer.ConsoleConsumer
kafka-consumer-groups       org.apache.kafka.tools.consumer.group.ConsumerGroupCommand
kafka-producer-perf-test    org.apache.kafka.tools.ProducerPerformance
kafka-consumer-perf-test    org.apache.kafka.tools.ConsumerPerformance
kafka-delete-records        org.apache.kafka.tools.DeleteRecordsCommand
kafka-log-dirs              org.apache.kafka.tools.LogDirsCommand
kafka-get-offsets           org.apache.kafka.tools.GetOffsetShell
kafka-transactions          org.apache.kafka.tools.TransactionsCommand
kafka-leader-election       org.apache.kafka.tools.LeaderElectionCommand
kafka-reassign-partitions   org.apache.kafka.tools.reassign.ReassignPartitionsCommand
kafka-metadata-quorum       org.apache.kafka.tools.MetadataQuorumCommand
kafka-broker-api-versions   org.apache.kafka.tools.BrokerApiVersionsCommand
kafka-server-start          kafka.Kafka
"

main_class_of() {
  local name=$1 tool class
  while read -r tool class; do
    [[ -n $tool && $tool == "$name" ]] && { printf '%s\n' "$class"; return 0; }
  done <<<"$TOOLS"
  return 1
}

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
  exit "${1:-2}"
}

[[ -f $POM ]] || die "missing $POM"
KAFKA_VERSION="$(sed -n 's|.*<kafka.version>\(.*\)</kafka.version>.*|\1|p' "$POM" | head -n1)"
[[ -n $KAFKA_VERSION ]] || die "no <kafka.version> in $POM"
LIB_DIR="$CACHE_ROOT/$KAFKA_VERSION"
STAMP="$LIB_DIR/.resolved-from-pom-sha256"

# Resolves the jars into $LIB_DIR unless a complete copy made from this very pom.xml is there.
# A copy is complete only once it carries the stamp, written last and moved into place whole, so
# a resolution killed halfway leaves nothing that a later call would take as done.
resolve() {
  local want tmp log
  want="$(sha256sum "$POM" | cut -d' ' -f1)"
  [[ -f $STAMP && "$(<"$STAMP")" == "$want" ]] && return 0
  command -v mvn >/dev/null || die "mvn not found: it is needed once, to resolve the Kafka jars"
  mkdir -p "$CACHE_ROOT"
  exec 9>"$CACHE_ROOT/.lock"
  flock -w $((RESOLVE_TIMEOUT + 60)) 9 || die "timed out waiting for another resolution ($CACHE_ROOT/.lock)"
  # Another process may have finished the job while we waited.
  if [[ -f $STAMP && "$(<"$STAMP")" == "$want" ]]; then exec 9>&-; return 0; fi
  # Leftovers of a resolution that was killed: only the lock holder makes these, so none is live.
  rm -rf "$CACHE_ROOT"/.tmp-*
  printf 'kafka-tool: resolving Apache Kafka %s jars into %s (once)...\n' "$KAFKA_VERSION" "$LIB_DIR" >&2
  tmp="$(mktemp -d "$CACHE_ROOT/.tmp-$KAFKA_VERSION.XXXXXX")"
  chmod 755 "$tmp"
  log="$tmp/.mvn.log"
  # shellcheck disable=SC2086  # KAFKA_TOOL_MVN_ARGS is a list of words on purpose
  if ! timeout --kill-after=10 "$RESOLVE_TIMEOUT" mvn -q -B -f "$POM" ${KAFKA_TOOL_MVN_ARGS:-} \
      dependency:copy-dependencies -DoutputDirectory="$tmp" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    rm -rf "$tmp"
    die "mvn dependency:copy-dependencies failed (or took over ${RESOLVE_TIMEOUT}s)"
  fi
  [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" && -f "$tmp/kafka-tools-$KAFKA_VERSION.jar" ]] || {
    rm -rf "$tmp"; die "resolution finished but the Kafka jars are missing"; }
  rm -f "$log"
  printf '%s\n' "$want" >"$tmp/.resolved-from-pom-sha256"
  if [[ -e $LIB_DIR ]]; then mv "$LIB_DIR" "$tmp.old"; fi
  mv "$tmp" "$LIB_DIR"
  rm -rf "$tmp.old"
  exec 9>&-
}

[[ $# -gt 0 ]] || usage 2
TOOL="${1##*/}"; TOOL="${TOOL%.sh}"; shift

case $TOOL in
  -h|--help|help) usage 0 ;;
  --list)
    while read -r tool class; do [[ -n $tool ]] && printf '%-27s %s\n' "$tool" "$class"; done <<<"$TOOLS"
    exit 0 ;;
  --resolve) resolve; exit 0 ;;
  --classpath) resolve; printf '%s\n' "$LIB_DIR/*"; exit 0 ;;
  kafka-run-class)
    [[ $# -gt 0 ]] || die "kafka-run-class needs a main class"
    MAIN_CLASS=$1; shift ;;
  *)
    MAIN_CLASS="$(main_class_of "$TOOL")" || die "unknown tool '$TOOL' (try --list, or kafka-run-class CLASS)" ;;
esac

command -v "$JAVA" >/dev/null || die "java not found on PATH (Kafka $KAFKA_VERSION needs Java 17 or newer)"
resolve

# The same defaults as Kafka's kafka-run-class.sh, but a modest heap.
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m}"
JVM_OPTS="${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}"
LOG4J_OPTS="${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=$LOG4J2_CONFIG -Dkafka.tool.log.level=${KAFKA_TOOL_LOG_LEVEL:-WARN}}"

# shellcheck disable=SC2086  # the *_OPTS variables are lists of words, as in Kafka's scripts
exec "$JAVA" $HEAP_OPTS $JVM_OPTS $LOG4J_OPTS ${KAFKA_OPTS:-} -cp "$LIB_DIR/*" "$MAIN_CLASS" "$@"
