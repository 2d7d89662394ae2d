"""The ``tenantauth`` command: serve, migrate, and admin tasks against the same stores.

Admin commands act on the database and cache directly (same fences as the HTTP API), so they
work before the server is started and need only the service's own environment.
"""

from __future__ import annotations

# The command modules are imported for their side effect: registering their commands.
from tenantauth.cli import (  # noqa: F401
    admin,
    clients,
    keys,
    master_key,
    resource_servers,
    serve,
    tenants,
    tokens,
    users,
)
from tenantauth.cli.groups import main

__all__ = ["main"]
