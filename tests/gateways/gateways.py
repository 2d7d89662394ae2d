"""Real gateways in front of a real tenantauth: nginx and Caddy from Debian, each run from the
example configuration in ``examples/`` with only addresses and ports rewritten.

Both run as private processes with their own prefix, logs and ports under the test's tmp
directory; nothing touches a system-wide nginx or Caddy. Missing binaries fail the test with
the command that installs them (``make gateways`` does it), never a skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NGINX_EXAMPLE = REPO / "examples" / "nginx" / "tenantauth.conf"
CADDY_EXAMPLE = REPO / "examples" / "caddy" / "Caddyfile"
#: The addresses the examples are written with, rewritten to the test's own.
EXAMPLE_TENANTAUTH = "127.0.0.1:8000"
EXAMPLE_APP = "127.0.0.1:8080"
READY_SECONDS = 15.0
STOP_SECONDS = 10.0
HOST = "127.0.0.1"


@dataclass
class Gateway:
    """One gateway process listening on ``port``."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """Return what the gateway printed and logged."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        """Stop the gateway (SIGTERM, then SIGKILL of its process group)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(STOP_SECONDS)


def binary(name: str) -> str:
    """Return the path of ``name``; fail (never skip) with the way to install it."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        raise AssertionError(f"{name} is not installed: run `make gateways` (Debian: {name})")
    return path


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def rewrite(text: str, tenantauth_port: int, app_port: int, listen: tuple[str, str]) -> str:
    """Return an example configuration with the test's addresses, and ``listen[0]``
    replaced by ``listen[1]``."""
    for example in (EXAMPLE_TENANTAUTH, EXAMPLE_APP, listen[0]):
        assert example in text, f"the example no longer has {example!r}"
    text = text.replace(EXAMPLE_TENANTAUTH, f"{HOST}:{tenantauth_port}")
    text = text.replace(EXAMPLE_APP, f"{HOST}:{app_port}")
    return text.replace(listen[0], listen[1])


def start_nginx(tmp: Path, tenantauth_port: int, app_port: int) -> Gateway:
    """Run nginx with ``examples/nginx/tenantauth.conf`` included; return it once it listens."""
    port = free_port()
    prefix = tmp / "nginx"
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    site = rewrite(
        NGINX_EXAMPLE.read_text(), tenantauth_port, app_port, ("listen 8081;", f"listen {port};")
    )
    (prefix / "tenantauth.conf").write_text(site)
    user = "user root root;\n" if os.geteuid() == 0 else ""  # workers may read the tmp prefix
    (prefix / "nginx.conf").write_text(
        f"{user}worker_processes 1;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/logs/error.log info;\nevents {{ worker_connections 256; }}\n"
        "http {\n"
        f"  access_log {prefix}/logs/access.log;\n"
        + "".join(
            f"  {kind}_temp_path {prefix}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + f"  include {prefix}/tenantauth.conf;\n}}\n"
    )
    log = prefix / "logs" / "error.log"
    argv = [binary("nginx"), "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
    check = subprocess.run([*argv, "-t"], capture_output=True, text=True, check=False)
    assert check.returncode == 0, f"nginx -t refused the example:\n{check.stderr}"
    with log.open("ab") as sink:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [*argv, "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=sink,
            start_new_session=True,
        )
    return _ready(Gateway("nginx", port, proc, log))


def start_caddy(tmp: Path, tenantauth_port: int, app_port: int) -> Gateway:
    """Run Caddy with ``examples/caddy/Caddyfile``; return it once it listens.

    The admin endpoint is switched off (tests run in parallel; each would want :2019) and
    Caddy's data and config directories live under ``tmp``.
    """
    port = free_port()
    home = tmp / "caddy"
    home.mkdir(parents=True, exist_ok=True)
    site = rewrite(CADDY_EXAMPLE.read_text(), tenantauth_port, app_port, (":8082 {", f":{port} {{"))
    config = home / "Caddyfile"
    config.write_text("{\n\tadmin off\n}\n\n" + site)
    log = home / "caddy.log"
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
    }
    argv = [binary("caddy"), "run", "--config", str(config), "--adapter", "caddyfile"]
    with log.open("ab") as sink:
        proc = subprocess.Popen(
            argv, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    return _ready(Gateway("caddy", port, proc, log))


def _ready(gateway: Gateway) -> Gateway:
    """Wait until ``gateway`` accepts connections; fail with its log otherwise."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if gateway.proc.poll() is not None:
            break
        try:
            with socket.create_connection((HOST, gateway.port), timeout=0.5):
                return gateway
        except OSError:
            time.sleep(0.05)
    gateway.stop()
    raise AssertionError(f"{gateway.name} did not start:\n{gateway.output()}")
