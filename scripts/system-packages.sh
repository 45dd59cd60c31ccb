#!/usr/bin/env bash
# The Debian packages that `make run` and `make test` need, installed when missing. Both targets run
# this first; it is the only list of them (the Dockerfile has its own, for the image).
#
#   nothing missing       exits 0 at once (one dpkg-query; no apt-get, no network)
#   missing, as root      apt-get update, then apt-get install of the missing ones only
#   missing, not root     prints the exact `sudo apt-get install …` line and exits 1
#   no dpkg/apt-get       (not Debian) lists what the build needs and exits 0: you install the equivalents
#
# SLUICE_PRETEND_MISSING="pkg …" treats those packages as missing (for testing this script only).
set -euo pipefail

PACKAGES=(
    # the Swift build: Sources' system libraries (Package.swift) and pkg-config to find them
    libcurl4-openssl-dev libjansson-dev libsystemd-dev libhiredis-dev libmimalloc-dev pkg-config
    # the local model (scripts/setup-local-model.sh): a venv, and a C++ toolchain for llama-cpp-python
    python3 python3-venv python3-pip cmake g++ make build-essential ca-certificates
    # scripts/run.sh waits on the servers with curl
    curl
    # the integration suite: Redis for the rate limiter, journald and the systemd tools for its units
    redis-server systemd
    # the spend tests (test_spend.py): a private PostgreSQL cluster shared by two gateways
    postgresql
    # the operator's view (test_status_page.py, test_dashboards.py): a headless browser and its
    # WebDriver for the status page, and promtool (only the prometheus package ships it) for the alert rules
    chromium chromium-driver prometheus
)

say() { printf 'system-packages: %s\n' "$*" >&2; }

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    say "not a Debian system (no dpkg-query/apt-get): make sure the equivalents of these are installed:"
    say "  ${PACKAGES[*]}"
    exit 0
fi

# One dpkg-query for all (it exits 1 when it has never heard of one of them: that one is missing too).
installed=" $(dpkg-query -W -f='${db:Status-Status} ${Package}\n' "${PACKAGES[@]}" 2>/dev/null \
    | awk '$1 == "installed" { printf "%s ", $2 }' || true) "
missing=()
for package in "${PACKAGES[@]}"; do
    if [[ "$installed" != *" $package "* || " ${SLUICE_PRETEND_MISSING:-} " == *" $package "* ]]; then
        missing+=("$package")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages: ${missing[*]}"
    say "install them (as root) and run make again:"
    printf '\n    sudo apt-get install --no-install-recommends %s\n\n' "${missing[*]}" >&2
    exit 1
fi

say "installing the missing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Wait for another apt/dpkg run (unattended-upgrades, a second shell) instead of failing at once.
APT=(apt-get -q -o DPkg::Lock::Timeout=600)
"${APT[@]}" update -qq
"${APT[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
say "installed: ${missing[*]}"
