"""Helpers shared by the command modules: settings, services, errors, options and tables."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from tenantauth import embedded
from tenantauth.api.strict_json import strict_loads
from tenantauth.bootstrap import build_services
from tenantauth.domain import paging
from tenantauth.domain.services import Services
from tenantauth.errors import ConfigurationError, TenantAuthError
from tenantauth.settings import PREFIX, Settings, default_state_dir, is_embedded

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
_page_options = (
    click.option(
        "--limit",
        type=click.IntRange(1, paging.MAX_PAGE_SIZE),
        default=paging.DEFAULT_PAGE_SIZE,
        show_default=True,
        help=f"Entries per page (at most {paging.MAX_PAGE_SIZE}).",
    ),
    click.option("--cursor", help="Continue from a previous listing's next cursor."),
    click.option("--all", "fetch_all", is_flag=True, help="Follow cursors to list everything."),
)


def paged(command: Callable[..., None]) -> Callable[..., None]:
    """Add the --limit, --cursor and --all listing options to a command."""
    for option in reversed(_page_options):
        command = option(command)
    return command


def load_settings(*, serving: str | None = None) -> Settings:
    """Load settings; in embedded mode create the state directory and secrets first.

    A newly generated admin token is shown once, by whichever command generated it: on stdout
    with the served base URL for ``serve`` (``serving``), on stderr for other commands (their
    stdout stays clean for scripts and ``--json``).
    """
    env = os.environ
    if is_embedded(env):
        path = Path(env.get(PREFIX + "STATE_DIR") or default_state_dir(env))
        made = embedded.ensure_state(
            path,
            admin_token_given=bool(env.get(PREFIX + "ADMIN_TOKEN")),
            master_key_given=bool(env.get(PREFIX + "MASTER_KEY")),
        )
        if embedded.ADMIN_TOKEN_FILE in made:
            token = embedded.read_admin_token(path)
            _announce_admin_token(token, path, serving or "http://127.0.0.1:8000", serving is None)
    try:
        return Settings.from_env(env)
    except ConfigurationError as exc:
        fail("invalid configuration:\n  - " + "\n  - ".join(exc.problems))


def _announce_admin_token(admin_token: str, state_dir: Path, base_url: str, err: bool) -> None:
    line = "=" * 72
    lines = [
        line,
        "Embedded mode: a new admin token was generated. It is shown only this once",
        f"(kept, mode 0600, in {state_dir}/admin.token):\n",
        f"  {admin_token}\n",
        "Try it (with `tenantauth serve` running):",
        f"  curl -s -H 'Authorization: Bearer {admin_token}' {base_url}/v1/admin/tenants",
        line,
    ]
    for text in lines:
        click.echo(text, err=err)


@contextmanager
def services(settings: Settings | None = None) -> Iterator[Services]:
    """Yield the wired services (migrated first when auto_migrate is on); close them after."""
    settings = settings or load_settings()
    svc = build_services(settings)
    try:
        if settings.auto_migrate:
            run(svc.storage.migrate)  # type: ignore[attr-defined]
        yield svc
    finally:
        svc.close()


def run(action: Callable[[], Any]) -> Any:
    """Run a use case, turning domain errors into a clear message and exit status 1."""
    try:
        return action()
    except TenantAuthError as exc:
        fail(exc.detail)


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with status 1."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def read_secret() -> str:
    """Return the base64url secret on stdin's first line; fail if there is none."""
    secret = sys.stdin.readline().strip()
    if not secret:
        fail("expected a base64url secret on standard input")
    return secret


def parse_claim(text: str) -> tuple[str, Any]:
    """Return (name, value) of a NAME=JSON --claim; a value that is not JSON is a string.

    The value is read by the API's parser (``api.bodies.strict_loads``): JSON the API would
    refuse (a number over 100 characters, NaN, 1e999 ...) fails here too, never a traceback.
    """
    name, sep, raw = text.partition("=")
    if not sep or not name:
        fail(f"--claim must be NAME=JSON, got {text!r}")
    try:
        return name, strict_loads(raw)
    except json.JSONDecodeError:
        return name, raw  # a bare word is a string claim
    except (ValueError, RecursionError) as exc:
        fail(f"--claim {name}: {exc}")


def describe_mode(settings: Settings) -> str:
    """Return a one-line description of the mode (embedded or production) and its stores."""
    if settings.embedded:
        return f"embedded mode (SQLite in {settings.state_dir}, no Redis)"
    cache = "Redis" if settings.redis_url else "no Redis"
    return f"production mode (PostgreSQL, {cache})"


def row(d: dict[str, Any], columns: Sequence[str]) -> tuple[str, ...]:
    """Return the table cells of ``columns`` from ``d``."""
    return tuple(cell(d[c]) for c in columns)


def cell(value: Any) -> str:
    """Return one table cell: lists space-separated, dicts as JSON, '-' when empty."""
    if isinstance(value, list):
        return " ".join(fmt(v) for v in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False) if value else "-"
    return fmt(value)


def fmt(value: Any) -> str:
    """Return ``value`` as text, ISO timestamps shortened to ``YYYY-MM-DD HH:MM:SS``, and
    ``-`` for None (a date not set yet, such as a key never used), never ``None``."""
    if value is None:
        return "-"
    if isinstance(value, str) and value[:4].isdigit() and "T" in value:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")
    # Escaped, not printed: a value recorded from a request (an audit target) could carry
    # terminal escape sequences.
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def show_record(
    shown: dict[str, Any], as_json: bool, summary: str | None = None, notice: str | None = None
) -> None:
    """Print one record: JSON on stdout, or a field/value table; then ``summary`` and a
    one-time-secret ``notice`` on stderr (so ``--json`` output stays parseable)."""
    if as_json:
        click.echo(json.dumps(shown))
    else:
        table(("field", "value"), [(k, cell(v)) for k, v in shown.items()])
    for line in (summary, notice):
        if line:
            click.echo(line, err=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print rows as aligned columns under a header."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for line in [headers, *rows]:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
