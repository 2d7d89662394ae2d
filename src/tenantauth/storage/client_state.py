"""The token endpoint's one read (``Storage.load_client_state``), shared by both SQL adapters.

Client authentication and the ``client_credentials`` grant used to take two transactions (the
tenant and the client; then the tenant again, the subject's revocation version and a user of
that name): eleven round trips to PostgreSQL with the pool's check, BEGIN and COMMIT. One
statement reads them all from one snapshot, with no BEGIN/COMMIT (docs/design.md, "Client
secrets and passwords").
"""

from __future__ import annotations

from typing import Any

from tenantauth.domain.models import ClientState, UserStatus
from tenantauth.storage.accounts import CLIENT_COLUMNS, ClientRows
from tenantauth.storage.rows import TENANT_COLUMNS, tenant_from_row


def _qualified(alias: str, columns: str) -> str:
    return ", ".join(f"{alias}.{column}" for column in columns.split(", "))


_TENANT_WIDTH = len(TENANT_COLUMNS.split(", "))

# Placeholders, in order: the subject, the username (both the client id), the client id, the
# tenant id. A LEFT JOIN, so an unknown client still returns its tenant's row.
LOAD_CLIENT_STATE = (
    f"SELECT {_qualified('t', TENANT_COLUMNS)}, "  # noqa: S608 - constants only
    "(SELECT version FROM subject_revocations s WHERE s.tenant_id = t.id AND s.subject = {}), "
    "(SELECT status FROM users u WHERE u.tenant_id = t.id AND u.username = {}), "
    f"{_qualified('c', CLIENT_COLUMNS)} "
    "FROM tenants t LEFT JOIN clients c ON c.tenant_id = t.id AND c.client_id = {} "
    "WHERE t.id = {}"
)


def client_state_params(tenant_id: str, client_id: str) -> tuple[str, str, str, str]:
    """Return the parameters of ``LOAD_CLIENT_STATE`` in placeholder order."""
    return (client_id, client_id, client_id, tenant_id)


def client_state_from_row(row: tuple[Any, ...]) -> ClientState:
    """Build a ClientState from a row of ``LOAD_CLIENT_STATE``."""
    tenant = tenant_from_row(row[:_TENANT_WIDTH])
    version, status, *client = row[_TENANT_WIDTH:]
    return ClientState(
        tenant,
        ClientRows.client_from_row(client) if client[0] is not None else None,
        int(version or 0),
        UserStatus(status) if status is not None else None,
    )
