#!/usr/bin/env bash
# Make sure `promtool` is installed for tests/deploy/test_monitoring.py (`promtool check rules`
# and `promtool test rules` on k8s/monitoring/), from Debian's `prometheus` package, which is
# the only registry package that ships it.
#
# Installs only what is missing, and never leaves a Prometheus server running: the package's
# postinst would start (and enable at boot) a system-wide server on port 9090. While
# installing, a policy-rc.d that refuses every start is put in place if there is none (both
# invoke-rc.d and deb-systemd-invoke obey it), and RUNLEVEL=1 makes invoke-rc.d skip it too;
# the service is then disabled, and the script fails if a prometheus process appeared. Needs
# root (or sudo) when promtool is missing; in CI it must succeed, since the suite never skips.
set -euo pipefail

log() { printf '[promtool] %s\n' "$*"; }

if command -v promtool >/dev/null 2>&1; then
    log "present: $(promtool --version 2>&1 | head -n 1)"
    exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { log "ERROR: need root to install prometheus (promtool)" >&2; exit 1; }
    sudo=(sudo)
fi

policy=/usr/sbin/policy-rc.d
ours=0
if [[ ! -e $policy ]]; then
    # exit 101: "action forbidden by policy" (invoke-rc.d(8)); removed again on any exit.
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    ours=1
    trap '"${sudo[@]}" rm -f "$policy"' EXIT
fi
before=$(pgrep -x prometheus || true)

log "installing prometheus (for promtool) from Debian's packages; its server is not started"
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
if [[ -d /run/systemd/system ]]; then
    "${sudo[@]}" systemctl disable --now prometheus.service >/dev/null 2>&1
else
    "${sudo[@]}" update-rc.d prometheus disable >/dev/null 2>&1 || true
fi
if ((ours)); then
    "${sudo[@]}" rm -f "$policy"
    trap - EXIT
fi

after=$(pgrep -x prometheus || true)
if [[ -n $after && $after != "$before" ]]; then
    log "ERROR: a prometheus server is running after the install (pids: $after); stop it" >&2
    exit 1
fi
command -v promtool >/dev/null 2>&1 || { log "ERROR: the install did not provide promtool" >&2; exit 1; }
log "installed: $(promtool --version 2>&1 | head -n 1)"
