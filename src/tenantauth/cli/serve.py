"""``tenantauth serve``, ``migrate`` and ``settings``."""

from __future__ import annotations

import os
import socket
import sys

import click

from tenantauth import __version__
from tenantauth.cli.common import describe_mode, fail, load_settings, services, table
from tenantauth.cli.cpus import available_cpus
from tenantauth.cli.groups import main
from tenantauth.domain.ports import Cache
from tenantauth.domain.readiness import REQUIRED_EVICTION_POLICY, eviction_policy_problem
from tenantauth.errors import CacheUnavailableError
from tenantauth.settings import PREFIX, ROLES, SETTINGS


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="TCP port to listen on.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=lambda: int(os.environ.get("WEB_CONCURRENCY") or min(available_cpus(), 64)),
    show_default="$WEB_CONCURRENCY, else one per available CPU (container limit included)",
    help="Worker processes (each runs $TENANTAUTH_BLOCKING_THREADS threads under granian, "
    "default 4; $TENANTAUTH_THREADS under gunicorn, default 4).",
)
@click.option(
    "--server",
    "server_name",
    type=click.Choice(["granian", "gunicorn"]),
    default="granian",
    show_default=True,
    envvar="TENANTAUTH_SERVER",
    show_envvar=True,
    help="HTTP server: granian (Rust HTTP, the default) or gunicorn (gthread workers). Both "
    "pass the same tests; granian served 2.8x gunicorn's verifications per second in "
    "`make bench` "
    '(docs/design.md, "The HTTP server").',
)
@click.option(
    "--role",
    type=click.Choice(ROLES, case_sensitive=False),
    default="all",
    show_default=True,
    envvar="TENANTAUTH_ROLE",
    show_envvar=True,
    help="Which API to answer: all; public (verify, token, JWKS, introspection); or admin "
    "(/v1/admin/*). Run admin servers beside public ones to keep the admin API off the "
    "public network and admin changes off the verifying workers.",
)
def serve(host: str, port: int, workers: int, server_name: str, role: str) -> None:
    """Start the HTTP service under granian (or gunicorn, with --server gunicorn).

    Embedded mode prints the generated admin token once, on first start. Production mode
    refuses to start while migrations are pending, or when Redis may evict keys.
    """
    if server_name == "granian":
        check_blocking_threads()
    os.environ[f"{PREFIX}ROLE"] = role  # the workers read their settings from the environment
    settings = load_settings(serving=f"http://{host}:{port}")
    with services(settings) as svc:  # applies migrations first when auto_migrate is on
        pending = svc.storage.pending_migrations()  # type: ignore[attr-defined]
        if settings.redis_url:
            check_eviction_policy(svc.cache)
    if pending:
        fail(f"migrations {pending} are pending: run `tenantauth migrate` first")
    metrics_host = os.environ.setdefault("TENANTAUTH_METRICS_HOST", host)
    metrics = _metrics_url(metrics_host, settings.metrics_port, api_port=port)
    click.echo(
        f"tenantauth {__version__}: {describe_mode(settings)}; "
        f"http://{host}:{port} ({workers} {server_name} workers{_role_note(role)}); "
        f"metrics: {metrics}"
    )
    argv = server_argv(server_name, host, port, workers)
    # Migrations are applied (or none were pending): the workers must not run them again at
    # import. A worker booting while the database is unreachable (one replaced during an
    # outage) would fail to boot, and gunicorn's master then halts the whole server.
    os.environ["TENANTAUTH_AUTO_MIGRATE"] = "false"
    sys.stdout.flush()
    os.execv(sys.executable, argv)  # noqa: S606 - argv is ours; no shell


def _role_note(role: str) -> str:
    """Return what the start-up line says of ``role`` (nothing for ``all``)."""
    return "" if role == "all" else f", {role} API only"


def check_blocking_threads() -> None:
    """Return None when ``TENANTAUTH_BLOCKING_THREADS`` is valid; else exit saying why."""
    from tenantauth.granian_conf import blocking_threads  # noqa: PLC0415 - granian's only

    try:
        blocking_threads(os.environ)
    except ValueError as exc:
        fail(str(exc))


def server_argv(server_name: str, host: str, port: int, workers: int) -> list[str]:
    """Return the command line that runs ``server_name`` ("gunicorn" or "granian")."""
    if server_name == "granian":
        argv = [sys.executable, "-m", "tenantauth.granian_conf", "--host", host]
        return [*argv, "--port", str(port), "--workers", str(workers)]
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:tenantauth.gunicorn_conf"]
    return [*argv, "--bind", f"{host}:{port}", "--workers", str(workers), "tenantauth.wsgi:app"]


def _metrics_url(host: str, port: int, *, api_port: int) -> str:
    """Return where /metrics will be served ("off" for port 0), after checking that the
    port can be bound: exits with a message saying what to change when it cannot."""
    if not port:
        return "off"
    if port == api_port:
        fail(f"TENANTAUTH_METRICS_PORT={port} is the API port: choose another (or 0 for none)")
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        fail(
            f"cannot serve metrics on {host}:{port} ({exc.strerror}): set "
            "TENANTAUTH_METRICS_PORT to a free port, or 0 to turn metrics off"
        )
    return f"http://{host}:{port}/metrics"


def check_eviction_policy(cache: Cache) -> None:
    """Exit with a message when Redis's maxmemory-policy is not ``noeviction`` (an evicted
    revocation mark could let a revoked token through). When Redis does not answer, or will
    not tell (CONFIG and INFO both refused), warn loudly and go on: /readyz keeps checking.
    """
    try:
        policy = cache.eviction_policy()
    except CacheUnavailableError:
        _warn("Redis did not answer: its maxmemory-policy is not checked yet (/readyz does)")
        return
    problem = eviction_policy_problem(policy)
    if problem:
        fail(
            f"{problem}; set it (redis-server --maxmemory-policy {REQUIRED_EVICTION_POLICY}, "
            "or the maxmemory-policy flag of Memorystore/ElastiCache) and start again"
        )
    if not policy:
        _warn(
            "Redis refuses both CONFIG GET and INFO memory: its maxmemory-policy cannot be "
            f"checked; make sure it is {REQUIRED_EVICTION_POLICY} (docs/design.md, Readiness)"
        )


def _warn(message: str) -> None:
    click.secho(f"WARNING: {message}", err=True, fg="yellow", bold=True)


@main.command()
def migrate() -> None:
    """Apply pending database migrations (safe to run from several replicas at once)."""
    settings = load_settings()
    with services(settings) as svc:
        applied = svc.storage.migrate()  # type: ignore[attr-defined]
    if applied:
        click.echo(
            f"applied migrations {', '.join(map(str, applied))} to {describe_mode(settings)}"
        )
    else:
        click.echo(f"{describe_mode(settings)}: schema is up to date")


@main.command("settings")
def show_settings() -> None:
    """List every TENANTAUTH_* setting with its default and meaning (values are not shown)."""
    rows = [(PREFIX + s.name, s.default or "-", s.help) for s in SETTINGS]
    table(("setting", "default", "meaning"), rows)
