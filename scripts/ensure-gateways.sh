#!/usr/bin/env bash
# Make sure the real servers the test suite drives are installed: nginx (with the auth_request
# module) and Caddy (tests/gateways), node and npm (tests/e2e/test_node_express.py and the
# Node baseline of bench/), and wrk (`make bench`, tests/bench), from Debian's packages
# (docs/protecting-services.md).
#
# Installs only what is missing, and never starts, stops or reconfigures a system nginx or
# Caddy: the tests run private instances with their own prefix and ports. Needs root (or sudo)
# when something is missing; in CI it must succeed, since the suite never skips a gateway.
set -euo pipefail

log() { printf '[gateways] %s\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" ]]; }

missing=()
have nginx || missing+=(nginx)
have caddy || missing+=(caddy)
have node || missing+=(nodejs)
have npm || missing+=(npm)
have wrk || missing+=(wrk)
if ((${#missing[@]} == 0)); then
    log "nginx, caddy, node, npm and wrk present"
    exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { log "ERROR: need root to install ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
fi
log "installing ${missing[*]} from Debian's packages"
# The packages' postinst would start a system-wide server on port 80 where an init system
# runs; RUNLEVEL=1 makes invoke-rc.d skip that (policy-rc.d, where present, does too).
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for tool in nginx caddy node npm wrk; do
    have "$tool" || { log "ERROR: the install did not provide $tool" >&2; exit 1; }
done
log "installed: $(/usr/sbin/nginx -v 2>&1); caddy $(caddy version); node $(node --version)"
