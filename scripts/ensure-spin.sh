#!/usr/bin/env bash
# Make sure `spin` (the Promela model checker) is installed for tests/model/test_spin.py, which
# checks model/leases.pml (issue 14's lease protocol) and each of its mutations; from Debian's
# `spin` package. The checker spin generates (pan.c) is compiled with gcc, which must be
# present too (it is not installed here: the build toolchain is the machine's business).
#
# Installs only what is missing; starts nothing. Needs root (or sudo) when spin is missing; in
# CI it must succeed, since the suite never skips the model check.
set -euo pipefail

log() { printf '[spin] %s\n' "$*"; }
version() { spin -V 2>&1 | head -n 1; }

command -v gcc >/dev/null 2>&1 || { log "ERROR: gcc is missing (spin's verifiers are C programs)" >&2; exit 1; }
if command -v spin >/dev/null 2>&1; then
    log "present: $(version)"
    exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { log "ERROR: need root to install spin" >&2; exit 1; }
    sudo=(sudo)
fi
log "installing spin from Debian's packages"
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends spin >/dev/null
command -v spin >/dev/null 2>&1 || { log "ERROR: the install did not provide spin" >&2; exit 1; }
log "installed: $(version)"
