"""``tenantauth serve --server granian``'s settings and worker loader
(src/tenantauth/granian_conf.py), against granian's own code where it matters."""

from __future__ import annotations

import gc
import logging
import logging.config
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from granian.log import log_request_builder
from granian.wsgi import _callback_wrapper

from tenantauth import granian_conf, worker_boot
from tenantauth.cli import main

#: What the worker's environment holds before the loader runs (fake values).
PROCESS_ENV = {
    "TENANTAUTH_MASTER_KEY": "bWFzdGVyLWtleS1ieXRlcy1mb3ItdGhlLXRlc3QtMzI=",
    "TENANTAUTH_MASTER_KEYS_OLD": "b2xkLWtleS1ieXRlcy1mb3ItdGhlLXRlc3QtLTMyMjI=",
    "TENANTAUTH_ADMIN_TOKEN": "admin-token-for-the-test-0123456789abcdef",
    "TENANTAUTH_DATABASE_URL": "postgresql://tenantauth:hunter2@db/tenantauth",
    "TENANTAUTH_REDIS_URL": "redis://:hunter2@cache:6379/0",
    "HTTP_PROXY": "http://proxy.internal:3128",
    "HTTP_AUTHORIZATION": "Bearer from-the-process-environment",
    "CONTENT_TYPE": "application/json",
}
#: What a request's scope holds (the part granian builds from the request itself).
SCOPE = {
    "REQUEST_METHOD": "GET",
    "PATH_INFO": "/healthz",
    "QUERY_STRING": "",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "wsgi.url_scheme": "http",
    "HTTP_X_PROBE": "p1",
}
seen: list[dict[str, Any]] = []


def recording_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """A WSGI app that keeps the environ of each request (the loader's target here)."""
    seen.append(dict(environ))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


class Transport:
    """Stands in for granian's Rust protocol object: takes the response and keeps it."""

    def __init__(self) -> None:
        """Nothing answered yet."""
        self.status = 0

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """Keep the status."""
        self.status = status


@pytest.fixture
def worker_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process environment of a freshly forked worker (restored afterwards), and the
    garbage collector unfrozen and the signal handlers restored after the loader changed
    them."""
    for name, value in PROCESS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TENANTAUTH_ISSUER", "https://auth.example")
    seen.clear()
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    gc.unfreeze()
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


def test_the_loader_exits_on_sigterm_until_granian_takes_over(worker_env: None) -> None:
    """While a worker loads the app, SIGTERM ends it at once (it has no request yet): the
    loader replaces the handler inherited from the main process, which only flags it."""
    granian_conf.load_app("tests.unit.test_granian_conf:recording_app")
    assert signal.getsignal(signal.SIGTERM) is worker_boot._exit_now
    assert signal.getsignal(signal.SIGINT) is worker_boot._exit_now


def request_through_granian() -> dict[str, Any]:
    """Send one request through granian's own WSGI wrapper, built as a worker builds it once
    the loader returned; return the environ the app saw."""
    wrapper = _callback_wrapper(recording_app, {}, None)
    transport = Transport()
    wrapper(transport, dict(SCOPE))
    assert transport.status == 200
    return seen[-1]


def test_granian_copies_the_process_environment_into_each_request(worker_env: None) -> None:
    """The threat is real: without the scrub, granian's environ carries the master key, the
    database password and a process HTTP_* variable posing as a request header."""
    environ = request_through_granian()
    assert environ["TENANTAUTH_MASTER_KEY"] == PROCESS_ENV["TENANTAUTH_MASTER_KEY"]
    assert environ["HTTP_AUTHORIZATION"] == "Bearer from-the-process-environment"


def test_the_loader_removes_secrets_from_the_worker_environment(worker_env: None) -> None:
    """After loading the app, the worker's os.environ holds no secret setting, no HTTP_* and
    no CGI request variable; other settings stay."""
    app = granian_conf.load_app("tests.unit.test_granian_conf:recording_app")
    assert app is recording_app
    for name in PROCESS_ENV:
        assert name not in os.environ, name
    assert os.environ["TENANTAUTH_ISSUER"] == "https://auth.example"
    assert gc.get_freeze_count() > 0  # gunicorn_conf.post_worker_init's freeze, done here


def test_requests_after_the_loader_carry_no_secret(worker_env: None) -> None:
    """The environ granian builds for a request once the loader returned holds none of the
    scrubbed variables, and still the request's own headers."""
    granian_conf.load_app("tests.unit.test_granian_conf:recording_app")
    environ = request_through_granian()
    assert not set(PROCESS_ENV) & set(environ), sorted(set(PROCESS_ENV) & set(environ))
    assert environ["HTTP_X_PROBE"] == "p1"
    assert environ["TENANTAUTH_ISSUER"] == "https://auth.example"


def test_the_secret_settings_are_every_secret_of_the_settings_table() -> None:
    """Every setting whose value is a secret (hidden from Settings' repr) or a URL that may
    carry a password is scrubbed."""
    assert set(granian_conf.SECRET_SETTINGS) == {
        "TENANTAUTH_MASTER_KEY",
        "TENANTAUTH_MASTER_KEYS_OLD",
        "TENANTAUTH_ADMIN_TOKEN",
        "TENANTAUTH_DATABASE_URL",
        "TENANTAUTH_REDIS_URL",
    }


def test_the_access_log_names_the_worker(tmp_path: Path) -> None:
    """granian's access-log line, through our logging config, carries this process's pid
    and the probe header, in the order the e2e harness reads them."""
    path = tmp_path / "access.log"
    logging.config.dictConfig(granian_conf.log_config(str(path)))
    access = logging.getLogger("granian.access")
    try:
        log = log_request_builder("%(header{x-probe})s %(pid)d %(status)d")
        request = {
            "addr_remote": "127.0.0.1",
            "path": "/healthz",
            "qs": "",
            "method": "GET",
            "scheme": "http",
            "protocol": "HTTP/1.1",
            "headers": lambda name: "p1" if name == "x-probe" else None,
        }
        log(0.0, 0.0, request, 200)
    finally:
        for handler in access.handlers:
            handler.close()
            access.removeHandler(handler)
    assert path.read_text() == f"p1 {os.getpid()} 200\n"


def test_the_server_gets_what_gunicorn_conf_gives_gunicorn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The granian server is built with the threads asked for, gunicorn's per-worker
    connection bound and drain timeout, and dead workers replaced."""
    monkeypatch.setenv("TENANTAUTH_METRICS_PORT", "0")
    monkeypatch.setenv("TENANTAUTH_WORKER_TIMEOUT", "12")
    server = granian_conf.build_server("127.0.0.1", 8000, 3, threads=8)
    assert server.blocking_threads == 8
    assert server.backpressure == 1000
    assert server.workers_kill_timeout == 20
    assert server.respawn_failed_workers is True
    # The watchdog: started with the server, its heartbeat directory removed at shutdown.
    watchdog = granian_conf._watchdog
    assert watchdog is not None and watchdog.start in server.hooks_startup
    directory, interval = watchdog.directory, watchdog.interval
    assert directory.is_dir() and interval == 1.0
    assert watchdog.timeout == 12
    for hook in server.hooks_shutdown:
        hook()
    assert not directory.exists()


@pytest.mark.parametrize("text", ["0", "257", "eight", "-4"])
def test_blocking_threads_out_of_range_are_refused(text: str) -> None:
    """TENANTAUTH_BLOCKING_THREADS must be a whole number from 1 to 256."""
    with pytest.raises(ValueError, match="TENANTAUTH_BLOCKING_THREADS"):
        granian_conf.blocking_threads({"TENANTAUTH_BLOCKING_THREADS": text})


def test_blocking_threads_default_and_given() -> None:
    """Unset: the default (8); set: its value."""
    assert granian_conf.blocking_threads({}) == granian_conf.DEFAULT_BLOCKING_THREADS == 4
    assert granian_conf.blocking_threads({"TENANTAUTH_BLOCKING_THREADS": "8"}) == 8


def test_granian_is_the_default_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve` with no --server and no TENANTAUTH_SERVER runs granian (its settings are
    checked: a bad thread count stops it before anything starts)."""
    monkeypatch.delenv("TENANTAUTH_SERVER", raising=False)
    monkeypatch.setenv("TENANTAUTH_BLOCKING_THREADS", "0")
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 1
    assert "TENANTAUTH_BLOCKING_THREADS must be a whole number" in result.output


def test_server_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """TENANTAUTH_SERVER picks the server as --server does; an unknown one is refused."""
    monkeypatch.setenv("TENANTAUTH_SERVER", "granian")
    monkeypatch.setenv("TENANTAUTH_BLOCKING_THREADS", "0")
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 1
    assert "TENANTAUTH_BLOCKING_THREADS must be a whole number" in result.output
    monkeypatch.setenv("TENANTAUTH_SERVER", "uwsgi")
    assert CliRunner().invoke(main, ["serve"]).exit_code == 2
