#!/usr/bin/env bash
# Installs what scripts/interop.sh needs, idempotently:
#   - Debian's kcat (apt), unless a `kcat` is already on PATH;
#   - a Python virtualenv at .venv-interop/ (repo root, gitignored) with pinned
#     confluent-kafka and kafka-python from PyPI.
# Run as root (or with sudo available) on Debian 12:  scripts/install-test-deps.sh
# Environment: PYTHON (interpreter for the venv, default python3),
#              INTEROP_VENV (venv location, default <repo>/.venv-interop).
set -euo pipefail

# Pinned client versions. confluent-kafka must have a manylinux wheel for the
# venv's Python (cp311 here): it is installed from wheels only, never built.
CONFLUENT_KAFKA_VERSION=2.16.1
KAFKA_PYTHON_VERSION=3.0.12

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${INTEROP_VENV:-$REPO_ROOT/.venv-interop}"
PYTHON="${PYTHON:-python3}"

log() { printf 'install-test-deps: %s\n' "$*"; }

# shellcheck source=scripts/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

# --- kcat -------------------------------------------------------------------
kcat_version() {
    local out
    out="$(kcat -V 2>&1 || true)"
    grep -o 'Version [^ ]*' <<<"$out" | head -n1 || true
}
if command -v kcat >/dev/null 2>&1; then
    log "kcat already installed: $(command -v kcat) ($(kcat_version))"
else
    apt_install kcat
    log "installed kcat: $(command -v kcat) ($(kcat_version))"
fi

# --- Python virtualenv ------------------------------------------------------
# A venv whose interpreter no longer runs (e.g. the base Python moved) is rebuilt.
if [[ -d $VENV ]] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    log "virtualenv $VENV is broken; recreating it"
    rm -rf "$VENV"
fi
if [[ ! -d $VENV ]]; then
    # Debian's own python3 ships venv/ensurepip separately (python3-venv).
    if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        apt_install python3-venv
    fi
    log "creating virtualenv $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
fi

oneline() { printf '%s\n' "$1" | paste -sd ' ' -; }

installed_versions() {
    "$VENV/bin/python" - <<'PY' 2>/dev/null || true
import importlib.metadata as m
for name in ("confluent-kafka", "kafka-python"):
    try:
        print(f"{name}=={m.version(name)}")
    except m.PackageNotFoundError:
        print(f"{name}==missing")
PY
}

WANTED="confluent-kafka==$CONFLUENT_KAFKA_VERSION
kafka-python==$KAFKA_PYTHON_VERSION"
if [[ "$(installed_versions)" == "$WANTED" ]]; then
    log "virtualenv already has $(oneline "$WANTED")"
else
    log "pip install into $VENV: $(oneline "$WANTED")"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --only-binary confluent-kafka \
        "confluent-kafka==$CONFLUENT_KAFKA_VERSION" \
        "kafka-python==$KAFKA_PYTHON_VERSION"
    got="$(installed_versions)"
    if [[ "$got" != "$WANTED" ]]; then
        log "ERROR: after install the venv has: $(oneline "$got")"
        exit 1
    fi
    log "installed $(oneline "$got")"
fi
log "done (kcat: $(command -v kcat); python: $VENV/bin/python)"
