#!/usr/bin/env bash
# The long kill -9 campaign: the recovery tests' kill loops with 100 cycles each (CI runs 8):
# start the broker, produce with librdkafka (acks=all, idempotent) for a random moment,
# kill -9, restart, and check that every acknowledged record is there, in order. Once with
# an fsync per batch (flush.messages=1), once in the default page-cache mode, and both again
# with a power cut at every kill (io::fault::power: what was not fsynced is dropped; in
# page-cache mode records may go, but no partition may hold a hole or a torn batch).
#
#   scripts/kill-loop.sh [cycles] [seed]
#
# A failure prints its seed; `SPATE_KILL_SEED=<seed>` replays the same kill moments.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export SPATE_KILL_CYCLES=${1:-100}
[[ -n ${2:-} ]] && export SPATE_KILL_SEED=$2
cargo test --test it -- kill_9_loop power_cuts --nocapture --test-threads 1 2>&1 | grep -E 'kill -9 loop|panicked|seed|test result'
