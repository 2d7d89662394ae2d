"""The ``tenantauth`` command and its subcommand groups, defined in one place.

The command modules register their commands on these groups; ``tenantauth.cli`` imports them.
"""

from __future__ import annotations

import click

from tenantauth import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="tenantauth")
def main() -> None:
    """tenantauth: multi-tenant JWT issuing and verification.

    With no TENANTAUTH_DATABASE_URL everything runs in embedded mode (SQLite in the state
    directory, secrets generated on first use). Run `tenantauth settings` to see every setting.

    Commands that change tenants, users, clients, tokens, resource servers or admin keys are
    recorded in the audit log like the HTTP API's (actor cli:<OS user>); `tenantauth audit
    list` shows it.
    """


@main.group()
def tenant() -> None:
    """Create, inspect, rotate, suspend, resume and delete tenants."""


@main.group()
def token() -> None:
    """Issue and verify tokens."""


@main.group()
def user() -> None:
    """Act on the users (token subjects) of a tenant."""


@main.group()
def client() -> None:
    """Register OAuth clients of a tenant and rotate their secrets."""


@main.group("resource-server")
def resource_server() -> None:
    """Register resource servers: credentials that may only introspect tokens (RFC 7662) of
    the tenants they are allowed for."""


@main.group("admin-keys")
def admin_keys() -> None:
    """Create, list and revoke admin API keys (global, or limited to one tenant)."""


@main.group()
def audit() -> None:
    """List the admin audit log (API and CLI actions) and verify its hash chain."""
