#!/usr/bin/env bash
# The long fuzzing campaigns: cargo-fuzz (libFuzzer) on the three targets of src/fuzz.rs.
#
#   scripts/fuzz.sh [--cpu-seconds N] [--wall-seconds N] [target ...]
#
# Targets: request (every API key and version, with the heap bound), record_batch (every
# RecordBatch parser), segment_recovery (log recovery on arbitrary files). Default: all three,
# run side by side, each until it has used --cpu-seconds of CPU (default 3600: one CPU-hour)
# or --wall-seconds have passed (default 4 hours), whichever comes first. They run under
# `nice`, so a build beside them keeps its speed.
#
# Uses the stable toolchain (`--sanitizer none`: Rust's safety checks stay on, only ASan is
# off, which needs nightly), with debug assertions and overflow checks (`-a`). Installs cargo-fuzz 0.13.2 into .tools/ if missing. The corpus
# grows in fuzz/corpus/<target>/ (commit it); crashes land in fuzz/artifacts/<target>/ and
# each becomes a regression input in fuzz/regressions/<target>/, which `cargo test` replays
# (tests/fuzz_seeded.rs). Logs and a summary (runs, CPU seconds, corpus size) are written to
# fuzz/logs/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
# Bash reads a script as it runs it: editing this file under a running campaign breaks it.
# Run a copy for long campaigns: SPATE_ROOT=$PWD bash /tmp/copy-of-fuzz.sh ...
[[ -n ${SPATE_ROOT:-} ]] && { cd "$SPATE_ROOT"; root=$PWD; }
cpu_seconds=3600
wall_seconds=14400
targets=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --cpu-seconds) cpu_seconds=$2; shift 2 ;;
        --wall-seconds) wall_seconds=$2; shift 2 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) targets+=("$1"); shift ;;
    esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=(request record_batch segment_recovery)

log() { printf 'fuzz: %s\n' "$*"; }

export PATH=$root/.tools/bin:$PATH
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz 0.13.2 into .tools/"
    cargo install cargo-fuzz --locked --version 0.13.2 --root "$root/.tools"
fi

log "writing the seed inputs into fuzz/corpus/"
cargo test --quiet --test fuzz_seeded -- --ignored write_seed_corpus >/dev/null
log "building the targets"
# -a: debug assertions and overflow checks on, as in `cargo test` (an overflow is a finding).
(cd fuzz && cargo fuzz build --sanitizer none -O -a)

mkdir -p fuzz/logs
cpu_of() { # utime + stime of a process, in seconds
    awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) / hz) }' "/proc/$1/stat" 2>/dev/null || echo 0
}

declare -A pids cpu
for t in "${targets[@]}"; do
    bin=fuzz/target/x86_64-unknown-linux-gnu/release/$t
    [[ -x $bin ]] || { log "no fuzz target named $t (targets: request record_batch segment_recovery)"; exit 2; }
    # Artifacts of earlier campaigns were copied to fuzz/regressions/ when they were found.
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    rm -f "fuzz/artifacts/$t"/*
    # One process per target: -timeout catches hangs, -rss_limit_mb runaway memory. Segment
    # recovery writes its files under TMPDIR: tmpfs, where recovery's fsyncs cost nothing,
    # runs it about a hundred times faster than a disk.
    tmp=${TMPDIR:-/tmp}
    [[ $t == segment_recovery && -d /dev/shm && -w /dev/shm ]] && tmp=/dev/shm
    TMPDIR=$tmp nice -n 19 "$bin" \
        -timeout=10 -rss_limit_mb=2048 -max_total_time="$wall_seconds" -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$t/" "fuzz/corpus/$t" >"fuzz/logs/$t.log" 2>&1 &
    pids[$t]=$!
    cpu[$t]=0
    log "$t: pid ${pids[$t]}, log fuzz/logs/$t.log"
done

while :; do
    running=0
    for t in "${targets[@]}"; do
        pid=${pids[$t]}
        kill -0 "$pid" 2>/dev/null || continue
        running=1
        now=$(cpu_of "$pid")
        (( now > ${cpu[$t]:-0} )) && cpu[$t]=$now
        if (( cpu[$t] >= cpu_seconds )); then
            log "$t: ${cpu[$t]} CPU-seconds used; stopping it"
            kill -INT "$pid" 2>/dev/null || true
        fi
    done
    (( running )) || break
    sleep 10
done

status=0
summary=fuzz/logs/summary-$(date -u +%Y-%m-%d-%H%M).md
{
    echo "# Fuzz campaign, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo
    echo "| target | CPU seconds | runs | corpus inputs | crashes |"
    echo "|---|---|---|---|---|"
    for t in "${targets[@]}"; do
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "fuzz/logs/$t.log" | grep -o '[0-9]*$' | tail -1 || true)
        crashes=$(find "fuzz/artifacts/$t" -type f | wc -l)
        echo "| $t | ${cpu[$t]:-?} | ${runs:-?} | $(find "fuzz/corpus/$t" -type f | wc -l) | $crashes |"
        if (( crashes > 0 )); then
            status=1
            mkdir -p "fuzz/regressions/$t"
            # Crashes become regression inputs; out-of-memory and timeout inputs are kept in
            # fuzz/artifacts/ for a look (cargo test replays them without those limits).
            find "fuzz/artifacts/$t" -name 'crash-*' -exec cp {} "fuzz/regressions/$t/" \;
        fi
    done
} >"$summary"
cat "$summary"
(( status == 0 )) || log "crashes found: copied to fuzz/regressions/; \`cargo test --test fuzz_seeded\` now replays them"
exit "$status"
