#!/usr/bin/env bash
# Installs what the profiling scripts need, idempotently, from Debian's apt:
#   - perf      (package linux-perf), for perf/flamegraph.sh, unless a working `perf` is on PATH;
#   - valgrind  (package valgrind, with callgrind and callgrind_control), for
#               perf/stat.sh --callgrind, unless both are on PATH.
# perf/flamegraph.sh and perf/stat.sh call it when their tool is missing.
# Run as root (or with sudo available) on Debian 12:
#   scripts/install-perf-tools.sh [perf|valgrind ...]   (no argument: both)
# It changes no system setting: if perf is installed but refused (perf_event_paranoid), the
# profiling script that hit it says what to set.
set -euo pipefail

log() { printf 'install-perf-tools: %s\n' "$*"; }

# shellcheck source=scripts/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

# `perf --version` rather than `command -v perf`: Debian's /usr/bin/perf wrapper exists without
# a perf for the running kernel's version and only fails when run.
perf_ok() { timeout 10 perf --version >/dev/null 2>&1; }
valgrind_ok() { command -v valgrind >/dev/null 2>&1 && command -v callgrind_control >/dev/null 2>&1; }

want=("$@")
[[ ${#want[@]} -gt 0 ]] || want=(perf valgrind)
for tool in "${want[@]}"; do
    case $tool in
        perf)
            if perf_ok; then
                log "perf already installed: $(command -v perf) ($(perf --version))"
            else
                apt_install linux-perf
                perf_ok || { log "ERROR: perf still does not run after installing linux-perf"; exit 1; }
                log "installed $(perf --version)"
            fi
            ;;
        valgrind)
            if valgrind_ok; then
                log "valgrind already installed: $(command -v valgrind) ($(valgrind --version))"
            else
                apt_install valgrind
                valgrind_ok || { log "ERROR: valgrind or callgrind_control still missing"; exit 1; }
                log "installed $(valgrind --version)"
            fi
            ;;
        *)
            log "unknown tool '$tool' (perf or valgrind)"
            exit 2
            ;;
    esac
done
