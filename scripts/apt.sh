# Shared by the install scripts (source it, don't run it): `apt_install PACKAGE...` installs
# Debian packages idempotently, with sudo when not root, running `apt-get update` once per
# script and bounding each step with `timeout`. The sourcing script defines `log`.

SUDO=()
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
fi

APT_UPDATED=0
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        log "apt-get not found; install these by hand: $*"
        return 1
    fi
    if [[ $APT_UPDATED -eq 0 ]]; then
        log "apt-get update"
        timeout 600 "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt-get install -y --no-install-recommends $*"
    timeout 1200 "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@"
}
