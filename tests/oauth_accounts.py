"""Creating OAuth users and clients straight through the repositories, for the OAuth tests.

(The admin API for users and clients is built separately; these tests do not depend on it.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tenantauth.domain.models import Client, User, UserStatus
from tenantauth.domain.services import Services

CLIENT_ID = "tac_app"
CLIENT_SECRET = "tas_app-secret-0123456789abcdefghijklmnopqrstu"
USERNAME = "alice"
PASSWORD = "correct horse battery staple"
ALL_GRANTS = ("client_credentials", "password", "refresh_token")


def add_client(
    svc: Services,
    tenant_id: str,
    client_id: str = CLIENT_ID,
    secret: str = CLIENT_SECRET,
    *,
    scopes: Sequence[str] = ("read", "write"),
    grant_types: Sequence[str] = ALL_GRANTS,
) -> Client:
    """Store a client whose secret is ``secret``; return it."""
    now = datetime.fromtimestamp(svc.clock.now(), UTC)
    client = Client(
        tenant_id,
        client_id,
        client_id.title(),
        svc.client_secrets.hash(secret),
        tuple(scopes),
        tuple(grant_types),
        now,
        now,
        now,
    )
    with svc.storage.transaction() as tx:
        tx.clients.insert(client)
    return client


def add_user(
    svc: Services,
    tenant_id: str,
    username: str = USERNAME,
    password: str = PASSWORD,
    *,
    claims: dict[str, Any] | None = None,
    status: UserStatus = UserStatus.ACTIVE,
    password_hash: str | None = None,
) -> User:
    """Store a user with an argon2id hash of ``password`` (or ``password_hash``); return it."""
    now = datetime.fromtimestamp(svc.clock.now(), UTC)
    user = User(
        tenant_id,
        username,
        password_hash or svc.passwords.hash(password),
        status,
        dict(claims or {}),
        now,
        now,
    )
    with svc.storage.transaction() as tx:
        tx.users.insert(user)
    return user


def set_user_status(svc: Services, tenant_id: str, username: str, status: UserStatus) -> None:
    """Disable or enable a stored user."""
    with svc.storage.transaction() as tx:
        user = tx.users.get(tenant_id, username)
        assert user is not None
        tx.users.update(
            User(
                user.tenant_id,
                user.username,
                user.password_hash,
                status,
                user.claims,
                user.created_at,
                user.updated_at,
            )
        )
