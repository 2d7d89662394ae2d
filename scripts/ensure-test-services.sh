#!/usr/bin/env bash
# Make sure the PostgreSQL and Redis servers that the test suite needs are reachable,
# then write their URLs to .venv/test-services.env (KEY='value' lines, for `set -a; . file`).
#
# Environment:
#   TENANTAUTH_TEST_DATABASE_URL  use this PostgreSQL URL; only checked, never set up
#   TENANTAUTH_TEST_REDIS_URL     use this Redis URL; only checked, never started
#   TENANTAUTH_TEST_PG_ROLE       role for the default URL (default: tenantauth_test)
#   TENANTAUTH_TEST_PG_PASSWORD   its password (default: the role name)
#   TENANTAUTH_TEST_PG_PORT       local PostgreSQL port for the default URL (default: 5432)
#   TENANTAUTH_TEST_REDIS_PORT    local Redis port for the default URL (default: 6379)
#   TENANTAUTH_TEST_SERVICES_ENV_FILE  where to write the URLs (default: .venv/test-services.env)
#
# Without the URL overrides this starts a stopped local PostgreSQL cluster or Redis server,
# and creates (or fixes) the test role with LOGIN CREATEDB: the suite creates and drops a
# throwaway database per run from the maintenance database `postgres`.
# It never stops, flushes or reconfigures a running server.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENV_FILE="${TENANTAUTH_TEST_SERVICES_ENV_FILE:-$REPO_ROOT/.venv/test-services.env}"

PG_HOST=127.0.0.1
PG_PORT="${TENANTAUTH_TEST_PG_PORT:-5432}"
PG_ROLE="${TENANTAUTH_TEST_PG_ROLE:-tenantauth_test}"
PG_PASSWORD="${TENANTAUTH_TEST_PG_PASSWORD:-$PG_ROLE}"
REDIS_PORT="${TENANTAUTH_TEST_REDIS_PORT:-6379}"
DEFAULT_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
if [[ "$REDIS_PORT" == 6379 ]]; then
    REDIS_LOG=/var/log/redis/ci.log
else
    REDIS_LOG="/var/log/redis/ci-$REDIS_PORT.log"
fi
WAIT_SECONDS=30

log() { printf '[test-services] %s\n' "$*"; }
die() {
    printf '[test-services] ERROR: %s\n' "$1" >&2
    shift
    local arg line
    for arg in "$@"; do
        while IFS= read -r line; do printf '[test-services]   %s\n' "$line" >&2; done <<<"$arg"
    done
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

# Percent-encode a URL component (userinfo), byte by byte.
urlencode() {
    local LC_ALL=C s="$1" out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c="${s:i:1}"
        case "$c" in
            [a-zA-Z0-9._~-]) out+="$c" ;;
            *) out+="$(printf '%%%02X' "'$c")" ;;
        esac
    done
    printf '%s' "$out"
}

# Hide credentials when printing a URL: scheme://user:***@host/...
redact() { printf '%s' "$1" | sed -E 's#^([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@]*):[^@/]*@#\1:***@#'; }

# Run a command as root (directly, or through password-less sudo).
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif have sudo && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        die "need root to run: $*" "run this script as root, or set up password-less sudo"
    fi
}

# Run a command as the `postgres` OS user, from a directory it can read, with no PG*
# variables that could send it anywhere but the local socket.
as_postgres() {
    local -a clean_env=(env -u PGHOST -u PGHOSTADDR -u PGPORT -u PGUSER -u PGPASSWORD
        -u PGPASSFILE -u PGSERVICE -u PGSERVICEFILE -u PGDATABASE -u PGOPTIONS)
    if [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u postgres -- "${clean_env[@]}" "$@")
    elif have sudo && sudo -n -u postgres true 2>/dev/null; then
        (cd / && sudo -n -u postgres -- "${clean_env[@]}" "$@")
    else
        return 1
    fi
}

# ---------------------------------------------------------------------------- PostgreSQL

pg_ready() { PGCONNECT_TIMEOUT=5 pg_isready -q -d "$1" >/dev/null 2>&1; }

# Prints psql's error output (if any) on stdout; returns psql's status.
pg_query_ok() {
    local out
    if out="$(PGCONNECT_TIMEOUT=5 psql "$1" -w -X -q -A -t -v ON_ERROR_STOP=1 -c 'select 1' 2>&1)"; then
        return 0
    fi
    printf '%s\n' "$out"
    return 1
}

require_pg_clients() {
    have pg_isready && have psql && return 0
    die "the PostgreSQL client tools (psql, pg_isready) are not installed." \
        "install them with: apt-get install -y postgresql-client" \
        "(or the server too: apt-get install -y postgresql redis-server)"
}

start_pg_clusters() {
    if ! have pg_lsclusters || ! have pg_ctlcluster; then
        die "PostgreSQL is not reachable at $PG_HOST:$PG_PORT and is not installed here." \
            "install it with: apt-get install -y postgresql redis-server" \
            "or point TENANTAUTH_TEST_DATABASE_URL at a server you have."
    fi
    local ver name port status rest started=0
    while read -r ver name port status rest; do
        [[ -n "$ver" ]] || continue
        if [[ "$status" == down* ]]; then
            log "starting PostgreSQL cluster $ver/$name (port $port)"
            as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start \
                || die "could not start PostgreSQL cluster $ver/$name" \
                       "see /var/log/postgresql/postgresql-$ver-$name.log"
            started=1
        fi
    done < <(pg_lsclusters --no-header)
    if [[ $started -eq 0 ]]; then
        die "PostgreSQL is not reachable at $PG_HOST:$PG_PORT, and no cluster is stopped." \
            "clusters here:" "$(pg_lsclusters)" \
            "the tests expect one listening on $PG_HOST:$PG_PORT (or set TENANTAUTH_TEST_DATABASE_URL)."
    fi
}

wait_for_pg() {
    local url="$1" i
    for ((i = 0; i < WAIT_SECONDS; i++)); do
        pg_ready "$url" && return 0
        sleep 1
    done
    return 1
}

ensure_pg_role() {
    log "creating or updating PostgreSQL role $PG_ROLE (LOGIN CREATEDB) as the postgres OS user"
    if ! have runuser && [[ $EUID -eq 0 ]]; then
        die "runuser is missing; cannot act as the postgres OS user"
    fi
    # psql variables keep the role name and password safely quoted (:"role", :'pw').
    if ! as_postgres psql -X -q -p "$PG_PORT" -d postgres -v ON_ERROR_STOP=1 \
        -v role="$PG_ROLE" -v pw="$PG_PASSWORD" <<'SQL'
SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') AS role_exists \gset
\if :role_exists
ALTER ROLE :"role" LOGIN CREATEDB PASSWORD :'pw';
\else
CREATE ROLE :"role" LOGIN CREATEDB PASSWORD :'pw';
\endif
SQL
    then
        die "could not create the role $PG_ROLE as the postgres OS user." \
            "run this script as root (or with password-less sudo to postgres), or create it yourself:" \
            "  sudo -u postgres psql -c \"CREATE ROLE $PG_ROLE LOGIN CREATEDB PASSWORD '$PG_PASSWORD'\"" \
            "or set TENANTAUTH_TEST_DATABASE_URL to a role that has CREATEDB."
    fi
}

ensure_postgres() {
    require_pg_clients
    if [[ -n "${TENANTAUTH_TEST_DATABASE_URL:-}" ]]; then
        DATABASE_URL="$TENANTAUTH_TEST_DATABASE_URL"
        log "PostgreSQL: using TENANTAUTH_TEST_DATABASE_URL=$(redact "$DATABASE_URL") (check only)"
        pg_ready "$DATABASE_URL" \
            || die "PostgreSQL at TENANTAUTH_TEST_DATABASE_URL=$(redact "$DATABASE_URL") is not reachable." \
                   "start that server, fix the URL, or unset it to use the local default."
        local err
        if ! err="$(pg_query_ok "$DATABASE_URL")"; then
            die "PostgreSQL answers, but connecting with TENANTAUTH_TEST_DATABASE_URL failed:" "$err"
        fi
        local createdb
        createdb="$(PGCONNECT_TIMEOUT=5 psql "$DATABASE_URL" -w -X -A -t \
            -c 'select rolcreatedb or rolsuper from pg_roles where rolname = current_user' 2>/dev/null || true)"
        if [[ "$createdb" != "t" ]]; then
            log "WARNING: that role seems to lack CREATEDB; the suite needs it to create its throwaway database"
        fi
        log "PostgreSQL: ok"
        return 0
    fi

    DATABASE_URL="postgresql://$(urlencode "$PG_ROLE"):$(urlencode "$PG_PASSWORD")@$PG_HOST:$PG_PORT/postgres"
    log "PostgreSQL: checking $PG_HOST:$PG_PORT"
    if ! pg_ready "$DATABASE_URL"; then
        log "PostgreSQL: not reachable at $PG_HOST:$PG_PORT"
        start_pg_clusters
        log "PostgreSQL: waiting up to ${WAIT_SECONDS}s for $PG_HOST:$PG_PORT"
        wait_for_pg "$DATABASE_URL" \
            || die "PostgreSQL did not come up on $PG_HOST:$PG_PORT within ${WAIT_SECONDS}s." \
                   "see the logs in /var/log/postgresql/; check listen_addresses and port in postgresql.conf."
    fi
    log "PostgreSQL: reachable at $PG_HOST:$PG_PORT"

    local err
    if err="$(pg_query_ok "$DATABASE_URL")"; then
        log "PostgreSQL: role $PG_ROLE can log in"
    else
        log "PostgreSQL: role $PG_ROLE cannot log in yet: ${err%%$'\n'*}"
        ensure_pg_role
        if ! err="$(pg_query_ok "$DATABASE_URL")"; then
            die "the role $PG_ROLE exists now, but logging in over TCP still fails:" \
                "$err" \
                "pg_hba.conf needs a line allowing password (or trust) auth from $PG_HOST, e.g." \
                "  host  all  all  127.0.0.1/32  scram-sha-256" \
                "find the file with: runuser -u postgres -- psql -Atc 'show hba_file'" \
                "then reload: runuser -u postgres -- psql -c 'select pg_reload_conf()'"
        fi
        log "PostgreSQL: role $PG_ROLE ready"
    fi
}

# --------------------------------------------------------------------------------- Redis

redis_ping() { [[ "$(timeout 5 redis-cli --no-auth-warning -u "$1" ping 2>/dev/null || true)" == "PONG" ]]; }

ensure_redis() {
    if ! have redis-cli; then
        die "redis-cli is not installed." "install it with: apt-get install -y redis-server" \
            "(or only the client: apt-get install -y redis-tools)"
    fi
    if [[ -n "${TENANTAUTH_TEST_REDIS_URL:-}" ]]; then
        REDIS_URL="$TENANTAUTH_TEST_REDIS_URL"
        log "Redis: using TENANTAUTH_TEST_REDIS_URL=$(redact "$REDIS_URL") (check only)"
        redis_ping "$REDIS_URL" \
            || die "Redis at TENANTAUTH_TEST_REDIS_URL=$(redact "$REDIS_URL") does not answer PING." \
                   "start that server, fix the URL, or unset it to use the local default."
        log "Redis: ok"
        return 0
    fi

    REDIS_URL="$DEFAULT_REDIS_URL"
    log "Redis: checking $REDIS_URL"
    if ! redis_ping "$REDIS_URL"; then
        log "Redis: not reachable at $REDIS_URL"
        if ! have redis-server; then
            die "Redis is not reachable and redis-server is not installed." \
                "install it with: apt-get install -y redis-server" \
                "or point TENANTAUTH_TEST_REDIS_URL at a server you have."
        fi
        log "Redis: starting redis-server on 127.0.0.1:$REDIS_PORT (no persistence)"
        as_root mkdir -p /var/lib/redis /var/log/redis
        as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
            --save "" --appendonly no --dir /var/lib/redis --logfile "$REDIS_LOG" \
            || die "redis-server failed to start; see $REDIS_LOG"
        local i
        for ((i = 0; i < WAIT_SECONDS; i++)); do
            redis_ping "$REDIS_URL" && break
            sleep 1
        done
        redis_ping "$REDIS_URL" \
            || die "Redis did not answer on $REDIS_URL within ${WAIT_SECONDS}s; see $REDIS_LOG"
    fi
    log "Redis: reachable at $REDIS_URL"
}

# ----------------------------------------------------------------------------------- main

# Single-quote a value for POSIX sh: ' becomes '\''
sh_quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

write_env_file() {
    mkdir -p "$(dirname "$ENV_FILE")"
    local tmp="$ENV_FILE.tmp.$$"
    {
        printf '# written by scripts/ensure-test-services.sh; load with: set -a; . %s; set +a\n' \
            "${ENV_FILE#"$REPO_ROOT"/}"
        printf 'TENANTAUTH_TEST_DATABASE_URL=%s\n' "$(sh_quote "$DATABASE_URL")"
        printf 'TENANTAUTH_TEST_REDIS_URL=%s\n' "$(sh_quote "$REDIS_URL")"
    } >"$tmp"
    mv -f "$tmp" "$ENV_FILE"
}

main() {
    ensure_postgres
    ensure_redis
    write_env_file
    log "wrote ${ENV_FILE#"$REPO_ROOT"/}"
    printf 'TENANTAUTH_TEST_DATABASE_URL=%s\n' "$(redact "$DATABASE_URL")"
    printf 'TENANTAUTH_TEST_REDIS_URL=%s\n' "$(redact "$REDIS_URL")"
    log "ready: PostgreSQL $(redact "$DATABASE_URL"), Redis $(redact "$REDIS_URL")"
}

main "$@"
